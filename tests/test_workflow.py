"""Whole-workflow properties on the tiny config with real snakemake: rebuild only what changed,
one table builds only its ancestors, the report lists every final output with a caption, lint.

Written generically: the job lists come from snakemake's own dry runs and rule graph, so these
tests keep holding as sections add rules.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, TINY, run_snakemake

pytestmark = pytest.mark.slow

TRAINING = re.compile(r"^(train_|prepare_model$)")


def job_counts(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a snakemake run or dry run."""
    if "Nothing to be done" in output:
        return {}
    table = re.search(r"Job stats:\n(.*?)\n\n", output, re.S)
    assert table, output[-3000:]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table.group(1), re.M)
            if m.group(1) != "total"}


def dry_run(workdir: Path, *args: str, configfile: Path = TINY) -> dict[str, int]:
    return job_counts(run_snakemake(workdir, "-n", *args, configfile=configfile, timeout=600).stdout)


def rule_graph(workdir: Path, configfile: Path = TINY) -> dict[str, set[str]]:
    """Rule -> the rules that consume its outputs (from `snakemake --rulegraph`)."""
    dot = run_snakemake(workdir, "--rulegraph", configfile=configfile, timeout=600).stdout
    labels = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)"', dot, re.M))
    children: dict[str, set[str]] = {name: set() for name in labels.values()}
    for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M):
        children[labels[a]].add(labels[b])
    return children


def descendants(graph: dict[str, set[str]], roots: set[str]) -> set[str]:
    seen, todo = set(roots), list(roots)
    while todo:
        for child in graph[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def rules_in(smk: str) -> set[str]:
    return set(re.findall(r"^rule (\w+):", (REPO / "rules" / smk).read_text(), re.M))


def copy_run(src: Path, dst: Path) -> Path:
    """Copy a finished working directory, keeping mtimes and snakemake's metadata."""
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    return dst


def write_config(path: Path, mutate) -> Path:
    config = yaml.safe_load(TINY.read_text())
    mutate(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_second_run_does_nothing(tiny_run):
    proc = run_snakemake(tiny_run, timeout=600)
    assert "Nothing to be done" in proc.stdout, proc.stdout[-3000:]
    assert job_counts(proc.stdout) == {}


LONG_STEPS = re.compile(r"^(train_|generate_|ner_train$|ner_predict$|judge_battles$)")


def test_long_steps_show_progress_in_their_logs(tiny_run):
    logs = [p for d in (tiny_run / "logs").iterdir() if LONG_STEPS.match(d.name) for p in d.rglob("*.log")]
    assert logs
    quiet = [str(p.relative_to(tiny_run)) for p in logs
             if not re.search(r"\d+%\|.*(it/s|s/it)", p.read_text(errors="replace"))]
    assert not quiet, f"no tqdm progress in {quiet}"


def test_judge_parameter_reruns_only_downstream(tiny_run, tmp_path):
    work = copy_run(tiny_run, tmp_path / "work")
    config = yaml.safe_load(TINY.read_text())
    judge = config["judge"]["judge"]
    assert "margin" in config["judge"]["judges"][judge], "tiny judge has no margin to change"
    cfg = write_config(tmp_path / "judge.yaml", lambda c: c["judge"]["judges"][judge].update(
        margin=c["judge"]["judges"][judge]["margin"] + 0.05))
    jobs = dry_run(work, configfile=cfg)
    graph = rule_graph(work)
    allowed = descendants(graph, rules_in("judge.smk"))
    assert jobs, "changing the judge margin reran nothing"
    assert "judge_battles" in jobs
    assert set(jobs) <= allowed, f"reran outside the judge's downstream: {set(jobs) - allowed}"
    assert not [r for r in jobs if TRAINING.match(r) or r.startswith("generate_")]
    # and really run it: the rerun leaves everything up to date under the new config
    run_snakemake(work, configfile=cfg, timeout=900)
    assert dry_run(work, configfile=cfg) == {}


def test_report_parameter_reruns_only_the_table(tiny_run, tmp_path):
    work = copy_run(tiny_run, tmp_path / "work")
    cfg = write_config(tmp_path / "elo.yaml", lambda c: c["judge"]["elo"].update(orders=c["judge"]["elo"]["orders"] + 7))
    jobs = dry_run(work, configfile=cfg)
    assert "elo_table" in jobs
    assert "judge_battles" not in jobs
    assert set(jobs) <= descendants(rule_graph(work), {"elo_table"}), jobs
    assert not [r for r in jobs if TRAINING.match(r)]


def test_one_table_builds_only_its_ancestors(tiny_run, tmp_path):
    target = "results/tables/elo.md"
    assert (tiny_run / target).is_file()
    # a fresh directory: the jobs for one table are a strict part of the whole DAG
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    everything = dry_run(fresh)
    only = dry_run(fresh, target)
    assert only and set(only) < set(everything)
    assert all(n <= everything[r] for r, n in only.items())
    assert "all" not in only and not [r for r in only if r.startswith(("ner_", "osint_"))]
    # a finished run missing that table and another section's table: asking for the first
    # rebuilds it alone and leaves the other missing
    work = copy_run(tiny_run, tmp_path / "work")
    other = sorted(p for p in (work / "results" / "tables").glob("*.md")
                   if not p.name.startswith(("elo", "vs", "finetune")))[0]
    (work / target).unlink()
    other.unlink()
    proc = run_snakemake(work, target, timeout=600)
    assert set(job_counts(proc.stdout)) == {"elo_table"}
    assert (work / target).is_file() and not other.exists()


def registered_targets(workdir: Path) -> list[str]:
    """The inputs of `rule all` as snakemake itself lists them."""
    out = run_snakemake(workdir, "all", "-n", "--forceall", timeout=600).stdout
    block = re.search(r"(?:local)?rule all:\n\s+input: (.*?)\n", out)
    assert block, out[-3000:]
    return [p.strip() for p in block.group(1).split(",")]


def report_data(html: str) -> tuple[dict, dict]:
    """The `results` (path -> caption, ...) and `categories` objects embedded in a snakemake report."""
    decoder = json.JSONDecoder()
    results, _ = decoder.raw_decode(html[html.index("results = {") + len("results = "):])
    categories, _ = decoder.raw_decode(html[html.index("categories = {") + len("categories = "):])
    return results, categories


def test_report_has_every_table_and_figure_with_category_and_caption(tiny_run, tmp_path):
    work = copy_run(tiny_run, tmp_path / "work")
    targets = registered_targets(work)
    tables = {re.sub(r"\.(csv|md)$", "", t) for t in targets if t.startswith("results/tables/")}
    figures = [t for t in targets if t.startswith("results/figures/")]
    assert tables and figures
    run_snakemake(work, "--report", "results/report.html", timeout=900)
    results, categories = report_data((work / "results" / "report.html").read_text())
    category_of = {path: cat for cat, subs in categories.items() for paths in subs.values() for path in paths}
    missing = [t for t in tables if f"{t}.md" not in results and f"{t}.csv" not in results]
    missing += [f for f in figures if f not in results]
    assert not missing, f"final tables/figures missing from the report: {missing}"
    for path, entry in results.items():
        assert category_of.get(path) not in (None, "Other"), f"{path} has no category"
        assert re.sub(r"<[^>]+>", "", entry.get("caption") or "").strip(), f"{path} has no caption"


def test_lint_is_clean(tmp_path):
    proc = run_snakemake(tmp_path, "--lint", check=False, timeout=300)
    assert proc.returncode == 0 and "Congratulations, your workflow is in a good condition" in proc.stdout, \
        proc.stdout[-4000:]
