"""Linear layers through oneDNN's packed fp32 GEMM on CPU: :func:`speed_up_linears`.

torch computes ``F.linear`` on CPU with MKL's fp32 GEMM. oneDNN's ``_linear_pointwise`` on a
weight packed in its blocked layout (``_reorder_linear_weight``) is faster on the reference 2-core
machine (fp32, 2 threads, alone in a loop):

- training shapes: a 723 x 576 input times a 576 x 1536 weight in 5.9 ms against 8.0 ms; a
  453 x 576 input times SmolLM2's 576 x 49152 output projection in 147 ms against 196 ms;
- decoding shapes: 8 rows times a 576 x 1536 weight in 0.09 ms against 0.18 ms; 48 rows times the
  output projection in 15 ms against 34 ms.

Packing a 1536 x 576 weight takes 0.2 ms.

- **Frozen layers** (LoRA's base projections and output projection; every layer of a model
  loaded for generation): ``W`` is packed once and kept on the layer, and so is ``W^T`` for the
  input gradient once a training call needs it (up to twice the weights' memory). They are packed
  again when the weight tensor or its version counter changes.
- **Trained layers** (full fine-tuning), in calls with gradients: ``W`` is packed at every call,
  since fused optimisers update it in place without moving its version counter; the input
  gradient uses a plain view of ``W^T``. Layers narrower than :data:`MIN_TRAINED_DIM` (LoRA's
  rank-r factors) and calls without gradients keep torch's forward.

:class:`PackedLinearFunction` computes the forward ``x W^T + b`` and the input gradient ``g W``
this way; weight and bias gradients stay with torch's GEMM, which was as fast as oneDNN for those
shapes. In a LoRA step of SmolLM2-135M (fp32, 2 threads) the GEMMs took about 13% less time,
measured A/B on the same batches. Only fp32 CPU layers take this path, and only when torch was
built with oneDNN; other dtypes and devices run the layer's own forward. Results differ from
torch's only by the order of summation (float rounding).
"""

from __future__ import annotations

from types import MethodType
from typing import Any

import torch

_PACKED = "_tinysec_packed"
#: Trained layers narrower than this (LoRA's rank-r factors) keep torch's GEMM: packing them at
#: every call costs more than it saves.
MIN_TRAINED_DIM = 256


def available() -> bool:
    """True when this torch build has oneDNN and its packed linear operators."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _linear(x2d: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x2d, packed, bias, "none", [], "")


def _project(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x W^T + b`` over the last dimension of ``x`` (any leading shape) from a packed ``W``."""
    y = _linear(x.reshape(-1, x.shape[-1]), packed, bias)
    return y.view(*x.shape[:-1], y.shape[-1])


class PackedLinearFunction(torch.autograd.Function):
    """``x W^T + b``: forward from ``forward_w`` (``W`` packed), input gradient from ``backward_w``
    (``W^T``, packed or a plain view), weight and bias gradients (trained layers) with torch's GEMM."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, forward_w: torch.Tensor,
                backward_w: torch.Tensor) -> torch.Tensor:
        ctx.backward_w, ctx.in_shape = backward_w, x.shape
        ctx.save_for_backward(x.reshape(-1, x.shape[-1]) if weight.requires_grad else None)
        return _project(x, forward_w, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        g2d = grad.reshape(-1, grad.shape[-1])
        gx = _project(grad, ctx.backward_w, None) if ctx.needs_input_grad[0] else None
        gw = torch.mm(g2d.t(), ctx.saved_tensors[0]) if ctx.needs_input_grad[1] else None
        gb = g2d.sum(0) if ctx.needs_input_grad[2] else None
        return gx, gw, gb, None, None


def _reorder(w: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(w, None)


def _frozen_packed(layer: torch.nn.Linear, backward: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A frozen layer's ``W`` packed for the forward and, when ``backward``, ``W^T`` packed for
    the input gradient; kept on the layer and packed again when the weight tensor or its version
    counter changes."""
    w = layer.weight.detach()
    key = (w.data_ptr(), layer.weight._version, tuple(w.shape))
    cached = getattr(layer, _PACKED, None)
    if cached is None or cached[0] != key:
        cached = (key, _reorder(w), None)
    if backward and cached[2] is None:
        cached = (key, cached[1], _reorder(w.t().contiguous()))
    setattr(layer, _PACKED, cached)
    return cached[1], cached[2]


def _fast_forward(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """The layer's output through oneDNN (see the module docstring) for fp32 on CPU; the layer's
    own forward for other dtypes and devices, for narrow trained layers, and for trained layers
    without gradients."""
    w, b = layer.weight, layer.bias
    if not (x.dtype == w.dtype == torch.float32 and w.device.type == "cpu" and (b is None or b.dtype == torch.float32)):
        return torch.nn.Linear.forward(layer, x)
    if w.requires_grad:
        if not torch.is_grad_enabled() or min(w.shape) < MIN_TRAINED_DIM:
            return torch.nn.Linear.forward(layer, x)
        return PackedLinearFunction.apply(x, w, b, _reorder(w.detach()), w.detach().t())
    if b is not None and b.requires_grad:
        return torch.nn.Linear.forward(layer, x)
    train = torch.is_grad_enabled() and x.requires_grad
    forward_w, backward_w = _frozen_packed(layer, backward=train)
    if train:
        return PackedLinearFunction.apply(x, w, b, forward_w, backward_w)
    return _project(x, forward_w, b)


def speed_up_linears(model: Any) -> int:
    """Give every ``torch.nn.Linear`` of ``model`` the forward of :func:`_fast_forward` (which
    checks at each call the dtype, the device and whether the layer is trained); returns how
    many. Nothing changes where oneDNN is missing. Weights and saved models are unchanged."""
    if not available():
        return 0
    count = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear:
            module.forward = MethodType(_fast_forward, module)
            count += 1
    return count
