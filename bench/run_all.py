"""Run every section benchmark under bench/ and gather their results (``make bench``).

Each ``bench/<section>*.py`` is a standalone script that compares our implementation with a plain
baseline and writes ``results/bench/<name>.json``. This runner executes them one after another
(never in parallel, so timings do not disturb each other), records each script's wall time,
exit status and peak memory, and writes ``results/bench/summary.json`` and ``summary.md``.

Usage: ``python bench/run_all.py [--only PATTERN] [--timeout SECONDS]``
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench"


def bench_scripts(pattern: str = "*") -> list[Path]:
    """The benchmark scripts under bench/, sorted, excluding this runner."""
    return sorted(p for p in (REPO / "bench").glob("*.py")
                  if p.name != Path(__file__).name and not p.name.startswith("_")
                  and fnmatch.fnmatch(p.stem, pattern))


def run_one(script: Path, timeout: float) -> dict:
    """Run one benchmark script in a child process; returns its record."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(script)], cwd=REPO, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rc, tail = proc.returncode, proc.stdout[-2000:]
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        rc, tail = "timeout", out[-2000:]
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result_file = OUT / f"{script.stem}.json"
    result = None
    if result_file.is_file() and result_file.stat().st_mtime >= time.time() - wall - 1:
        result = json.loads(result_file.read_text())
    return {"script": script.name, "returncode": rc, "wall_seconds": round(wall, 1),
            # ru_maxrss of children is a running maximum: only a rise is attributable to this script
            "peak_rss_mib": round(peak / 1024, 1) if peak > before else None,
            "result_file": str(result_file.relative_to(REPO)) if result else None,
            "result": result, "output_tail": tail if rc != 0 else ""}


def to_markdown(records: list[dict]) -> str:
    lines = ["| benchmark | status | wall (s) | peak RSS (MiB) | results |", "|---|---|---|---|---|"]
    for r in records:
        status = "ok" if r["returncode"] == 0 else f"failed ({r['returncode']})"
        lines.append(f"| {r['script']} | {status} | {r['wall_seconds']} | {r['peak_rss_mib'] or '-'} | "
                     f"{r['result_file'] or '-'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="*", help="glob on script names (without .py)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per script")
    args = parser.parse_args(argv)
    scripts = bench_scripts(args.only)
    if not scripts:
        print(f"no benchmark scripts matching {args.only!r} under bench/", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    records = []
    for script in scripts:
        print(f"== {script.name}", file=sys.stderr, flush=True)
        records.append(run_one(script, args.timeout))
        print(f"   {records[-1]['returncode']} in {records[-1]['wall_seconds']} s", file=sys.stderr)
    summary = {"machine": platform.platform(), "cpus": os.cpu_count(), "benchmarks": records}
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (OUT / "summary.md").write_text(to_markdown(records))
    print(to_markdown(records))
    return 0 if all(r["returncode"] == 0 for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
