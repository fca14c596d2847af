"""Online Elo: R_new = R_old + K (S - E), E = 1 / (1 + base^((R_b - R_a) / scale)).

``online_elo`` makes one pass in file order (reproduces HackMentor's / FastChat's notebook numbers);
``shuffled_elo`` runs the same update over many random orders at once (vectorised across orders)
and reports the median and a percentile interval, which removes the dependence on order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .battles import Battles


@dataclass(frozen=True)
class EloParams:
    k: float = 32.0
    scale: float = 400.0
    base: float = 10.0
    initial: float = 1000.0


def expected(r_a, r_b, p: EloParams = EloParams()):
    """Expected score of a against b."""
    return 1.0 / (1.0 + p.base ** ((r_b - r_a) / p.scale))


def _run(ratings: np.ndarray, a: np.ndarray, b: np.ndarray, s: np.ndarray, p: EloParams) -> np.ndarray:
    """Apply battles column by column to ``ratings`` (orders x models); a, b, s have shape (orders, n)."""
    rows = np.arange(ratings.shape[0])
    for t in range(a.shape[1]):
        ia, ib, st = a[:, t], b[:, t], s[:, t]
        ra, rb = ratings[rows, ia], ratings[rows, ib]
        ea = expected(ra, rb, p)
        ratings[rows, ia] = ra + p.k * (st - ea)
        ratings[rows, ib] = rb + p.k * ((1.0 - st) - (1.0 - ea))
    return ratings


def online_elo(battles: Battles, params: EloParams = EloParams()) -> np.ndarray:
    """Ratings after one pass over the battles in their given order."""
    ratings = np.full((1, len(battles.models)), params.initial, dtype=np.float64)
    return _run(ratings, battles.a[None], battles.b[None], battles.score[None], params)[0]


@dataclass
class ShuffledElo:
    median: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    samples: np.ndarray  # (orders, models)


def shuffled_elo(battles: Battles, params: EloParams = EloParams(), n_orders: int = 1000,
                 seed: int = 0, ci: float = 0.95, chunk: int | None = None) -> ShuffledElo:
    """Online Elo over ``n_orders`` random orders of the same battles.

    Battles are first put in a canonical content order, so the result depends on the multiset of
    battles and the seed only, never on the order of the input file.
    """
    if n_orders < 1:
        raise ValueError("n_orders must be at least 1")
    canon = battles.canonical_order()
    a, b, s = battles.a[canon], battles.b[canon], battles.score[canon]
    rng = np.random.default_rng(seed)
    if chunk is None:  # orders run together, bounded to ~5M battle slots (about 120 MB of index arrays)
        chunk = max(1, min(n_orders, 5_000_000 // max(len(s), 1)))
    out = []
    for start in range(0, n_orders, chunk):
        m = min(chunk, n_orders - start)
        perm = np.argsort(rng.random((m, len(s))), axis=1)
        ratings = np.full((m, len(battles.models)), params.initial, dtype=np.float64)
        out.append(_run(ratings, a[perm], b[perm], s[perm], params))
    samples = np.concatenate(out)
    lo, hi = 50 * (1 - ci), 50 * (1 + ci)
    return ShuffledElo(np.median(samples, axis=0), np.percentile(samples, lo, axis=0),
                       np.percentile(samples, hi, axis=0), samples)
