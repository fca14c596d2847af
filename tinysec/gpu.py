"""GPU slot claiming for local Snakemake runs, and multi-GPU launch through ``accelerate``.

Snakemake's ``--resources gpu=N`` only *counts* GPUs; it never tells a job which device ids are
free. A job therefore claims ids itself: one lock file per device id under
``.snakemake/gpu-locks/`` (in the Snakemake working directory), held with ``fcntl.flock`` for as
long as the job runs. The kernel drops a flock when the process exits, even after a crash or
``kill -9``, so a claim can never leak. The claimed ids go into ``CUDA_VISIBLE_DEVICES``.

Which ids exist:

- ``TINYSEC_GPU_COUNT=<n>`` overrides the detected device count (ids ``0..n-1``); tests use it
  to exercise claiming on a machine without a GPU, and it lets a user hide GPUs (``0``);
- otherwise, a ``CUDA_VISIBLE_DEVICES`` set for the whole run (``2,3``) is the pool of ids;
- otherwise, ``torch.cuda.device_count()``.

On a SLURM cluster the scheduler already sets ``CUDA_VISIBLE_DEVICES`` for the job; it is kept.

Use in a GPU rule (its ``resources:`` come from ``gpu_resources()`` in ``rules/common.smk``)::

    with claim_gpus(snakemake.resources.gpu) as ids:     # [] means: run on CPU, fp32
        if len(ids) > 1:
            run_launch(launch_command("tinysec.models.train", args, num_processes=len(ids)))
        else:
            train_in_process(...)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

log = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = Path(".snakemake") / "gpu-locks"
COUNT_ENV = "TINYSEC_GPU_COUNT"


def _parse_ids(value: str) -> list[int]:
    return [int(x) for x in value.split(",") if x.strip().isdigit()]


def visible_device_count() -> int:
    """Number of CUDA devices usable by this process (0 without CUDA); honours ``TINYSEC_GPU_COUNT``."""
    override = os.environ.get(COUNT_ENV)
    if override is not None and override.strip() != "":
        try:
            count = int(override)
        except ValueError:
            raise ValueError(f"{COUNT_ENV} must be a non-negative integer, got {override!r}") from None
        if count < 0:
            raise ValueError(f"{COUNT_ENV} must be a non-negative integer, got {override!r}")
        return count
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # pragma: no cover - torch missing or broken driver
        return 0


def device_pool(total: int | None = None) -> list[int]:
    """Physical device ids jobs may claim on this host."""
    if total is not None:
        return list(range(total))
    if os.environ.get(COUNT_ENV, "").strip() == "" and os.environ.get("CUDA_VISIBLE_DEVICES"):
        return _parse_ids(os.environ["CUDA_VISIBLE_DEVICES"])
    return list(range(visible_device_count()))


def _try_lock(lock_dir: Path, dev: int) -> int | None:
    fd = os.open(lock_dir / f"gpu{dev}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _release(held: list[tuple[int, int]]) -> None:
    for _, fd in held:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        with contextlib.suppress(OSError):
            os.close(fd)
    held.clear()


@contextlib.contextmanager
def claim_gpus(n: int, total: int | None = None, lock_dir: str | os.PathLike = DEFAULT_LOCK_DIR,
               timeout: float = 3600.0, poll: float = 0.5) -> Iterator[list[int]]:
    """Claim ``n`` free device ids and set ``CUDA_VISIBLE_DEVICES`` while the block runs.

    Yields the claimed ids, sorted (empty when ``n == 0`` or the host has no GPU: run on CPU).
    Claims are all-or-nothing: a job that finds fewer than ``n`` free ids holds none while it
    waits (so two multi-GPU jobs cannot deadlock), retrying every ``poll`` seconds up to
    ``timeout`` seconds (then ``TimeoutError``). ``total`` overrides the host's device count.
    """
    if n <= 0:
        yield []
        return
    if os.environ.get("SLURM_JOB_ID") and os.environ.get("CUDA_VISIBLE_DEVICES"):
        ids = _parse_ids(os.environ["CUDA_VISIBLE_DEVICES"])
        log.info("SLURM job %s: using its GPUs %s", os.environ["SLURM_JOB_ID"], ids)
        yield ids
        return
    pool = device_pool(total)
    if not pool:
        log.info("no GPU on this host: running on CPU")
        yield []
        return
    if n > len(pool):
        raise RuntimeError(f"job asks for {n} GPUs but this host has {len(pool)} ({pool})")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    held: list[tuple[int, int]] = []
    deadline = time.monotonic() + timeout
    old_env = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        waited = False
        while True:
            for dev in pool:
                fd = _try_lock(lock_dir, dev)
                if fd is not None:
                    held.append((dev, fd))
                    if len(held) == n:
                        break
            if len(held) == n:
                break
            _release(held)
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not claim {n} of GPUs {pool} within {timeout:.0f}s")
            if not waited:
                log.info("waiting for %d free GPU(s) of %s", n, pool)
                waited = True
            time.sleep(poll)
        ids = sorted(d for d, _ in held)
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, ids))
        log.info("claimed GPU ids %s", ids)
        yield ids
    finally:
        _release(held)
        if old_env is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = old_env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (rendezvous port of one multi-GPU job)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(target: str, args: Sequence[str] = (), num_processes: int = 2, module: bool = True,
                   mixed_precision: str = "bf16", port: int | None = None) -> list[str]:
    """Command line that runs ``target`` on ``num_processes`` GPUs through ``accelerate launch``.

    ``target`` is a module (``tinysec.models.train``, run as ``python -m``) or, with
    ``module=False``, a script path; ``args`` go to it unchanged. Each job gets its own
    rendezvous port, so two multi-GPU jobs on one host do not collide. Run it inside
    :func:`claim_gpus` so the processes see only the claimed devices.
    """
    if num_processes < 2:
        raise ValueError(f"accelerate launch is for 2 or more processes, got {num_processes}")
    cmd = [sys.executable, "-m", "accelerate.commands.launch",
           "--num_processes", str(num_processes), "--num_machines", "1", "--multi_gpu",
           "--mixed_precision", mixed_precision, "--dynamo_backend", "no",
           "--main_process_port", str(port if port is not None else free_port())]
    if module:
        cmd.append("--module")
    cmd.append(target)
    cmd.extend(str(a) for a in args)
    return cmd


def run_launch(cmd: Sequence[str], log_file: str | os.PathLike | None = None) -> None:
    """Run a :func:`launch_command` (output appended to ``log_file``); raise on failure."""
    log.info("running: %s", shlex.join(cmd))
    if log_file is None:
        subprocess.run(list(cmd), check=True)
        return
    with open(log_file, "a", encoding="utf-8") as fh:
        subprocess.run(list(cmd), check=True, stdout=fh, stderr=subprocess.STDOUT)
