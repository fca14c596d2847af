"""Bradley-Terry with bootstrap CIs: our vectorised fit vs the straightforward per-round fit.

1,000 bootstrap rounds over 100,000 simulated battles among 10 models. The baseline does what
FastChat's notebook does per round: resample the battles table with pandas, aggregate the
outcomes per pair and fit one scikit-learn LogisticRegression (same penalised objective as ours).
Writes results/bench/rating.json.

    python bench/judge_rating_bt.py [--battles 100000] [--models 10] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from tinysec.rating.battles import Battles
from tinysec.rating.bt import BTParams, bradley_terry

SCALE, BASE, INIT = 400.0, 10.0, 1000.0


def simulate(n_battles: int, n_models: int, seed: int = 0, tie_rate: float = 0.1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    true = np.linspace(800, 1200, n_models)
    a = rng.integers(0, n_models, n_battles)
    b = (a + rng.integers(1, n_models, n_battles)) % n_models
    p = 1 / (1 + BASE ** ((true[b] - true[a]) / SCALE))
    win = np.where(rng.random(n_battles) < tie_rate, "tie", np.where(rng.random(n_battles) < p, "model_a", "model_b"))
    names = np.array([f"model-{i}" for i in range(n_models)])
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "win": win})


def sklearn_bt(df: pd.DataFrame, models: list[str], lam: float) -> np.ndarray:
    """FastChat's compute_mle_elo: pair tables of wins (x2) and ties (x1), one weighted logistic
    regression on +/-log(base) features, no intercept. ``lam`` is our L2 on natural-log strengths."""
    idx = {m: i for i, m in enumerate(models)}
    w = np.zeros((len(models), len(models)))
    a = df["model_a"].map(idx).to_numpy()
    b = df["model_b"].map(idx).to_numpy()
    win = df["win"].to_numpy()
    np.add.at(w, (a[win == "model_a"], b[win == "model_a"]), 2.0)
    np.add.at(w, (b[win == "model_b"], a[win == "model_b"]), 2.0)
    np.add.at(w, (a[win == "tie"], b[win == "tie"]), 1.0)
    np.add.at(w, (b[win == "tie"], a[win == "tie"]), 1.0)
    rows, ys, weights = [], [], []
    for i in range(len(models)):
        for j in range(len(models)):
            if i == j or (w[i, j] == 0 and w[j, i] == 0):
                continue
            x = np.zeros(len(models))
            x[i], x[j] = math.log(BASE), -math.log(BASE)
            # the pair once as a win of i (weight w[i, j]) and once as a loss (weight w[j, i])
            rows += [x, x]
            ys += [1.0, 0.0]
            weights += [w[i, j], w[j, i]]
    # doubled counts: the objective is 2 x ours, so C = 1 / (2 * lam * ln(base)^2 / 2)
    lr = LogisticRegression(fit_intercept=False, C=1.0 / (lam * math.log(BASE) ** 2), tol=1e-10, max_iter=1000)
    lr.fit(np.array(rows), np.array(ys), sample_weight=np.array(weights) / 2.0)
    r = SCALE * lr.coef_[0]
    return INIT + r - r.mean()


def baseline(df: pd.DataFrame, models: list[str], rounds: int, lam: float, seed: int):
    point = sklearn_bt(df, models, lam)
    samples = np.array([sklearn_bt(df.sample(frac=1.0, replace=True, random_state=seed + k), models, lam)
                        for k in range(rounds)])
    return point, samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--battles", type=int, default=100_000)
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--out", default="results/bench/rating.json")
    args = ap.parse_args()

    df = simulate(args.battles, args.models)
    models = sorted(set(df["model_a"]) | set(df["model_b"]))
    battles = Battles.from_records(df.to_dict("records"), models=models)
    params = BTParams(scale=SCALE, base=BASE, initial=INIT)
    lam = params.l2 * len(df)

    t0 = time.perf_counter()
    ours = bradley_terry(battles, params, rounds=args.rounds, seed=0)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    b_point, b_samples = baseline(df, models, args.rounds, lam, seed=0)
    t_base = time.perf_counter() - t0
    b_lower, b_upper = np.percentile(b_samples, 2.5, axis=0), np.percentile(b_samples, 97.5, axis=0)

    rating_diff = float(np.abs(ours.rating - b_point).max())
    ci_diff = float(max(np.abs(ours.lower - b_lower).max(), np.abs(ours.upper - b_upper).max()))
    result = {
        "task": f"Bradley-Terry, {args.rounds} bootstrap rounds, {args.battles} battles, {args.models} models",
        "machine": f"{platform.processor() or platform.machine()}, numpy {np.__version__}",
        "ours_seconds": round(t_ours, 3),
        "baseline_seconds": round(t_base, 3),
        "baseline": "per round: pandas resample + pair tables + sklearn LogisticRegression (FastChat's notebook)",
        "speedup": round(t_base / t_ours, 1),
        "max_rating_diff": round(rating_diff, 4),
        "max_ci_bound_diff": round(ci_diff, 4),
        "targets": {"speedup_at_least": 20, "rating_within": 1.0, "ci_within": 2.0},
        "meets_targets": bool(t_base / t_ours >= 20 and rating_diff <= 1.0 and ci_diff <= 2.0),
        "models": models,
        "ours": {"rating": ours.rating.round(2).tolist(), "lower": ours.lower.round(2).tolist(),
                 "upper": ours.upper.round(2).tolist()},
        "baseline_ratings": {"rating": b_point.round(2).tolist(), "lower": b_lower.round(2).tolist(),
                             "upper": b_upper.round(2).tolist()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, (dict, list))}, indent=2))


if __name__ == "__main__":
    main()
