"""oneDNN linear layers for training (:mod:`tinysec.models.fastlinear`): frozen and trained layers
compute what ``torch.nn.Linear`` computes, forward and backward; packed weights follow weight
updates (fused AdamW's in place, without a version bump, included); inference packs frozen layers
once; narrow trained layers, trained layers without gradients and other dtypes keep torch's
forward; a LoRA fine-tuning run of a tiny random-weight Llama goes through oneDNN and has the loss
curve of the unpatched run."""

from __future__ import annotations

import copy

import pytest
import torch

from tinysec.models import fastlinear
from tinysec.models.tiny import build_random_model
from tinysec.models.train import finetune

pytestmark = pytest.mark.skipif(not fastlinear.available(), reason="torch built without oneDNN")


def _pair(n_in: int, n_out: int, bias: bool, trained: bool) -> tuple[torch.nn.Linear, torch.nn.Linear]:
    torch.manual_seed(0)
    plain = torch.nn.Linear(n_in, n_out, bias=bias).requires_grad_(trained)
    fast = copy.deepcopy(plain)
    assert fastlinear.speed_up_linears(fast) == 1
    return fast, plain


def _run(layer: torch.nn.Linear, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    x = x.clone().requires_grad_(True)
    y = layer(x)
    (y * torch.linspace(-1, 1, y.shape[-1])).sum().backward()
    grads = {"x": x.grad, **{n: p.grad for n, p in layer.named_parameters() if p.grad is not None}}
    return y.detach(), grads


@pytest.mark.parametrize("bias", [False, True])
def test_frozen_layer_matches_torch_and_packs_once(bias):
    fast, plain = _pair(300, 260, bias, trained=False)
    x = torch.randn(2, 7, 300)
    (yf, gf), (yp, gp) = _run(fast, x), _run(plain, x)
    assert torch.allclose(yf, yp, atol=1e-5) and torch.allclose(gf["x"], gp["x"], atol=1e-5)
    assert set(gf) == {"x"}
    packed = getattr(fast, fastlinear._PACKED)
    _run(fast, x)
    assert getattr(fast, fastlinear._PACKED) is packed  # kept while the weight is unchanged
    with torch.no_grad():
        fast.weight.mul_(2)
        plain.weight.mul_(2)
    (yf, _), (yp, _) = _run(fast, x), _run(plain, x)
    assert getattr(fast, fastlinear._PACKED) is not packed  # repacked after the in-place change
    assert torch.allclose(yf, yp, atol=1e-5)


def test_trained_layer_matches_torch_and_follows_fused_adamw():
    fast, plain = _pair(320, 288, bias=True, trained=True)
    x = torch.randn(5, 320)
    (yf, gf), (yp, gp) = _run(fast, x), _run(plain, x)
    assert torch.allclose(yf, yp, atol=1e-5)
    assert set(gf) == set(gp) == {"x", "weight", "bias"}
    for name in gp:
        assert torch.allclose(gf[name], gp[name], atol=1e-5), name
    before = fast.weight.detach().clone()
    for layer in (fast, plain):  # fused AdamW updates in place without a version bump
        version = layer.weight._version
        torch.optim.AdamW(layer.parameters(), lr=0.1, fused=True).step()
        assert layer.weight._version == version
    assert not torch.allclose(fast.weight, before)
    (yf, _), (yp, _) = _run(fast, x), _run(plain, x)
    assert torch.allclose(yf, yp, atol=1e-5)  # the forward sees the updated weight


def test_inference_packs_frozen_layers_once_and_keeps_torch_forward_elsewhere():
    x = torch.randn(4, 576)
    frozen, plain = _pair(576, 300, bias=True, trained=False)
    with torch.inference_mode():
        assert torch.allclose(frozen(x), plain(x), atol=1e-5)
    packed = getattr(frozen, fastlinear._PACKED)
    assert packed[2] is None  # no W^T packed for inference
    with torch.no_grad():
        frozen(x)
    assert getattr(frozen, fastlinear._PACKED) is packed
    narrow, plain_narrow = _pair(576, 8, bias=False, trained=True)  # a LoRA A factor
    trained, plain_trained = _pair(576, 300, bias=False, trained=True)
    double, plain_double = (m.to(torch.float64) for m in _pair(576, 300, bias=False, trained=False))
    assert torch.equal(narrow(x), plain_narrow(x))
    with torch.no_grad():
        assert torch.equal(trained(x), plain_trained(x))
    assert torch.equal(double(x.double()), plain_double(x.double()))
    for layer in (narrow, trained, double):
        assert not hasattr(layer, fastlinear._PACKED)


def test_lora_finetune_has_the_loss_curve_of_the_unpatched_run(tmp_path, monkeypatch):
    model_dir = build_random_model("llama", tmp_path / "tiny", hidden=64, layers=2, heads=2)
    records = [{"instruction": f"Name tactic {i}.", "input": "", "output": f"Tactic number {i} is discovery."}
               for i in range(8)]
    hp = {"epochs": 1, "batch_size": 2, "grad_accum": 2, "cutoff": 64, "save_every": 0, "seed": 3,
          "lora": {"r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}}
    calls, linear = [], fastlinear._linear
    monkeypatch.setattr(fastlinear, "_linear", lambda *args: calls.append(1) or linear(*args))
    fast = finetune(model_dir, records, tmp_path / "fast", hp, progress=False, device="cpu")
    assert calls  # the run's products went through oneDNN
    monkeypatch.setattr(fastlinear, "speed_up_linears", lambda model: 0)
    calls.clear()
    plain = finetune(model_dir, records, tmp_path / "plain", hp, progress=False, device="cpu")
    assert not calls
    assert fast["optimizer_steps"] == plain["optimizer_steps"] == 2
    for a, b in zip(fast["loss_curve"], plain["loss_curve"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
