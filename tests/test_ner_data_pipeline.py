"""Tiny-config snakemake runs of the NER corpus: splits, statistics table, perturbed test sets and
adversarial training variants, from loopback-collected and synthetic OSINT records alike."""

from __future__ import annotations

import json

import yaml
from conftest import TINY, run_snakemake

# the OSINT section's loopback servers (DNS, WHOIS chain, Shodan API), reused rather than copied
from test_osint_collectors import (  # noqa: F401
    LOOPBACK,
    SHODAN_KEY,
    WHOIS_DOMAIN,
    dns_server,
    loopback_only,
    redirects,
    shodan_server,
    whois_servers,
)

from tinysec.io import read_jsonl
from tinysec.ner.labels import bio_to_spans, spans_to_bio
from tinysec.ner.tokenize import words
from tinysec.ner.view import tagger_view
from tinysec.osint.record import load_records

DATA = "results/ner/data"
FAMILIES = ["char", "leet", "homoglyph", "diacritic", "zero_width", "symbol", "abbreviation", "obfuscation"]
TARGETS = ("results/tables/ner_corpus.md", f"{DATA}/train.adv.jsonl",
           *(f"{DATA}/test.{f}.jsonl" for f in FAMILIES))


def _check_rows(rows, path):
    for row in rows:
        assert row["tokens"] == words(row["text"]), path
        assert row["tags"] == spans_to_bio(row["text"], row["spans"]), path
        for sp in row["spans"]:
            assert row["text"][sp["start"]:sp["end"]] == sp["text"], path
        assert [s["type"] for s in bio_to_spans(row["text"], row["tags"])] == [s["type"] for s in row["spans"]]


def _check_corpus(workdir, records):
    data = workdir / DATA
    splits = {name: read_jsonl(data / f"{name}.jsonl", allow_empty=True) for name in ("train", "val", "test")}
    samples = [s for rows in splits.values() for s in rows]
    # per record: the template sample (the record's id) and the raw view's windows ("~raw", "~raw.2", ...)
    assert sorted(s["id"] for s in samples if s["rendering"] == "template") == sorted(r["id"] for r in records)
    assert {s["id"] for s in samples if s["rendering"] == "raw"} >= {r["id"] + "~raw" for r in records}
    by_id = {r["id"]: r for r in records}
    for name, rows in splits.items():
        _check_rows(rows, name)
        for s in rows:
            rec = by_id[s["record"]]
            assert s["source"] == rec["source"] and s["synthetic"] == rec["synthetic"]
            assert sum(r["record"] == s["record"] for r in rows) >= 2  # all its samples in this split
            if s["rendering"] == "raw":
                assert s["text"] == tagger_view(rec["raw"])[1][slice(*s["window"])]
            labelled = {(sp["type"], sp["text"]) for sp in s["spans"]}
            for ent in rec["gold_entities"] if s["rendering"] == "template" else ():
                if ent["type"] in ("ORG", "DOMAIN", "IP", "SOFTWARE", "SERVICE", "VERSION"):
                    assert (ent["type"], ent["text"]) in labelled, (s["id"], ent)
            if s["rendering"] == "raw":  # raw windows label gold entities only
                assert labelled <= {(e["type"], e["text"]) for e in rec["gold_entities"]}, s["id"]
    assert len(splits["train"]) > len(splits["val"]) > 0 and len(splits["test"]) > 0
    test_ids = {s["id"] for s in splits["test"]}
    for fam in FAMILIES:
        rows = read_jsonl(data / f"test.{fam}.jsonl", allow_empty=True)
        assert {r["orig_id"] for r in rows} == {s["id"] for s in splits["test"] if s["spans"]}
        assert {r["family"] for r in rows} == {fam}
        assert all(r["orig_id"] in test_ids for r in rows)
        _check_rows(rows, fam)
        clean = {s["id"]: s for s in splits["test"]}
        assert any(r["text"] != clean[r["orig_id"]]["text"] for r in rows), fam
    adv = read_jsonl(data / "train.adv.jsonl")
    train = {s["id"]: s for s in splits["train"]}
    assert {r["orig_id"] for r in adv} == {i for i, s in train.items() if s["spans"]}
    assert {r["family"] for r in adv} <= {"char", "obfuscation"}
    _check_rows(adv, "train.adv")
    for r in adv:
        clean = train[r["orig_id"]]
        assert len(r["word_map"]) == len(r["tokens"])
        assert all(-1 <= k < len(clean["tokens"]) for k in r["word_map"])
        # a word outside the entities maps to the same clean word
        for tok, tag, k in zip(r["tokens"], r["tags"], r["word_map"]):
            if tag == "O" and k >= 0:
                assert clean["tokens"][k] == tok
    return splits


def test_tiny_run_builds_corpus_splits_and_perturbed_sets(tiny_run):
    records = load_records(tiny_run / "results" / "osint" / "records.jsonl")
    splits = _check_corpus(tiny_run, records)
    table = (tiny_run / "results" / "tables" / "ner_corpus.md").read_text()
    assert "SYNTHETIC" in table and "ip_org_share" in table
    csv = (tiny_run / "results" / "tables" / "ner_corpus.csv").read_text().splitlines()
    assert csv[0].startswith("source,samples,train,val,test,tokens,ORG,DOMAIN,IP,SOFTWARE,SERVICE,VERSION")
    assert csv[-1].startswith(f"all,{sum(len(v) for v in splits.values())},")


def test_corpus_from_loopback_collected_and_synthetic_records(tmp_path, dns_server, whois_servers, shodan_server):
    conf = yaml.safe_load(TINY.read_text())
    conf["osint"] = {
        "collect": True,
        "targets": {"dns": ["tinysec.test"], "whois": [WHOIS_DOMAIN],
                    "shodan": ["192.0.2.50", "search:product:nginx"], "nmap": []},
        "dns": {"nameserver": LOOPBACK, "port": dns_server.port, "timeout_s": 2},
        "whois": {"redirects": redirects(whois_servers), "only_mapped": True, "min_interval_s": 0},
        "shodan": {"base_url": shodan_server.base_url, "min_interval_s": 0, "backoff_s": 0},
        "synthetic": {"n_records": 16},
    }
    configfile = tmp_path / "collect.yaml"
    configfile.write_text(yaml.safe_dump(conf))
    workdir = tmp_path / "run"
    workdir.mkdir()
    run_snakemake(workdir, *TARGETS, configfile=configfile, env={"SHODAN_API_KEY": SHODAN_KEY})

    records = load_records(workdir / "results" / "osint" / "records.jsonl")
    collected = [r for r in records if not r["synthetic"]]
    assert len(collected) == 4 and len(records) == 20
    splits = _check_corpus(workdir, records)
    samples = {s["id"]: s for rows in splits.values() for s in rows}
    shodan = samples["shodan:192.0.2.50"]
    assert shodan["synthetic"] is False and shodan["context"] == "vulnerability"
    assert {("ORG", "Tinysec Hosting B.V."), ("SOFTWARE", "OpenSSH"), ("VERSION", "8.9p1"),
            ("IP", "192.0.2.50")} <= {(s["type"], s["text"]) for s in shodan["spans"]}
    assert samples[f"whois:{WHOIS_DOMAIN}"]["context"] == "registration"
    assert samples["dns:tinysec.test"]["context"] == "dns"
    table = (workdir / "results" / "tables" / "ner_corpus.md").read_text()
    assert "partly synthetic" in table and "80% of the records were generated" in table
    stats = json.loads((workdir / DATA / "corpus_stats.json").read_text())
    assert stats["records"] == 20 and stats["synthetic"] == 16

    # changing only a perturbation setting reruns the perturbed sets, never the corpus
    conf["ner_data"]["perturb"]["char_rate"] = 0.3
    configfile.write_text(yaml.safe_dump(conf))
    dry = run_snakemake(workdir, *TARGETS, "-n", configfile=configfile, env={"SHODAN_API_KEY": SHODAN_KEY})
    assert "rule ner_data_corpus:" not in dry.stdout and "rule ner_data_perturb:" in dry.stdout
