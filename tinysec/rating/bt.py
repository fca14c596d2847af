"""Bradley-Terry ratings by maximum likelihood, with vectorised bootstrap confidence intervals.

P(a beats b) = 1 / (1 + base^((R_b - R_a) / scale)); a tie counts as half a win each way.
Battles are aggregated into (pair, outcome) cells, so a bootstrap resample is one multinomial
draw of cell counts and all resamples are fitted together by damped Newton steps on a
(rounds x models x models) stack. A small L2 penalty (``l2``, on the natural-log strengths)
keeps the optimum finite when a resample gives some model only wins or only losses; the mean
rating is ``initial``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .battles import Battles


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
    """Distinct (a, b, score) cells and their battle counts."""
    m = len(battles.models)
    keys = (battles.a * m + battles.b) * 3 + np.round(battles.score * 2).astype(np.int64)
    uniq, counts = np.unique(keys, return_counts=True)
    pair, half = np.divmod(uniq, 3)
    return pair // m, pair % m, half / 2.0, counts.astype(np.float64)


def fit_strengths(a: np.ndarray, b: np.ndarray, s: np.ndarray, weights: np.ndarray, n_models: int,
                  params: BTParams = BTParams()) -> np.ndarray:
    """Natural-log strengths theta (rounds x models) maximising the penalised likelihood.

    ``weights`` (rounds x cells) holds each cell's battle count in each round; cell c is a battle
    of model a[c] against b[c] in which a scored s[c].
    """
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    rounds = w.shape[0]
    theta = np.zeros((rounds, n_models))
    eye = np.eye(n_models)
    lam = params.l2 * max(1.0, float(np.median(w.sum(axis=1))))  # penalty scaled with the data size
    # incidence matrix: +1 for a, -1 for b, per cell
    inc = np.zeros((len(a), n_models))
    inc[np.arange(len(a)), a] += 1.0
    inc[np.arange(len(a)), b] -= 1.0
    outer = (inc[:, :, None] * inc[:, None, :]).reshape(len(a), n_models * n_models)
    active = np.ones(rounds, dtype=bool)
    for _ in range(params.max_iter):
        th = theta[active]
        wa = w[active]
        diff = th @ inc.T                                  # (r, cells) theta_a - theta_b
        p = 1.0 / (1.0 + np.exp(-diff))
        grad = ((wa * (s - p)) @ inc) - lam * th           # gradient of the log-likelihood
        curv = wa * p * (1.0 - p)                          # (r, cells)
        hess = (curv @ outer).reshape(-1, n_models, n_models) + lam * eye  # sum_c curv_c x_c x_c^T
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        big = np.abs(step).max(axis=1, keepdims=True)
        step = step * np.minimum(1.0, params.max_step / np.maximum(big, 1e-300))
        theta[active] = th + step
        done = np.abs(step).max(axis=1) < params.tol
        idx = np.flatnonzero(active)
        active[idx[done]] = False
        if not active.any():
            break
    return theta


def to_rating(theta: np.ndarray, params: BTParams = BTParams()) -> np.ndarray:
    """Natural-log strengths to the Elo scale, centred on ``initial``."""
    r = theta * params.scale / np.log(params.base)
    return params.initial + r - r.mean(axis=-1, keepdims=True)


def bradley_terry(battles: Battles, params: BTParams = BTParams(), rounds: int = 1000, seed: int = 0,
                  ci: float = 0.95, chunk: int = 500) -> BTResult:
    """Point ratings on all battles, plus percentile CIs over ``rounds`` bootstrap resamples."""
    a, b, s, n = _cells(battles)
    m = len(battles.models)
    point = to_rating(fit_strengths(a, b, s, n[None], m, params), params)[0]
    if rounds <= 0:
        return BTResult(point)
    rng = np.random.default_rng(seed)
    total = int(n.sum())
    samples = []
    for start in range(0, rounds, chunk):
        r = min(chunk, rounds - start)
        w = rng.multinomial(total, n / total, size=r).astype(np.float64)
        samples.append(to_rating(fit_strengths(a, b, s, w, m, params), params))
    samples = np.concatenate(samples)
    lo, hi = 50 * (1 - ci), 50 * (1 + ci)
    return BTResult(point, np.percentile(samples, lo, axis=0), np.percentile(samples, hi, axis=0), samples)


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
