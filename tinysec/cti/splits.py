"""Seeded train/val/test splits stratified by technique, a leakage check, and subsampling.

Stratification for multi-label data: each example joins the stratum of its rarest technique.
Strata are shuffled (seeded) and laid end to end; walking that order, every example goes to the
split furthest below its target share. Each stratum is thereby divided in the requested ratio
up to one example, and the whole corpus exactly, as far as the counts allow.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from ..io import read_jsonl, write_json, write_jsonl
from .corpus import build_corpus, load_source, text_key

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class LeakageError(ValueError):
    """The same (normalised) text appears in two splits."""


def stratified_split(records: list[dict], fractions: tuple[float, float, float], seed: int,
                     label_field: str = "techniques") -> dict[str, list[dict]]:
    """Split ``records`` into train/val/test by ``fractions`` (summing to 1), stratified by rarest label."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    rng = random.Random(seed)
    freq = Counter(label for r in records for label in r[label_field])
    strata: dict[str, list[dict]] = defaultdict(list)
    for rec in records:
        labels = rec[label_field]
        key = min(labels, key=lambda lab: (freq[lab], lab)) if labels else ""
        strata[key].append(rec)
    keys = sorted(strata)
    rng.shuffle(keys)
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    seen = 0
    for key in keys:
        members = sorted(strata[key], key=lambda r: r["id"])
        rng.shuffle(members)
        for rec in members:
            seen += 1
            deficits = [fractions[i] * seen - len(out[s]) for i, s in enumerate(SPLITS)]
            out[SPLITS[max(range(3), key=lambda i: (deficits[i], -i))]].append(rec)
    for name in SPLITS:
        out[name].sort(key=lambda r: r["id"])
    return out


def check_leakage(splits: dict[str, list[dict]]) -> None:
    """Raise :class:`LeakageError` when one normalised text appears in two splits."""
    owner: dict[str, str] = {}
    for name, rows in splits.items():
        for rec in rows:
            key = text_key(rec["text"])
            if key in owner and owner[key] != name:
                raise LeakageError(f"text of {rec['id']} appears in both '{owner[key]}' and '{name}': {rec['text'][:80]!r}")
            owner[key] = name


def subsample(records: list[dict], n: int | None, seed: int) -> list[dict]:
    """A seeded random subset of ``n`` records (all when ``n`` is None or not smaller), in id order."""
    if n is None or n >= len(records):
        return list(records)
    picked = random.Random(seed).sample(records, n)
    return sorted(picked, key=lambda r: r["id"])


def build_dataset(source: str, out: Mapping[str, str], min_length: int, to_parent: bool,
                  fractions: Sequence[float], seed: int, package_dir: str | None = None) -> dict:
    """Read, clean, merge and split the configured source; writes the splits, labels.json and stats."""
    raw, catalogue, label = load_source(source, package_dir)
    records, stats = build_corpus(raw, catalogue, to_parent, min_length)
    if not records:
        raise ValueError(f"no CTI examples left from {source} after cleaning (min_length={min_length})")
    splits = stratified_split(records, tuple(fractions), seed)
    check_leakage(splits)
    for name in SPLITS:
        write_jsonl(out[name], splits[name])
    write_json(out["labels"], {"to_parent": to_parent, "catalogue": catalogue.to_dict()})
    stats = {**stats, "source": label, **{f"n_{s}": len(splits[s]) for s in SPLITS}}
    write_json(out["stats"], stats)
    log.info("CTI corpus: %s", stats)
    return stats


def frequent_only(train: list[dict], test: list[dict], top: int | None) -> tuple[list[dict], list[dict]]:
    """The texts of ``train`` and ``test`` whose techniques are all among the ``top`` most frequent
    techniques of ``train`` (ties by id; all texts when ``top`` is None)."""
    if top is None:
        return train, test
    freq = Counter(t for r in train for t in r["techniques"])
    keep = {t for t, _ in sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[:top]}
    return [r for r in train if set(r["techniques"]) <= keep], [r for r in test if set(r["techniques"]) <= keep]


def make_subset(train: str, test: str, out_train: str, out_test: str, n_train: int | None, n_test: int | None,
                seed: int, top_techniques: int | None = None) -> None:
    """Seeded subsamples of the train and test splits (the sizes the models actually see), drawn
    from the texts of the ``top_techniques`` most frequent techniques only when that is set."""
    rows_train, rows_test = frequent_only(read_jsonl(train), read_jsonl(test), top_techniques)
    write_jsonl(out_train, subsample(rows_train, n_train, seed))
    write_jsonl(out_test, subsample(rows_test, n_test, seed + 1))
