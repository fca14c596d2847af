"""Temperature scaling of the CRF marginals, and the expected calibration error of entity confidences.

A tagger's confidence in an entity is the mean, over its words, of the CRF marginal probability of
the tag its Viterbi path gave each word. Temperature scaling divides every CRF score (emissions,
start, end and transition scores) by one scalar ``T`` before forward-backward: ``T > 1`` softens
the marginals, ``T < 1`` sharpens them, and the Viterbi path (hence every entity) is unchanged.

``T`` is fitted on the validation set by minimising the negative log-likelihood of the gold tags'
marginals, mean over words (:func:`fit_temperature`: a log-spaced grid, then a golden-section
refinement around the best grid point). It is saved beside the model as ``calibration.json``; a
tagger folder without that file has ``T = 1`` (:func:`read_temperature`).

Expected calibration error (:func:`expected_calibration_error`): entities are put in ``n_bins``
equal-width confidence bins over [0, 1] (the last bin includes 1); ECE is the sum over bins of
(entities in the bin / all entities) * |share of the bin's entities that are correct - their mean
confidence|. An entity is correct when its span and type exactly match a gold entity.
Imports torch only inside :func:`fit_temperature`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

CALIBRATION_FILE = "calibration.json"
ECE_BINS = 10
ECE_DEFINITION = ("ECE = expected calibration error of entity confidences: entities are binned into "
                  f"{ECE_BINS} equal-width confidence bins over [0, 1]; ECE = sum over bins of "
                  "(share of entities in the bin) * |accuracy - mean confidence| of the bin, where an entity "
                  "is correct when its span and type exactly match a gold entity")


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = ECE_BINS) -> float | None:
    """ECE of ``(confidence, correct)`` pairs (see the module docstring); None when there are none."""
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences but {len(correct)} correctness flags")
    if not confidences:
        return None
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(n_bins)]
    for c, ok in zip(confidences, correct):
        if not -1e-4 <= c <= 1.0 + 1e-4:  # also refuses NaN; allows float rounding at the ends
            raise ValueError(f"confidence {c!r} is not in [0, 1]")
        c = min(max(c, 0.0), 1.0)
        bins[min(int(c * n_bins), n_bins - 1)].append((c, bool(ok)))
    total = len(confidences)
    return sum(len(b) / total * abs(sum(ok for _, ok in b) / len(b) - sum(c for c, _ in b) / len(b))
               for b in bins if b)


def read_temperature(folder: str | os.PathLike) -> float:
    """The fitted temperature of a tagger folder (1.0 when it has no ``calibration.json``)."""
    from ..io import InputError

    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return 1.0
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["temperature"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"corrupt calibration file ({type(exc).__name__}); delete it to use T = 1 "
                               "or retrain the tagger", field="temperature") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(path, f"temperature must be a positive finite number, got {value!r}", field="temperature")
    return float(value)


def gold_nll(crf, batches, temperature: float) -> float:
    """Mean negative log marginal of the gold tag per word over ``batches`` of
    ``(emissions, mask, gold tag ids)`` at ``temperature``."""
    import torch

    from .model import crf_marginals

    total, n = 0.0, 0
    for em, mask, gold in batches:
        with torch.no_grad():
            marg = crf_marginals(crf, em, mask, temperature)
        p = marg.gather(-1, gold.unsqueeze(-1)).squeeze(-1)[mask.bool()]
        total += float(-torch.log(p.clamp_min(1e-12)).sum())
        n += int(mask.sum())
    return total / max(n, 1)


def merge_batches(batches):
    """One padded ``(emissions, mask, gold)`` batch of several (fewer, larger forward-backward passes)."""
    import torch

    batches = list(batches)
    if len(batches) <= 1:
        return batches
    width = max(em.size(1) for em, _, _ in batches)
    pad = lambda t, v: torch.nn.functional.pad(t, (0, 0, 0, width - t.size(1)) if t.dim() == 3 else (0, width - t.size(1)), value=v)  # noqa: E731
    return [(torch.cat([pad(em, 0.0) for em, _, _ in batches]), torch.cat([pad(m, False) for _, m, _ in batches]),
             torch.cat([pad(g, 0) for _, _, g in batches]))]


def fit_temperature(crf, batches, low: float = 0.05, high: float = 20.0, grid: int = 13, refine: int = 12) -> float:
    """Temperature minimising :func:`gold_nll` over ``[low, high]``: a log-spaced grid of ``grid``
    points, then ``refine`` golden-section steps between the best point's neighbours."""
    import torch

    batches = merge_batches(batches)
    with torch.no_grad():
        logs = [math.log(low) + i * (math.log(high) - math.log(low)) / (grid - 1) for i in range(grid)]
        losses = [gold_nll(crf, batches, math.exp(x)) for x in logs]
        best = min(range(grid), key=losses.__getitem__)
        a, b = logs[max(best - 1, 0)], logs[min(best + 1, grid - 1)]
        ratio = (math.sqrt(5) - 1) / 2
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        fc, fd = gold_nll(crf, batches, math.exp(c)), gold_nll(crf, batches, math.exp(d))
        for _ in range(refine):
            if fc <= fd:
                b, d, fd = d, c, fc
                c = b - ratio * (b - a)
                fc = gold_nll(crf, batches, math.exp(c))
            else:
                a, c, fc = c, d, fd
                d = a + ratio * (b - a)
                fd = gold_nll(crf, batches, math.exp(d))
        x = (a + b) / 2
        return math.exp(x) if gold_nll(crf, batches, math.exp(x)) <= losses[best] else math.exp(logs[best])


__all__ = ["CALIBRATION_FILE", "ECE_BINS", "ECE_DEFINITION", "expected_calibration_error", "read_temperature",
           "gold_nll", "fit_temperature"]
