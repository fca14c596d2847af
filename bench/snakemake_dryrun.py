"""Snakemake overhead: wall time of a dry run (``snakemake -n``) of the default config, and what it imports.

Runs, in a scratch working directory, ``--repeat`` times each:

1. ``snakemake -n --quiet`` on ``config/config.yaml`` (the whole default DAG planned; in a finished
   run the same command is the no-op check);
2. Snakemake's own floor: ``snakemake -n --quiet`` on a one-rule Snakefile.

One more dry run of the default config logs every import (``-X importtime``): the check is that
no torch, transformers, peft or accelerate module is imported while the DAG is built, and the
slowest imports are listed. CPU seconds (user + system) are reported beside the wall times: on a
busy machine they stay near the idle wall time while the wall time grows. Checks: median default dry run <= 2 s; no deep-learning import.
Writes ``results/bench/snakemake_dryrun.json``. Usage: ``python bench/snakemake_dryrun.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from _bench_common import load  # noqa: E402

OUT = REPO / "results" / "bench" / "snakemake_dryrun.json"
TARGET_SECONDS = 2.0
HEAVY = ("torch", "transformers", "peft", "accelerate")
FLOOR_SNAKEFILE = 'rule all:\n    output: "done.txt"\n    shell: "touch {output}"\n'


def dry_run(snakefile: Path, workdir: Path, configfile: Path | None, env: dict | None = None) -> tuple[float, float, str]:
    """Wall and CPU (user + system) seconds of one ``snakemake -n --quiet`` and its merged output; a
    failure raises with the output."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), "--cores", "1",
           "-n", "--quiet"]
    if configfile:
        cmd += ["--configfile", str(configfile)]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)
    seconds = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    return seconds, cpu, proc.stdout


def import_report(output: str, top: int = 12) -> dict:
    """The heavy modules imported and the slowest top-level imports (cumulative microseconds)."""
    rows = re.findall(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s+)(\S+)$", output, re.M)
    imported = {name for _, _, _, name in rows}
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    top_level = [(int(cum), name) for _, cum, pad, name in rows if len(pad) <= 1]
    slowest = [{"module": n, "cumulative_ms": round(c / 1000, 1)} for c, n in sorted(top_level, reverse=True)[:top]]
    return {"modules_imported": len(imported), "heavy_imported": heavy, "slowest_top_level": slowest}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    config = REPO / "config" / "config.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        work, floor_dir = Path(tmp) / "work", Path(tmp) / "floor"
        work.mkdir()
        floor_dir.mkdir()
        (floor_dir / "Snakefile").write_text(FLOOR_SNAKEFILE)
        before = load()
        default = [dry_run(REPO / "Snakefile", work, config)[:2] for _ in range(args.repeat)]
        floor = [dry_run(floor_dir / "Snakefile", floor_dir, None)[:2] for _ in range(args.repeat)]
        _, _, logged = dry_run(REPO / "Snakefile", work, config, env={"PYTHONPROFILEIMPORTTIME": "1"})
    imports = import_report(logged)
    median = statistics.median(w for w, _ in default)
    result = {
        "task": "snakemake -n --quiet on config/config.yaml (whole default DAG) vs a one-rule Snakefile",
        "load_before": before, "load_after": load(), "cpus": os.cpu_count(),
        "default_seconds": [round(w, 2) for w, _ in default], "default_median_seconds": round(median, 2),
        "default_cpu_seconds": [round(c, 2) for _, c in default],
        "floor_seconds": [round(w, 2) for w, _ in floor],
        "floor_median_seconds": round(statistics.median(w for w, _ in floor), 2),
        "floor_cpu_seconds": [round(c, 2) for _, c in floor],
        "imports": imports,
        "checks": [
            {"target": f"dry run of the default config <= {TARGET_SECONDS} s (median of {args.repeat})",
             "measured": round(median, 2), "holds": median <= TARGET_SECONDS},
            {"target": "no torch/transformers/peft/accelerate import while the DAG is built",
             "measured": len(imports["heavy_imported"]), "holds": not imports["heavy_imported"]},
        ],
        "note": "numbers taken on a shared 2-core machine: see the load averages",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
