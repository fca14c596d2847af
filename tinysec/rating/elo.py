"""Online Elo: R_new = R_old + K (S - E), E = 1 / (1 + base^((R_b - R_a) / scale)).

``online_elo`` makes one pass in file order (reproduces HackMentor's / FastChat's notebook numbers);
``shuffled_elo`` runs the same update over many random orders at once and reports the median and a
percentile interval, which removes the dependence on order. Battles are coded as cells (a, b,
score), so a group of orders is a (orders x battles) matrix of small cell ids, each row shuffled
independently; all orders of a group then take their t-th battle in lock-step, one numpy update of
width ``orders`` per battle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from .battles import Battles

# Memory for one group of orders' shuffled battle sequences, in bytes (more orders in lock-step
# means fewer passes over the battles).
GROUP_BYTES = 512 * 2**20
# Battles whose indices are expanded at once inside a group.
BLOCK_STEPS = 2048


@dataclass(frozen=True)
class EloParams:
    k: float = 32.0
    scale: float = 400.0
    base: float = 10.0
    initial: float = 1000.0


def expected(r_a, r_b, p: EloParams = EloParams()):
    """Expected score of a against b."""
    return 1.0 / (1.0 + p.base ** ((r_b - r_a) / p.scale))


def online_elo(battles: Battles, params: EloParams = EloParams()) -> np.ndarray:
    """Ratings after one pass over the battles in their given order."""
    ratings = [params.initial] * len(battles.models)
    alpha = math.log(params.base) / params.scale
    for ia, ib, st in zip(battles.a.tolist(), battles.b.tolist(), battles.score.tolist()):
        ea = 1.0 / (1.0 + math.exp(alpha * (ratings[ib] - ratings[ia])))
        delta = params.k * (st - ea)
        ratings[ia] += delta
        ratings[ib] -= delta
    return np.asarray(ratings)


@dataclass
class ShuffledElo:
    median: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    samples: np.ndarray  # (orders, models)


def _canonical_cells(battles: Battles) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cell a, cell b, cell score, battle sequence as cell ids) with the sequence in canonical
    content order (model names, then score), so it depends on the multiset of battles only."""
    m = len(battles.models)
    rank = np.empty(m, dtype=np.int64)
    rank[np.argsort(np.asarray(battles.models, dtype=str), kind="stable")] = np.arange(m)
    half = np.round(battles.score * 2).astype(np.int64)
    keys = (rank[battles.a] * m + rank[battles.b]) * 3 + half
    uniq, first, counts = np.unique(keys, return_index=True, return_counts=True)
    dtype = np.uint16 if len(uniq) <= 2**16 else np.uint32
    seq = np.repeat(np.arange(len(uniq), dtype=dtype), counts)
    return battles.a[first], battles.b[first], battles.score[first], seq


def _lockstep(cells: np.ndarray, ca: np.ndarray, cb: np.ndarray, cs: np.ndarray, n_models: int,
              p: EloParams) -> np.ndarray:
    """Ratings (orders x models) after each row of ``cells`` (orders x battles) is played in order.

    State is alpha * rating (alpha = ln(base) / scale), so E = expit(x_a - x_b); each step is one
    gather, six in-place ufuncs and one scatter over all orders (rows never collide)."""
    g, n = cells.shape
    alpha = math.log(p.base) / p.scale
    ak = alpha * p.k
    x = np.full(g * n_models, alpha * p.initial)  # flattened (orders x models)
    rowoff = np.arange(g) * n_models
    r, d = np.empty(2 * g), np.empty(g)
    ra, rb = r[:g], r[g:]
    for t0 in range(0, n, BLOCK_STEPS):
        blk = np.ascontiguousarray(cells[:, t0:t0 + BLOCK_STEPS].T)  # (steps, orders)
        idx = np.empty((blk.shape[0], 2, g), dtype=np.intp)
        np.add(ca[blk], rowoff, out=idx[:, 0])
        np.add(cb[blk], rowoff, out=idx[:, 1])
        aks = ak * cs[blk]
        for t in range(blk.shape[0]):
            at = idx[t].ravel()
            np.take(x, at, out=r)
            np.subtract(ra, rb, out=d)
            expit(d, out=d)
            d *= ak
            np.subtract(aks[t], d, out=d)  # alpha * K * (S - E)
            ra += d
            rb -= d
            np.put(x, at, r)
    return x.reshape(g, n_models) / alpha


def shuffled_elo(battles: Battles, params: EloParams = EloParams(), n_orders: int = 1000,
                 seed: int = 0, ci: float = 0.95, chunk: int | None = None) -> ShuffledElo:
    """Online Elo over ``n_orders`` uniformly random orders of the same battles.

    Battles are first put in a canonical content order, so the result depends on the multiset of
    battles and the seed only, never on the order of the input file. ``chunk`` orders run in
    lock-step (default: as many as fit in ``GROUP_BYTES``).
    """
    if n_orders < 1:
        raise ValueError("n_orders must be at least 1")
    ca, cb, cs, seq = _canonical_cells(battles)
    if chunk is None:
        chunk = max(1, min(n_orders, GROUP_BYTES // max(seq.nbytes, 1)))
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, n_orders, chunk):
        cells = np.tile(seq, (min(chunk, n_orders - start), 1))
        rng.permuted(cells, axis=1, out=cells)  # each row an independent uniform shuffle
        out.append(_lockstep(cells, ca, cb, cs, len(battles.models), params))
        del cells
    samples = np.concatenate(out)
    lo, hi = 50 * (1 - ci), 50 * (1 + ci)
    return ShuffledElo(np.median(samples, axis=0), np.percentile(samples, lo, axis=0),
                       np.percentile(samples, hi, axis=0), samples)
