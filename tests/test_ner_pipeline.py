"""The tiny-config snakemake run (shared `tiny_run` fixture) produces every NER table and figure."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake

from tinysec.io import read_jsonl

TINY = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
ABLATIONS = TINY["ner"]["ablations"]
METHODS = ["baseline", "templates", "tiny-llama"]  # tiny.yaml's ner.methods less tiny-api (no key in the tiny run)
FAMILIES = ["char", "leet", "homoglyph", "diacritic", "zero_width", "symbol", "abbreviation", "obfuscation"]
F1_DEF = "F1 = 2PR/(P+R) = 2TP/(2TP+FP+FN)"


def _table(run, name):
    df = pd.read_csv(run / "results" / "tables" / f"{name}.csv")
    md = (run / "results" / "tables" / f"{name}.md").read_text()
    assert F1_DEF in md, f"{name}.md caption must state the F1 definition"
    return df, md


def test_tagger_folders_and_train_metrics(tiny_run):
    for variant in ["baseline", "robust", *ABLATIONS]:
        folder = tiny_run / "results" / "ner" / "models" / "tiny-bert" / variant
        for name in ("config.json", "model.safetensors", "crf_head.safetensors", "tagger.json"):
            assert (folder / name).is_file(), (variant, name)
        metrics = json.loads((folder / "train_metrics.json").read_text())
        assert metrics["seconds"] > 0 and metrics["tokens_per_s"] > 0 and metrics["peak_memory_mb"] > 0
    robust = json.loads((tiny_run / "results/ner/models/tiny-bert/robust/train_metrics.json").read_text())
    assert robust["adversarial_variants"] > 0 and robust["settings"]["grad_mask"]


def test_predictions_cover_clean_and_every_family(tiny_run):
    rows = read_jsonl(tiny_run / "results" / "ner" / "pred" / "tiny-bert" / "robust.jsonl")
    test = read_jsonl(tiny_run / "results" / "ner" / "data" / "test.jsonl")
    assert {r["testset"] for r in rows} == {"clean", *FAMILIES}
    assert sum(r["testset"] == "clean" for r in rows) == len(test)
    for r in rows:  # spans are spans of the original (perturbed) text
        for e in r["pred"]:
            assert r["text"][e["start"]:e["end"]] == e["text"] and 0 <= e["confidence"] <= 1


def _method_pred(run, method):
    return read_jsonl(run / "results" / "ner" / "pred" / "methods" / method / "tiny-bert.jsonl")


def test_prf_table_and_figure(tiny_run):
    df, md = _table(tiny_run, "ner_prf")
    direct = df["method"].str.endswith("(direct)")
    assert list(df.loc[direct, "llm"]) == ["TinyLlama-random"]  # the LLM method's direct-NER row
    df = df[~direct]
    assert list(df["ner_method"]) == METHODS and list(df["variant"]) == ["baseline", "robust", "robust"]
    assert list(df["llm"]) == ["none", "none", "TinyLlama-random"]
    for _, row in df.iterrows():  # F1 follows from the row's own P and R
        p, r = row["precision"], row["recall"]
        assert row["f1"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
        assert row["tp"] + row["fn"] == df["tp"].iloc[0] + df["fn"].iloc[0]  # same gold
    templates = _method_pred(tiny_run, "templates")
    flagged = sum(e["flagged"] for r in templates for e in r["pred"])
    assert df.set_index("ner_method").loc["templates", "flagged"] == flagged
    llm_stats = json.loads((tiny_run / "results/ner/pred/methods/tiny-llama/tiny-bert.stats.json").read_text())
    assert df.set_index("ner_method").loc["tiny-llama", "hallucinated"] == llm_stats["hallucinated"]
    assert "no method saw them" in md and "held-out" in md and "Not run (API key unset): tiny-api" in md
    assert df["f1_unflagged"].between(0, 1).all()
    assert (tiny_run / "results" / "figures" / "ner_prf.png").stat().st_size > 5000


def test_counts_table(tiny_run):
    df, _ = _table(tiny_run, "ner_counts")
    direct = int(df["method"].str.endswith("(direct)").sum())
    assert df["method"].iloc[0] == "gold entities (test)" and direct == 1 and len(df) == 1 + len(METHODS) + direct
    test = read_jsonl(tiny_run / "results" / "ner" / "data" / "test.raw.jsonl")
    assert df["Nmap"].iloc[0] == sum(len(r["spans"]) for r in test if r["source"] == "nmap")
    assert list(df["Shodan delta"].iloc[1:].astype(int))[0] == 0  # the baseline against itself
    prf, _ = _table(tiny_run, "ner_prf")
    prf = prf[~prf["method"].str.endswith("(direct)")]
    for i, method in enumerate(METHODS, start=1):
        assert df[["Shodan", "WHOIS", "DNS (dig)", "Nmap"]].iloc[i].sum() == prf.set_index("ner_method").loc[method, "tp"]
        base = df[["Nmap"]].iloc[1, 0]
        assert int(df["Nmap delta"].iloc[i]) == df["Nmap"].iloc[i] - base
    assert int(df["hallucinated"].iloc[3]) == prf.set_index("ner_method").loc["tiny-llama", "hallucinated"]
    assert (tiny_run / "results" / "figures" / "ner_counts.png").stat().st_size > 5000


def test_every_method_tags_the_same_raw_inputs(tiny_run):
    data = tiny_run / "results" / "ner" / "data"
    raw = read_jsonl(data / "test.raw.jsonl")
    assert raw and {r["rendering"] for r in raw} == {"raw"}
    for method in METHODS:
        rows = _method_pred(tiny_run, method)
        assert [(r["id"], r["text"]) for r in rows] == [(r["id"], r["text"]) for r in raw]
        for r in rows:  # kept entities are spans of the raw input
            assert all(r["text"][e["start"]:e["end"]] == e["text"] for e in r["pred"])
    # the study's baseline: raw rows only, no adversarial variants; the LLM method: rephrased rows, robust
    assert {r["rendering"] for r in read_jsonl(data / "baseline" / "train.jsonl")} == {"raw"}
    base = json.loads((tiny_run / "results/ner/models/tiny-bert/baseline/train_metrics.json").read_text())
    assert not base["settings"]["adv_samples"]
    corpus = json.loads((data / "tiny-llama" / "stats.json").read_text())
    assert corpus["rephrase"]["attempted"] == TINY["ner"]["chain"]["train_rephrase_rows"]
    llm = json.loads((tiny_run / "results/ner/models/tiny-bert/llm/tiny-llama/robust/train_metrics.json").read_text())
    assert llm["adversarial_variants"] > 0 and llm["settings"]["adv_samples"]
    stats = json.loads((tiny_run / "results/ner/pred/methods/tiny-llama/tiny-bert.stats.json").read_text())
    assert stats["saw_gold_labels"] is False and stats["llm_calls"] >= len(raw)
    rows = _method_pred(tiny_run, "tiny-llama")
    assert all(isinstance(r["segments"], str) and r["context"] for r in rows)
    assert stats["hallucinated"] == sum(len(r["hallucinated"]) for r in rows)
    assert list((tiny_run / "results" / "cache" / "ner_llm").rglob("*.json"))


def test_robustness_table(tiny_run):
    df, md = _table(tiny_run, "ner_robustness")
    assert len(df) == 3 * (1 + len(FAMILIES))  # baseline, robust, robust with the normaliser off
    off = [m for m in df["method"].unique() if m.endswith(", normaliser off")]
    assert len(off) == 1 and "robust" in off[0] and "what the normaliser contributes" in md
    assert (tiny_run / "results/ner/pred/tiny-bert/robust.no-normalizer.jsonl").is_file()
    clean = df[df["testset"] == "clean"].set_index("method")["f1"]
    for _, row in df.iterrows():
        assert row["f1_drop"] == pytest.approx(clean[row["method"]] - row["f1"])
        if row["testset"] != "clean" and float(row["entities_found_clean"]) > 0:
            assert 0 <= row["attack_success_rate"] <= 1


def test_sources_table(tiny_run):
    df, md = _table(tiny_run, "ner_sources")
    assert set(df["rendering"]) == {"template", "raw", "all"} and "Nmap" in set(df["source"])
    for _method, rows in df.groupby("method"):
        cells = rows[(rows["source"] != "all") & (rows["rendering"] != "all")]
        total = rows[(rows["source"] == "all") & (rows["rendering"] == "all")].iloc[0]
        assert cells["sentences"].sum() == total["sentences"] and cells["gold_entities"].sum() == total["gold_entities"]
    assert "'raw' rows the tool output itself" in md and "ece_raw / ece_calibrated are the expected" in md
    # the pooled row's ECE is the ECE of every entity the robust tagger output on the clean test set
    from tinysec.ner.calibration import expected_calibration_error

    clean = [r for r in read_jsonl(tiny_run / "results/ner/pred/tiny-bert/robust.jsonl") if r["testset"] == "clean"]
    pairs = [(e["confidence"], (e["start"], e["end"], e["type"]) in {(g["start"], g["end"], g["type"]) for g in r["gold"]})
             for r in clean for e in r["pred"] + [x for x in r.get("rejected", []) if x.get("reason") == "confidence"]]
    robust = df[df["method"].str.contains("robust") & (df["source"] == "all") & (df["rendering"] == "all")].iloc[0]
    assert robust["ece_calibrated"] == pytest.approx(expected_calibration_error(*zip(*pairs)), abs=1e-4)
    ece = pd.to_numeric(df["ece_raw"], errors="coerce").dropna()
    assert len(ece) and ((ece >= 0) & (ece <= 1)).all()


def test_ablation_table(tiny_run):
    df, md = _table(tiny_run, "ner_ablation")
    assert list(df["variant"]) == ["robust", *ABLATIONS]
    assert all(f"f1_{f}" in df.columns for f in FAMILIES)
    assert ", ".join(ABLATIONS) in md


def test_example_table(tiny_run):
    md = (tiny_run / "results" / "tables" / "ner_example.md").read_text()
    assert "Raw input (Nmap: " in md and "| type | gold | fine-tuned (baseline, raw text) [" in md
    assert "| correct / found / gold |" in md and "the best other method by that F1" in md
    df = pd.read_csv(tiny_run / "results" / "tables" / "ner_example.csv")
    assert df["column"].iloc[0] == "gold" and df["column"].nunique() >= 2


@pytest.mark.parametrize("config", ["config.yaml", "paper.yaml"])
def test_ner_targets_dry_run(tmp_path, config):
    proc = run_snakemake(tmp_path, "-n", "results/tables/ner_ablation.md", "results/tables/ner_prf.md",
                         configfile=REPO / "config" / config)
    assert "ner_train" in proc.stdout and "ner_predict" in proc.stdout and "ner_method_predict" in proc.stdout
    llms = {"config.yaml": ["smollm2-135m"],
            "paper.yaml": ["claude-3.5-sonnet", "llama3-8b-instruct", "mixtral-8x7b-instruct"]}[config]
    for name in llms:
        assert f"results/ner/pred/methods/{name}/" in proc.stdout
    assert "methods/local-api/" not in proc.stdout  # no NER_API_KEY in the test environment
