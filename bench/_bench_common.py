"""Helpers shared by the training, tagging and workflow benches: machine description, load, GEMM peak."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOMINAL_PEAK_GFLOPS = 100.0  # fp32 GEMM of the reference 2-core machine, 2 threads


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages now."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    """Node, CPU count and model, torch version and threads, and the load average now."""
    import torch

    name = platform.processor() or platform.machine()
    try:
        name = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"node": platform.node(), "platform": platform.platform(), "cpus": os.cpu_count(), "cpu_model": name,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "load_average_at_start": load()}


def measured_peak_gflops(seconds: float = 1.5) -> float:
    """fp32 GEMM GFLOP/s of a 2048x2048 matmul, now, at the current thread count."""
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2 * 2048 ** 3 * n / (time.perf_counter() - t0) / 1e9
