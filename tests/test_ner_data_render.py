"""Template rendering keeps every gold entity; corpus splits, statistics and error reporting."""

from __future__ import annotations

import pytest
from ner_data_records import dns_record, nmap_record, sample_records, shodan_record, whois_record

from tinysec.io import InputError
from tinysec.ner.corpus import build_samples, corpus_table, split_samples
from tinysec.ner.labels import DEFAULT_TYPES, bio_to_spans
from tinysec.ner.render import load_templates, render_record
from tinysec.osint.record import ALL_ENTITY_TYPES
from tinysec.osint.synthetic import generate

MIX = {"dns": 0.25, "whois": 0.25, "shodan": 0.25, "nmap": 0.25}


def _assert_keeps_gold(rec, types, seed=0):
    r = render_record(rec, types, seed=seed)
    labelled = {(s["type"], s["text"]) for s in r.spans}
    for ent in rec["gold_entities"]:
        if ent["type"] in types:
            assert (ent["type"], ent["text"]) in labelled, (ent, r.text)
    for sp in r.spans:
        assert r.text[sp["start"]:sp["end"]] == sp["text"]
    return r


@pytest.mark.parametrize("make", [nmap_record, dns_record, whois_record, shodan_record])
@pytest.mark.parametrize("seed", range(5))
def test_rendering_keeps_every_gold_entity(make, seed):
    r = _assert_keeps_gold(make(), DEFAULT_TYPES, seed)
    assert r.text.endswith(".") and "{" not in r.text


def test_rendering_keeps_gold_entities_of_synthetic_records_with_extended_types():
    for rec in generate(60, MIX, seed=3):
        _assert_keeps_gold(rec, ALL_ENTITY_TYPES)
        _assert_keeps_gold(rec, DEFAULT_TYPES)


def test_extended_types_label_ports_states_and_os():
    r = render_record(nmap_record(), list(DEFAULT_TYPES) + ["PORT", "STATE", "OS"])
    types = {s["type"] for s in r.spans}
    assert {"PORT", "STATE", "OS"} <= types
    assert {"PORT", "STATE", "OS"}.isdisjoint({s["type"] for s in render_record(nmap_record(), DEFAULT_TYPES).spans})


def test_template_choice_is_seeded_and_varied():
    rec = shodan_record()
    assert render_record(rec, DEFAULT_TYPES, seed=1).text == render_record(rec, DEFAULT_TYPES, seed=1).text
    texts = {render_record(rec, DEFAULT_TYPES, seed=s).text for s in range(12)}
    assert len(texts) >= 4
    templates = load_templates()
    for context in ("host", "dns", "registration", "banner", "vulnerability"):
        assert len(templates["intro"][context]) >= 3


def test_bio_tags_decode_to_the_gold_spans():
    samples = build_samples(sample_records(3), DEFAULT_TYPES, seed=0)
    for s in samples:
        assert len(s["tokens"]) == len(s["tags"])
        decoded = bio_to_spans(s["text"], s["tags"])
        assert [(d["start"], d["end"], d["type"]) for d in decoded] == \
            [(g["start"], g["end"], g["type"]) for g in s["spans"]]


def test_gold_entity_off_word_boundaries_stops_with_record_id():
    rec = dns_record()
    rec["gold_entities"].append({"type": "ORG", "text": " Padded Org"})
    with pytest.raises(InputError, match=r"records\.jsonl, row 7, field 'gold_entities'.*syn-dns-0.*word boundaries"):
        render_record(rec, DEFAULT_TYPES, where="records.jsonl", row=7)


def test_split_is_stratified_seeded_and_complete():
    samples = build_samples(sample_records(10), DEFAULT_TYPES, seed=0)
    splits = split_samples(samples, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    ids = [s["id"] for name in splits for s in splits[name]]
    assert sorted(ids) == sorted(s["id"] for s in samples)
    for name, n in (("train", 8), ("val", 1), ("test", 1)):
        by_src = {}
        for s in splits[name]:
            by_src[s["source"]] = by_src.get(s["source"], 0) + (s["rendering"] == "template")
        assert by_src == {"nmap": n, "dns": n, "whois": n, "shodan": n}  # template samples
        assert {s["record"] for s in splits[name]} == {s["record"] for s in splits[name] if s["rendering"] == "template"}
    again = split_samples(samples, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    assert [s["id"] for s in again["test"]] == [s["id"] for s in splits["test"]]
    other = split_samples(samples, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=1)
    assert [s["id"] for s in other["test"]] != [s["id"] for s in splits["test"]]


def test_corpus_table_counts():
    samples = build_samples(sample_records(2), DEFAULT_TYPES, seed=0)
    splits = split_samples(samples, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    df = corpus_table(splits, DEFAULT_TYPES).set_index("source")
    assert df.loc["all", "samples"] == len(samples) == df.loc[["dns", "nmap", "shodan", "whois"], "samples"].sum()
    assert df.loc["all", "template"] == 8 and df.loc["all", "raw"] == len(samples) - 8 >= 8
    assert df.loc["all", "tokens"] == sum(len(s["tokens"]) for s in samples)
    n_ip = sum(1 for s in samples for sp in s["spans"] if sp["type"] == "IP")
    n_org = sum(1 for s in samples for sp in s["spans"] if sp["type"] == "ORG")
    n_all = sum(len(s["spans"]) for s in samples)
    assert df.loc["all", "IP"] == n_ip and df.loc["all", "entities"] == n_all
    assert df.loc["all", "ip_org_share"] == pytest.approx((n_ip + n_org) / n_all)
    assert df.loc["whois", "IP"] == 0 and df.loc["whois", "ORG"] > 0
    assert df.loc["all", "synthetic_share"] == 1.0


def test_config_schema_rejects_bad_ner_data_settings():
    import yaml

    from tinysec.config import config_problems
    from tinysec.paths import CONFIG

    conf = yaml.safe_load((CONFIG / "tiny.yaml").read_text())
    schema = CONFIG / "schema" / "config.schema.yaml"
    assert config_problems(conf, schema) == []
    conf["ner_data"]["perturb"]["families"] = {"paraphrase": ["leet"], "mixed": ["leet", "typo"]}
    conf["ner_data"]["split"]["tran"] = 0.8
    problems = "\n".join(config_problems(conf, schema))
    assert "ner_data.perturb.families" in problems and "typo" in problems and "tran" in problems


def test_adversarial_families_must_be_defined():
    from tinysec.ner.corpus import adversarial_rows

    with pytest.raises(ValueError, match="adv_families"):
        adversarial_rows([], {"char": ["char"]}, ["char", "obfuscation"], 1, 0, 0.6, 0.12)


def test_corpus_job_reports_bad_records_with_file_row_and_field(tmp_path):
    import json

    from tinysec.ner.corpus import corpus_job

    good = sample_records(1)
    bad = dict(good[1])
    del bad["parsed"]
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [good[0], bad]) + "\n")
    out = {k: str(tmp_path / f"{k}.json") for k in ("train", "val", "test", "stats")}
    with pytest.raises(InputError, match=r"records\.jsonl, row 2, field 'parsed'"):
        corpus_job(str(path), out, DEFAULT_TYPES, 0, "", 0, {"train": 0.8, "val": 0.1, "test": 0.1})
    path.write_text("\n".join(json.dumps(r) for r in good) + "\n")
    stats = corpus_job(str(path), out, DEFAULT_TYPES, 0, "", 0, {"train": 0.8, "val": 0.1, "test": 0.1})
    assert stats["samples"] == sum(stats["splits"].values()) == sum(stats["renderings"].values())
    assert stats["renderings"]["template"] == 4 <= stats["renderings"]["raw"] and stats["records"] == 4
