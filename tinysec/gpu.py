"""GPU slot claiming for local Snakemake runs.

Snakemake's ``--resources gpu=N`` only *counts* GPUs; it never tells a job which device ids are
free. A job therefore claims ids itself: one lock file per device id under
``.snakemake/gpu-locks/``, held with ``fcntl.flock`` for as long as the job runs. The kernel drops
a flock when the process exits, even after a crash or ``kill -9``, so a claim can never leak.
The claimed ids go into ``CUDA_VISIBLE_DEVICES``.

On a SLURM cluster the scheduler already sets ``CUDA_VISIBLE_DEVICES``; we then keep it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = Path(".snakemake") / "gpu-locks"


def visible_device_count() -> int:
    """Number of CUDA devices on this host (0 without CUDA)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # pragma: no cover - torch missing or broken driver
        return 0


@contextlib.contextmanager
def claim_gpus(n: int, total: int | None = None, lock_dir: str | os.PathLike = DEFAULT_LOCK_DIR,
               timeout: float = 3600.0, poll: float = 0.5) -> Iterator[list[int]]:
    """Claim ``n`` free device ids out of ``total`` and set ``CUDA_VISIBLE_DEVICES``.

    Yields the claimed ids (empty when ``n == 0`` or the host has no GPU, which means CPU).
    Waits up to ``timeout`` seconds for ids to come free.
    """
    if n <= 0:
        yield []
        return
    if os.environ.get("SLURM_JOB_ID") and os.environ.get("CUDA_VISIBLE_DEVICES"):
        ids = [int(x) for x in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if x.strip().isdigit()]
        yield ids
        return
    total = visible_device_count() if total is None else total
    if total == 0:
        log.info("no GPU on this host: running on CPU")
        yield []
        return
    if n > total:
        raise RuntimeError(f"job asks for {n} GPUs but this host has {total}")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    held: list[tuple[int, int]] = []
    deadline = time.monotonic() + timeout
    old_env = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        while True:
            for dev in range(total):
                if len(held) == n:
                    break
                if any(d == dev for d, _ in held):
                    continue
                fd = os.open(lock_dir / f"gpu{dev}.lock", os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                held.append((dev, fd))
            if len(held) == n:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not claim {n} of {total} GPUs within {timeout:.0f}s")
            time.sleep(poll)
        ids = sorted(d for d, _ in held)
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, ids))
        log.info("claimed GPU ids %s", ids)
        yield ids
    finally:
        for _, fd in held:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        if old_env is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = old_env
