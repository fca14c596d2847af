"""Security-aware word tokenizer and the span <-> BIO conversion."""

from __future__ import annotations

import pytest

from tinysec.io import InputError
from tinysec.ner.labels import bio_labels, bio_to_spans, check_spans, entity_types, spans_to_bio
from tinysec.ner.tokenize import word_spans, words


@pytest.mark.parametrize("token", ["192.168.0.1", "nginx/1.18.0", "example.com", "OpenSSH_8.4p1",
                                   "2a01:4f8::d25", "ns-1828.awsdns-49.com", "admin@example.org"])
def test_security_tokens_stay_single_words(token):
    assert words(f"see ({token}), then {token}.") == ["see", "(", token, ")", ",", "then", token, "."]


def test_markup_and_invisible_characters():
    assert words("[go0ogle.com](https://www.go0ogle.com)") == [
        "[", "go0ogle.com", "]", "(", "https", ":", "/", "/", "www.go0ogle.com", ")"]
    assert words("goo\u200bgle.com Ubu\u0308ntu") == ["goo\u200bgle.com", "Ubu\u0308ntu"]
    text = "a  b"
    assert word_spans(text) == [(0, 1), (3, 4)]


def _spans(text, *items):
    out = []
    for sub, etype in items:
        start = text.index(sub)
        out.append({"start": start, "end": start + len(sub), "type": etype, "text": sub})
    return out


def test_spans_to_bio_and_back():
    text = "Example Corp runs nginx version 1.18.0 on 192.168.0.1."
    spans = _spans(text, ("Example Corp", "ORG"), ("nginx", "SOFTWARE"), ("1.18.0", "VERSION"), ("192.168.0.1", "IP"))
    tags = spans_to_bio(text, spans)
    assert tags == ["B-ORG", "I-ORG", "O", "B-SOFTWARE", "O", "B-VERSION", "O", "B-IP", "O"]
    assert bio_to_spans(text, tags) == spans


def test_adjacent_spans_of_same_type_stay_apart():
    text = "ns1.example.org ns2.example.org"
    spans = _spans(text, ("ns1.example.org", "DOMAIN"), ("ns2.example.org", "DOMAIN"))
    assert spans_to_bio(text, spans) == ["B-DOMAIN", "B-DOMAIN"]


def test_entity_types_and_label_vocabulary():
    assert entity_types({}) == ["ORG", "DOMAIN", "IP", "SOFTWARE", "SERVICE", "VERSION"]
    assert entity_types({"entity_types": ["IP", "PORT"]}) == ["IP", "PORT"]
    assert bio_labels(["IP", "PORT"]) == ["O", "B-IP", "I-IP", "B-PORT", "I-PORT"]
    with pytest.raises(ValueError):
        entity_types({"entity_types": ["ip"]})


def test_check_spans_names_file_row_and_field():
    text = "host 10.0.0.1"
    with pytest.raises(InputError, match=r"data\.jsonl, row 3, field 'spans'.*expected '10.0.0.2'"):
        check_spans(text, [{"start": 5, "end": 13, "type": "IP", "text": "10.0.0.2"}], where="data.jsonl", row=3)
    with pytest.raises(InputError, match="outside the text"):
        check_spans(text, [{"start": 5, "end": 40, "type": "IP"}])
    with pytest.raises(InputError, match="not one of"):
        check_spans(text, [{"start": 5, "end": 13, "type": "HOST"}], types=["IP"])
