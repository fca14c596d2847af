"""Ratings at scale: the scatter-add Newton fit and the L-BFGS fallback agree with the former
dense outer-product fit; the bootstrap is reproducible and independent of chunking; lock-step
shuffled Elo plays each order exactly as online Elo would."""

from __future__ import annotations

import numpy as np
import pytest

from tinysec.rating import bt, elo
from tinysec.rating.battles import Battles
from tinysec.rating.bt import BTParams, bradley_terry, fit_strengths
from tinysec.rating.elo import EloParams, online_elo, shuffled_elo


def dense_reference(a, b, s, weights, n_models, params=BTParams()):
    """The former fit: Newton steps with the Hessian from a dense (cells x models^2) outer product."""
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    theta = np.zeros((w.shape[0], n_models))
    lam = params.l2 * max(1.0, float(np.median(w.sum(axis=1))))
    inc = np.zeros((len(a), n_models))
    inc[np.arange(len(a)), a] += 1.0
    inc[np.arange(len(a)), b] -= 1.0
    outer = (inc[:, :, None] * inc[:, None, :]).reshape(len(a), n_models * n_models)
    for _ in range(params.max_iter):
        p = 1.0 / (1.0 + np.exp(-(theta @ inc.T)))
        grad = (w * (s - p)) @ inc - lam * theta
        hess = ((w * p * (1 - p)) @ outer).reshape(-1, n_models, n_models) + lam * np.eye(n_models)
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        step *= np.minimum(1.0, params.max_step / np.maximum(np.abs(step).max(axis=1, keepdims=True), 1e-300))
        theta += step
        if np.abs(step).max() < params.tol:
            break
    return theta


def random_battles(n_models, n, seed, tie_rate=0.15):
    rng = np.random.default_rng(seed)
    true = rng.normal(1000, 150, n_models)
    a = rng.integers(0, n_models, n)
    b = (a + rng.integers(1, n_models, n)) % n_models
    p = 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
    score = np.where(rng.random(n) < tie_rate, 0.5, (rng.random(n) < p).astype(float))
    return Battles([f"m{i}" for i in range(n_models)], a, b, score)


def cells_and_resamples(battles, rounds, seed=0):
    a, b, s, n = bt._cells(battles)
    w = np.random.default_rng(seed).multinomial(int(n.sum()), n / n.sum(), size=rounds)
    return a, b, s, np.vstack([n, w])  # row 0: all battles, then resamples


def merged_cell_draws(battles, n_models, seed, blocks):
    """(i, j, score of i, draws) of bradley_terry's resamples, rebuilt independently: block k of
    DRAW_BLOCK rounds is a multinomial over the (pair, outcome) cells from child k of SeedSequence(seed)."""
    a, b, s, n = bt._cells(battles)
    pairs = bt._Pairs.of(a, b, s, n_models)
    cells = pairs.outcomes(n)
    pair_of = np.repeat(np.arange(len(cells.starts)), np.diff(np.r_[cells.starts, len(cells.n)]))
    draws = np.concatenate([np.random.default_rng(q).multinomial(int(n.sum()), cells.n / n.sum(), size=bt.DRAW_BLOCK)
                            for q in np.random.SeedSequence(seed).spawn(blocks)])
    return pairs.i[pair_of], pairs.j[pair_of], cells.score, draws


def test_scatter_newton_matches_dense_fit():
    battles = random_battles(7, 3000, seed=1)
    a, b, s, w = cells_and_resamples(battles, rounds=12)
    ours = fit_strengths(a, b, s, w, 7, method="newton")
    ref = dense_reference(a, b, s, w, 7)
    assert np.abs(ours - ref).max() < 1e-6
    assert np.ptp(ref[0]) > 0.5  # the strengths really differ: the comparison is not of zeros


def test_lbfgs_fallback_matches_dense_fit():
    battles = random_battles(6, 2000, seed=2)
    a, b, s, w = cells_and_resamples(battles, rounds=4)
    lbfgs = fit_strengths(a, b, s, w, 6, method="lbfgs")
    assert np.abs(lbfgs - dense_reference(a, b, s, w, 6)).max() < 1e-6


def test_auto_uses_lbfgs_above_the_model_limit(monkeypatch):
    battles = random_battles(5, 1500, seed=3)
    newton = bradley_terry(battles, rounds=20, seed=4)
    monkeypatch.setattr(bt, "NEWTON_MAX_MODELS", 4)
    monkeypatch.setattr(bt, "_newton", lambda *args: pytest.fail("Newton used above NEWTON_MAX_MODELS"))
    fallback = bradley_terry(battles, rounds=20, seed=4)
    assert np.abs(fallback.rating - newton.rating).max() < 1e-4  # rating points
    assert np.abs(fallback.samples - newton.samples).max() < 1e-4


def test_degenerate_resample_stays_finite_in_both_paths():
    # model 2 only ever wins; in the second round model 3 has no battles at all
    a, b = np.array([0, 2, 2, 3]), np.array([1, 0, 1, 0])
    s = np.array([1.0, 1.0, 1.0, 0.5])
    w = np.array([[5.0, 3.0, 2.0, 4.0], [5.0, 3.0, 2.0, 0.0]])
    for method in ("newton", "lbfgs"):
        theta = fit_strengths(a, b, s, w, 4, method=method)
        assert np.all(np.isfinite(theta)) and theta[0, 2] == theta[0].max()
        assert abs(theta[1, 3]) < 1e-6  # no data: the penalty keeps it at 0
    assert np.abs(fit_strengths(a, b, s, w, 4, method="lbfgs") - dense_reference(a, b, s, w, 4)).max() < 1e-5


def test_bootstrap_reproducible_and_independent_of_chunking():
    battles = random_battles(8, 4000, seed=5)
    first = bradley_terry(battles, rounds=30, seed=11)
    again = bradley_terry(battles, rounds=30, seed=11, chunk=7)
    assert np.abs(first.samples - again.samples).max() < 1e-9
    other = bradley_terry(battles, rounds=30, seed=12)
    assert np.abs(other.samples - first.samples).max() > 0.1
    # resample k: a multinomial over the (pair, outcome) cells from block k // DRAW_BLOCK's generator
    a, b, s, n = bt._cells(battles)
    pairs = bt._Pairs.of(a, b, s, 8)
    cells = pairs.outcomes(n)
    assert np.array_equal(cells.sums(cells.n[None]), pairs.sums(n[None]))
    ref = bt.to_rating(dense_reference(*merged_cell_draws(battles, 8, seed=11, blocks=3), 8), BTParams())
    assert np.abs(first.samples - ref).max() < 1e-4


def test_merged_cell_bootstrap_has_fastchats_distribution():
    """Merged (pair, outcome) cells give the same resampled ratings, in distribution, as FastChat's
    multinomial over the ordered (a, b, outcome) cells."""
    battles = random_battles(6, 3000, seed=8)
    ours = bradley_terry(battles, rounds=2000, seed=1).samples
    a, b, s, n = bt._cells(battles)
    w = np.random.default_rng(2).multinomial(int(n.sum()), n / n.sum(), size=2000)
    ref = bt.to_rating(fit_strengths(a, b, s, w, 6), BTParams())
    width = np.percentile(ref, 97.5, axis=0) - np.percentile(ref, 2.5, axis=0)
    for q in (2.5, 50, 97.5):
        assert (np.abs(np.percentile(ours, q, axis=0) - np.percentile(ref, q, axis=0)) < 0.1 * width).all()
    assert (np.abs(ours.std(axis=0) / ref.std(axis=0) - 1) < 0.1).all()


def test_chord_steps_reach_newtons_optimum():
    battles = random_battles(12, 5000, seed=9)
    boot = bradley_terry(battles, rounds=40, seed=3)
    newton = fit_strengths(*merged_cell_draws(battles, 12, seed=3, blocks=4), 12, method="newton")
    assert np.abs(boot.samples - bt.to_rating(newton, BTParams())).max() < 1e-6


def test_bad_method_is_refused():
    with pytest.raises(ValueError, match="method must be"):
        fit_strengths(np.array([0]), np.array([1]), np.array([1.0]), np.array([1.0]), 2, method="mm")


def test_lockstep_elo_equals_online_elo_on_each_order():
    battles = random_battles(6, 400, seed=6)
    ca, cb, cs, seq = elo._canonical_cells(battles)
    # the canonical cell sequence is the battles in Battles.canonical_order
    canon = battles.canonical_order()
    assert np.array_equal(ca[seq], battles.a[canon]) and np.array_equal(cb[seq], battles.b[canon])
    assert np.array_equal(cs[seq], battles.score[canon])
    rng = np.random.default_rng(0)
    rows = np.stack([rng.permutation(seq) for _ in range(5)])
    params = EloParams(k=24.0)
    together = elo._lockstep(rows, ca, cb, cs, 6, params)
    for row, got in zip(rows, together):
        one = Battles(battles.models, ca[row], cb[row], cs[row])
        assert np.abs(got - online_elo(one, params)).max() < 1e-9


def test_shuffled_elo_groups_do_not_change_the_orders(monkeypatch):
    battles = random_battles(5, 300, seed=7)
    whole = shuffled_elo(battles, n_orders=12, seed=3)
    monkeypatch.setattr(elo, "BLOCK_STEPS", 7)
    grouped = shuffled_elo(battles, n_orders=12, seed=3, chunk=5)
    assert grouped.samples.shape == (12, 5)
    assert np.abs(whole.samples - grouped.samples).max() < 1e-9  # the rows are shuffled in sequence
    other = shuffled_elo(battles, n_orders=12, seed=4)
    assert np.abs(other.samples - whole.samples).max() > 1.0
    assert np.abs(grouped.samples.mean(axis=1) - 1000.0).max() < 1e-6  # Elo conserves the total
