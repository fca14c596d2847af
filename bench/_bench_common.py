"""Helpers shared by the training, tagging and workflow benches: machine description, load, GEMM peak."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOMINAL_PEAK_GFLOPS = 100.0  # fp32 GEMM of the reference 2-core machine, 2 threads


def load() -> list[float] | None:
    """The 1, 5 and 15 minute load averages now (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def peak_rss_mib() -> float:
    """Peak RSS of this process image in MiB: VmHWM, which (unlike ``ru_maxrss``) is not inherited
    from the parent across fork and exec; ``ru_maxrss`` where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else what ``platform`` knows)."""
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine() -> dict:
    """Node, platform, CPU count and model, Python and library versions, torch threads (when torch is
    imported) and the load average now."""
    from importlib import metadata

    versions = {}
    for name in ("torch", "transformers", "numpy", "pandas", "scipy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info = {"node": platform.node(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "cpu_model": cpu_model(), "python": platform.python_version(), **versions}
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
        info["cuda"] = sys.modules["torch"].cuda.is_available()
    return {**info, "load_average_at_start": load()}


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


def ensure_model(name: str) -> Path:
    """The prepared folder of config model ``name`` (materialised once under resources/models/)."""
    import yaml

    from tinysec.models.sources import prepare_model

    path = REPO / "resources" / "models" / name
    if not (path / "config.json").is_file():
        entry = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["models"][name]
        prepare_model(name, entry, path)
    return path
