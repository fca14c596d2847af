"""Dry runs of the default, tiny and paper configs, offline: the whole DAG builds without
downloading or writing anything; every job logs to logs/<rule>/ and benchmarks to
benchmarks/<rule>/; training/generation jobs declare the configured GPU count."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import REPO, run_snakemake

CONFIGS = {name: REPO / "config" / f"{name}.yaml" for name in ("config", "tiny", "paper")}
# Any attempt to reach the network during a dry run fails fast instead of downloading.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9",
               "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
               "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": ""}
GPU_RULE = re.compile(r"^(train_|generate_(?!api$))")  # API answers need no GPU


def dry_run_jobs(workdir, configfile) -> list[dict]:
    """One dict per job of a forced dry run: rule, log, benchmark, resources."""
    out = run_snakemake(workdir, "-n", "--forceall", configfile=configfile, timeout=600, env=OFFLINE_ENV).stdout
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", out):
        head = re.match(r"(?:local)?rule (\w+):\n", block)
        if not head:
            continue
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, re.M))
        jobs.append({"rule": head.group(1), **fields})
    assert jobs, out[-3000:]
    return jobs


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_dry_run_offline_with_logs_benchmarks_and_gpus(tmp_path, name):
    all_jobs = dry_run_jobs(tmp_path, CONFIGS[name])
    assert [j["rule"] for j in all_jobs].count("all") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], [".snakemake"]), "a dry run wrote files"
    jobs = [j for j in all_jobs if j["rule"] != "all"]
    assert jobs
    for job in jobs:
        rule = job["rule"]
        assert "log" in job, f"{rule} has no log:"
        assert all(p.strip().startswith(f"logs/{rule}/") for p in job["log"].split(",")), job["log"]
        assert job.get("benchmark", "").startswith(f"benchmarks/{rule}/"), f"{rule}: {job.get('benchmark')}"
    # training and generation jobs declare the configured GPU count (instruction tuning its own when set)
    raw = yaml.safe_load(CONFIGS[name].read_text())
    device = raw.get("device", {})
    gpus = device.get("gpus_per_job", 1)
    train_gpus = raw.get("instruct", {}).get("gpus_per_job")
    train_gpus = gpus if train_gpus is None else train_gpus
    for job in jobs:
        resources = job["resources"].split(", ")
        if GPU_RULE.match(job["rule"]):
            want = train_gpus if job["rule"].startswith("train_") else gpus
            assert f"gpu={want}" in resources, (job["rule"], job["resources"])
        # SLURM mapping: GPU jobs carry gpu (+ gpu_model), never gres as well
        if any(r.startswith("gpu=") and r != "gpu=0" for r in resources):
            assert not any(r.startswith("gres=") for r in resources), job
            if device.get("gpu_model"):
                assert f"gpu_model={device['gpu_model']}" in resources, job


def test_every_rule_names_the_conda_env():
    """`--sdm conda` on a cluster: every rule runs in envs/tinysec.yaml (same pins as the venv)."""
    missing = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        blocks = re.split(r"\n(?=rule \w+:\n)", smk.read_text())
        for block in blocks:
            head = re.match(r"rule (\w+):\n", block)
            if head and not re.search(r'^    conda:\n        "\.\./envs/tinysec\.yaml"$', block, re.M):
                missing.append(f"{smk.name}:{head.group(1)}")
    assert not missing, f"rules without conda: ../envs/tinysec.yaml: {missing}"
