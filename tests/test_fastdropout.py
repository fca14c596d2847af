"""Faster dropout (:mod:`tinysec.models.fastdropout`): masks of the right probability and scale,
seeded by torch's generator, and an encoder whose dropout and attention dropout are replaced
computes what transformers computes (eval mode: the same outputs; training: softmax attention
with the same masks) on a tiny random-weight BERT built in the test."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tinysec.models.fastdropout import FastDropout, dropout_attention, fast_dropout, speed_up_dropout
from tinysec.models.tiny import build_random_model


def test_dropout_drops_p_of_the_values_and_keeps_the_mean():
    x = torch.ones(400, 500)
    drop = FastDropout(0.05).train()
    y = drop(x)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.05) < 0.003  # 200k draws: 5 sigma is 0.0024
    assert torch.allclose(y[kept], torch.full_like(y[kept], 65536 / (65536 - 3277)))
    assert abs(y.mean().item() - 1) < 0.005
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        FastDropout(1.0)


def test_dropout_masks_follow_torch_seed_and_carry_gradients():
    drop = FastDropout(0.3).train()
    torch.manual_seed(7)
    a = drop(torch.ones(64, 64))
    b = drop(torch.ones(64, 64))
    torch.manual_seed(7)
    assert torch.equal(drop(torch.ones(64, 64)), a)  # same seed, same mask
    assert not torch.equal(a, b)  # the next call draws a new one
    x = torch.ones(64, 64, requires_grad=True)
    torch.manual_seed(7)
    drop(x).sum().backward()
    assert torch.equal(x.grad, a)  # gradient passes the kept values, scaled, and stops at dropped ones


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return build_random_model("bert", tmp_path_factory.mktemp("b") / "bert", hidden=32, layers=2, heads=2)


def _encoder(path):
    from transformers import AutoConfig, AutoModel

    cfg = AutoConfig.from_pretrained(path, attention_probs_dropout_prob=0.2, hidden_dropout_prob=0.1)
    return AutoModel.from_pretrained(path, config=cfg)


def test_encoder_dropouts_replaced_and_eval_outputs_unchanged(tiny_bert):
    ids = torch.tensor([[5, 17, 23, 42, 8, 0], [5, 99, 8, 0, 0, 0]])
    mask = (ids != 0).long()
    plain, fast = _encoder(tiny_bert).eval(), _encoder(tiny_bert).eval()
    counts = speed_up_dropout(fast)
    assert counts == {"dropout": 1 + 3 * 2, "attention": 1}  # embeddings, then 3 per layer (attention's p)
    assert not any(type(m) is torch.nn.Dropout for m in fast.modules())
    with torch.no_grad():
        a = plain(input_ids=ids, attention_mask=mask).last_hidden_state
        b = fast(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(a, b, atol=1e-5)
    fast.train()
    torch.manual_seed(0)
    first = fast(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.manual_seed(0)
    assert torch.equal(first, fast(input_ids=ids, attention_mask=mask).last_hidden_state)  # seeded
    assert not torch.allclose(first, b, atol=1e-3)  # training mode drops


def test_dropout_attention_is_softmax_attention_with_the_fast_mask():
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 2, 5, 4, generator=gen) for _ in range(3))
    keep = torch.tensor([[True] * 5, [True, True, True, False, False]])[:, None, None, :].expand(2, 1, 5, 5)
    torch.manual_seed(11)
    out, _ = dropout_attention(torch.nn.Module(), q, k, v, keep, dropout=0.3, scaling=0.5)
    scores = (q @ k.transpose(-1, -2) * 0.5).masked_fill(~keep, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    torch.manual_seed(11)
    expected = (fast_dropout(probs, 0.3) @ v).transpose(1, 2)
    assert torch.allclose(out, expected, atol=1e-6)
    no_drop, _ = dropout_attention(torch.nn.Module(), q, k, v, keep, dropout=0.0, scaling=0.5)
    assert torch.allclose(no_drop, (probs @ v).transpose(1, 2), atol=1e-6)
    sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=0.5).transpose(1, 2)
    assert torch.allclose(no_drop, sdpa, atol=1e-6)
