"""GPU slot claiming for local Snakemake runs, and multi-GPU launch through ``accelerate``.

Snakemake's ``--resources gpu=N`` only *counts* GPUs; it never tells a job which device ids are
free. A job therefore claims ids itself: one lock file per device id under
``.snakemake/gpu-locks/`` (in the Snakemake working directory), held with a POSIX record lock
(``fcntl.lockf``) for as long as the job runs, with the holder's PID written inside. The kernel
drops a record lock when its process exits, even after a crash or ``kill -9``, and a forked child
never inherits it (unlike ``flock``), so a claim cannot outlive its holder. Record locks do not
exclude the same process, so the ids this process holds are also kept in a set (cleared in a
forked child). The claimed ids go into ``CUDA_VISIBLE_DEVICES``; a job waiting for an id logs the
PID of each holder.

Which ids exist:

- ``TINYSEC_GPU_COUNT=<n>`` overrides the detected device count (ids ``0..n-1``); tests use it
  to exercise claiming on a machine without a GPU, and it lets a user hide GPUs (``0``);
- otherwise, a ``CUDA_VISIBLE_DEVICES`` set for the whole run is the pool of ids: indices
  (``2,3``) or GPU / MIG UUIDs (``GPU-8f6e...``, ``MIG-1a2b...``), read as CUDA reads it (up to
  the first entry that is neither, so ``-1`` means no GPU);
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
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = Path(".snakemake") / "gpu-locks"
COUNT_ENV = "TINYSEC_GPU_COUNT"

DeviceId = int | str  # an index, or a GPU-/MIG- UUID as CUDA_VISIBLE_DEVICES gives it
_UUID = re.compile(r"(?:GPU|MIG)-[A-Za-z0-9/_-]+")

# Lock files this process holds a record lock on (record locks do not exclude their own process).
_HELD_HERE: set[str] = set()
_HELD_GUARD = threading.Lock()
os.register_at_fork(after_in_child=_HELD_HERE.clear)


def _parse_ids(value: str) -> list[DeviceId]:
    """Device ids of a ``CUDA_VISIBLE_DEVICES`` value: indices and UUIDs, up to the first other entry."""
    ids: list[DeviceId] = []
    for token in (t.strip() for t in value.split(",")):
        if token.isdigit():
            ids.append(int(token))
        elif _UUID.fullmatch(token):
            ids.append(token)
        else:
            break  # CUDA ignores this entry and every one after it
    return ids


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


def device_pool(total: int | None = None) -> list[DeviceId]:
    """Physical device ids jobs may claim on this host."""
    if total is not None:
        return list(range(total))
    if os.environ.get(COUNT_ENV, "").strip() == "" and os.environ.get("CUDA_VISIBLE_DEVICES"):
        return _parse_ids(os.environ["CUDA_VISIBLE_DEVICES"])
    return list(range(visible_device_count()))


def lock_path(lock_dir: str | os.PathLike, dev: DeviceId) -> Path:
    """Lock file of device ``dev``: ``gpu<index>.lock``, or ``gpu-<UUID>.lock`` (``/`` -> ``_``)."""
    if isinstance(dev, int):
        return Path(lock_dir) / f"gpu{dev}.lock"
    return Path(lock_dir) / f"gpu-{re.sub(r'[^A-Za-z0-9_-]', '_', dev)}.lock"


def _try_lock(lock_dir: Path, dev: DeviceId) -> int | None:
    """Record-lock the lock file of ``dev`` and write this PID into it; ``None`` when taken."""
    path = lock_path(lock_dir, dev)
    key = str(path.resolve())
    with _HELD_GUARD:
        if key in _HELD_HERE:
            return None  # never open (and close) a file we hold: closing it drops our lock
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # EAGAIN/EACCES: another process holds it
            os.close(fd)
            return None
        _HELD_HERE.add(key)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _release(held: list[tuple[DeviceId, int]], lock_dir: Path) -> None:
    with _HELD_GUARD:
        for dev, fd in held:
            with contextlib.suppress(OSError):
                fcntl.lockf(fd, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                os.close(fd)
            _HELD_HERE.discard(str(lock_path(lock_dir, dev).resolve()))
    held.clear()


def lock_holders(lock_dir: str | os.PathLike, pool: Sequence[DeviceId]) -> dict[DeviceId, int]:
    """PID written in each existing lock file of ``pool`` (the last process that claimed it).

    Files this process holds are not opened (closing any descriptor of a file drops this
    process's record lock on it); their holder is this process.
    """
    out: dict[DeviceId, int] = {}
    for dev in pool:
        path = lock_path(lock_dir, dev)
        with _HELD_GUARD:
            if str(path.resolve()) in _HELD_HERE:
                out[dev] = os.getpid()
                continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            out[dev] = int(path.read_text().split()[0])
    return out


def _busy_message(n: int, pool: Sequence[DeviceId], held: Sequence[DeviceId], lock_dir: Path) -> str:
    """``n GPU(s) of [pool]`` and the PID holding each device this claim did not get."""
    busy = lock_holders(lock_dir, [d for d in pool if d not in held])
    holders = ", ".join(f"GPU {d} held by PID {p}" for d, p in busy.items())
    return f"{n} free GPU(s) of {list(pool)}" + (f" ({holders})" if holders else "")


@contextlib.contextmanager
def claim_gpus(n: int, total: int | None = None, lock_dir: str | os.PathLike = DEFAULT_LOCK_DIR,
               timeout: float = 3600.0, poll: float = 0.5) -> Iterator[list[int]]:
    """Claim ``n`` free device ids and set ``CUDA_VISIBLE_DEVICES`` while the block runs.

    Yields the claimed ids in pool order (empty when ``n == 0`` or the host has no GPU: run on CPU).
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
    held: list[tuple[DeviceId, int]] = []
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
            message = _busy_message(n, pool, [d for d, _ in held], lock_dir)
            _release(held, lock_dir)
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not claim {message} within {timeout:.0f}s")
            if not waited:
                log.info("waiting for %s", message)
                waited = True
            time.sleep(poll)
        ids = [d for d in pool if any(d == h for h, _ in held)]
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, ids))
        log.info("claimed GPU ids %s", ids)
        yield ids
    finally:
        _release(held, lock_dir)
        if old_env is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = old_env


def cap_memory(fraction: float | None, device: int | None = None) -> int | None:
    """Limit this process's CUDA allocations on ``device`` to ``fraction`` of its memory with
    ``torch.cuda.set_per_process_memory_fraction`` (an allocation beyond it raises CUDA's
    out-of-memory error). ``device`` defaults to ``LOCAL_RANK`` (0 outside a distributed launch),
    an index among the devices this process sees. Nothing happens when ``fraction`` is None or
    CUDA is absent. Returns the capped device index, else None."""
    if fraction is None:
        return None
    if not 0 < fraction <= 1:
        raise ValueError(f"GPU memory fraction must be in (0, 1], got {fraction}")
    import torch

    if not torch.cuda.is_available():
        log.info("no CUDA device: GPU memory fraction %s not applied", fraction)
        return None
    index = int(os.environ.get("LOCAL_RANK", "0")) if device is None else device
    torch.cuda.set_per_process_memory_fraction(fraction, index)
    log.info("GPU memory of cuda:%d capped at %.0f%% (set_per_process_memory_fraction)", index, 100 * fraction)
    return index


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
