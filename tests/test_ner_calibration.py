"""Temperature scaling of CRF marginals, entity-level ECE, and early stopping with a learning curve."""

from __future__ import annotations

import json

import pytest
import torch
from torchcrf import CRF

from tinysec.io import InputError, write_jsonl
from tinysec.models.tiny import build_random_model
from tinysec.ner.calibration import (
    CALIBRATION_FILE,
    expected_calibration_error,
    fit_temperature,
    gold_nll,
    read_temperature,
)
from tinysec.ner.labels import bio_labels, spans_to_bio
from tinysec.ner.model import EncoderCRFTagger, crf_marginals, encode_words, viterbi_decode
from tinysec.ner.tokenize import word_spans
from tinysec.ner.train import TrainSettings, train_tagger

LABELS = bio_labels(["IP", "DOMAIN"])


def test_ece_of_known_bins():
    # bin [0.9, 1]: 2 entities, conf 0.95 each, 1 correct -> |0.5 - 0.95| = 0.45, weight 2/4
    # bin [0.3, 0.4): 2 entities, conf 0.35 each, both wrong -> |0 - 0.35| = 0.35, weight 2/4
    ece = expected_calibration_error([0.95, 0.95, 0.35, 0.35], [True, False, False, False])
    assert ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.35)
    assert expected_calibration_error([1.0, 0.0], [True, False]) == pytest.approx(0.0)  # 1.0 goes in the last bin
    assert expected_calibration_error([], []) is None
    with pytest.raises(ValueError, match="not in"):
        expected_calibration_error([1.5], [True])


def _synthetic(true_t: float, seed: int = 0, n: int = 64, words: int = 12, k: int = 5):
    """A CRF with zero transitions (word marginals = softmax of the scores) whose emissions are
    ``true_t`` times too sharp (or too soft): gold tags are drawn from softmax(emissions / true_t)."""
    g = torch.Generator().manual_seed(seed)
    crf = CRF(k, batch_first=True)
    for p in crf.parameters():
        torch.nn.init.zeros_(p)
    em = torch.randn(n, words, k, generator=g) * 3.0
    mask = torch.ones(n, words, dtype=torch.bool)
    gold = torch.multinomial(torch.softmax(em / true_t, -1).reshape(-1, k), 1, generator=g).reshape(n, words)
    return crf, [(em, mask, gold)]


def _word_ece(crf, batches, temperature: float) -> float:
    conf, correct = [], []
    for em, mask, gold in batches:
        marg = crf_marginals(crf, em, mask, temperature).detach()
        for b, path in enumerate(viterbi_decode(crf, em, mask)):
            for w, tag in enumerate(path):
                conf.append(float(marg[b, w, tag]))
                correct.append(tag == int(gold[b, w]))
    return expected_calibration_error(conf, correct)


@pytest.mark.parametrize("true_t", [3.0, 0.4])  # over-confident model, under-confident model
def test_temperature_fit_lowers_ece(true_t):
    crf, batches = _synthetic(true_t)
    t = fit_temperature(crf, batches)
    assert t == pytest.approx(true_t, rel=0.25)
    before, after = _word_ece(crf, batches, 1.0), _word_ece(crf, batches, t)
    assert before > 0.1 and after < 0.5 * before, (before, after)
    assert gold_nll(crf, batches, t) < gold_nll(crf, batches, 1.0)


def test_temperature_keeps_viterbi_path_and_normalised_marginals():
    torch.manual_seed(1)
    crf = CRF(4, batch_first=True)
    for p in crf.parameters():
        torch.nn.init.normal_(p, std=1.0)
    em = torch.randn(3, 6, 4)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] + [0] * 5], dtype=torch.bool)
    for t in (0.2, 1.0, 5.0):
        marg = crf_marginals(crf, em, mask, t)
        assert torch.allclose(marg.sum(-1)[mask], torch.ones(int(mask.sum())), atol=1e-5)
        scaled = CRF(4, batch_first=True)  # every CRF score divided by t: same best path
        scaled.load_state_dict({k: v / t for k, v in crf.state_dict().items()})
        assert viterbi_decode(scaled, em / t, mask) == viterbi_decode(crf, em, mask)
    # T > 1 flattens: the mean top marginal falls as T grows
    tops = [float(crf_marginals(crf, em, mask, t).detach().max(-1).values[mask].mean()) for t in (0.5, 1.0, 4.0)]
    assert tops[0] > tops[1] > tops[2]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return build_random_model("bert", tmp_path_factory.mktemp("bert") / "m", hidden=32, layers=1, heads=2)


def _rows(n: int, seed: int) -> list[dict]:
    import random

    rng = random.Random(seed)
    out = []
    for i in range(n):
        ip, dom = f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}", f"host{rng.randint(0, 999)}.example.org"
        text = f"Host {dom} has address {ip} ."
        a, b = text.index(dom), text.index(ip)
        spans = [{"start": a, "end": a + len(dom), "type": "DOMAIN", "text": dom},
                 {"start": b, "end": b + len(ip), "type": "IP", "text": ip}]
        ws = word_spans(text)
        out.append({"id": f"s{seed}-{i}", "source": "dns", "text": text, "tokens": [text[x:y] for x, y in ws],
                    "tags": spans_to_bio(text, spans, ws), "spans": spans})
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("ner")
    write_jsonl(d / "train.jsonl", _rows(24, 0))
    write_jsonl(d / "val.jsonl", _rows(12, 1))
    return d


def test_training_with_validation_writes_curve_and_calibration(tiny_bert, data, tmp_path):
    s = TrainSettings(epochs=3, batch_size=4, max_length=32, lr=1e-3, head_lr=1e-2, warmup_ratio=0.0, patience=0)
    out = tmp_path / "m"
    metrics = train_tagger(tiny_bert, data / "train.jsonl", out, LABELS, s, val_path=data / "val.jsonl")
    saved = json.loads((out / "train_metrics.json").read_text())
    assert saved["epochs"] == 3 and [p["epoch"] for p in saved["curve"]] == [1, 2, 3]
    for point in saved["curve"]:
        assert {"train_loss", "val_f1", "val_loss", "seconds"} <= set(point) and 0 <= point["val_f1"] <= 1
    best = max(saved["curve"], key=lambda p: (p["val_f1"], -p["val_loss"]))
    assert metrics["best_epoch"] == best["epoch"] and metrics["best_val_f1"] == best["val_f1"]
    cal = json.loads((out / CALIBRATION_FILE).read_text())
    assert cal["temperature"] > 0 and cal["val_sentences"] == 12
    assert cal["val_nll_after"] <= cal["val_nll_before"]
    model, _tok, meta = EncoderCRFTagger.load(out)
    assert model.temperature == pytest.approx(cal["temperature"]) and meta["temperature"] == model.temperature


def test_early_stopping_stops_after_patience(tiny_bert, data, tmp_path):
    # no learning at all (zero learning rates): val F1 and loss never improve after epoch 1
    s = TrainSettings(epochs=6, batch_size=8, max_length=32, lr=0.0, head_lr=0.0, warmup_ratio=0.0, patience=2)
    metrics = train_tagger(tiny_bert, data / "train.jsonl", tmp_path / "m", LABELS, s, val_path=data / "val.jsonl")
    assert metrics["epochs"] == 3 and metrics["stopped_early"] and metrics["best_epoch"] == 1
    assert metrics["max_epochs"] == 6 and len(metrics["curve"]) == 3


def test_tagger_without_calibration_file_has_temperature_one(tiny_bert, data, tmp_path):
    out = tmp_path / "m"
    train_tagger(tiny_bert, data / "train.jsonl", out, LABELS, TrainSettings(epochs=1, max_length=32))
    assert not (out / CALIBRATION_FILE).exists() and read_temperature(out) == 1.0
    model, tok, _ = EncoderCRFTagger.load(out)
    batch = encode_words(tok, [["Host", "a.example.org"]], 32)
    paths, calibrated, raw = model.predict_calibrated(batch)
    assert calibrated == raw
    (out / CALIBRATION_FILE).write_text(json.dumps({"temperature": 2.0}))
    model, tok, _ = EncoderCRFTagger.load(out)
    paths2, calibrated, raw = model.predict_calibrated(batch)
    assert paths2 == paths and calibrated != raw
    (out / CALIBRATION_FILE).write_text(json.dumps({"temperature": -1}))
    with pytest.raises(InputError, match=r"calibration.json.*field 'temperature'"):
        read_temperature(out)


def test_calibration_scores_of_prediction_rows():
    from tinysec.ner.tables import calibration_scores

    gold = [{"start": 0, "end": 4, "type": "IP"}, {"start": 5, "end": 9, "type": "DOMAIN"}]
    rows = [{"gold": gold,
             "pred": [{"start": 0, "end": 4, "type": "IP", "confidence": 0.95, "confidence_raw": 0.45}],
             "rejected": [{"start": 5, "end": 9, "type": "DOMAIN", "confidence": 0.15, "confidence_raw": 0.4,
                           "reason": "confidence"},
                          {"start": 10, "end": 12, "type": "IP", "confidence": 0.99, "reason": "regex"}]}]
    sc = calibration_scores(rows, 0.85)
    # raw: both (correct) entities fall in bin [0.4, 0.5); the regex-rejected one is left out
    assert sc["ece_raw"] == pytest.approx(1 - (0.45 + 0.4) / 2)
    assert sc["ece_calibrated"] == pytest.approx(0.5 * (1 - 0.95) + 0.5 * (1 - 0.15))
    assert sc["precision_kept_calibrated"] == 1.0 and sc["recall_kept_calibrated"] == 0.5
    assert sc["precision_kept_raw"] == 0.0 and sc["recall_kept_raw"] == 0.0  # nothing reaches 0.85 uncalibrated


def test_dropout_sweep_keeps_the_best_validation_f1(tiny_bert, data, tmp_path):
    from tinysec.ner.train import train_tuned

    s = TrainSettings(epochs=2, batch_size=4, max_length=32, lr=1e-3, head_lr=1e-2, warmup_ratio=0.0, patience=0)
    out = tmp_path / "m"
    metrics = train_tuned(tiny_bert, data / "train.jsonl", out, LABELS, s, dropout_sweep=[[0.0, 0.0], [0.3, 0.3]],
                          val_path=data / "val.jsonl")
    sweep = json.loads((out / "train_metrics.json").read_text())["dropout_sweep"]
    assert sweep == metrics["dropout_sweep"] and len(sweep["candidates"]) == 2
    best = max(sweep["candidates"], key=lambda c: c["best_val_f1"])
    assert sweep["chosen"] == [best["attention_dropout"], best["hidden_dropout"]]
    kept = json.loads((out / "train_metrics.json").read_text())["settings"]
    assert [kept["attention_dropout"], kept["hidden_dropout"]] == sweep["chosen"]
    assert (out / CALIBRATION_FILE).is_file() and not list(tmp_path.glob(".m.dropout-sweep*"))
    with pytest.raises(ValueError, match="validation set"):
        train_tuned(tiny_bert, data / "train.jsonl", tmp_path / "n", LABELS, s, dropout_sweep=[[0.1, 0.1]])
