"""Cluster submission end to end: profiles/slurm through snakemake-executor-plugin-slurm.

No SLURM here, so stand-in ``sbatch``, ``srun``, ``sacct``, ``squeue``, ``scancel`` (and the
``sinfo``, ``scontrol``, ``sacctmgr``, ``sshare`` the plugin consults) go first on PATH. The
stand-in ``sbatch`` runs the submitted script (or ``--wrap`` command) in the background, as
SLURM would, and prints a job id; ``sacct``/``squeue`` report each job's state from a state
folder. Every call is logged, so the test can check that the jobs really went through them.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_snakemake

STANDIN = textwrap.dedent(r'''
    #!{python}
    """Stand-in for SLURM's commands (dispatch on argv[0]); state under $FAKE_SLURM_DIR."""
    import fcntl, json, os, re, signal, subprocess, sys, time
    from pathlib import Path

    STATE = Path(os.environ["FAKE_SLURM_DIR"])
    CMD = Path(sys.argv[0]).name
    ARGS = sys.argv[1:]


    def log_call(extra=None):
        with open(STATE / "calls.jsonl", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(json.dumps({{"cmd": CMD, "args": ARGS, **(extra or {{}})}}) + "\n")


    def option(name, short=None):
        """Value of --name=V / --name V / -s V in ARGS."""
        for i, a in enumerate(ARGS):
            if a.startswith(name + "="):
                return a.split("=", 1)[1]
            if a in (name, short) and i + 1 < len(ARGS):
                return ARGS[i + 1]
        return None


    def jobs():
        for meta in sorted(STATE.glob("job-*.json")):
            yield json.loads(meta.read_text())


    def set_state(jobid, state, **extra):
        meta = STATE / f"job-{{jobid}}.json"
        info = json.loads(meta.read_text())
        info.update(state=state, **extra)
        tmp = meta.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, meta)


    def sbatch():
        with open(STATE / "counter", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.seek(0)
            jobid = int(fh.read() or 1000) + 1
            fh.seek(0); fh.truncate(); fh.write(str(jobid))
        wrap = option("--wrap")
        if wrap is not None:
            script = "#!/bin/sh\n" + wrap + "\n"
        else:
            path = [a for a in ARGS if not a.startswith("-")][-1]
            script = sys.stdin.read() if path == "/dev/stdin" else Path(path).read_text()
        (STATE / f"job-{{jobid}}.sh").write_text(script)
        output = (option("--output", "-o") or f"slurm-{{jobid}}.out").replace("%j", str(jobid))
        cpus = re.search(r"--cpus-per-(?:task|gpu)=(\d+)", " ".join(ARGS))
        info = {{"id": jobid, "name": option("--job-name", "-J"), "state": "PENDING",
                 "workdir": option("-D") or os.getcwd(), "output": output,
                 "cpus": cpus.group(1) if cpus else "1", "gpus": option("--gpus")}}
        (STATE / f"job-{{jobid}}.json").write_text(json.dumps(info))
        log_call({{"jobid": jobid}})
        runner = subprocess.Popen([sys.executable, __file__, "--run-job", str(jobid)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True,
                                  executable=sys.executable)
        set_state(jobid, "PENDING", runner_pid=runner.pid)
        print(jobid)


    def run_job(jobid):
        info = json.loads((STATE / f"job-{{jobid}}.json").read_text())
        env = dict(os.environ, SLURM_JOB_ID=str(jobid), SLURM_JOBID=str(jobid),
                   SLURM_JOB_NAME=info["name"] or "", SLURM_CPUS_PER_TASK=info["cpus"],
                   SLURM_NTASKS="1", SLURM_SUBMIT_DIR=info["workdir"])
        Path(info["output"]).parent.mkdir(parents=True, exist_ok=True)
        time.sleep(0.5)
        set_state(jobid, "RUNNING")
        with open(info["output"], "ab") as out:
            rc = subprocess.call(["/bin/sh", str(STATE / f"job-{{jobid}}.sh")], cwd=info["workdir"],
                                 env=env, stdout=out, stderr=subprocess.STDOUT)
        set_state(jobid, "COMPLETED" if rc == 0 else "FAILED", exit_code=rc)


    def report_states(fmt):
        name = option("--name")
        for job in jobs():
            if name is None or job["name"] == name:
                print(fmt.format(**job))


    def srun():
        # srun [options] command...: options are -x V, -xV, --opt=V or flags
        log_call()
        rest = list(ARGS)
        while rest and rest[0].startswith("-"):
            opt = rest.pop(0)
            if opt in ("-n", "-N", "-c", "-J", "--jobid", "--ntasks", "--nodes", "--gres", "--gpus"):
                rest.pop(0)
        os.execvp(rest[0], rest)


    if __name__ == "__main__":
        if ARGS[:1] == ["--run-job"]:
            run_job(int(ARGS[1]))
        elif CMD == "sbatch":
            sbatch()
        elif CMD == "srun":
            srun()
        elif CMD == "sacct":
            log_call()
            if "Account%256" in " ".join(ARGS):
                print("testacct")
            else:
                report_states("{{id}}|{{state}}")
        elif CMD == "squeue":
            log_call()
            report_states("{{id}}|{{state}}")
        elif CMD == "scancel":
            log_call()
            for jobid in [a for a in ARGS if a.isdigit()]:
                info = json.loads((STATE / f"job-{{jobid}}.json").read_text())
                if info["state"] in ("PENDING", "RUNNING"):
                    try:
                        os.killpg(info["runner_pid"], signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                    set_state(jobid, "CANCELLED")
        elif CMD in ("sacctmgr", "sshare"):
            log_call()
            print("testacct")
        elif CMD == "scontrol":
            log_call()
            print("MinJobAge               = 300 sec\nMaxArraySize            = 1001")
        elif CMD == "sinfo":
            log_call()
            print("PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST\nmain*        up   infinite      1   idle fake01")
        else:
            sys.exit(f"stand-in for {{CMD}} not implemented")
''').lstrip()

COMMANDS = ("sbatch", "srun", "sacct", "squeue", "scancel", "sinfo", "scontrol", "sacctmgr", "sshare")

TOY_SNAKEFILE = textwrap.dedent("""
    rule all:
        input: "out/summary.txt", "out/flaky.txt"

    rule flaky:
        output: "out/flaky.txt"
        resources: mem_mb=100
        # fails on its first attempt; the profile's retries resubmit it
        shell: "if [ -e first-attempt ]; then echo ok > {output}; else touch first-attempt; exit 1; fi"

    rule part:
        output: "out/part{i}.txt"
        threads: 1
        resources: mem_mb=100
        shell: "echo part {wildcards.i} job $SLURM_JOB_ID > {output}"

    rule summary:
        input: expand("out/part{i}.txt", i=[1, 2])
        output: "out/summary.txt"
        resources: gpu=1
        shell: "cat {input} > {output}; echo gpu job $SLURM_JOB_ID >> {output}"
""")


@pytest.fixture
def fake_slurm(tmp_path):
    """A bin/ folder of stand-in SLURM commands and the state folder they share."""
    bindir, state = tmp_path / "bin", tmp_path / "slurm-state"
    bindir.mkdir()
    state.mkdir()
    script = bindir / "fakeslurm"
    script.write_text(STANDIN.format(python=sys.executable))
    script.chmod(0o755)
    for cmd in COMMANDS:
        (bindir / cmd).symlink_to(script)
    env = {"PATH": f"{bindir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "FAKE_SLURM_DIR": str(state)}
    return env, state


def calls(state: Path) -> list[dict]:
    path = state / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def slurm_args(*extra: str) -> list[str]:
    return ["--profile", str(REPO / "profiles" / "slurm"), "--slurm-init-seconds-before-status-checks", "1",
            "--latency-wait", "10", *extra]


def test_profile_maps_gpus_without_gres():
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1 and profile["latency-wait"] >= 30 and profile["jobs"] >= 1
    assert {"mem_mb", "runtime"} <= set(profile["default-resources"])
    assert "gres" not in profile["default-resources"]
    for res in (profile.get("set-resources") or {}).values():
        assert not ("gres" in res and "gpu" in res)


def test_toy_workflow_runs_through_slurm_standins(tmp_path, fake_slurm):
    env, state = fake_slurm
    work = tmp_path / "toy"
    work.mkdir()
    (work / "Snakefile").write_text(TOY_SNAKEFILE)
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "snakemake", *slurm_args("--default-resources", "gpu_model=a100")],
                          cwd=work, env={**os.environ, **env}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:]
    log = calls(state)
    submits = [c for c in log if c["cmd"] == "sbatch"]
    assert len(submits) == 5, [c["args"] for c in submits]
    # the flaky job failed once (sacct said FAILED) and was resubmitted by the profile's retries
    flaky = [c for c in submits if "rule_flaky" in " ".join(c["args"])]
    assert len(flaky) == 2 and (work / "out" / "flaky.txt").read_text() == "ok\n"
    states = {json.loads(p.read_text())["id"]: json.loads(p.read_text())["state"] for p in state.glob("job-*.json")}
    assert sorted(states[c["jobid"]] for c in flaky) == ["COMPLETED", "FAILED"]
    submits = [c for c in submits if c not in flaky]
    # every job ran inside a stand-in job: its output names the SLURM job id given by sbatch
    ids = {str(c["jobid"]) for c in submits}
    summary = (work / "out" / "summary.txt").read_text().split("\n")
    seen = {line.split()[-1] for line in summary if line}
    assert seen == ids, (summary, ids)
    # the GPU rule asked for a typed GPU through --gpus, never through --gres
    gpu_submit = [c for c in submits if "rule_summary" in " ".join(c["args"])]
    assert len(gpu_submit) == 1
    gpu_args = " ".join(gpu_submit[0]["args"])
    assert "--gpus=a100:1" in gpu_args and "--gres" not in gpu_args
    # the plugin polled job states and the jobstep ran each rule through srun
    assert any(c["cmd"] in ("sacct", "squeue") and "--name" in c["args"] for c in log)
    assert sum(c["cmd"] == "srun" for c in log) == 5


@pytest.mark.slow
def test_prepare_model_runs_through_slurm_standins(tmp_path, fake_slurm):
    """A real tinysec rule (prepare_model on random:llama, tiny config) submitted to 'SLURM'."""
    env, state = fake_slurm
    run_snakemake(tmp_path, "resources/models/tiny-llama", *slurm_args(), env=env, timeout=600)
    model = tmp_path / "resources" / "models" / "tiny-llama"
    assert (model / "config.json").is_file() and (model / "model.safetensors").is_file()
    submits = [c for c in calls(state) if c["cmd"] == "sbatch"]
    assert len(submits) == 1 and "rule_prepare_model" in " ".join(submits[0]["args"])
    assert (tmp_path / "logs" / "prepare_model" / "tiny-llama.log").is_file()
    assert (tmp_path / "benchmarks" / "prepare_model" / "tiny-llama.tsv").is_file()
