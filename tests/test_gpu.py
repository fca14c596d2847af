"""GPU slot claiming without a GPU: TINYSEC_GPU_COUNT stands in for the device count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tinysec import gpu

REPO = Path(__file__).resolve().parents[1]

# A claimant process: claims n ids, reports them (and its CUDA_VISIBLE_DEVICES) in a file,
# then holds them until a release file appears.
WORKER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from tinysec.gpu import claim_gpus
    n, lock_dir, report, release = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    with claim_gpus(n, lock_dir=lock_dir, poll=0.05, timeout=60) as ids:
        tmp = report.with_suffix(".tmp")
        tmp.write_text(",".join(map(str, ids)) + "|" + os.environ.get("CUDA_VISIBLE_DEVICES", ""))
        os.replace(tmp, report)
        while not release.exists():
            time.sleep(0.02)
""")


def start_worker(tmp: Path, name: str, n: int = 1, count: int = 2) -> tuple[subprocess.Popen, Path, Path]:
    report, release = tmp / f"{name}.claimed", tmp / f"{name}.release"
    env = dict(os.environ, TINYSEC_GPU_COUNT=str(count), PYTHONPATH=str(REPO))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env.pop("SLURM_JOB_ID", None)
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(n), str(tmp / "locks"), str(report), str(release)],
                            env=env)
    return proc, report, release


def wait_for(path: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path.name} did not appear within {timeout}s")


def finish(proc: subprocess.Popen, release: Path) -> None:
    release.touch()
    assert proc.wait(timeout=30) == 0


def test_two_concurrent_claimants_get_different_ids(tmp_path):
    a, rep_a, rel_a = start_worker(tmp_path, "a")
    b, rep_b, rel_b = start_worker(tmp_path, "b")
    ids_a, env_a = wait_for(rep_a).split("|")
    ids_b, env_b = wait_for(rep_b).split("|")
    # both hold their claim at the same time (neither has been released yet)
    assert {ids_a, ids_b} == {"0", "1"}
    assert env_a == ids_a and env_b == ids_b
    finish(a, rel_a)
    finish(b, rel_b)


def test_sigkilled_holder_releases_its_id(tmp_path):
    holder, rep, _ = start_worker(tmp_path, "holder", count=1)
    assert wait_for(rep).startswith("0|")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    assert holder.returncode == -signal.SIGKILL
    # the lock file is still on disk, but the kernel dropped the flock with the process
    assert (tmp_path / "locks" / "gpu0.lock").exists()
    with gpu.claim_gpus(1, total=1, lock_dir=tmp_path / "locks", timeout=5, poll=0.05) as ids:
        assert ids == [0]


def test_third_claimant_waits_until_an_id_is_free(tmp_path):
    a, rep_a, rel_a = start_worker(tmp_path, "a")
    b, rep_b, rel_b = start_worker(tmp_path, "b")
    wait_for(rep_a)
    wait_for(rep_b)
    c, rep_c, rel_c = start_worker(tmp_path, "c")
    time.sleep(1.5)
    assert not rep_c.exists(), "third claimant got an id while both were held"
    assert c.poll() is None
    freed = wait_for(rep_b).split("|")[0]
    finish(b, rel_b)
    assert wait_for(rep_c).split("|")[0] == freed
    finish(a, rel_a)
    finish(c, rel_c)


def test_in_process_claim_times_out_when_all_taken(tmp_path):
    locks = tmp_path / "locks"
    with gpu.claim_gpus(2, total=2, lock_dir=locks) as ids:
        assert ids == [0, 1]
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
        # a second claim in the same process is refused too (ids held here are tracked in-process)
        with pytest.raises(TimeoutError, match="could not claim 1"):
            with gpu.claim_gpus(1, total=2, lock_dir=locks, timeout=0.3, poll=0.05):
                pass


def test_multi_gpu_claim_is_all_or_nothing(tmp_path):
    """A 2-GPU job that finds only one free id holds none while it waits."""
    locks = tmp_path / "locks"
    with gpu.claim_gpus(1, total=2, lock_dir=locks) as first:
        assert first == [0]
        with pytest.raises(TimeoutError):
            with gpu.claim_gpus(2, total=2, lock_dir=locks, timeout=0.3, poll=0.05):
                pass
        # id 1 was given back by the failed 2-GPU claim
        with gpu.claim_gpus(1, total=2, lock_dir=locks, timeout=1) as second:
            assert second == [1]


def test_env_restored_and_cpu_fallbacks(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    monkeypatch.delenv(gpu.COUNT_ENV, raising=False)
    # a run-wide CUDA_VISIBLE_DEVICES is the pool of ids
    assert gpu.device_pool() == [5, 7]
    with gpu.claim_gpus(1, lock_dir=tmp_path) as ids:
        assert ids == [5] and os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5,7"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv(gpu.COUNT_ENV, "0")
    with gpu.claim_gpus(1, lock_dir=tmp_path) as ids:
        assert ids == [] and "CUDA_VISIBLE_DEVICES" not in os.environ
    with gpu.claim_gpus(0, lock_dir=tmp_path) as ids:
        assert ids == []
    monkeypatch.setenv(gpu.COUNT_ENV, "1")
    with pytest.raises(RuntimeError, match="asks for 2 GPUs but this host has 1"):
        with gpu.claim_gpus(2, lock_dir=tmp_path):
            pass
    monkeypatch.setenv(gpu.COUNT_ENV, "two")
    with pytest.raises(ValueError, match="TINYSEC_GPU_COUNT"):
        gpu.visible_device_count()


def test_slurm_allocation_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with gpu.claim_gpus(1, lock_dir=tmp_path) as ids:
        assert ids == [3]
    assert not any(tmp_path.iterdir()), "no lock files under SLURM"


def test_launch_command_parses_with_accelerate():
    from accelerate.commands.launch import launch_command_parser

    cmd = gpu.launch_command("tinysec.models.train", ["--config", "x.json"], num_processes=4, port=29555)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    args = launch_command_parser().parse_args(cmd[3:])
    assert args.num_processes == 4 and args.multi_gpu and args.module
    assert args.main_process_port == 29555 and args.mixed_precision == "bf16"
    assert args.training_script == "tinysec.models.train"
    assert args.training_script_args == ["--config", "x.json"]
    script = gpu.launch_command("train.py", num_processes=2, module=False)
    assert "--module" not in script and script[-1] == "train.py"
    with pytest.raises(ValueError):
        gpu.launch_command("tinysec.models.train", num_processes=1)


def test_two_snakemake_jobs_under_gpu_2_get_different_devices(tmp_path):
    """Real snakemake: two concurrent 1-GPU jobs under --resources gpu=2 claim ids 0 and 1."""
    # script: jobs run in their own process, like the pipeline's GPU rules
    (tmp_path / "gpu_job.py").write_text(textwrap.dedent("""
        import os, time
        from tinysec.gpu import claim_gpus
        from pathlib import Path
        with claim_gpus(snakemake.resources.gpu, poll=0.05) as ids:
            start = time.time()
            # hold the claim until the other job holds its claim too (both run at once)
            Path(f"claimed-{snakemake.wildcards.i}").touch()
            while len(list(Path().glob("claimed-*"))) < 2:
                if time.time() - start > 120:
                    raise SystemExit("the other GPU job never ran at the same time")
                time.sleep(0.05)
            with open(snakemake.output[0], "w") as fh:
                fh.write(f"{os.environ['CUDA_VISIBLE_DEVICES']} {start} {time.time()}")
    """))
    (tmp_path / "Snakefile").write_text(textwrap.dedent("""
        rule all:
            input: expand("out/{i}.txt", i=[1, 2])

        rule gpu_job:
            output: "out/{i}.txt"
            resources: gpu=1
            script: "gpu_job.py"
    """))
    env = dict(os.environ, TINYSEC_GPU_COUNT="2", PYTHONPATH=str(REPO))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--resources", "gpu=2", "-q"],
                   cwd=tmp_path, env=env, check=True, timeout=300)
    runs = [(tmp_path / "out" / f"{i}.txt").read_text().split() for i in (1, 2)]
    assert {r[0] for r in runs} == {"0", "1"}
    (d1, s1, e1), (d2, s2, e2) = [(r[0], float(r[1]), float(r[2])) for r in runs]
    assert s1 < e2 and s2 < e1, "the two jobs did not overlap in time"
