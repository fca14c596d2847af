"""Padding-free training batches (:mod:`tinysec.models.packing`): a packed row gives the loss and
the gradients of the right-padded batch, on tiny random-weight Llama and Qwen2 models built here
(with grouped-query attention), and the training loop uses it only where it is exact."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from tinysec.models import packing
from tinysec.models.prompts import IGNORE_INDEX
from tinysec.models.train import collate

LENGTHS = (7, 12, 3, 9)


def _examples():
    gen = torch.Generator().manual_seed(1)
    out = []
    for n in LENGTHS:
        ids = torch.randint(1, 100, (n,), generator=gen).tolist()
        out.append({"input_ids": ids, "labels": [IGNORE_INDEX] * 2 + ids[2:]})
    return out


def _model(cls, cfg_cls, **extra):
    torch.manual_seed(0)
    cfg = cfg_cls(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, **extra)
    return cls(cfg).float()


def _padded_loss(model, examples):
    batch = collate(examples, pad_id=0)
    hidden = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         use_cache=False).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    return F.cross_entropy(model.lm_head(hidden[:, :-1][keep]), targets[keep], reduction="sum")


def _packed_loss(model, examples):
    row = packing.pack(examples)
    hidden = model.model(input_ids=row["input_ids"], position_ids=row["position_ids"], use_cache=False,
                         tinysec_lengths=row["lengths"]).last_hidden_state
    keep = row["targets"] != IGNORE_INDEX
    return F.cross_entropy(model.lm_head(hidden[keep]), row["targets"][keep], reduction="sum")


def test_pack_restarts_positions_and_ignores_each_examples_last_target():
    examples = _examples()
    row = packing.pack(examples)
    assert row["lengths"] == LENGTHS
    assert row["input_ids"].shape == (1, sum(LENGTHS))
    assert row["position_ids"][0, :9].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1]
    ends = torch.cumsum(torch.tensor(LENGTHS), 0) - 1
    assert (row["targets"][0, ends] == IGNORE_INDEX).all()
    assert row["targets"][0, :6].tolist() == [IGNORE_INDEX] + examples[0]["input_ids"][2:7]


@pytest.mark.parametrize("cls,cfg_cls", [(LlamaForCausalLM, LlamaConfig), (Qwen2ForCausalLM, Qwen2Config)])
def test_packed_row_gives_the_padded_batchs_loss_and_gradients(cls, cfg_cls):
    model = _model(cls, cfg_cls)
    examples = _examples()
    left_padded = torch.tensor([[0, 0] + examples[0]["input_ids"][:5], examples[0]["input_ids"]])
    left_mask = (torch.arange(7) >= torch.tensor([[2], [0]])).long()
    with torch.no_grad():
        sdpa = model.model(input_ids=left_padded, attention_mask=left_mask, use_cache=False).last_hidden_state
    padded = _padded_loss(model, examples)
    grads = torch.autograd.grad(padded, list(model.parameters()))
    model.config._attn_implementation = packing.register()
    packed = _packed_loss(model, examples)
    packed_grads = torch.autograd.grad(packed, list(model.parameters()))
    assert packed.item() == pytest.approx(padded.item(), rel=1e-5)
    for a, b in zip(grads, packed_grads):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # ordinary (unpacked) calls fall back to SDPA attention, padding mask included
        fallback = model.model(input_ids=left_padded, attention_mask=left_mask, use_cache=False).last_hidden_state
    assert torch.allclose(fallback, sdpa, atol=1e-6)


def test_packing_only_where_attention_is_plain_causal():
    assert packing.supports_packing(LlamaConfig())
    assert packing.supports_packing(Qwen2Config(use_sliding_window=False))
    assert not packing.supports_packing(Qwen2Config(use_sliding_window=True, sliding_window=16))
    from transformers import BertConfig, Gemma3TextConfig

    assert not packing.supports_packing(Gemma3TextConfig())
    assert not packing.supports_packing(BertConfig())
