"""Runtime hardening: the normaliser on hostile Unicode (long combining-mark runs, lone
surrogates) and GPU claims (UUIDs in CUDA_VISIBLE_DEVICES, forked children of a killed holder,
holder PIDs in the wait message), with real processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tinysec import gpu
from tinysec.ner.identify import MAX_MARKS_PER_CLUSTER, fold_char, normalize

REPO = Path(__file__).resolve().parents[1]
ACUTE = "\u0301"


# ---------------------------------------------------------------- normaliser
def test_million_combining_marks_normalise_in_linear_time():
    text = "x" + ACUTE * 1_000_000 + " see example.com"  # no precomposed x-acute: the marks are stripped
    start = time.perf_counter()
    norm = normalize(text)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"normalize took {elapsed:.1f}s on 1M combining marks"
    assert norm.text == "x see example.com"
    i = norm.text.index("example.com")
    assert norm.original_span(i, i + len("example.com")) == (text.index("example.com"), len(text))
    assert norm.original_span(0, 1) == (0, 1_000_001)  # the letter's span keeps all of its marks


def test_marks_kept_per_cluster_are_capped():
    base = "\u0436"  # Cyrillic zhe: not folded to ASCII, so its marks survive normalisation
    norm = normalize(base + ACUTE * 200 + "x")
    assert norm.text == base + ACUTE * MAX_MARKS_PER_CLUSTER + "x"
    assert norm.offsets[-1] == 201 and set(norm.offsets[:-1]) == {0}
    short = normalize(base + ACUTE * 3)
    assert short.text == base + ACUTE * 3


def test_lone_surrogates_never_reach_the_output():
    text = "host\ud800 n\u00e4me \udfff x.com\udc80 \ud83d\ude00"
    norm = normalize(text)
    norm.text.encode("utf-8")  # raises UnicodeEncodeError if a surrogate got through
    assert not any("\ud800" <= c <= "\udfff" for c in norm.text)
    assert norm.text == f"host\ufffd n{fold_char(chr(0xe4))}me \ufffd x.com\ufffd \ufffd\ufffd"
    assert len(norm.offsets) == len(norm.text)
    assert norm.original_span(norm.text.index("x.com"), norm.text.index("x.com") + 5) == (
        text.index("x.com"), text.index("x.com") + 5)


# ---------------------------------------------------------------- GPU claims
UUID_A = "GPU-8f6e2d1c-0b3a-4c5d-9e8f-1a2b3c4d5e6f"
UUID_B = "MIG-4e5d6c7b-8a9f-4123-b456-0c1d2e3f4a5b"

# Claims n ids, optionally forks a child that keeps the inherited lock files open, reports
# "<ids>|<CUDA_VISIBLE_DEVICES>|<child pid>", then holds the claim until a release file appears.
WORKER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from tinysec.gpu import claim_gpus
    n, lock_dir, report, release, fork = (int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]),
                                          Path(sys.argv[4]), sys.argv[5] == "fork")
    with claim_gpus(n, lock_dir=lock_dir, poll=0.05, timeout=60) as ids:
        child = os.fork() if fork else 0
        if fork and child == 0:
            time.sleep(120)  # a worker process that outlives its parent
            os._exit(0)
        tmp = report.with_suffix(".tmp")
        tmp.write_text(",".join(map(str, ids)) + "|" + os.environ.get("CUDA_VISIBLE_DEVICES", "") + f"|{child}")
        os.replace(tmp, report)
        while not release.exists():
            time.sleep(0.02)
""")


def start_worker(tmp: Path, name: str, env_update: dict, fork: bool = False):
    report, release = tmp / f"{name}.claimed", tmp / f"{name}.release"
    env = dict(os.environ, PYTHONPATH=str(REPO), **env_update)
    for key in ("CUDA_VISIBLE_DEVICES", gpu.COUNT_ENV, "SLURM_JOB_ID"):
        if key not in env_update:
            env.pop(key, None)
    proc = subprocess.Popen([sys.executable, "-c", WORKER, "1", str(tmp / "locks"), str(report), str(release),
                             "fork" if fork else "nofork"], env=env)
    return proc, report, release


def wait_for(path: Path, timeout: float = 30.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text().split("|")
        time.sleep(0.02)
    raise AssertionError(f"{path.name} did not appear within {timeout}s")


def test_uuid_devices_are_parsed_like_cuda_does(monkeypatch):
    monkeypatch.delenv(gpu.COUNT_ENV, raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{UUID_A}, {UUID_B}")
    assert gpu.device_pool() == [UUID_A, UUID_B]
    # CUDA stops at the first entry that is neither an index nor a UUID
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{UUID_A},bogus,{UUID_B}")
    assert gpu.device_pool() == [UUID_A]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert gpu.device_pool() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-GPU-8f6e2d1c/1/0")  # pre-R470 MIG form
    assert gpu.device_pool() == ["MIG-GPU-8f6e2d1c/1/0"]
    assert gpu.lock_path("locks", "MIG-GPU-8f6e2d1c/1/0").name == "gpu-MIG-GPU-8f6e2d1c_1_0.lock"


def test_two_processes_claim_different_uuids(tmp_path):
    env = {"CUDA_VISIBLE_DEVICES": f"{UUID_A},{UUID_B}"}
    a, rep_a, rel_a = start_worker(tmp_path, "a", env)
    b, rep_b, rel_b = start_worker(tmp_path, "b", env)
    try:
        ids_a, visible_a, _ = wait_for(rep_a)
        ids_b, visible_b, _ = wait_for(rep_b)
        assert {ids_a, ids_b} == {UUID_A, UUID_B}
        assert visible_a == ids_a and visible_b == ids_b
    finally:
        rel_a.touch()
        rel_b.touch()
        assert a.wait(timeout=30) == 0 and b.wait(timeout=30) == 0


def test_forked_child_does_not_keep_a_killed_parents_claim(tmp_path):
    holder, report, _ = start_worker(tmp_path, "holder", {gpu.COUNT_ENV: "1"}, fork=True)
    child = 0
    try:
        ids, _, child_pid = wait_for(report)
        child = int(child_pid)
        assert ids == "0" and child > 0
        os.kill(holder.pid, signal.SIGKILL)
        assert holder.wait(timeout=10) == -signal.SIGKILL
        os.kill(child, 0)  # the forked child is still alive, with the lock file open
        with gpu.claim_gpus(1, total=1, lock_dir=tmp_path / "locks", timeout=5, poll=0.05) as got:
            assert got == [0]
            assert gpu.lock_holders(tmp_path / "locks", [0]) == {0: os.getpid()}
    finally:
        if child:
            os.kill(child, signal.SIGKILL)
        if holder.poll() is None:
            holder.kill()


def test_wait_message_names_the_holders_pid(tmp_path, caplog):
    holder, report, release = start_worker(tmp_path, "holder", {gpu.COUNT_ENV: "1"})
    try:
        wait_for(report)
        with caplog.at_level(logging.INFO, logger="tinysec.gpu"):
            with pytest.raises(TimeoutError) as exc:
                with gpu.claim_gpus(1, total=1, lock_dir=tmp_path / "locks", timeout=0.3, poll=0.05):
                    pass
        assert f"GPU 0 held by PID {holder.pid}" in str(exc.value)
        assert f"waiting for 1 free GPU(s) of [0] (GPU 0 held by PID {holder.pid})" in caplog.text
    finally:
        release.touch()
        assert holder.wait(timeout=30) == 0


def test_threads_of_one_process_get_different_ids(tmp_path):
    got, barrier = [], threading.Barrier(2)

    def claim():
        with gpu.claim_gpus(1, total=2, lock_dir=tmp_path, timeout=5, poll=0.05) as ids:
            got.append(ids[0])
            barrier.wait(timeout=10)  # both hold their claim at the same time

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(got) == [0, 1]


PROBE = textwrap.dedent("""
    import sys
    from tinysec.gpu import claim_gpus
    try:
        with claim_gpus(1, total=1, lock_dir=sys.argv[1], timeout=0.5, poll=0.05):
            print("claimed")
    except TimeoutError as exc:
        print(exc)
""")


def test_holder_pid_lookup_keeps_this_process_lock(tmp_path):
    """Reading the holders while this process holds an id must not drop its record lock."""
    locks = tmp_path / "locks"
    with gpu.claim_gpus(1, total=1, lock_dir=locks, timeout=5) as ids:
        assert ids == [0]
        assert gpu.lock_holders(locks, [0]) == {0: os.getpid()}
        with pytest.raises(TimeoutError, match=f"GPU 0 held by PID {os.getpid()}"):
            with gpu.claim_gpus(1, total=1, lock_dir=locks, timeout=0.2, poll=0.05):
                pass
        env = dict(os.environ, PYTHONPATH=str(REPO))
        probe = subprocess.run([sys.executable, "-c", PROBE, str(locks)], capture_output=True, text=True,
                               env=env, timeout=60)
        assert f"GPU 0 held by PID {os.getpid()}" in probe.stdout, probe.stdout + probe.stderr
    probe = subprocess.run([sys.executable, "-c", PROBE, str(locks)], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert probe.stdout.strip() == "claimed", probe.stdout + probe.stderr
