"""The faster LoRA training path (:mod:`tinysec.models.fastlora`): the fused update and the fast
dropout compute what peft computes, forward and backward, on a tiny random-weight Llama built in
the test."""

from __future__ import annotations

import copy

import pytest
import torch

from tinysec.models.fastdropout import FastDropout
from tinysec.models.fastlora import speed_up_lora
from tinysec.models.tiny import build_random_model
from tinysec.models.train import load_trainable


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return build_random_model("llama", tmp_path_factory.mktemp("m") / "tiny", hidden=32, layers=2, heads=2)


def _lora_models(model_dir, dropout: float):
    torch.manual_seed(0)
    fast = load_trainable(model_dir, "lora", {"r": 4, "alpha": 8, "dropout": dropout,
                                             "target_modules": ["q_proj", "v_proj"]}, torch.float32)
    with torch.no_grad():  # B starts at zero; give it weights so the adapter changes the output
        for name, p in fast.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    plain = copy.deepcopy(fast)
    for module in plain.modules():  # back to peft's own forward and dropout
        module.__dict__.pop("forward", None)
        for key in list(getattr(module, "lora_dropout", {}) or {}):
            module.lora_dropout[key] = torch.nn.Dropout(dropout)
    return fast, plain


def test_fused_update_matches_peft_forward_and_backward(tiny_llama):
    fast, plain = _lora_models(tiny_llama, dropout=0.0)
    ids = torch.randint(0, fast.config.vocab_size, (3, 11))
    outs = []
    for model in (fast, plain):
        model.train()
        logits = model(input_ids=ids).logits
        logits.square().mean().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        outs.append((logits.detach(), grads))
    (lf, gf), (lp, gp) = outs
    assert len(gf) == 2 * 2 * 2  # A and B of q_proj and v_proj in 2 layers
    assert torch.allclose(lf, lp, atol=1e-5)
    for name in gf:
        assert torch.allclose(gf[name], gp[name], atol=1e-6, rtol=1e-4), name
    with fast.disable_adapter():  # peft's own forward: the base model's output
        base = fast(input_ids=ids).logits
    assert not torch.allclose(base, lf, atol=1e-3)


def test_speed_up_lora_counts_and_keeps_modules_without_dropout(tiny_llama):
    fast, _ = _lora_models(tiny_llama, dropout=0.1)
    drops = [m for m in fast.modules() if isinstance(m, FastDropout)]
    assert len(drops) == 4 and all(d.p == 0.1 for d in drops)
    none, _ = _lora_models(tiny_llama, dropout=0.0)  # peft uses Identity: nothing to replace
    assert not any(isinstance(m, FastDropout) for m in none.modules())
    assert speed_up_lora(copy.deepcopy(none)) == {"dropout": 0, "forward": 4}


@pytest.mark.parametrize("method", ["lora", "full"])
def test_rms_norm_backward_matches_transformers(tiny_llama, method):
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    from tinysec.models.fastnorm import RMSNormFunction

    torch.manual_seed(1)
    fast = load_trainable(tiny_llama, method, {"r": 4, "alpha": 8, "dropout": 0.0,
                                              "target_modules": ["q_proj", "v_proj"]}, torch.float32)
    norms = [m for m in fast.modules() if isinstance(m, LlamaRMSNorm)]
    assert len(norms) == 2 * 2 + 1 and all("forward" in m.__dict__ for m in norms)
    with torch.no_grad():
        for m in norms:
            m.weight.normal_(1, 0.3)
    plain = copy.deepcopy(fast)
    for module in plain.modules():
        if isinstance(module, LlamaRMSNorm):
            del module.forward
    ids = torch.randint(0, fast.config.vocab_size, (2, 9))
    grads = []
    for model in (fast, plain):
        model(input_ids=ids).logits.square().mean().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and any("norm" in n for n in grads[0]) == (method == "full")
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-4), name
    # one norm alone, fp32 and a bf16 input (which keeps transformers' forward)
    x = torch.randn(3, 5, 32, requires_grad=True)
    y = RMSNormFunction.apply(x, norms[0].weight, norms[0].variance_epsilon)
    assert torch.allclose(y, type(norms[0]).forward(norms[0], x), atol=1e-6)
    assert torch.equal(norms[0](x.detach().bfloat16()), type(norms[0]).forward(norms[0], x.detach().bfloat16()))
