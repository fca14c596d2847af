"""Bradley-Terry with bootstrap CIs: ours vs FastChat's ``compute_bootstrap_bt``, side by side.

The baseline re-implements FastChat's published method (fastchat/serve/monitor/rating_systems.py):
unique (model_a, model_b, outcome) rows with their counts, one multinomial draw of the counts per
bootstrap round (numpy seed 0), and per round one scipy L-BFGS-B fit (maxiter 100, gtol 1e-6) of
the BT log-likelihood with a tie counted as half a win each way, run over a multiprocessing pool
of ``os.cpu_count()`` workers; the point rating is their ``compute_bt`` on all battles. Scale 400,
base 10, initial 1000. Both sides start from the same pandas DataFrame and are timed end to end
(ours includes building its Battles from the frame); the split without each side's parsing of
the frame (FastChat's preprocess_for_bt, timed again alone; our frame-to-Battles) is reported too.
Our resamples come from other random draws (a multinomial over merged cells), so CI bounds differ
from FastChat's by Monte-Carlo noise; FastChat against itself with seed 1 measures that floor.

Scales: 10 models x 100k battles and 100 models x 1M battles (100 rounds each), plus our memory
at 200 models x 1M battles (peak RSS and tracemalloc peak, in a fresh child process).
Writes results/bench/judge_rating_bt.json.

    python bench/judge_rating_bt.py [--scales 10x100000,100x1000000] [--rounds 100] [--memory-models 200]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import machine  # noqa: E402
from _rating_common import BASE, INIT, SCALE, battles_from_frame, simulate  # noqa: E402

from tinysec.rating.bt import NEWTON_MAX_MODELS, BTParams, bradley_terry  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"speedup_at_least": {"10x100000": 30.0, "100x1000000": 10.0}, "rating_within": 1.0,
           "ci_within": 2.0, "peak_rss_mib_at_most": 2048.0, "memory_models": 200}


# ---- FastChat's compute_bt / compute_bootstrap_bt, re-implemented ---------------------------------

def fc_preprocess(df: pd.DataFrame):
    """Unique (a, b, outcome) rows and counts; outcome 1 = a won, 0.5 tie, 0 = b won."""
    n = len(df)
    idx, models = pd.factorize(pd.concat([df["model_a"], df["model_b"]]))
    sched = np.full((n, 3), 1, dtype=np.int32)
    sched[:, 0], sched[:, 1] = idx[:n], idx[n:]
    sched[df["winner"].to_numpy() == "model_a", 2] = 2
    sched[df["winner"].to_numpy() == "model_b", 2] = 0
    cells, counts = np.unique(sched, return_counts=True, axis=0)
    return cells[:, :2], cells[:, 2].astype(np.float64) / 2.0, list(models), counts.astype(np.float64)


def fc_loss_and_grad(ratings, matchups, outcomes, weights, alpha):
    r = ratings[matchups]
    probs = expit(alpha * (r[:, 0] - r[:, 1]))
    loss = -((np.log(probs) * outcomes + np.log(1.0 - probs) * (1.0 - outcomes)) * weights).sum()
    g = -alpha * (outcomes - probs) * weights
    grad = np.zeros_like(ratings)
    np.add.at(grad, matchups[:, [0, 1]], g[:, None] * np.array([1.0, -1.0]))
    return loss, grad


def fc_fit(matchups, outcomes, weights, n_models, alpha, tol=1e-6):
    res = minimize(fc_loss_and_grad, np.zeros(n_models), args=(matchups, outcomes, weights, alpha),
                   jac=True, method="L-BFGS-B", options={"disp": False, "maxiter": 100, "gtol": tol})
    return res["x"]


def fastchat(df: pd.DataFrame, rounds: int, procs: int, seed: int = 0):
    """(models, point ratings, bootstrap samples) as FastChat computes them (their seed is 0)."""
    matchups, outcomes, models, weights = fc_preprocess(df)
    alpha = math.log(BASE)
    point = fc_fit(matchups, outcomes, weights, len(models), alpha) * SCALE + INIT
    rng = np.random.default_rng(seed=seed)
    boot = rng.multinomial(n=len(df), pvals=weights / weights.sum(), size=rounds).astype(np.float64) / len(df)
    fn = partial(fc_fit, matchups, outcomes, n_models=len(models), alpha=alpha)
    with mp.Pool(procs) as pool:
        samples = np.array(list(pool.imap_unordered(fn, boot)))
    return models, point, samples * SCALE + INIT


# ---- one scale ---------------------------------------------------------------------------------

def one_scale(n_models: int, n_battles: int, rounds: int, procs: int) -> dict:
    df = simulate(n_battles, n_models)
    t0 = time.perf_counter()
    battles = battles_from_frame(df)
    t_convert = time.perf_counter() - t0
    res = bradley_terry(battles, BTParams(scale=SCALE, base=BASE, initial=INIT), rounds=rounds, seed=0)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    fc_models, fc_point, fc_samples = fastchat(df, rounds, procs)
    t_fc = time.perf_counter() - t0
    t0 = time.perf_counter()
    fc_preprocess(df)  # timed alone, for the split below
    t_fc_pre = time.perf_counter() - t0
    assert fc_models == battles.models, "model order differs between the two sides"
    fc_lo, fc_hi = np.percentile(fc_samples, 2.5, axis=0), np.percentile(fc_samples, 97.5, axis=0)
    # Monte-Carlo floor of the CI comparison: FastChat against itself with another seed (untimed)
    _, _, fc1 = fastchat(df, rounds, procs, seed=1)
    floor = max(np.abs(np.percentile(fc1, 2.5, axis=0) - fc_lo).max(), np.abs(np.percentile(fc1, 97.5, axis=0) - fc_hi).max())
    return {"models": n_models, "battles": n_battles, "rounds": rounds,
            "ours_seconds": round(t_ours, 3), "fastchat_seconds": round(t_fc, 3),
            "speedup": round(t_fc / t_ours, 2),
            "ours_frame_to_battles_seconds": round(t_convert, 3),
            "fastchat_preprocess_seconds": round(t_fc_pre, 3),
            "speedup_excluding_frame_parsing": round((t_fc - t_fc_pre) / (t_ours - t_convert), 2),
            "max_rating_diff": round(float(np.abs(res.rating - fc_point).max()), 4),
            "max_ci_bound_diff": round(float(max(np.abs(res.lower - fc_lo).max(),
                                                 np.abs(res.upper - fc_hi).max())), 4),
            "fastchat_seed0_vs_seed1_max_ci_bound_diff": round(float(floor), 4),
            "ours_fit": "newton" if n_models <= NEWTON_MAX_MODELS else "lbfgs"}


def memory_child(n_models: int, n_battles: int, rounds: int) -> None:
    """Run ours once in this process and print its time, peak RSS and tracemalloc peak (JSON)."""
    df = simulate(n_battles, n_models)
    battles = battles_from_frame(df)
    del df
    tracemalloc.start()
    t0 = time.perf_counter()
    bradley_terry(battles, BTParams(scale=SCALE, base=BASE, initial=INIT), rounds=rounds, seed=0)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    print(json.dumps({"models": n_models, "battles": n_battles, "rounds": rounds,
                      "ours_seconds_under_tracemalloc": round(seconds, 3),
                      "tracemalloc_peak_mib": round(peak / 2**20, 1),
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "ours_fit": "newton" if n_models <= NEWTON_MAX_MODELS else "lbfgs"}))


def memory_run(n_models: int, n_battles: int, rounds: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--memory-child", f"{n_models}x{n_battles}",
                          "--rounds", str(rounds)], cwd=REPO, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_scale(text: str) -> tuple[int, int]:
    m, n = text.lower().split("x")
    return int(m), int(n)


def verdict(scales: list[dict], memory: dict | None) -> dict:
    """Each target with its measured value and whether it holds."""
    out = {}
    for s in scales:
        key = f"{s['models']}x{s['battles']}"
        if key in TARGETS["speedup_at_least"]:
            need = TARGETS["speedup_at_least"][key]
            out[f"speedup_{key}"] = {"target": need, "measured": s["speedup"], "holds": s["speedup"] >= need}
        out[f"rating_within_{key}"] = {"target": TARGETS["rating_within"], "measured": s["max_rating_diff"],
                                       "holds": s["max_rating_diff"] <= TARGETS["rating_within"]}
        out[f"ci_within_{key}"] = {"target": TARGETS["ci_within"], "measured": s["max_ci_bound_diff"],
                                   "holds": s["max_ci_bound_diff"] <= TARGETS["ci_within"]}
    if memory is not None:
        out[f"peak_rss_mib_{memory['models']}x{memory['battles']}"] = {
            "target": TARGETS["peak_rss_mib_at_most"], "measured": memory["peak_rss_mib"],
            "holds": memory["peak_rss_mib"] <= TARGETS["peak_rss_mib_at_most"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", default="10x100000,100x1000000", help="comma-separated MODELSxBATTLES")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--memory-models", type=int, default=200, help="0 skips the memory run")
    ap.add_argument("--memory-battles", type=int, default=1_000_000)
    ap.add_argument("--procs", type=int, default=os.cpu_count(), help="FastChat's pool size (theirs: cpu count)")
    ap.add_argument("--out", default=str(REPO / "results" / "bench" / "judge_rating_bt.json"))
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(*parse_scale(args.memory_child), args.rounds)
        return
    info = machine()
    scales = [one_scale(m, n, args.rounds, args.procs) for m, n in map(parse_scale, args.scales.split(","))]
    memory = memory_run(args.memory_models, args.memory_battles, args.rounds) if args.memory_models else None
    checks = verdict(scales, memory)
    headline = max(scales, key=lambda s: s["models"] * s["battles"])
    result = {
        "task": f"Bradley-Terry point ratings + {args.rounds} bootstrap rounds, ours vs FastChat compute_bootstrap_bt",
        "machine": info,
        "baseline": f"FastChat compute_bt + compute_bootstrap_bt re-implemented (unique-cell multinomial bootstrap, "
                    f"scipy L-BFGS-B per round, maxiter 100, gtol 1e-6), pool of {args.procs} processes",
        "ours": f"tinysec.rating.bt.bradley_terry (multinomial over (pair, outcome) cells drawn by 2 threads; "
                f"chord then Newton steps up to {NEWTON_MAX_MODELS} models, L-BFGS above), one process",
        "speedup": headline["speedup"],
        "speedup_at": f"{headline['models']} models x {headline['battles']} battles",
        "scales": scales,
        "memory": memory,
        "targets": TARGETS,
        "checks": checks,
        "meets_targets": all(c["holds"] for c in checks.values()),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
