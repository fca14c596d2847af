"""Extraction post-processing: regex validation, strict entities, confidence filter, offsets; metrics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysec.ner.identify import normalize
from tinysec.ner.metrics import prf, seqeval_scores, span_scores, strict_word_spans
from tinysec.ner.postprocess import Entity, PostprocessSettings, Tagger, path_entities, select_entities, validate
from tinysec.ner.tokenize import word_spans


# ---------------------------------------------------------------- regex validation
@pytest.mark.parametrize("text,type_,ok", [
    ("192.168.0.1", "IP", True),
    ("255.255.255.255", "IP", True),
    ("256.1.1.1", "IP", False),
    ("192.168.0", "IP", False),
    ("192.168.0.1.5", "IP", False),
    ("2001:db8::1", "IP", True),
    ("2a01:4f8:2132:1dd3::d25", "IP", True),
    ("2001:db8:::1", "IP", False),
    ("nginx", "IP", False),
    ("example.com", "DOMAIN", True),
    ("mail.dynamic-io.co.uk", "DOMAIN", True),
    ("example.com.", "DOMAIN", True),
    ("example", "DOMAIN", False),
    ("-bad-.com", "DOMAIN", False),
    ("example.c", "DOMAIN", False),
    ("192.0.2.10", "DOMAIN", False),
    ("https://www.example.com/path?q=1", "URL", True),
    ("http://[2001:db8::1]:8080/", "URL", True),
    ("www.example.com", "URL", False),
    ("1.18.0", "VERSION", True),
    ("8.4p1", "VERSION", True),
    ("v2.4.54", "VERSION", True),
    ("2.4.54-ubuntu1", "VERSION", True),
    ("8.9p1 Ubuntu 3ubuntu0.10", "VERSION", True),
    ("9.2p1 Debian 2+deb12u3", "VERSION", True),
    ("1.14.0 or later", "VERSION", True),
    ("3.X - 4.X", "VERSION", True),
    ("8.9p1 Ubuntu", "VERSION", False),
    ("1.2.3 -", "VERSION", False),
    ("nginx", "VERSION", False),
    ("1..2", "VERSION", False),
    ("Example Corp", "ORG", True),  # no pattern for ORG: always valid
])
def test_regex_validation(text, type_, ok):
    assert validate(text, type_) is ok


def test_unknown_pattern_name_is_an_error():
    with pytest.raises(ValueError, match="unknown regex pattern"):
        validate("x", "IP", {"IP": ["ipv5"]})


# ---------------------------------------------------------------- entities and confidence
def test_path_entities_strict_iob2():
    tags = ["I-IP", "B-IP", "I-IP", "O", "B-DOMAIN", "I-IP", "B-ORG", "B-ORG"]
    probs = [0.1, 0.9, 0.7, 1.0, 0.95, 0.5, 0.8, 0.6]
    ents = path_entities(tags, probs)
    assert [(a, b, t) for a, b, t, _ in ents] == [(1, 3, "IP"), (4, 5, "DOMAIN"), (6, 7, "ORG"), (7, 8, "ORG")]
    assert ents[0][3] == pytest.approx(0.8)  # mean marginal over the entity's words


def _select(text, tags, probs, **kw):
    return select_entities(text, word_spans(text), tags, probs, PostprocessSettings(**kw))


def test_confidence_threshold_drops_or_flags():
    text = "host example.com at 192.0.2.10"
    tags = ["O", "B-DOMAIN", "O", "B-IP"]
    kept, rejected = _select(text, tags, [1, 0.84, 1, 0.86], threshold=0.85)
    assert [e.text for e in kept] == ["192.0.2.10"]
    assert rejected == [{"start": 5, "end": 16, "type": "DOMAIN", "text": "example.com", "confidence": 0.84,
                         "flagged": False, "reason": "confidence"}]
    kept, rejected = _select(text, tags, [1, 0.84, 1, 0.86], threshold=0.85, low_confidence="flag")
    assert [(e.text, e.flagged) for e in kept] == [("example.com", True), ("192.0.2.10", False)] and not rejected


def test_regex_failure_drops_even_confident_entities():
    text = "host nginx at 192.0.2.999"
    kept, rejected = _select(text, ["O", "B-DOMAIN", "O", "B-IP"], [1, 0.99, 1, 0.99], low_confidence="flag")
    assert kept == [] and [r["reason"] for r in rejected] == ["regex", "regex"]


def test_an_entity_never_runs_across_a_line_break():
    text = "80/tcp open http nginx 1.24.0\n8080/tcp open http-proxy"
    words = word_spans(text)
    tags = ["O"] * len(words)
    tags[4], tags[5] = "B-VERSION", "I-VERSION"  # '1.24.0' then '8080/tcp' on the next line
    probs = [1.0] * len(words)
    probs[4], probs[5] = 0.9, 0.7
    kept, rejected = select_entities(text, words, tags, probs, PostprocessSettings(low_confidence="flag"), probs)
    assert [(e.text, e.confidence, e.confidence_raw) for e in kept] == [("1.24.0", 0.9, 0.9)]
    assert [(r["text"], r["reason"]) for r in rejected] == [("8080/tcp", "regex")]
    # on one line the same tags stay one entity
    one = text.replace("\n", " ")
    kept, rejected = select_entities(one, word_spans(one), tags, probs, PostprocessSettings(low_confidence="flag"))
    assert kept == [] and [r["text"] for r in rejected] == ["1.24.0 8080/tcp"]


def test_a_confident_repeat_confirms_a_low_confidence_entity():
    from tinysec.ner.postprocess import confirm_repeated

    def ent(start, text, typ, conf, flagged):
        return {"start": start, "end": start + len(text), "type": typ, "text": text, "confidence": conf, "flagged": flagged}

    result = {"entities": [ent(0, "10.0.0.5", "IP", 0.6, True), ent(20, "10.0.0.5", "IP", 0.97, False),
                           ent(40, "redis", "SERVICE", 0.7, True), ent(60, "10.0.0.5", "DOMAIN", 0.5, True)],
              "rejected": [{**ent(80, "10.0.0.5", "IP", 0.4, False), "reason": "confidence"},
                           {**ent(90, "10.0.0.5", "IP", 0.99, False), "reason": "regex"},
                           {**ent(99, "redis", "SERVICE", 0.3, False), "reason": "confidence"}]}
    out = confirm_repeated(result)
    got = [(e["start"], e["type"], e["flagged"], e.get("confirmed")) for e in out["entities"]]
    assert got == [(0, "IP", False, "repeat"), (20, "IP", False, None), (40, "SERVICE", True, None),
                   (60, "DOMAIN", True, None), (80, "IP", False, "repeat")]
    assert out["entities"][0]["confidence"] == 0.6  # the tagger's confidence is kept
    # a regex rejection stays rejected, and a repeat that is itself unsure confirms nothing
    assert [(r["start"], r["reason"]) for r in out["rejected"]] == [(90, "regex"), (99, "confidence")]
    assert confirm_repeated(out) == out


def test_offsets_map_back_to_the_original_text():
    original = "scan of g\u200bo\u200bo.example.com from 192.168.\u200b10.45 ok"
    norm = normalize(original)
    assert "goo.example.com" in norm.text and "192.168.10.45" in norm.text
    words = word_spans(norm.text)
    tags = ["O"] * len(words)
    names = [norm.text[a:b] for a, b in words]
    tags[names.index("goo.example.com")] = "B-DOMAIN"
    tags[names.index("192.168.10.45")] = "B-IP"
    kept, _ = select_entities(norm.text, words, tags, [1.0] * len(words), PostprocessSettings())
    mapped = [Tagger._to_original(e, original, norm) for e in kept]
    assert [m.text for m in mapped] == ["g\u200bo\u200bo.example.com", "192.168.\u200b10.45"]
    assert all(original[m.start:m.end] == m.text for m in mapped)
    assert isinstance(mapped[0], Entity)


# ---------------------------------------------------------------- metrics
def test_prf_definition_and_the_study_inconsistency():
    assert prf(0, 0, 0) == (0.0, 0.0, 0.0)
    p, r, f = prf(66, 3, 34)
    assert f == pytest.approx(2 * 66 / (2 * 66 + 3 + 34))
    # the study's P=0.96, R=0.66 would give F1 0.782, not its reported 0.785
    assert 2 * 0.96 * 0.66 / (0.96 + 0.66) == pytest.approx(0.782, abs=5e-4)


def test_span_scores_exact_span_and_type():
    gold = [[(0, 2, "IP"), (3, 4, "ORG")], [(1, 2, "DOMAIN")]]
    pred = [[(0, 2, "IP"), (3, 5, "ORG")], [(1, 2, "IP")]]
    sc = span_scores(gold, pred)
    assert (sc["ALL"]["tp"], sc["ALL"]["fp"], sc["ALL"]["fn"]) == (1, 2, 2)
    assert sc["IP"]["precision"] == 0.5 and sc["IP"]["recall"] == 1.0 and sc["DOMAIN"]["recall"] == 0.0


TAG = st.sampled_from(["O", "O", "B-IP", "I-IP", "B-ORG", "I-ORG", "B-DOMAIN", "I-DOMAIN"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 12).flatmap(lambda n: st.tuples(st.lists(TAG, min_size=n, max_size=n),
                                                               st.lists(TAG, min_size=n, max_size=n))),
                min_size=1, max_size=6))
def test_seqeval_strict_agrees_with_span_matcher(pairs):
    gold = [g for g, _ in pairs]
    pred = [p for _, p in pairs]
    ours = span_scores([strict_word_spans(g) for g in gold], [strict_word_spans(p) for p in pred])
    theirs = seqeval_scores(gold, pred)
    for key in ("precision", "recall", "f1"):
        assert ours["ALL"][key] == pytest.approx(theirs["ALL"][key])
    for typ, row in theirs.items():
        if typ != "ALL":
            assert ours[typ]["f1"] == pytest.approx(row["f1"]) and ours[typ]["support"] == row["support"]


def test_a_confident_entity_propagates_to_its_other_whole_word_occurrences():
    from tinysec.ner.postprocess import context_checks, propagate_confident

    text = "as: nmap -sV -- 10.0.0.5\nreport for 10.0.0.5\n10.0.0.50 redis open redis nginx nginx"
    ip, redis, nginx = text.index("for 10.0.0.5") + 4, text.index(" redis ") + 1, text.index("nginx")

    def ent(start, value, typ, conf, flagged=False):
        return {"start": start, "end": start + len(value), "type": typ, "text": value, "confidence": conf,
                "flagged": flagged}

    result = {"entities": [ent(ip, "10.0.0.5", "IP", 0.95), ent(redis, "redis", "SERVICE", 0.6, True),
                           ent(nginx, "nginx", "SOFTWARE", 0.9), ent(nginx + 6, "nginx", "SERVICE", 0.9)],
              "rejected": []}
    out = propagate_confident(result, text)
    added = [(e["start"], e["text"], e["type"], e["confidence"]) for e in out["entities"] if e.get("confirmed")]
    # the IP before it on the command line; not 10.0.0.50 (another word) and not the flagged redis's
    # other occurrence; nginx was kept with two types, so it is left alone
    assert added == [(text.index("10.0.0.5"), "10.0.0.5", "IP", 0.95)]
    assert [e["start"] for e in out["entities"]] == sorted(e["start"] for e in out["entities"])
    assert propagate_confident(out, text) == out
    # after the repeat check confirms the flagged redis by a confident one, redis propagates too
    result["entities"].append(ent(text.index("open redis") + 5, "redis", "SERVICE", 0.97))
    both = context_checks(result, text)
    assert {(e["start"], e.get("confirmed")) for e in both["entities"] if e["type"] == "SERVICE" and
            e["text"] == "redis"} == {(redis, "repeat"), (text.index("open redis") + 5, None)}
