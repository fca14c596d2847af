"""Shared fixtures: run real snakemake on the tiny config in a temporary working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TINY = REPO / "config" / "tiny.yaml"


def snakemake_cmd(workdir: Path, *args: str, configfile: Path | str = TINY, cores: int = 2) -> list[str]:
    """Command line for snakemake on this repo's Snakefile, run in ``workdir``.

    ``args`` (targets, flags) come before ``--configfile``, which takes several values.
    """
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
            "--cores", str(cores), *args, "--configfile", str(configfile)]


def run_snakemake(workdir: Path, *args: str, configfile: Path | str = TINY, check: bool = True,
                  timeout: int = 1800, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake and return the completed process (stdout+stderr merged in ``.stdout``)."""
    full_env = dict(os.environ)
    full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}"
    full_env.setdefault("HF_HUB_OFFLINE", "1")
    full_env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if env:
        full_env.update(env)
    proc = subprocess.run(snakemake_cmd(workdir, *args, configfile=configfile), cwd=workdir,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-8000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The whole tiny-config DAG, run once per test session; returns its working directory."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    run_snakemake(workdir)
    return workdir


@pytest.fixture(scope="session")
def hackmentor_seed_file() -> Path:
    """HackMentor's evaluation seeds from ../shared (skip when absent)."""
    path = SHARED / "data" / "hackmentor" / "eval_seed_data.json"
    if not path.is_file():
        pytest.skip(f"shared HackMentor data not present at {path}")
    return path


@pytest.fixture
def ssh_listener():
    """A TCP listener on 127.0.0.1 that greets like OpenSSH (the real-scan rule's SSH service); its port."""
    from tinysec.osint.real_scan import ssh_service

    with ssh_service() as port:
        yield port


def load_bench(name: str, monkeypatch):
    """Module ``bench/<name>.py``, loaded from its file with ``bench/`` on ``sys.path`` for this test only."""
    import importlib.util

    monkeypatch.syspath_prepend(str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
