"""Ratings: hand-computed Elo, Bradley-Terry recovery and degenerate resamples, shuffled-Elo
order invariance, rank by CI, the `tinysec rate` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinysec.cli import main
from tinysec.io import InputError
from tinysec.rating.battles import Battles
from tinysec.rating.bt import bradley_terry, predicted_win_rate, rank_by_ci
from tinysec.rating.elo import EloParams, online_elo, shuffled_elo


def battles_of(*triples):
    return Battles.from_records([{"model_a": a, "model_b": b, "win": w} for a, b, w in triples])


def simulate(ratings, n, seed=0, tie_rate=0.0):
    rng = np.random.default_rng(seed)
    m = len(ratings)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    p = 1 / (1 + 10 ** ((np.asarray(ratings)[b] - np.asarray(ratings)[a]) / 400))
    u = rng.random(n)
    tie = rng.random(n) < tie_rate
    win = np.where(tie, "tie", np.where(u < p, "model_a", "model_b"))
    return [{"model_a": f"m{i}", "model_b": f"m{j}", "win": w} for i, j, w in zip(a, b, win)]


def test_online_elo_by_hand():
    # 1) x beats y from 1000/1000: E = 0.5, x = 1016, y = 984.
    # 2) y ties x: E_y = 1 / (1 + 10^(32/400)) = 1 / 2.2022644 = 0.454078,
    #    y += 32 * (0.5 - 0.454078) = +1.46950, x -= 1.46950.
    r = online_elo(battles_of(("x", "y", "model_a"), ("y", "x", "tie")))
    assert r == pytest.approx([1014.53050, 985.46950], abs=1e-4)
    # 3) y beats x with K=16 from initial 1500 (one battle): 1508 / 1492
    r = online_elo(battles_of(("y", "x", "model_a")), EloParams(k=16, initial=1500))
    assert r == pytest.approx([1508.0, 1492.0])  # model order: y first (order of appearance)


def test_online_elo_depends_on_order_shuffled_median_does_not():
    rows = simulate([900, 1000, 1100], 300, seed=3, tie_rate=0.2)
    fwd, rev = Battles.from_records(rows), Battles.from_records(rows[::-1], models=["m0", "m1", "m2"])
    fwd = Battles.from_records(rows, models=["m0", "m1", "m2"])
    assert not np.allclose(online_elo(fwd), online_elo(rev))
    rng = np.random.default_rng(7)
    shuffled = Battles.from_records([rows[i] for i in rng.permutation(len(rows))], models=["m0", "m1", "m2"])
    s1, s2, s3 = (shuffled_elo(b, n_orders=200, seed=1) for b in (fwd, rev, shuffled))
    assert np.array_equal(s1.median, s2.median) and np.array_equal(s1.median, s3.median)
    assert np.all(s1.lower < s1.median) and np.all(s1.median < s1.upper)
    other_seed = shuffled_elo(fwd, n_orders=400, seed=2)
    assert np.abs(other_seed.median - s1.median).max() < 10


def test_bradley_terry_recovers_known_strengths():
    true = np.array([850.0, 950.0, 1050.0, 1150.0])
    res = bradley_terry(Battles.from_records(simulate(true, 20000, seed=1), models=[f"m{i}" for i in range(4)]),
                        rounds=200, seed=0)
    assert res.rating == pytest.approx(true, abs=15)
    assert np.all(res.lower <= res.rating) and np.all(res.rating <= res.upper)
    assert np.sum((res.lower <= true) & (true <= res.upper)) >= 3
    assert list(rank_by_ci(res.lower, res.upper)) == [4, 3, 2, 1]


def test_bradley_terry_survives_all_wins_and_all_losses():
    b = battles_of(*[("x", "y", "model_a")] * 4, *[("z", "y", "model_a")] * 2, ("x", "z", "tie"))
    res = bradley_terry(b, rounds=300, seed=0)
    assert np.all(np.isfinite(res.samples))
    assert res.rating[1] == res.rating.min()  # y lost every battle
    assert res.rating.mean() == pytest.approx(1000.0)


def test_bradley_terry_ties_only_gives_equal_ratings():
    res = bradley_terry(battles_of(*[("x", "y", "tie")] * 5), rounds=20)
    assert res.rating == pytest.approx([1000.0, 1000.0], abs=1e-6)


def test_rank_and_predicted_win_rate():
    lower, upper = np.array([1100, 1050, 900]), np.array([1200, 1150, 1000])
    assert list(rank_by_ci(lower, upper)) == [1, 1, 3]
    p = predicted_win_rate(np.array([1400.0, 1000.0]))
    assert p[0, 1] == pytest.approx(10 / 11) and p[1, 0] == pytest.approx(1 / 11) and np.isnan(p[0, 0])


def test_battles_validation_names_row_and_field(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text('{"model_a": "x", "model_b": "y", "win": "model_a"}\n{"model_a": "x", "model_b": "y", "win": "draw"}\n')
    with pytest.raises(InputError, match=r"b.jsonl, row 2, field 'win'"):
        Battles.read(path)


def test_rate_cli(tmp_path, capsys):
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in simulate([900, 1000, 1100], 600, seed=5, tie_rate=0.1)))
    assert main(["rate", str(path), "--method", "bt", "--bootstrap", "50", "--csv", str(tmp_path / "r.csv")]) == 0
    out = capsys.readouterr().out
    assert "600 battles, 3 models" in out and "bt_lower" in out and "elo_median" not in out
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[1].startswith("m2,1,")  # the strongest model first, rank 1
    assert main(["rate", str(path), "--method", "elo", "--k", "16", "--bootstrap", "20"]) == 0
    assert "elo_median" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"model_a": "x", "win": "tie"}\n')
    assert main(["rate", str(bad)]) == 2
    assert "row 1, field 'model_b'" in capsys.readouterr().err
