"""Identification module: normalisation with offset maps, raw format detection, context assessment."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ner_data_records import NMAP_RAW, dns_record, nmap_record, shodan_record, whois_record

from tinysec.ner.identify import CONTEXTS, classify_context, detect_format, fold_leet, normalize
from tinysec.ner.substitutions import TRAIN, table, values
from tinysec.osint.synthetic import WHOIS_LAYOUT_WEIGHTS, Generator

# the normaliser knows the training halves of the substitution tables (tinysec.ner.substitutions)
O_LOOKALIKE = table("homoglyph", TRAIN)["o"][0]
ZW1, ZW2 = values("zero_width", TRAIN)[:2]
E_MARK, U_MARK = table("diacritic", TRAIN)["e"][0], table("diacritic", TRAIN)["u"][0]


@pytest.mark.parametrize("original, expected, entity", [
    ("Host ｅｘａｍｐｌｅ.ｃｏｍ is up", "Host example.com is up", "example.com"),             # fullwidth
    (f"visit g{O_LOOKALIKE * 2}gle.com now", "visit google.com now", "google.com"),            # look-alike o
    (f"visit goo{ZW1}gle.com{ZW2} now", "visit google.com now", "google.com"),                 # invisible chars
    ("mail at g00gl3.c0m today", "mail at google.com today", "google.com"),                    # leet in host
    (f"run Ub{unicodedata.normalize('NFD', E_MARK)}ntu and Ub{U_MARK}ntu", "run Ubentu and Ubuntu", "Ubuntu"),
    (f"soft{ZW2}hyphen in ex{ZW1}ample.org", "softhyphen in example.org", "example.org"),
])
def test_normalize_round_trips_with_offsets(original, expected, entity):
    norm = normalize(original)
    assert norm.text == expected
    assert len(norm.offsets) == len(norm.text)
    assert list(norm.offsets) == sorted(norm.offsets)
    start = norm.text.index(entity)
    a, b = norm.original_span(start, start + len(entity))
    # the original span, normalised again, is exactly the entity
    assert normalize(original[a:b]).text == entity
    # and it does not swallow the surrounding words
    assert original[:a].strip() == original[:a].rstrip() and original[a - 1] == " "


def test_normalize_unpacks_as_text_and_offsets():
    text, offsets = normalize("ａb\u200bc")
    assert text == "abc" and offsets == [0, 1, 3]


def test_leet_folding_only_touches_host_like_tokens():
    text = "OpenSSH_8.4p1 nginx/1.18.0 at 10.0.0.1 and web1.example.com or 1.1.1k; g00gle.com"
    out = fold_leet(text)
    assert len(out) == len(text)
    assert out == "OpenSSH_8.4p1 nginx/1.18.0 at 10.0.0.1 and web1.example.com or 1.1.1k; google.com"


def test_ligature_expansion_maps_every_char_to_its_source():
    norm = normalize("a\ufb01le.com")  # the "fi" ligature expands to two characters
    assert norm.text == "afile.com"
    assert norm.offsets[1] == norm.offsets[2] == 1
    assert norm.original_span(0, 9) == (0, 8)


@given(st.text(alphabet=st.sampled_from(list("abcXYZ019.-_ ") + ["\u200b", "ｅ", "е", "ü", "\u0301", "\ufb01"]),
               max_size=40))
@settings(max_examples=200, deadline=None)
def test_normalize_offsets_are_monotone_and_in_range(text):
    norm = normalize(text)
    assert len(norm.offsets) == len(norm.text)
    assert all(0 <= o < len(text) for o in norm.offsets)
    assert list(norm.offsets) == sorted(norm.offsets)
    assert "\u200b" not in norm.text
    assert normalize(norm.text).text == norm.text  # idempotent


def test_detect_format():
    assert detect_format(NMAP_RAW) == "nmap_xml"
    assert detect_format("Nmap scan report for 10.0.0.1\nPORT   STATE SERVICE\n22/tcp open ssh\n") == "nmap_text"
    assert detect_format(dns_record()["raw"]) == "dig"
    assert detect_format(whois_record()["raw"]) == "whois"
    assert detect_format(json.dumps({"ip_str": "1.2.3.4", "port": 80, "data": "x"})) == "shodan_json"
    assert detect_format("The host runs nginx.") == "text"


def test_classify_context_of_records_and_text():
    assert classify_context(nmap_record()) == "host"
    assert classify_context(dns_record()) == "dns"
    assert classify_context(whois_record()) == "registration"
    assert classify_context(shodan_record()) == "vulnerability"  # it lists CVE-2021-44228
    rec = shodan_record()
    rec["parsed"]["vulns"] = []
    rec["raw"] = rec["raw"].replace("CVE-2021-44228", "")
    assert classify_context(rec) == "banner"
    assert classify_context("SSH-2.0-OpenSSH_8.4p1 Debian") == "banner"
    assert classify_context("Registrar: MarkMonitor Inc. holds it") == "registration"
    assert set(CONTEXTS) == {"host", "dns", "registration", "banner", "vulnerability"}


@pytest.mark.parametrize("layout", list(WHOIS_LAYOUT_WEIGHTS))
def test_detect_format_knows_every_whois_layout(layout):
    """Thin/thick gTLD replies and the ccTLD layouts (bracketed sections, localised labels)."""
    raw = Generator(seed=3).whois_record(1, layout)["raw"]
    assert detect_format(raw) == "whois", raw[:300]
