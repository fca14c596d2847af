"""Tagging hot path: length batches, one gather for the path marginals, results independent of batching."""

from __future__ import annotations

import random

import pytest
import torch

from tinysec.models.tiny import build_random_model
from tinysec.ner.labels import bio_labels
from tinysec.ner.model import (
    EncoderCRFTagger,
    crf_marginals,
    encode_words,
    length_batches,
    load_tokenizer,
    viterbi_decode,
)
from tinysec.ner.postprocess import PostprocessSettings, Tagger

LABELS = bio_labels(["IP", "DOMAIN"])
TEXTS = ["Nmap scan report for example.com (192.0.2.10).", "host a.example.org",
         "A DNS lookup for mail.example.net returned 203.0.113.25 with a TTL of 300 seconds and nothing else.",
         "", "x", "port 22/tcp open ssh on 198.51.100.7 and port 80/tcp open http on www.example.com today"]


@pytest.fixture(scope="module")
def tagger_dir(tmp_path_factory):
    enc = build_random_model("bert", tmp_path_factory.mktemp("bert") / "m", hidden=32, layers=1, heads=2)
    torch.manual_seed(0)
    model = EncoderCRFTagger.from_encoder(enc, LABELS)
    for p in list(model.head.parameters()) + list(model.crf.parameters()):
        torch.nn.init.normal_(p, std=2.0)  # confident, varied paths
    out = tmp_path_factory.mktemp("tagger") / "t"
    model.save(out, load_tokenizer(enc), {"max_length": 64})
    return out


def test_length_batches_cover_each_index_once_within_size_and_spread():
    rng = random.Random(0)
    lengths = [rng.randint(1, 300) for _ in range(200)]
    batches = length_batches(lengths, 16, spread=1.3)
    assert sorted(i for b in batches for i in b) == list(range(200))
    for b in batches:
        assert 1 <= len(b) <= 16
        assert max(lengths[i] for i in b) <= 1.3 * min(lengths[i] for i in b) + 8
    assert len(batches) < 60  # batches are not needlessly tiny
    assert length_batches([5, 500, 6], 8) == [[0, 2], [1]]


def test_path_marginals_match_per_sentence_indexing(tagger_dir):
    model, tok, _ = EncoderCRFTagger.load(tagger_dir)
    model.temperature = 1.7
    sents = [t.split() for t in TEXTS]
    batch = encode_words(tok, sents, 64)
    paths, calibrated, raw = model.predict_calibrated(batch)
    with torch.inference_mode():
        em = model.emissions(batch)
        assert paths == viterbi_decode(model.crf, em, batch.word_mask)
        for temp, got in ((1.7, calibrated), (1.0, raw)):
            marg = crf_marginals(model.crf, em, batch.word_mask, temp)
            want = [[marg[b, t, k].item() for t, k in enumerate(p)] for b, p in enumerate(paths)]
            assert [len(g) for g in got] == [len(w) for w in want]
            assert all(g == pytest.approx(w, abs=1e-6) for g, w in zip(got, want))
    assert calibrated != raw


def test_tagging_does_not_depend_on_batch_size(tagger_dir):
    texts = TEXTS * 3
    post = PostprocessSettings(threshold=0.0, low_confidence="flag")
    one = Tagger(tagger_dir, post, batch_size=1).tag(texts)
    many = Tagger(tagger_dir, post, batch_size=16).tag(texts)
    assert sum(len(r["entities"]) + len(r["rejected"]) for r in one) > 0
    for a, b in zip(one, many):
        assert [(e["start"], e["end"], e["type"]) for e in a["entities"]] == \
               [(e["start"], e["end"], e["type"]) for e in b["entities"]]
        assert [e["confidence"] for e in a["entities"]] == pytest.approx([e["confidence"] for e in b["entities"]],
                                                                         abs=2e-4)
