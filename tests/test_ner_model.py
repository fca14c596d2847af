"""Encoder+CRF tagger: word-level CRF masks, marginals, batched Viterbi, robust training pieces."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from torchcrf import CRF

from tinysec.io import InputError, write_jsonl
from tinysec.models.tiny import build_random_model
from tinysec.ner.labels import bio_labels, spans_to_bio
from tinysec.ner.model import EncoderCRFTagger, crf_marginals, encode_words, load_tokenizer, viterbi_decode
from tinysec.ner.tokenize import words
from tinysec.ner.train import GradientMasker, TrainSettings, consistency_kl, train_tagger, variant_settings

LABELS = bio_labels(["IP", "DOMAIN"])


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return build_random_model("bert", tmp_path_factory.mktemp("bert") / "m", hidden=32, layers=1, heads=2)


def _crf(k=4, seed=0):
    torch.manual_seed(seed)
    crf = CRF(k, batch_first=True)
    for p in crf.parameters():
        torch.nn.init.normal_(p, std=1.0)
    return crf


# ---------------------------------------------------------------- CRF mask rules
def test_word_mask_is_contiguous_and_starts_on(tiny_bert):
    tok = load_tokenizer(tiny_bert)
    sents = [["Nmap", "scan", "for", "example.com", "192.0.2.10"], ["a", "\u200b", "b"], [], ["x"] * 40]
    batch = encode_words(tok, sents, max_length=16)
    m = batch.word_mask
    assert m[:, 0].all(), "first timestep must be on for pytorch-crf"
    for row in m.tolist():  # no gaps: once off, stays off
        assert row == sorted(row, reverse=True)
    # zero-width-only word keeps its slot (falls back to [CLS], position 0)
    assert batch.word_mask[1].tolist() == [True, True, True] + [False] * (m.size(1) - 3)
    assert batch.first_subword[1, 1] == 0 and batch.first_subword[1, 2] > 0
    # truncation drops the tail only; each kept word points at its own first subword
    assert batch.n_kept[3] == 14 and batch.n_kept[2] == 0
    enc = tok(sents[0], is_split_into_words=True)
    first = [enc.word_ids().index(w) for w in range(5)]
    assert batch.first_subword[0, :5].tolist() == first


def test_pytorch_crf_rejects_mask_with_first_step_off():
    crf = _crf()
    em = torch.randn(1, 3, 4)
    with pytest.raises(ValueError):
        crf.decode(em, mask=torch.tensor([[False, True, True]]))


def test_gapped_subword_mask_differs_from_packed_words():
    """Masking subwords with gaps inside the CRF scores different transitions than packed words."""
    crf = _crf(seed=3)
    em = torch.randn(1, 5, 4)  # subwords: w0 w0' w1 w1' w2
    gapped = torch.tensor([[True, False, True, False, True]])
    packed = em[:, [0, 2, 4]]
    tags = torch.tensor([[1, 0, 2, 0, 3]])
    ll_gapped = crf(em, tags, mask=gapped)
    ll_packed = crf(packed, tags[:, [0, 2, 4]], mask=torch.ones(1, 3, dtype=torch.bool))
    assert not torch.isclose(ll_gapped, ll_packed)


# ---------------------------------------------------------------- inference
def test_viterbi_matches_pytorch_crf_decode():
    crf = _crf(k=5)
    em = torch.randn(6, 9, 5)
    lengths = [9, 1, 4, 7, 2, 9]
    mask = torch.tensor([[t < n for t in range(9)] for n in lengths])
    assert viterbi_decode(crf, em, mask) == crf.decode(em, mask)


def test_marginals_sum_to_one_and_match_enumeration():
    k, w = 3, 4
    crf = _crf(k=k, seed=1)
    em = torch.randn(2, w, k)
    mask = torch.tensor([[True] * 4, [True, True, True, False]])
    with torch.no_grad():
        marg = crf_marginals(crf, em, mask)
    assert torch.allclose(marg[0].sum(-1), torch.ones(w), atol=1e-5)
    assert torch.allclose(marg[1, :3].sum(-1), torch.ones(3), atol=1e-5) and marg[1, 3].sum() == 0
    for b, n in ((0, 4), (1, 3)):  # brute force over all tag paths
        scores = {}
        for path in itertools.product(range(k), repeat=n):
            tags = torch.tensor([list(path) + [0] * (w - n)])
            scores[path] = crf(em[b:b + 1], tags, mask=mask[b:b + 1]).item()
        z = torch.logsumexp(torch.tensor(list(scores.values())), 0)
        expect = torch.zeros(n, k)
        for path, s in scores.items():
            for t, y in enumerate(path):
                expect[t, y] += torch.exp(torch.tensor(s) - z)
        assert torch.allclose(marg[b, :n], expect, atol=1e-5)


def test_loss_is_cross_entropy_plus_crf_nll(tiny_bert):
    model = EncoderCRFTagger.from_encoder(tiny_bert, LABELS).eval()
    tok = load_tokenizer(tiny_bert)
    batch = encode_words(tok, [["host", "192.0.2.1"], ["example.com"]], 32)
    em = model.emissions(batch)
    tags = torch.tensor([[0, 1], [3, 0]])
    mask = batch.word_mask
    ce = torch.nn.functional.cross_entropy(em[mask], tags[mask])
    nll = -model.crf(em, tags, mask=mask, reduction="token_mean")
    assert torch.isclose(model.loss(em, tags, mask), ce + nll)


def test_roberta_tokenizer_gets_prefix_space(monkeypatch, tmp_path):
    from transformers import AutoTokenizer, RobertaConfig

    RobertaConfig(vocab_size=50).save_pretrained(tmp_path)
    seen = {}
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda path, **kw: seen.update(kw) or "tok")
    assert load_tokenizer(tmp_path) == "tok" and seen == {"add_prefix_space": True}


# ---------------------------------------------------------------- robust training pieces
def test_gradient_masker_clips_at_running_quantile():
    p = torch.nn.Parameter(torch.zeros(1000))
    p.grad = torch.linspace(0.001, 1.0, 1000)
    masker = GradientMasker([p], quantile=0.9, momentum=0.5)
    share = masker()
    tau = masker.tau[0].item()
    assert 0.85 < tau < 0.95 and abs(share - 0.1) < 0.02
    assert torch.isclose(p.grad.max(), torch.tensor(tau)) and p.grad[0] == pytest.approx(0.001)
    p.grad = torch.full((1000,), 0.1)  # next step: threshold moves half way to the new quantile
    masker()
    assert masker.tau[0].item() == pytest.approx(0.5 * tau + 0.05, rel=1e-4)


def test_gradient_masker_quantile_and_clip_match_torch():
    gen = torch.Generator().manual_seed(0)
    for n, q in ((7, 0.5), (1000, 0.9), (65536, 0.99), (70001, 0.99)):
        mag = torch.rand(n, generator=gen)
        masker = GradientMasker([torch.nn.Parameter(torch.zeros(1))], quantile=q)
        assert masker._quantile(mag).item() == pytest.approx(torch.quantile(mag, q).item(), rel=1e-6)
    p = torch.nn.Parameter(torch.zeros(5000))
    p.grad = torch.randn(5000, generator=gen)
    before = p.grad.clone()
    masker = GradientMasker([p], quantile=0.95)
    masker()
    tau = masker.tau[0]
    assert torch.equal(p.grad, torch.where(before.abs() > tau, before.sign() * tau, before))


def test_consistency_kl():
    em = torch.randn(2, 3, 5)
    pairs = [(0, 0, 0), (1, 2, 1)]
    assert consistency_kl(em, em, [(0, 1, 1), (1, 2, 2)]).item() == pytest.approx(0, abs=1e-6)
    assert consistency_kl(em, torch.randn(2, 3, 5), pairs).item() > 0
    assert consistency_kl(em, em, []).item() == 0


def test_variant_settings_remove_one_component():
    cfg = {"train": {"epochs": 2}, "robust": {"consistency": 0.7}}
    robust = variant_settings("robust", cfg)
    assert robust["adv_samples"] and robust["adv_loss"] and robust["grad_mask"] and robust["consistency"] == 0.7
    assert variant_settings("baseline", cfg) == {"epochs": 2, "seed": 0}
    assert not variant_settings("no-adv-samples", cfg)["adv_samples"]
    assert not variant_settings("no-adv-loss", cfg)["adv_loss"]
    assert robust["consistency_loss"] is True  # the schema's default switch
    assert variant_settings("no-consistency", cfg)["consistency_loss"] is False
    assert variant_settings("no-adv-samples", cfg)["consistency_loss"] is False
    assert not variant_settings("no-grad-mask", cfg)["grad_mask"]
    assert variant_settings("no-dropout", cfg)["hidden_dropout"] is None
    with pytest.raises(ValueError):
        variant_settings("no-such", cfg)


# ---------------------------------------------------------------- training end to end (tiny)
def _sample(i: int, ip: str, domain: str) -> dict:
    text = f"Host {domain} has address {ip} and runs nginx."
    spans = [{"start": text.index(domain), "end": text.index(domain) + len(domain), "type": "DOMAIN", "text": domain},
             {"start": text.index(ip), "end": text.index(ip) + len(ip), "type": "IP", "text": ip}]
    return {"id": f"s{i}", "source": "dns", "context": "dns", "text": text, "tokens": words(text),
            "tags": spans_to_bio(text, spans), "spans": spans, "synthetic": True}


@pytest.fixture(scope="module")
def ner_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("nerdata")
    rows = [_sample(i, f"10.0.{i}.{i + 7}", f"host{i}.example.org") for i in range(12)]
    adv = []
    for r in rows:
        v = _sample(0, r["spans"][1]["text"], r["spans"][0]["text"].replace("o", "0", 1))
        v.update(id=r["id"] + "~leet", orig_id=r["id"], family="leet", word_map=list(range(len(v["tokens"]))))
        adv.append(v)
    write_jsonl(d / "train.jsonl", rows)
    write_jsonl(d / "train.adv.jsonl", adv)
    return d


def test_train_robust_saves_loadable_tagger(tiny_bert, ner_files, tmp_path):
    settings = TrainSettings.from_dict(variant_settings("robust", {"train": {"epochs": 2, "batch_size": 4,
                                                                             "max_length": 32, "head_lr": 1e-2}}))
    out = tmp_path / "robust"
    metrics = train_tagger(tiny_bert, ner_files / "train.jsonl", out, LABELS, settings,
                           adv_path=ner_files / "train.adv.jsonl")
    assert metrics["steps"] == 6 and metrics["adversarial_variants"] == 12
    assert metrics["tokens_per_s"] > 0 and metrics["peak_memory_mb"] > 0 and metrics["dtype"] == "fp32"
    saved = json.loads((out / "train_metrics.json").read_text())
    assert saved["settings"]["grad_mask"] is True
    for name in ("config.json", "model.safetensors", "crf_head.safetensors", "tagger.json", "tokenizer.json"):
        assert (out / name).is_file(), name
    model, tok, meta = EncoderCRFTagger.load(out)
    assert meta["labels"] == LABELS and meta["max_length"] == 32
    sentence = words("Host a.example.org has address 10.0.0.1 .")
    paths, probs = model.predict(encode_words(tok, [sentence], 32))
    assert len(paths[0]) == len(sentence) == 6 and all(0 < p <= 1 for p in probs[0])


def test_training_reduces_loss(tiny_bert, ner_files, tmp_path):
    s = TrainSettings(epochs=6, batch_size=4, max_length=32, head_lr=5e-3, lr=1e-3, warmup_ratio=0.0)
    metrics = train_tagger(tiny_bert, ner_files / "train.jsonl", tmp_path / "b", LABELS, s)
    first = metrics["first_epoch_loss"]
    assert metrics["final_epoch_loss"] < 0.7 * first


def test_bad_training_rows_name_file_row_and_field(tiny_bert, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "a", "tokens": ["x", "y"], "tags": ["O"]}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl, row 1, field 'tags'"):
        train_tagger(tiny_bert, path, tmp_path / "m", LABELS, TrainSettings(epochs=1))
    path.write_text(json.dumps({"id": "a", "tokens": ["x"], "tags": ["B-ORG"]}) + "\n")
    with pytest.raises(InputError, match="unknown tag 'B-ORG'"):
        train_tagger(tiny_bert, path, tmp_path / "m", LABELS, TrainSettings(epochs=1))


def test_length_grouped_batches_cover_every_sentence_once():
    import random

    from tinysec.ner.train import length_grouped_batches

    lengths = [random.Random(1).randint(5, 300) for _ in range(103)]
    batches = length_grouped_batches(lengths, 8, random.Random(0), group=4)
    assert sorted(i for b in batches for i in b) == list(range(103))
    assert all(len(b) <= 8 for b in batches)
    # within a batch lengths are sorted (grouped), so padding is far below a random batching's
    assert all([lengths[i] for i in b] == sorted(lengths[i] for i in b) for b in batches)


def test_stratified_sample_balances_a_source_sorted_file():
    from tinysec.ner.train import stratified_sample

    rows = [{"id": f"{s}{i}", "source": s} for s in ("dns", "nmap", "shodan", "whois") for i in range(10)]
    picked = stratified_sample(rows, 8, seed=3)
    assert [r["source"] for r in picked].count("dns") == 2 and len({r["id"] for r in picked}) == 8
    assert picked == sorted(picked, key=rows.index) and stratified_sample(rows, 8, seed=3) == picked
    assert stratified_sample(rows, None) == rows and stratified_sample(rows, 100) == rows
