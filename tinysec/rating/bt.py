"""Bradley-Terry ratings by maximum likelihood, with vectorised bootstrap confidence intervals.

P(a beats b) = 1 / (1 + base^((R_b - R_a) / scale)); a tie counts as half a win each way.
The fit only needs, per unordered model pair (i < j), the battle count and model i's score, so
battles are merged into (pair, outcome for i) cells and a bootstrap resample is one multinomial
draw of those cell counts. That is the same distribution as FastChat's draw over ordered
(a, b, outcome) cells, because merging the cells of a multinomial gives a multinomial. Gradient
and Hessian are built by scatter-adds over the pair indices, O(pairs + models^2) per round and
step. Up to ``NEWTON_MAX_MODELS`` models the resamples of a chunk are fitted together on a
(rounds x models x models) stack: chord steps with the inverse Hessian of the point estimate,
then damped Newton steps for any round the chord steps leave unconverged; above it each round is
fitted by scipy's L-BFGS-B with the analytic gradient (no models^2 memory). A small L2 penalty
(``l2``, on the natural-log strengths) keeps the optimum finite when a resample gives some model
only wins or only losses; the mean rating is ``initial``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import ThreadpoolController

from .battles import Battles

# Newton on the dense per-round Hessian up to this many models, L-BFGS per round above it. At 200
# models x 1M battles x 100 rounds Newton took 4.5 s and L-BFGS 85 s (busy 2-core machine); the
# limit sits where a round's Hessian is 8 MB and its solve about 0.3 GFLOP (not measured there).
NEWTON_MAX_MODELS = 1000
# Chord steps before the rounds still moving get Newton steps; a round whose step does not shrink
# by at least this factor from one chord step to the next gets Newton steps at once.
CHORD_MAX_ITER = 40
CHORD_CONTRACTION = 0.5
# L-BFGS: stop when the largest gradient entry of the per-battle mean log-likelihood is below this.
LBFGS_GTOL = 1e-11
LBFGS_MAX_ITER = 5000
# Working memory one bootstrap chunk may use (weights, pair sums, Hessian stack), in bytes.
CHUNK_BYTES = 256 * 2**20
# Bootstrap rounds per random generator: block k is drawn from child k of SeedSequence(seed), so
# the draws depend on the seed only, not on the chunking or on the number of drawing threads.
DRAW_BLOCK = 10
DRAW_THREADS = 2


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


def _reduce_by(w: np.ndarray, starts: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per round, sums of ``w`` and of ``w * score`` over the column runs that begin at ``starts``."""
    return np.add.reduceat(w, starts, axis=1), np.add.reduceat(w * score, starts, axis=1)


@dataclass(frozen=True)
class _Outcomes:
    """Battle counts merged by (unordered pair, outcome for model i), sorted by pair: ``score`` is
    model i's score in the cell (0, 0.5 or 1), ``n`` its count, ``starts`` each pair's first cell."""
    score: np.ndarray
    n: np.ndarray
    starts: np.ndarray

    def sums(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per round and pair: battle count and score of model i (both rounds x pairs)."""
        return _reduce_by(w, self.starts, self.score)


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
        return _reduce_by(w[:, self.order], self.starts, self.s_i[self.order])

    def outcomes(self, n: np.ndarray) -> _Outcomes:
        """The cell counts ``n`` (all positive) merged by (pair, outcome for model i)."""
        first = np.zeros(len(self.order), dtype=np.int64)
        first[self.starts] = 1
        pair = np.empty_like(first)
        pair[self.order] = np.cumsum(first) - 1
        key = pair * 3 + np.round(self.s_i * 2).astype(np.int64)
        merged = np.bincount(key, n, 3 * len(self.i))
        keep = np.flatnonzero(merged)
        kp = keep // 3
        return _Outcomes((keep % 3) / 2.0, merged[keep], np.flatnonzero(np.r_[True, kp[1:] != kp[:-1]]))


@cache
def _blas() -> ThreadpoolController:
    """The BLAS libraries loaded now (numpy's and scipy's), inspected once per process."""
    return ThreadpoolController()


def _one_blas_thread():
    """Context limiting BLAS to one thread: many small solves lose far more to BLAS threads than
    they gain (40x slower on a busy 2-core machine)."""
    return _blas().limit(limits=1, user_api="blas")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), in place on a new array; about 3x faster than scipy's expit here."""
    with np.errstate(over="ignore"):  # exp overflow gives inf, and 1 / inf the right limit 0
        y = np.exp(-x)
    y += 1.0
    return np.reciprocal(y, out=y)


def _scatter(g: np.ndarray, i: np.ndarray, j: np.ndarray, n_models: int, sign: float = -1.0) -> np.ndarray:
    """(rounds x pairs) -> (rounds x models): adds g at model i and ``sign * g`` at model j."""
    r = g.shape[0]
    base = (np.arange(r) * n_models)[:, None]
    flat = g.ravel()
    out = np.bincount((base + i).ravel(), flat, r * n_models)
    out += sign * np.bincount((base + j).ravel(), flat, r * n_models)
    return out.reshape(r, n_models)


def _gradient(pairs: _Pairs, theta: np.ndarray, count: np.ndarray, score: np.ndarray, n_models: int,
              lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of the penalised log-likelihood per round, and each pair's win probability for i."""
    p = _sigmoid(theta[:, pairs.i] - theta[:, pairs.j])
    return _scatter(score - count * p, pairs.i, pairs.j, n_models) - lam * theta, p


def _neg_hessian(pairs: _Pairs, count: np.ndarray, p: np.ndarray, n_models: int, lam: float) -> np.ndarray:
    """Minus the Hessian per round (rounds x models x models): the graph Laplacian of the pair
    curvatures count * p * (1 - p), plus lam on the diagonal."""
    i, j, m = pairs.i, pairs.j, n_models
    curv = count * p * (1.0 - p)
    hess = np.zeros((len(count), m * m))
    hess[:, i * m + j] = -curv
    hess[:, j * m + i] = -curv
    hess[:, np.arange(m) * (m + 1)] = _scatter(curv, i, j, m, sign=1.0) + lam
    return hess.reshape(-1, m, m)


def _damped(step: np.ndarray, params: BTParams) -> tuple[np.ndarray, np.ndarray]:
    """The steps scaled so that no entry exceeds ``max_step``, and each round's undamped size."""
    size = np.abs(step).max(axis=1)
    return step * np.minimum(1.0, params.max_step / np.maximum(size, 1e-300))[:, None], size


def _newton(pairs: _Pairs, count: np.ndarray, score: np.ndarray, n_models: int, lam: float,
            params: BTParams, theta: np.ndarray) -> np.ndarray:
    """Damped Newton steps on all rounds together from ``theta`` (rounds x models)."""
    theta = theta.copy()
    active = np.arange(len(theta))
    for _ in range(params.max_iter):
        th, w = theta[active], count[active]
        grad, p = _gradient(pairs, th, w, score[active], n_models, lam)
        step = np.linalg.solve(_neg_hessian(pairs, w, p, n_models, lam), grad[..., None])[..., 0]
        step, size = _damped(step, params)
        theta[active] = th + step
        active = active[size >= params.tol]
        if not len(active):
            break
    return theta


def _chord(pairs: _Pairs, count: np.ndarray, score: np.ndarray, n_models: int, lam: float,
           params: BTParams, init: np.ndarray, h_inv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Steps ``grad @ h_inv`` (one inverse Hessian for every round) from ``init``. Returns theta and
    the rounds left for Newton: those still moving after ``CHORD_MAX_ITER`` steps and those whose
    step stopped shrinking by ``CHORD_CONTRACTION``; the converged ones share Newton's optimum."""
    theta = np.broadcast_to(init, (len(count), n_models)).copy()
    active, prev = np.arange(len(count)), np.full(len(count), np.inf)
    to_newton = []
    for _ in range(CHORD_MAX_ITER):
        th = theta[active]
        grad, _ = _gradient(pairs, th, count[active], score[active], n_models, lam)
        step, size = _damped(grad @ h_inv, params)
        theta[active] = th + step
        stalled = size > CHORD_CONTRACTION * prev[active]
        prev[active] = size
        to_newton.append(active[stalled & (size >= params.tol)])
        active = active[~stalled & (size >= params.tol)]
        if not len(active):
            break
    return theta, np.concatenate([*to_newton, active])


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
        g = sc - w * _sigmoid(d)
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
    count, score = pairs.sums(np.atleast_2d(np.asarray(weights, dtype=np.float64)))
    with _one_blas_thread():
        return _fit(pairs, count, score, n_models, params, method, init)


def _penalty(count: np.ndarray, params: BTParams) -> float:
    """The L2 weight, scaled with the data size (median battles per round)."""
    return params.l2 * max(1.0, float(np.median(count.sum(axis=1))))


def _uses_newton(method: str, n_models: int) -> bool:
    if method not in ("auto", "newton", "lbfgs"):
        raise ValueError(f"method must be auto, newton or lbfgs, got {method!r}")
    return method == "newton" or (method == "auto" and n_models <= NEWTON_MAX_MODELS)


def _fit(pairs: _Pairs, count: np.ndarray, score: np.ndarray, n_models: int, params: BTParams, method: str,
         init: np.ndarray | None, h_inv: np.ndarray | None = None) -> np.ndarray:
    """:func:`fit_strengths` on per-pair sums; with ``h_inv`` (Newton only) chord steps come first."""
    newton = _uses_newton(method, n_models)
    if len(pairs.i) == 0:
        return np.zeros((count.shape[0], n_models))
    lam = _penalty(count, params)
    init = np.zeros(n_models) if init is None else np.asarray(init, dtype=np.float64)
    if not newton:
        return np.stack([_lbfgs_one(pairs.i, pairs.j, count[k], score[k], n_models, lam, init)
                         for k in range(len(count))])
    if h_inv is None:
        return _newton(pairs, count, score, n_models, lam, params, np.broadcast_to(init, (len(count), n_models)))
    theta, rest = _chord(pairs, count, score, n_models, lam, params, init, h_inv)
    if len(rest):
        start = np.where(np.isfinite(theta[rest]).all(axis=1, keepdims=True), theta[rest], init)
        theta[rest] = _newton(pairs, count[rest], score[rest], n_models, lam, params, start)
    return theta


def to_rating(theta: np.ndarray, params: BTParams = BTParams()) -> np.ndarray:
    """Natural-log strengths to the Elo scale, centred on ``initial``."""
    r = theta * params.scale / np.log(params.base)
    return params.initial + r - r.mean(axis=-1, keepdims=True)


def _chunk_sizes(n_cells: int, n_models: int, rounds: int, chunk: int) -> list[int]:
    """Rounds per bootstrap chunk: a multiple of ``DRAW_BLOCK`` (the last one may be short), at most
    ``chunk`` (rounded up to a block), a working set within ``CHUNK_BYTES``, and about 8 chunks
    when there are 80 rounds or more, so that drawing and fitting overlap."""
    per_round = 8 * (4 * n_cells + 3 * n_models * n_models)
    step = max(1, min(chunk, CHUNK_BYTES // per_round, max(10, -(-rounds // 8))))
    step = -(-step // DRAW_BLOCK) * DRAW_BLOCK
    return [min(step, rounds - start) for start in range(0, rounds, step)]


def _draw_blocks(pool: ThreadPoolExecutor, seeds: list, total: int, p: np.ndarray, first: int, rounds: int) -> list:
    """Futures of the count draws of rounds ``first`` .. ``first + rounds`` (``first`` a block start)."""
    out = []
    for start in range(first, first + rounds, DRAW_BLOCK):
        size = min(DRAW_BLOCK, first + rounds - start)
        out.append(pool.submit(np.random.default_rng(seeds[start // DRAW_BLOCK]).multinomial, total, p, size))
    return out


def bradley_terry(battles: Battles, params: BTParams = BTParams(), rounds: int = 1000, seed: int = 0,
                  ci: float = 0.95, chunk: int = 500, method: str = "auto") -> BTResult:
    """Point ratings on all battles, plus percentile CIs over ``rounds`` bootstrap resamples.

    Resample k draws the (pair, outcome) cell counts from one multinomial with the battle total
    and the observed cell shares (FastChat's ``compute_bootstrap_bt`` resampling; see the module
    docstring). Rounds are drawn in blocks of ``DRAW_BLOCK``, block k from child k of
    ``SeedSequence(seed)``, by ``DRAW_THREADS`` helper threads one chunk ahead of the fitting, so the
    samples depend on ``seed`` only. Each chunk is fitted from the point estimate; ``method`` is
    passed to :func:`fit_strengths`.
    """
    a, b, s, n = _cells(battles)
    m = len(battles.models)
    if not len(n):  # no battles: every model at the initial rating
        flat = np.full(m, params.initial)
        return BTResult(flat, *((flat, flat, np.tile(flat, (rounds, 1))) if rounds > 0 else ()))
    pairs = _Pairs.of(a, b, s, m)
    cells = pairs.outcomes(n)
    count, score = cells.sums(cells.n[None])
    with _one_blas_thread():
        theta = _fit(pairs, count, score, m, params, method, None)
        if rounds <= 0:
            return BTResult(to_rating(theta, params)[0])
        h_inv = None
        if _uses_newton(method, m):
            lam = _penalty(count, params)
            h_inv = np.linalg.inv(_neg_hessian(pairs, count, _gradient(pairs, theta, count, score, m, lam)[1], m, lam)[0])
    total, share = int(cells.n.sum()), cells.n / max(cells.n.sum(), 1.0)
    seeds = np.random.SeedSequence(seed).spawn(-(-rounds // DRAW_BLOCK))
    sizes = _chunk_sizes(len(cells.n), m, rounds, chunk)
    firsts = np.cumsum([0, *sizes])
    samples = []
    with ThreadPoolExecutor(DRAW_THREADS) as pool, _one_blas_thread():
        ahead = [_draw_blocks(pool, seeds, total, share, firsts[k], sizes[k]) for k in range(min(2, len(sizes)))]
        for k in range(len(sizes)):
            w = np.concatenate([f.result() for f in ahead[k]]).astype(np.float64)
            ahead[k] = None  # at most two chunks of counts alive
            if k + 2 < len(sizes):
                ahead.append(_draw_blocks(pool, seeds, total, share, firsts[k + 2], sizes[k + 2]))
            samples.append(to_rating(_fit(pairs, *cells.sums(w), m, params, method, theta[0], h_inv), params))
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
