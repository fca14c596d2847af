"""Run a command and record its wall time and peak memory (used by ``make run``).

Usage: ``python -m tinysec.runstats OUT.json -- CMD ...``
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m tinysec.runstats OUT.json -- CMD ...", file=sys.stderr)
        return 2
    out, cmd = Path(argv[0]), argv[2:]
    start = time.perf_counter()
    rc = subprocess.call(cmd)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    stats = {
        "command": cmd,
        "returncode": rc,
        "wall_seconds": round(wall, 1),
        "peak_rss_mib_largest_process": round(peak_kib / 1024, 1),
        "machine": platform.platform(),
        "cpus": __import__("os").cpu_count(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stats, indent=2) + "\n")
    print(json.dumps(stats, indent=2), file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
