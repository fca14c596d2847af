"""Algorithm 1 of the NER study, exactly: the loss of a fixed batch is alpha*L_clean + beta*L_adv
(+ lambda*KL when the consistency switch is on) in every robust batch, L_clean alone for the
baseline; attention and hidden dropout settings reach the model."""

from __future__ import annotations

import random

import pytest
import torch

from tinysec.models.tiny import build_random_model
from tinysec.ner.labels import bio_labels, spans_to_bio
from tinysec.ner.model import EncoderCRFTagger, encode_words, load_tokenizer
from tinysec.ner.settings import robust_defaults, variant_settings
from tinysec.ner.tokenize import words
from tinysec.ner.train import TrainSettings, _batch_loss, _Run, consistency_kl

LABELS = bio_labels(["IP", "DOMAIN"])
IDS = {t: i for i, t in enumerate(LABELS)}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return build_random_model("bert", tmp_path_factory.mktemp("bert") / "m", hidden=32, layers=1, heads=2)


def _row(rid: str, domain: str, ip: str, **extra) -> dict:
    text = f"Host {domain} has address {ip} ."
    spans = [{"start": text.index(domain), "end": text.index(domain) + len(domain), "type": "DOMAIN"},
             {"start": text.index(ip), "end": text.index(ip) + len(ip), "type": "IP"}]
    return {"id": rid, "tokens": words(text), "tags": spans_to_bio(text, spans), **extra}


CLEAN = [_row("a", "mail.example.org", "10.0.0.1"), _row("b", "web.example.com", "192.0.2.7"),
         _row("c", "ns1.example.net", "198.51.100.3")]
# variants of a and c: a perturbed domain (one word) and an inserted word ("[" before the IP)
VARIANTS = {
    "a": [dict(_row("a~1", "ma1l.examp1e.org", "10.0.0.1"), orig_id="a", word_map=[0, 1, 2, 3, 4, 5])],
    "c": [dict(tokens=["Host", "ns1.example.net", "has", "address", "[", "198.51.100.3", "]", "."],
               tags=["O", "B-DOMAIN", "O", "O", "O", "B-IP", "O", "O"], id="c~1", orig_id="c",
               word_map=[0, 1, 2, 3, -1, 4, -1, 5])],
}


def _model(path) -> tuple[EncoderCRFTagger, object]:
    torch.manual_seed(0)
    model = EncoderCRFTagger.from_encoder(path, LABELS, attention_dropout=0.0, hidden_dropout=0.0)
    model.train()  # dropout 0: the training-mode forward pass is deterministic
    return model, load_tokenizer(path)


def _loss_of(model, tok, rows):
    """Independent computation: emissions and CRF+CE loss of ``rows``."""
    batch = encode_words(tok, [r["tokens"] for r in rows], 64)
    em = model.emissions(batch).float()
    tags = torch.zeros(len(rows), em.size(1), dtype=torch.long)
    for b, r in enumerate(rows):
        tags[b, :len(r["tags"])] = torch.tensor([IDS[t] for t in r["tags"]])
    return em, model.loss(em, tags, batch.word_mask)


def _run(model, tok, **settings) -> _Run:
    return _Run(model, tok, IDS, TrainSettings(max_length=64, **settings), "cpu", VARIANTS, random.Random(0))


def test_loss_is_alpha_clean_plus_beta_adv_plus_consistency(tiny_bert):
    model, tok = _model(tiny_bert)
    alpha, beta, lam = 0.3, 0.9, 0.7
    em_clean, l_clean = _loss_of(model, tok, CLEAN)
    adv = [VARIANTS["a"][0], VARIANTS["c"][0]]
    em_adv, l_adv = _loss_of(model, tok, adv)
    pairs = [(0, ci, ai) for ai, ci in enumerate(adv[0]["word_map"]) if ci >= 0] + \
        [(1, ci, ai) for ai, ci in enumerate(adv[1]["word_map"]) if ci >= 0]
    kl = consistency_kl(em_clean[[0, 2]], em_adv, pairs)
    assert l_clean.item() > 0 and l_adv.item() > 0 and kl.item() > 0 and l_clean.item() != l_adv.item()

    off = _run(model, tok, adv_samples=True, adv_loss=True, alpha=alpha, beta=beta, consistency=lam)
    loss, parts = _batch_loss(off, CLEAN)
    assert loss.item() == pytest.approx(alpha * l_clean.item() + beta * l_adv.item(), abs=1e-6)
    assert parts["clean"] == pytest.approx(l_clean.item(), abs=1e-6) and "kl" not in parts

    on = _run(model, tok, adv_samples=True, adv_loss=True, alpha=alpha, beta=beta, consistency_loss=True,
              consistency=lam)
    loss, parts = _batch_loss(on, CLEAN)
    want = alpha * l_clean.item() + beta * l_adv.item() + lam * kl.item()
    assert loss.item() == pytest.approx(want, abs=1e-6)
    assert parts["adv"] == pytest.approx(l_adv.item(), abs=1e-6) and parts["kl"] == pytest.approx(kl.item(), abs=1e-6)


def test_batch_without_variants_still_weighs_clean_loss_by_alpha(tiny_bert):
    model, tok = _model(tiny_bert)
    rows = [CLEAN[1]]  # "b" has no perturbed variant
    _, l_clean = _loss_of(model, tok, rows)
    run = _run(model, tok, adv_samples=True, adv_loss=True, alpha=0.3, beta=0.9, consistency_loss=True)
    loss, parts = _batch_loss(run, rows)
    assert loss.item() == pytest.approx(0.3 * l_clean.item(), abs=1e-6)
    assert parts["adv"] == 0.0


def test_baseline_and_plain_data_ablation_use_the_clean_loss(tiny_bert):
    model, tok = _model(tiny_bert)
    _, l_clean = _loss_of(model, tok, CLEAN)
    for settings in ({}, {"adv_samples": True, "adv_loss": False, "alpha": 0.3}):
        loss, parts = _batch_loss(_run(model, tok, **settings), CLEAN)
        assert loss.item() == pytest.approx(l_clean.item(), abs=1e-6) and "adv" not in parts
    # no-adv-loss with the consistency switch on: L_clean + lambda * KL, no alpha/beta
    loss, parts = _batch_loss(_run(model, tok, adv_samples=True, adv_loss=False, consistency_loss=True,
                                   consistency=0.5, alpha=0.3), CLEAN)
    assert loss.item() == pytest.approx(l_clean.item() + 0.5 * parts["kl"], abs=1e-6) and parts["kl"] > 0


def test_consistency_switch_and_dropout_defaults_come_from_the_schema():
    rob = robust_defaults()
    assert rob["consistency_loss"] is True and 0 < rob["attention_dropout"] < 1 and 0 < rob["hidden_dropout"] < 1
    s = variant_settings("robust", {"robust": {"consistency_loss": False, "attention_dropout": 0.25}})
    assert s["consistency_loss"] is False and s["attention_dropout"] == 0.25
    assert s["hidden_dropout"] == rob["hidden_dropout"]
    assert TrainSettings.from_dict(s).consistency_loss is False
    assert "attention_dropout" not in variant_settings("baseline", {})  # baseline: the encoder's own dropout


def test_dropout_settings_reach_the_model(tiny_bert):
    model = EncoderCRFTagger.from_encoder(tiny_bert, LABELS, attention_dropout=0.25, hidden_dropout=0.35)
    cfg = model.encoder.config
    assert cfg.attention_probs_dropout_prob == 0.25 and cfg.hidden_dropout_prob == 0.35
    drops = {m.p for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout)}
    assert 0.35 in drops and model.dropout.p == 0.35
    own = EncoderCRFTagger.from_encoder(tiny_bert, LABELS)
    assert own.encoder.config.attention_probs_dropout_prob not in (0.25,)
    assert own.encoder.config.hidden_dropout_prob not in (0.35,)
