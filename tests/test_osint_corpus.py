"""Synthetic OSINT corpus, record validation and the tiny-config run's OSINT outputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tinysec.io import InputError
from tinysec.osint.collect_shodan import parse_host, parse_search
from tinysec.osint.collect_whois import parse_whois
from tinysec.osint.corpus import corpus_stats
from tinysec.osint.nmap_xml import parse_nmap_xml
from tinysec.osint.record import ALL_ENTITY_TYPES, load_records, make_record
from tinysec.osint.synthetic import generate, source_counts
from tinysec.osint.vocab import load_vocabulary

MIX = {"dns": 1, "whois": 1, "shodan": 1, "nmap": 1}


@pytest.fixture(scope="module")
def records():
    return list(generate(120, MIX, seed=3))


def test_generator_is_seeded_and_sized_by_mix(records):
    assert records == list(generate(120, MIX, seed=3))  # every field, dig's query ids included
    assert records != list(generate(120, MIX, seed=4))
    assert source_counts(10, {"dns": 3, "whois": 1, "shodan": 0, "nmap": 1}) == {"dns": 6, "whois": 2, "shodan": 0, "nmap": 2}
    counts = pd.Series([r["source"] for r in records]).value_counts().to_dict()
    assert counts == {"dns": 30, "whois": 30, "shodan": 30, "nmap": 30}
    assert len({r["id"] for r in records}) == 120


def test_every_record_is_labelled_synthetic_with_entities_found_in_raw(records):
    for rec in records:
        assert rec["synthetic"] is True and rec["tool_version"] == "synthetic"
        for ent in rec["gold_entities"]:
            assert ent["text"] in rec["raw"], (rec["id"], ent)
            assert ent["type"] in ALL_ENTITY_TYPES
    core = {e["type"] for r in records for e in r["gold_entities"]}
    assert {"ORG", "DOMAIN", "IP", "SOFTWARE", "SERVICE", "VERSION"} <= core


def test_raw_is_native_syntax_and_parses_back_to_the_same_fields(records):
    by_source = {}
    for rec in records:
        by_source.setdefault(rec["source"], []).append(rec)
    forms = set()
    for rec in by_source["nmap"]:  # nmap's XML (-oX) or its normal output (-oN) of the scan
        if rec["raw"].startswith('<?xml version="1.0"'):
            forms.add("xml")
            assert parse_nmap_xml(rec["raw"]) == rec["parsed"]
        else:
            forms.add("text")
            assert (rec["raw"].startswith("Starting Nmap 7.94") and "\nNmap done: " in rec["raw"]) or \
                (rec["raw"].startswith("# Nmap 7.94") and "\n# Nmap done at " in rec["raw"])
            for port in (p for h in rec["parsed"]["hosts"] for p in h["ports"]):
                assert f"{port['port']}/{port['protocol']}" in rec["raw"]
    assert forms == {"xml", "text"}
    registrars = {r["name"] for r in load_vocabulary().registrars}
    for rec in by_source["whois"]:  # gTLD and ccTLD layouts (tests/test_ner_raw_views.py checks each)
        assert parse_whois(rec["target"], rec["raw"]) == rec["parsed"]
        assert rec["parsed"]["registrar"] in registrars | {None}
    for rec in by_source["shodan"]:
        data = json.loads(rec["raw"])
        parsed = (parse_search(rec["parsed"]["query"], data) if rec["parsed"]["kind"] == "search"
                  else parse_host(rec["target"], None if "error" in data else data))
        assert parsed == rec["parsed"]
    for rec in by_source["dns"]:
        assert rec["raw"].startswith("\n; <<>> DiG 9.18") and ";; QUESTION SECTION:" in rec["raw"]
        for ans in rec["parsed"]["answers"]:
            assert ans["value"] in rec["raw"]
    products = {p["product"] for p in load_vocabulary().products}
    nmap_products = {p["product"] for r in by_source["nmap"] for h in r["parsed"]["hosts"] for p in h["ports"] if p["product"]}
    assert nmap_products and nmap_products <= products


def test_corpus_stats_count_synthetic_and_entities(records):
    df = corpus_stats(records).set_index("source")
    assert df.loc["all", "records"] == 120 and df.loc["all", "synthetic"] == 120 and df.loc["all", "collected"] == 0
    assert df.loc["all", "entities"] == sum(len(r["gold_entities"]) for r in records)
    assert df.loc["nmap", "STATE"] > 0 and df.loc["dns", "SOFTWARE"] == 0


def test_bad_records_name_file_row_and_field(tmp_path, records):
    good = records[0]
    path = tmp_path / "records.jsonl"
    bad = dict(good, synthetic="yes")
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(InputError) as err:
        load_records(path)
    assert (err.value.row, err.value.field) == (2, "synthetic") and str(path) in str(err.value)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(InputError, match="duplicate id"):
        load_records(path)
    with pytest.raises(InputError, match=r"field .gold_entities\[0\]\.type.: expected one of ORG, .*got \"PERSON\""):
        make_record("dns", "a.test", "x", good["parsed"] if good["source"] == "dns" else
                    {"domain": "a.test", "nameserver": None, "answers": [], "status": {}},
                    tool_version="1", gold_entities=[{"type": "PERSON", "text": "x"}])
    with pytest.raises(InputError, match=r"field .parsed\.scanner_version.: missing field"):
        make_record("nmap", "a.test", "x", {"args": ""}, tool_version="1")


def test_tiny_run_writes_synthetic_records_and_table(tiny_run):
    records = load_records(tiny_run / "results" / "osint" / "records.jsonl")
    assert len(records) == 80 and all(r["synthetic"] for r in records)
    assert {r["source"] for r in records} == {"dns", "whois", "shodan", "nmap"}
    table = pd.read_csv(tiny_run / "results" / "tables" / "osint_corpus.csv").set_index("source")
    assert table.loc["all", "synthetic"] == 80
    assert "SYNTHETIC" in (tiny_run / "results" / "tables" / "osint_corpus.md").read_text()
    assert (tiny_run / "results" / "figures" / "osint_entities.png").stat().st_size > 1000
