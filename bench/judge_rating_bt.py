"""Bradley-Terry with bootstrap CIs: ours vs FastChat's ``compute_bootstrap_bt``, side by side.

The baseline re-implements FastChat's published method (fastchat/serve/monitor/rating_systems.py):
unique (model_a, model_b, outcome) rows with their counts, one multinomial draw of the counts per
bootstrap round (numpy seed 0), and per round one scipy L-BFGS-B fit (maxiter 100, gtol 1e-6) of
the BT log-likelihood with a tie counted as half a win each way, run over a multiprocessing pool
of ``os.cpu_count()`` workers; the point rating is their ``compute_bt`` on all battles. Scale 400,
base 10, initial 1000. Both sides start from the same pandas DataFrame and are timed end to end
(ours includes building its Battles from the frame), ``--repeats`` times each, and the medians are
compared. FastChat's side runs in a child process: after its pool forks, our process ran 2-3x
slower at 10 models. The split without each side's parsing of the frame (FastChat's
preprocess_for_bt, timed again alone; our frame-to-Battles) is reported too.

Our resamples come from other random draws (a multinomial over merged cells), so CI bounds differ
from FastChat's by Monte-Carlo noise; FastChat against itself with seed 1 measures that floor. At
100 rounds the floor is about 2.3 points at 100 models, above the 2-point tolerance, so the CI
target is checked on an untimed comparison at ``--ci-rounds`` (1000) rounds, where the floor is
about sqrt(10) times smaller; the 100-round differences and floor are reported beside it.

Scales: 10 models x 100k battles and 100 models x 1M battles (100 rounds each), plus our memory
at 200 models x 1M battles (peak RSS and tracemalloc peak, in a fresh child process).
Writes results/bench/judge_rating_bt.json.

    python bench/judge_rating_bt.py [--scales 10x100000,100x1000000] [--rounds 100] [--repeats 3]
        [--ci-rounds 1000] [--memory-models 200]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
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
from _bench_common import machine, peak_rss_mib  # noqa: E402
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

def _bound_diff(x: tuple, y: tuple) -> float:
    return round(float(max(np.abs(np.subtract(x[0], y[0])).max(), np.abs(np.subtract(x[1], y[1])).max())), 4)


def fastchat_child(n_models: int, n_battles: int, rounds: int, procs: int, seed: int, repeats: int) -> None:
    """FastChat's side ``repeats`` times in this process (each timed from the frame); prints JSON
    with the times, the model order, the point ratings and the last run's 95% CI bounds."""
    df = simulate(n_battles, n_models)
    seconds, pre = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        models, point, samples = fastchat(df, rounds, procs, seed)
        seconds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fc_preprocess(df)  # timed alone, for the split without frame parsing
        pre.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": seconds, "preprocess_seconds": pre, "models": models, "point": point.tolist(),
                      "lower": np.percentile(samples, 2.5, axis=0).tolist(),
                      "upper": np.percentile(samples, 97.5, axis=0).tolist()}))


def fastchat_run(n_models: int, n_battles: int, rounds: int, procs: int, seed: int = 0, repeats: int = 1) -> dict:
    """:func:`fastchat_child` in a fresh process: its pool's forks never touch our process (after
    a fork, this process ran our side 2-3x slower at 10 models)."""
    out = subprocess.run([sys.executable, __file__, "--fastchat-child", f"{n_models}x{n_battles}", "--rounds",
                          str(rounds), "--procs", str(procs), "--seed", str(seed), "--repeats", str(repeats)],
                         cwd=REPO, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def ci_agreement(ours: tuple, fc0: dict, n_models: int, n_battles: int, rounds: int, procs: int) -> dict:
    """Largest CI-bound difference, ours (lower, upper) vs FastChat's ``fc0`` (seed 0), and FastChat
    seed 0 vs seed 1: the Monte-Carlo floor, how far two independent bootstraps of ``rounds`` differ."""
    fc1 = fastchat_run(n_models, n_battles, rounds, procs, seed=1)
    seed0 = (fc0["lower"], fc0["upper"])
    return {"rounds": rounds, "max_ci_bound_diff": _bound_diff(ours, seed0),
            "fastchat_seed0_vs_seed1_max_ci_bound_diff": _bound_diff((fc1["lower"], fc1["upper"]), seed0)}


def ci_at(battles, n_models: int, n_battles: int, rounds: int, procs: int) -> dict:
    """:func:`ci_agreement` at ``rounds`` bootstrap rounds, both sides run afresh (untimed)."""
    ours = bradley_terry(battles, BTParams(scale=SCALE, base=BASE, initial=INIT), rounds=rounds, seed=0)
    fc0 = fastchat_run(n_models, n_battles, rounds, procs)
    return ci_agreement((ours.lower, ours.upper), fc0, n_models, n_battles, rounds, procs)


def one_scale(n_models: int, n_battles: int, rounds: int, procs: int, repeats: int, ci_rounds: int) -> dict:
    """Each side ``repeats`` times from the same frame (ours here, FastChat's in a child process),
    medians timed; then the rating and CI comparisons (untimed)."""
    df = simulate(n_battles, n_models)
    ours_t, convert_t = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        battles = battles_from_frame(df)
        convert_t.append(time.perf_counter() - t0)
        res = bradley_terry(battles, BTParams(scale=SCALE, base=BASE, initial=INIT), rounds=rounds, seed=0)
        ours_t.append(time.perf_counter() - t0)
    fc = fastchat_run(n_models, n_battles, rounds, procs, repeats=repeats)
    assert fc["models"] == battles.models, "model order differs between the two sides"
    t_ours, t_convert, t_fc, t_fc_pre = map(float, map(np.median, (ours_t, convert_t, fc["seconds"],
                                                                  fc["preprocess_seconds"])))
    return {"models": n_models, "battles": n_battles, "rounds": rounds, "repeats": repeats,
            "ours_seconds": round(t_ours, 4), "fastchat_seconds": round(t_fc, 4),
            "ours_seconds_each": [round(t, 4) for t in ours_t],
            "fastchat_seconds_each": [round(t, 4) for t in fc["seconds"]],
            "speedup": round(t_fc / t_ours, 2),
            "ours_frame_to_battles_seconds": round(t_convert, 4),
            "fastchat_preprocess_seconds": round(t_fc_pre, 4),
            "speedup_excluding_frame_parsing": round((t_fc - t_fc_pre) / (t_ours - t_convert), 2),
            "max_rating_diff": round(float(np.abs(res.rating - np.asarray(fc["point"])).max()), 4),
            "ci_at_timed_rounds": ci_agreement((res.lower, res.upper), fc, n_models, n_battles, rounds, procs),
            "ci_at_ci_rounds": ci_at(battles, n_models, n_battles, ci_rounds, procs) if ci_rounds else None,
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
                      "peak_rss_mib": round(peak_rss_mib(), 1),
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
        ci = s["ci_at_ci_rounds"] or s["ci_at_timed_rounds"]
        out[f"ci_within_{key}"] = {"target": TARGETS["ci_within"], "measured": ci["max_ci_bound_diff"],
                                   "rounds": ci["rounds"], "holds": ci["max_ci_bound_diff"] <= TARGETS["ci_within"]}
    if memory is not None:
        out[f"peak_rss_mib_{memory['models']}x{memory['battles']}"] = {
            "target": TARGETS["peak_rss_mib_at_most"], "measured": memory["peak_rss_mib"],
            "holds": memory["peak_rss_mib"] <= TARGETS["peak_rss_mib_at_most"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", default="10x100000,100x1000000", help="comma-separated MODELSxBATTLES")
    ap.add_argument("--rounds", type=int, default=100, help="bootstrap rounds of the timed runs")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per side (medians reported)")
    ap.add_argument("--ci-rounds", type=int, default=1000,
                    help="bootstrap rounds of the untimed CI comparison (0: compare at --rounds)")
    ap.add_argument("--memory-models", type=int, default=200, help="0 skips the memory run")
    ap.add_argument("--memory-battles", type=int, default=1_000_000)
    ap.add_argument("--procs", type=int, default=os.cpu_count(), help="FastChat's pool size (theirs: cpu count)")
    ap.add_argument("--out", default=str(REPO / "results" / "bench" / "judge_rating_bt.json"))
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    ap.add_argument("--fastchat-child", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(*parse_scale(args.memory_child), args.rounds)
        return
    if args.fastchat_child:
        fastchat_child(*parse_scale(args.fastchat_child), args.rounds, args.procs, args.seed, args.repeats)
        return
    info = machine()
    scales = [one_scale(m, n, args.rounds, args.procs, args.repeats, args.ci_rounds) for m, n in map(parse_scale, args.scales.split(","))]
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
