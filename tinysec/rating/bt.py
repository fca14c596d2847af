"""Bradley-Terry ratings by maximum likelihood, with vectorised bootstrap confidence intervals.

P(a beats b) = 1 / (1 + base^((R_b - R_a) / scale)); a tie counts as half a win each way.
Battles are aggregated into (a, b, outcome) cells, so a bootstrap resample is one multinomial
draw of cell counts. Each resample is then reduced to its unordered model pairs (battle count and
score per pair), and gradient and Hessian are built by scatter-adds over the pair indices, which
costs O(pairs + models^2) per round and Newton step. Up to ``NEWTON_MAX_MODELS`` models all rounds
of a chunk take damped Newton steps together on a (rounds x models x models) stack; above it each
round is fitted by scipy's L-BFGS-B with the analytic gradient (no models^2 memory). A small L2
penalty (``l2``, on the natural-log strengths) keeps the optimum finite when a resample gives some
model only wins or only losses; the mean rating is ``initial``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from threadpoolctl import threadpool_limits

from .battles import Battles

# Newton on the dense per-round Hessian up to this many models, L-BFGS per round above it. At 200
# models x 1M battles x 100 rounds Newton took 4.5 s and L-BFGS 85 s (busy 2-core machine); the
# limit sits where a round's Hessian is 8 MB and its solve about 0.3 GFLOP (not measured there).
NEWTON_MAX_MODELS = 1000
# L-BFGS: stop when the largest gradient entry of the per-battle mean log-likelihood is below this.
LBFGS_GTOL = 1e-11
LBFGS_MAX_ITER = 5000
# Working memory one bootstrap chunk may use (weights, pair sums, Hessian stack), in bytes.
CHUNK_BYTES = 256 * 2**20


@dataclass(frozen=True)
class BTParams:
    scale: float = 400.0
    base: float = 10.0
    initial: float = 1000.0
    l2: float = 1e-6
    max_iter: int = 100
    tol: float = 1e-9
    max_step: float = 2.0


@dataclass
class BTResult:
    rating: np.ndarray
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    samples: np.ndarray | None = None  # (rounds, models)


def _cells(battles: Battles) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (a, b, score) cells, sorted by (a, b, score), and their battle counts."""
    m = len(battles.models)
    keys = (battles.a * m + battles.b) * 3 + np.round(battles.score * 2).astype(np.int64)
    if 3 * m * m <= max(4 * len(keys), 2**20):  # a counting pass beats sorting the battles
        counts = np.bincount(keys, minlength=3 * m * m)
        uniq = np.flatnonzero(counts)
        counts = counts[uniq]
    else:
        uniq, counts = np.unique(keys, return_counts=True)
    pair, half = np.divmod(uniq, 3)
    return pair // m, pair % m, half / 2.0, counts.astype(np.float64)


@dataclass(frozen=True)
class _Pairs:
    """Cells grouped by unordered model pair (i < j): ``order`` sorts the cells by pair, ``starts``
    marks each pair's first cell in that order, ``s_i`` is each cell's score for model i."""
    i: np.ndarray
    j: np.ndarray
    order: np.ndarray
    starts: np.ndarray
    s_i: np.ndarray

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray, s: np.ndarray, n_models: int) -> _Pairs:
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        key = lo * n_models + hi
        order = np.argsort(key, kind="stable")
        sk = key[order]
        starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
        uniq = sk[starts]
        s_i = np.where(a == lo, s, 1.0 - s)
        return cls(uniq // n_models, uniq % n_models, order, starts, s_i)

    def sums(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per round and pair: battle count W and score S of model i (both rounds x pairs)."""
        wo = w[:, self.order]
        count = np.add.reduceat(wo, self.starts, axis=1)
        score = np.add.reduceat(wo * self.s_i[self.order], self.starts, axis=1)
        return count, score


def _scatter(g: np.ndarray, i: np.ndarray, j: np.ndarray, n_models: int, sign: float = -1.0) -> np.ndarray:
    """(rounds x pairs) -> (rounds x models): adds g at model i and ``sign * g`` at model j."""
    r = g.shape[0]
    base = (np.arange(r) * n_models)[:, None]
    flat = g.ravel()
    out = np.bincount((base + i).ravel(), flat, r * n_models)
    out += sign * np.bincount((base + j).ravel(), flat, r * n_models)
    return out.reshape(r, n_models)


def _newton(pairs: _Pairs, count: np.ndarray, score: np.ndarray, n_models: int, lam: float,
            params: BTParams, init: np.ndarray) -> np.ndarray:
    """Damped Newton steps on all rounds together from ``init``; Hessian = graph Laplacian + lam I."""
    i, j, m = pairs.i, pairs.j, n_models
    rounds = count.shape[0]
    theta = np.broadcast_to(init, (rounds, m)).copy()
    diag, off_ij, off_ji = np.arange(m) * (m + 1), i * m + j, j * m + i
    active = np.arange(rounds)
    for _ in range(params.max_iter):
        th, w, sc = theta[active], count[active], score[active]
        p = expit(th[:, i] - th[:, j])
        grad = _scatter(sc - w * p, i, j, m) - lam * th
        curv = w * p * (1.0 - p)
        hess = np.zeros((len(active), m * m))
        hess[:, off_ij] = -curv
        hess[:, off_ji] = -curv
        hess[:, diag] = _scatter(curv, i, j, m, sign=1.0) + lam
        step = np.linalg.solve(hess.reshape(-1, m, m), grad[..., None])[..., 0]
        big = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, params.max_step / np.maximum(big, 1e-300))
        theta[active] = th + step
        active = active[np.abs(step).max(axis=1) >= params.tol]
        if not len(active):
            break
    return theta


def _lbfgs_one(i: np.ndarray, j: np.ndarray, w: np.ndarray, sc: np.ndarray, n_models: int,
               lam: float, init: np.ndarray) -> np.ndarray:
    """One round by scipy L-BFGS-B on the penalised per-battle mean negative log-likelihood."""
    keep = w > 0
    i, j, w, sc = i[keep], j[keep], w[keep], sc[keep]
    total = max(float(w.sum()), 1.0)
    lose = w - sc

    def loss_and_grad(th):
        d = th[i] - th[j]
        loss = (sc @ np.logaddexp(0.0, -d) + lose @ np.logaddexp(0.0, d) + 0.5 * lam * th @ th) / total
        g = sc - w * expit(d)
        grad = np.bincount(j, g, n_models) - np.bincount(i, g, n_models) + lam * th
        return loss, grad / total

    res = minimize(loss_and_grad, init, jac=True, method="L-BFGS-B",
                   options={"maxiter": LBFGS_MAX_ITER, "gtol": LBFGS_GTOL, "ftol": 1e-15, "maxcor": 20})
    return res.x


def fit_strengths(a: np.ndarray, b: np.ndarray, s: np.ndarray, weights: np.ndarray, n_models: int,
                  params: BTParams = BTParams(), method: str = "auto",
                  init: np.ndarray | None = None) -> np.ndarray:
    """Natural-log strengths theta (rounds x models) maximising the penalised likelihood.

    ``weights`` (rounds x cells) holds each cell's battle count in each round; cell c is a battle
    of model a[c] against b[c] in which a scored s[c]. ``method``: "newton", "lbfgs", or "auto"
    (Newton up to ``NEWTON_MAX_MODELS`` models). ``init`` (models,) is the starting point (zeros
    by default); the optimum does not depend on it.
    """
    pairs = _Pairs.of(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64),
                      np.asarray(s, dtype=np.float64), n_models)
    # many small solves: BLAS threads cost far more than they give (40x slower on a busy 2-core box)
    with threadpool_limits(1, user_api="blas"):
        return _fit(pairs, weights, n_models, params, method, init)


def _fit(pairs: _Pairs, weights: np.ndarray, n_models: int, params: BTParams, method: str,
         init: np.ndarray | None) -> np.ndarray:
    """:func:`fit_strengths` on cells already grouped by pair."""
    if method not in ("auto", "newton", "lbfgs"):
        raise ValueError(f"method must be auto, newton or lbfgs, got {method!r}")
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if len(pairs.i) == 0:
        return np.zeros((w.shape[0], n_models))
    lam = params.l2 * max(1.0, float(np.median(w.sum(axis=1))))  # penalty scaled with the data size
    init = np.zeros(n_models) if init is None else np.asarray(init, dtype=np.float64)
    count, score = pairs.sums(w)
    if method == "newton" or (method == "auto" and n_models <= NEWTON_MAX_MODELS):
        return _newton(pairs, count, score, n_models, lam, params, init)
    return np.stack([_lbfgs_one(pairs.i, pairs.j, count[k], score[k], n_models, lam, init)
                     for k in range(len(count))])


def to_rating(theta: np.ndarray, params: BTParams = BTParams()) -> np.ndarray:
    """Natural-log strengths to the Elo scale, centred on ``initial``."""
    r = theta * params.scale / np.log(params.base)
    return params.initial + r - r.mean(axis=-1, keepdims=True)


def _chunk_sizes(n_cells: int, n_models: int, rounds: int, chunk: int) -> list[int]:
    """Rounds per bootstrap chunk: at most ``chunk``, a working set within ``CHUNK_BYTES``, and
    about 8 chunks when there are 80 rounds or more, so that drawing and fitting overlap."""
    per_round = 8 * (4 * n_cells + 3 * n_models * n_models)
    step = max(1, min(chunk, CHUNK_BYTES // per_round, max(10, -(-rounds // 8))))
    return [min(step, rounds - start) for start in range(0, rounds, step)]


def bradley_terry(battles: Battles, params: BTParams = BTParams(), rounds: int = 1000, seed: int = 0,
                  ci: float = 0.95, chunk: int = 500, method: str = "auto") -> BTResult:
    """Point ratings on all battles, plus percentile CIs over ``rounds`` bootstrap resamples.

    Resample k draws every cell's count from one multinomial over the cells (as FastChat's
    ``compute_bootstrap_bt`` does, from one generator seeded with ``seed``, so the draws do not
    depend on the chunking). A helper thread draws the counts chunk by chunk while this one fits
    the point estimate and then each chunk, starting from the point estimate; ``method`` is passed
    to :func:`fit_strengths`.
    """
    a, b, s, n = _cells(battles)
    m = len(battles.models)
    if rounds <= 0:
        return BTResult(to_rating(fit_strengths(a, b, s, n[None], m, params, method), params)[0])
    pairs = _Pairs.of(a, b, s, m)
    rng = np.random.default_rng(seed)
    total = int(n.sum())
    sizes = _chunk_sizes(len(n), m, rounds, chunk)
    samples = []
    with ThreadPoolExecutor(1) as pool, threadpool_limits(1, user_api="blas"):  # draws run in order
        draws = [pool.submit(rng.multinomial, total, n / total, size) for size in sizes[:2]]
        theta = _fit(pairs, n, m, params, method, None)
        for k in range(len(sizes)):
            w = draws[k].result()
            draws[k] = None  # at most two chunks of counts alive
            if k + 2 < len(sizes):
                draws.append(pool.submit(rng.multinomial, total, n / total, sizes[k + 2]))
            samples.append(to_rating(_fit(pairs, w, m, params, method, theta[0]), params))
    samples = np.concatenate(samples)
    lo, hi = 50 * (1 - ci), 50 * (1 + ci)
    return BTResult(to_rating(theta, params)[0], np.percentile(samples, lo, axis=0),
                    np.percentile(samples, hi, axis=0), samples)


def predicted_win_rate(ratings: np.ndarray, scale: float = 400.0, base: float = 10.0) -> np.ndarray:
    """Matrix P[i, j] = predicted probability that model i beats model j (diagonal NaN)."""
    r = np.asarray(ratings, dtype=np.float64)
    p = 1.0 / (1.0 + base ** ((r[None, :] - r[:, None]) / scale))
    np.fill_diagonal(p, np.nan)
    return p


def rank_by_ci(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Rank = 1 + number of models whose whole interval lies above this model's interval."""
    lower, upper = np.asarray(lower), np.asarray(upper)
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)
