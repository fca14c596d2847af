"""Run every section benchmark under bench/ and gather their results (``make bench``).

Each ``bench/<section>*.py`` is a standalone script that compares our implementation with a plain
baseline and writes ``results/bench/<name>.json``. This runner executes them one after another
(never in parallel, so timings do not disturb each other), records each script's wall time,
exit status, peak memory and the load average before and after it, and writes
``results/bench/summary.json`` and ``summary.md``: the machine, then every target a bench checked
(its ``checks``: a list of ``{target, measured, holds}`` or a dict of them by name) with the measured
value and whether it holds, then each script's status. A bench that failed or wrote no result
lists no check and shows as failed; a result with a ``speedup`` but no ``checks`` shows its speedup
with "no target".

``--summarize-only`` runs nothing: it rebuilds the summary from the result files already under
``results/bench/`` (each marked with its file time), e.g. after running some benches by hand.

Usage: ``python bench/run_all.py [--only PATTERN] [--timeout SECONDS] [--summarize-only]``
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench"
sys.path.insert(0, str(REPO / "bench"))
from _bench_common import load as load_average  # noqa: E402
from _bench_common import machine  # noqa: E402


def bench_scripts(pattern: str = "*") -> list[Path]:
    """The benchmark scripts under bench/, sorted, excluding this runner."""
    return sorted(p for p in (REPO / "bench").glob("*.py")
                  if p.name != Path(__file__).name and not p.name.startswith("_")
                  and fnmatch.fnmatch(p.stem, pattern))


def run_one(script: Path, timeout: float) -> dict:
    """Run one benchmark script in a child process; returns its record."""
    load_before = load_average()
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
            "load_average_before": load_before, "load_average_after": load_average(),
            "result": result, "output_tail": tail if rc != 0 else ""}


def existing_record(script: Path) -> dict:
    """The record of a bench not run now, from its result file when there is one (returncode
    ``"not run"`` when there is none)."""
    result_file = OUT / f"{script.stem}.json"
    found = result_file.is_file()
    return {"script": script.name, "returncode": 0 if found else "not run", "wall_seconds": None,
            "peak_rss_mib": None, "result_file": str(result_file.relative_to(REPO)) if found else None,
            "result_written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(result_file.stat().st_mtime))
            if found else None,
            "load_average_before": None, "load_average_after": None,
            "result": json.loads(result_file.read_text()) if found else None, "output_tail": ""}


def _check_rows(checks) -> list[dict]:
    """``checks`` of a result (a list of dicts, or a dict of dicts by name) as rows with a name."""
    items = checks.items() if isinstance(checks, dict) else ((None, c) for c in checks)
    rows = []
    for name, c in items:
        if isinstance(c, dict):  # a list entry's target is often its description ("speedup >= 1.5")
            label = name or c.get("name") or str(c.get("target"))
            rows.append({"name": label, "target": None if c.get("target") == label else c.get("target"),
                         "measured": c.get("measured"), "holds": c.get("holds") is True})
    return rows


def _speedup_rows(result: dict) -> list[dict]:
    """Rows for a result without ``checks``: its ``speedup`` and those of its sections (a top-level
    dict with a ``speedup``); a numeric ``target`` beside a speedup is a lower bound, else no target."""
    found = [("speedup", result)] + [(f"{k}.speedup", v) for k, v in result.items()
                                     if isinstance(v, dict) and "speedup" in v]
    rows = []
    for name, part in found:
        if "speedup" not in part:
            continue
        target = part.get("target")
        target = target if isinstance(target, (int, float)) and not isinstance(target, bool) else None
        measured = part["speedup"]
        holds = None if target is None or not isinstance(measured, (int, float)) else measured >= target
        rows.append({"name": name, "target": target, "measured": measured, "holds": holds})
    return rows


def targets(record: dict) -> list[dict]:
    """The targets one benchmark record checked: ``{bench, name, target, measured, holds}``.

    From its result's ``checks``; a result without checks gives a row for each ``speedup`` it
    reports (:func:`_speedup_rows`; holds None where no target is given). A failed script's checks are not trusted: its rows do not hold.
    """
    result = record.get("result") or {}
    rows = _check_rows(result["checks"]) if isinstance(result.get("checks"), (list, dict)) else []
    if not rows:
        rows = _speedup_rows(result)
    if record["returncode"] != 0:
        rows = [{**r, "holds": False} for r in rows]
    return [{"bench": record["script"], **r} for r in rows]


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def to_markdown(records: list[dict], machine_info: dict | None = None, started: str = "",
                reused: bool = False) -> str:
    """The summary: machine and load, one row per checked target, one row per script."""
    lines = []
    if machine_info:
        what = (f"Summary written {started} from the result files already there (each bench's own JSON "
                f"records its machine and load)" if reused else
                f"Benchmarks run {started}, one after another")
        lines += [f"{what}; machine: {machine_info['cpu_model']} ({machine_info['cpus']} CPUs, "
                  f"{machine_info['platform']}); load average (1, 5, 15 min) at start: "
                  f"{machine_info['load_average_at_start']}; other work on the machine shows in the load averages.",
                  ""]
    rows = [t for r in records for t in targets(r)]
    held = sum(1 for t in rows if t["holds"] is True)
    lines += [f"## Targets ({held} of {len(rows)} hold)", "",
              "| benchmark | target | required | measured | holds |", "|---|---|---|---|---|"]
    for t in rows:
        holds = "no target" if t["holds"] is None else ("yes" if t["holds"] else "**no**")
        lines.append(f"| {t['bench']} | {t['name']} | {_fmt(t['target'])} | {_fmt(t['measured'])} | {holds} |")
    lines += ["", "## Scripts", "",
              "| benchmark | status | wall (s) | peak RSS (MiB) | load before | load after | results |",
              "|---|---|---|---|---|---|---|"]
    for r in records:
        status = "ok" if r["returncode"] == 0 else (
            "not run" if r["returncode"] == "not run" else f"failed ({r['returncode']})")
        if r.get("result_written"):
            status = f"result of {r['result_written']}"
        load = [(r.get(k) or ["-"])[0] for k in ("load_average_before", "load_average_after")]
        lines.append(f"| {r['script']} | {status} | {_fmt(r['wall_seconds'])} | {r['peak_rss_mib'] or '-'} | "
                     f"{load[0]} | {load[1]} | {r['result_file'] or '-'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="*", help="glob on script names (without .py)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per script")
    parser.add_argument("--summarize-only", action="store_true",
                        help="run nothing; summarise the result files already under results/bench/")
    args = parser.parse_args(argv)
    scripts = bench_scripts(args.only)
    if not scripts:
        print(f"no benchmark scripts matching {args.only!r} under bench/", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    info, started = machine(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    records = []
    for script in scripts if not args.summarize_only else []:
        print(f"== {script.name}", file=sys.stderr, flush=True)
        records.append(run_one(script, args.timeout))
        print(f"   {records[-1]['returncode']} in {records[-1]['wall_seconds']} s", file=sys.stderr)
    if args.summarize_only:
        records = [existing_record(script) for script in scripts]
    rows = [t for r in records for t in targets(r)]
    summary = {"started": started, "summarize_only": args.summarize_only, "machine": info, "load_average_at_end": load_average(),
               "targets": rows, "all_targets_hold": all(t["holds"] is not False for t in rows),
               "benchmarks": records}
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = to_markdown(records, info, started, reused=args.summarize_only)
    (OUT / "summary.md").write_text(md)
    print(md)
    return 0 if all(r["returncode"] == 0 for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
