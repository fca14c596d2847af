"""Rules hygiene from snakemake's own dry run: every job logs to logs/<rule>/, benchmarks to
benchmarks/<rule>/, and training/generation jobs declare the configured GPU count."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import REPO, run_snakemake

CONFIGS = {name: REPO / "config" / f"{name}.yaml" for name in ("tiny", "paper")}
GPU_RULE = re.compile(r"^(train_|generate_)")


def dry_run_jobs(workdir, configfile) -> list[dict]:
    """One dict per job of a forced dry run: rule, log, benchmark, resources."""
    out = run_snakemake(workdir, "-n", "--forceall", configfile=configfile, timeout=600,
                        env={"HF_HUB_OFFLINE": "1"}).stdout
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
def test_every_job_has_log_and_benchmark_under_its_rule(tmp_path, name):
    jobs = [j for j in dry_run_jobs(tmp_path, CONFIGS[name]) if j["rule"] != "all"]
    assert jobs
    for job in jobs:
        rule = job["rule"]
        assert "log" in job, f"{rule} has no log:"
        assert all(p.strip().startswith(f"logs/{rule}/") for p in job["log"].split(",")), job["log"]
        assert job.get("benchmark", "").startswith(f"benchmarks/{rule}/"), f"{rule}: {job.get('benchmark')}"
    # training and generation jobs declare the configured GPU count
    device = yaml.safe_load(CONFIGS[name].read_text()).get("device", {})
    gpus = device.get("gpus_per_job", 1)
    for job in jobs:
        resources = job["resources"].split(", ")
        if GPU_RULE.match(job["rule"]):
            assert f"gpu={gpus}" in resources, (job["rule"], job["resources"])
        # SLURM mapping: GPU jobs carry gpu (+ gpu_model), never gres as well
        if any(r.startswith("gpu=") and r != "gpu=0" for r in resources):
            assert not any(r.startswith("gres=") for r in resources), job
            if device.get("gpu_model"):
                assert f"gpu_model={device['gpu_model']}" in resources, job
