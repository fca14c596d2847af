"""Perturbation operators keep labels aligned (property-based, every operator)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysec.ner.identify import normalize
from tinysec.ner.labels import bio_to_spans
from tinysec.ner.perturb import OPERATORS, op_char, perturb_sample
from tinysec.ner.tokenize import word_spans

_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8)
_ip = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
_domain = st.tuples(st.lists(_label, min_size=1, max_size=3), st.sampled_from(["com", "org", "net", "io"])).map(
    lambda t: ".".join(t[0] + [t[1]]))
_version = st.tuples(st.integers(0, 20), st.integers(0, 99), st.integers(0, 9)).map(lambda t: "{}.{}.{}".format(*t))
_org = st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=1).flatmap(
    lambda c: _label.map(lambda s: c + s)), min_size=1, max_size=3).map(" ".join)
ENTITY = st.one_of(_ip.map(lambda s: (s, "IP")), _domain.map(lambda s: (s, "DOMAIN")),
                   _version.map(lambda s: (s, "VERSION")), _org.map(lambda s: (s, "ORG")),
                   st.sampled_from(["nginx", "OpenSSH", "Apache httpd", "ssh", "https"]).map(lambda s: (s, "SOFTWARE")))
FILLER = st.sampled_from(["the host", "runs", "and", "is served by", "(port 22)", "on", "while", "-", ":"])


@st.composite
def samples(draw):
    """A text alternating filler words and entities, with its gold spans."""
    parts, spans, pos = [], [], 0
    for _ in range(draw(st.integers(1, 5))):
        filler = draw(FILLER) + " "
        parts.append(filler)
        pos += len(filler)
        ent, etype = draw(ENTITY)
        spans.append({"start": pos, "end": pos + len(ent), "type": etype, "text": ent})
        parts.append(ent)
        pos += len(ent)
        end = draw(st.sampled_from([" ", ", ", ". ", " ; "]))
        parts.append(end)
        pos += len(end)
    return "".join(parts).rstrip() + " end.", spans


def _check_alignment(text, spans, p):
    # 1. every span survives, with its type, in order, and reads its own text
    assert [s["type"] for s in p.spans] == [s["type"] for s in spans]
    for sp in p.spans:
        assert sp["end"] > sp["start"] and p.text[sp["start"]:sp["end"]] == sp["text"]
    assert len(p.origin) == len(p.text)
    inside = [False] * len(p.text)
    for sp, old in zip(p.spans, spans):
        for i in range(sp["start"], sp["end"]):
            inside[i] = True
            assert p.origin[i] == -1 or old["start"] <= p.origin[i] < old["end"]
    # 2. text outside the spans is the clean text plus inserted symbols only
    assert "".join(c for i, c in enumerate(p.text) if not inside[i] and p.origin[i] >= 0) == \
        "".join(c for i, c in enumerate(text) if not any(s["start"] <= i < s["end"] for s in spans))
    # 3. tags: each span's words carry its type (B first); no label on a wholly inserted word
    words = word_spans(p.text)
    assert len(p.tags) == len(words) == len(p.word_map)
    for sp in p.spans:
        ids = [k for k, (a, b) in enumerate(words) if a < sp["end"] and b > sp["start"]]
        assert ids and p.tags[ids[0]] == "B-" + sp["type"]
        assert all(p.tags[k] in ("B-" + sp["type"], "I-" + sp["type"]) for k in ids)
    clean_words = word_spans(text)
    for k, (a, b) in enumerate(words):
        if all(p.origin[i] < 0 for i in range(a, b)):
            assert p.word_map[k] == -1
            if not any(inside[a:b]):
                assert p.tags[k] == "O", (p.text[a:b], p.text)
        else:
            assert 0 <= p.word_map[k] < len(clean_words)
    # 4. decoding the tags gives back one span per entity
    assert [s["type"] for s in bio_to_spans(p.text, p.tags)] == [s["type"] for s in spans]


@pytest.mark.parametrize("op", sorted(OPERATORS))
@given(sample=samples(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=120, deadline=None)
def test_operator_keeps_labels_aligned(op, sample, seed):
    text, spans = sample
    p = perturb_sample(text, spans, [op], random.Random(seed), entity_prob=1.0, char_rate=0.12)
    _check_alignment(text, spans, p)
    assert p.operators == [op] * len(spans)


@pytest.mark.parametrize("op", ["homoglyph", "diacritic", "zero_width"])
@given(sample=samples(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_identification_module_undoes_training_half_obfuscation(op, sample, seed):
    """The normaliser is built from the training halves of the tables, so it undoes those (only)."""
    text, spans = sample
    p = perturb_sample(text, spans, [op], random.Random(seed), entity_prob=1.0, half="train")
    for new, old in zip(p.spans, spans):
        assert normalize(new["text"]).text == normalize(old["text"]).text


@given(sample=samples(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_mixed_family_keeps_labels_aligned(sample, seed):
    text, spans = sample
    p = perturb_sample(text, spans, sorted(OPERATORS), random.Random(seed), entity_prob=0.5)
    _check_alignment(text, spans, p)
    assert 1 <= len(p.operators) <= len(spans)


def test_char_rate_is_about_twelve_percent():
    rng = random.Random(0)
    text = "abcdefghij" * 10
    changed = 0
    for _ in range(200):
        edit = op_char(text, rng, 0.12)
        kept = {o for c, o in edit.chars if text[o] == c}
        changed += len(text) - len(kept)
    assert 0.09 < changed / (200 * len(text)) < 0.15


def test_examples_from_the_study():
    text = "nmap scan for google.com on Apache/2.4.54 (Ubuntu)"
    spans = [{"start": 14, "end": 24, "type": "DOMAIN", "text": "google.com"},
             {"start": 43, "end": 49, "type": "OS", "text": "Ubuntu"}]
    rng = random.Random(1)
    seen = set()
    for _ in range(40):
        p = perturb_sample(text, spans, ["symbol"], rng, entity_prob=1.0)
        seen.add(p.text.split(" on ")[0])
    assert "nmap scan for [google.com](https://www.google.com)" in seen
    p = perturb_sample(text, spans, ["diacritic"], random.Random(3), entity_prob=1.0, half="train")
    assert p.spans[1]["text"] != "Ubuntu" and normalize(p.spans[1]["text"]).text == "Ubuntu"
    p = perturb_sample(text, spans, ["diacritic"], random.Random(3), entity_prob=1.0)  # held-out half
    assert p.spans[1]["text"] != "Ubuntu" and normalize(p.spans[1]["text"]).text != "Ubuntu"
