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


def test_prf_table_and_figure(tiny_run):
    df, _ = _table(tiny_run, "ner_prf")
    assert list(df["variant"]) == ["baseline", "robust"]
    for _, row in df.iterrows():  # F1 follows from the row's own P and R
        p, r = row["precision"], row["recall"]
        assert row["f1"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
        assert row["tp"] + row["fn"] == df["tp"].iloc[0] + df["fn"].iloc[0]  # same gold
    robust = read_jsonl(tiny_run / "results" / "ner" / "pred" / "tiny-bert" / "robust.jsonl")
    flagged = sum(e["flagged"] for r in robust if r["testset"] == "clean" for e in r["pred"])
    assert df.set_index("variant").loc["robust", "flagged"] == flagged
    assert df["f1_unflagged"].between(0, 1).all()
    assert (tiny_run / "results" / "figures" / "ner_prf.png").stat().st_size > 5000


def test_counts_table(tiny_run):
    df, _ = _table(tiny_run, "ner_counts")
    assert df["method"].iloc[0] == "gold entities (test)"
    test = read_jsonl(tiny_run / "results" / "ner" / "data" / "test.jsonl")
    assert df["Nmap"].iloc[0] == sum(len(r["spans"]) for r in test if r["source"] == "nmap")
    assert list(df["Shodan delta"].iloc[1:].astype(int))[0] == 0  # the baseline against itself
    prf, _ = _table(tiny_run, "ner_prf")
    for i, variant in enumerate(["baseline", "robust"], start=1):
        assert df[["Shodan", "WHOIS", "DNS (dig)", "Nmap"]].iloc[i].sum() == prf.set_index("variant").loc[variant, "tp"]


def test_robustness_table(tiny_run):
    df, _ = _table(tiny_run, "ner_robustness")
    assert len(df) == 2 * (1 + len(FAMILIES))
    clean = df[df["testset"] == "clean"].set_index("method")["f1"]
    for _, row in df.iterrows():
        assert row["f1_drop"] == pytest.approx(clean[row["method"]] - row["f1"])
        if row["testset"] != "clean" and float(row["entities_found_clean"]) > 0:
            assert 0 <= row["attack_success_rate"] <= 1


def test_ablation_table(tiny_run):
    df, md = _table(tiny_run, "ner_ablation")
    assert list(df["variant"]) == ["robust", *ABLATIONS]
    assert all(f"f1_{f}" in df.columns for f in FAMILIES)
    assert ", ".join(ABLATIONS) in md


def test_example_table(tiny_run):
    md = (tiny_run / "results" / "tables" / "ner_example.md").read_text()
    assert "Raw input (Nmap" in md and "| gold |" in md
    assert "fine-tuned (baseline)" in md and "robust (adversarial fine-tuning)" in md


@pytest.mark.parametrize("config", ["config.yaml", "paper.yaml"])
def test_ner_targets_dry_run(tmp_path, config):
    proc = run_snakemake(tmp_path, "-n", "results/tables/ner_ablation.md", "results/tables/ner_prf.md",
                         configfile=REPO / "config" / config)
    assert "ner_train" in proc.stdout and "ner_predict" in proc.stdout
