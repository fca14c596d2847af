"""Padding-free training batches for decoder models with plain causal attention.

A batch's examples run as one packed row: ``input_ids`` of shape ``(1, tokens)`` with positions
restarting at every example, so the projections, the MLPs, the norms and the rotary embedding
see no padding. Only attention needs the examples apart: :func:`packed_attention` splits the
packed queries, keys and values into one view per example and runs causal SDPA on each, so no
attention is computed for padding either. The result equals that of the right-padded batch.

It applies to the families of :data:`PACKABLE` without sliding-window attention
(:func:`supports_packing`); others train on right-padded batches (``collate``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

from ..torchutil import register_attention
from .prompts import IGNORE_INDEX

PACKED_ATTENTION = "tinysec_packed"
PACKABLE = frozenset({"llama", "qwen2", "qwen3", "mistral"})


def supports_packing(config: Any) -> bool:
    """True for a model config whose attention :func:`packed_attention` computes exactly."""
    if config.model_type not in PACKABLE:
        return False
    return getattr(config, "sliding_window", None) is None or not getattr(config, "use_sliding_window", True)


def pack(examples: Sequence[Mapping[str, list[int]]], device: Any = "cpu") -> dict[str, Any]:
    """One packed row of ``examples`` on ``device``: ``input_ids``, ``position_ids``, ``targets`` (each
    position's next-token label, ignored at an example's last position) and ``lengths`` (the
    examples' token counts, for :func:`packed_attention`)."""
    import torch

    lengths = tuple(len(e["input_ids"]) for e in examples)
    ids = list(chain.from_iterable(e["input_ids"] for e in examples))
    targets = list(chain.from_iterable(list(e["labels"][1:]) + [IGNORE_INDEX] for e in examples))
    positions = list(chain.from_iterable(range(n) for n in lengths))
    row = {"input_ids": ids, "position_ids": positions, "targets": targets}
    return {**{k: torch.tensor([v], device=device) for k, v in row.items()}, "lengths": lengths}


def packed_attention(module, query, key, value, attention_mask, dropout: float = 0.0,
                     scaling: float | None = None, tinysec_lengths: Sequence[int] | None = None, **kwargs):
    """Causal attention within each example of a packed row (``tinysec_lengths`` given), else
    transformers' SDPA attention. The examples' slices are views (``split``), so the only copy is
    the concatenated output."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if tinysec_lengths is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    parts = zip(*(t.split(list(tinysec_lengths), dim=2) for t in (query, key, value)))
    outs = [sdpa_attention_forward(module, q, k, v, None, dropout=dropout, scaling=scaling, is_causal=True)[0]
            for q, k, v in parts]
    return torch.cat(outs, dim=1), None


def register() -> str:
    """Register :func:`packed_attention` with transformers, with SDPA's mask function (so unpacked
    calls get their padding masks; a packed row's block mask goes unused); returns its name."""
    return register_attention(PACKED_ATTENTION, packed_attention)
