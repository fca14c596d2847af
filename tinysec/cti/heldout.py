"""The held-out groups split: procedure examples of a seeded share of ATT&CK groups, software and
campaigns (the "actors" whose ``uses`` relationships give the examples) never seen in training.

Texts not written like the training data's procedure examples are approximated by text about
actors the model never saw. Every cleaned, merged corpus record gets the actors whose examples
produced it (a text several actors share gets them all). A seeded choice of ``fraction`` of the
actors is held out: the held-out test set is every record (of any split) whose actors are all held
out; the held-out train and validation sets are the main train and validation records none of
whose actors is held out. Records mixing both kinds are in neither, so no actor is on both sides.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from .. import attack_kb
from ..io import InputError, read_json, read_jsonl, write_json, write_jsonl
from .corpus import PACKAGE_SOURCE, build_corpus, package_files, read_bundle, read_package

log = logging.getLogger(__name__)


def record_actors(source: str, min_length: int, to_parent: bool, package_dir: str | None = None) -> dict[str, set[str]]:
    """Record id (as :func:`tinysec.cti.corpus.build_corpus` names it) -> the STIX ids of the actors
    whose procedure examples gave that text. Only ATT&CK sources name actors; a user file is refused."""
    if source == PACKAGE_SOURCE:
        files = package_files(package_dir)
        raw, catalogue = read_package(files)
        rels = attack_kb.read_tables({"relationships": files["relationships"]})["relationships"]
        actor_of = {r["stix_id"]: r["source_ref"] for r in rels if "source_ref" in r}
    elif Path(source.split("?")[0]).suffix.lower() in (".csv", ".jsonl", ".ndjson"):
        raise InputError(source, "a user CTI file names no ATT&CK groups or software, so it has no held-out "
                                 "groups split (set cti.heldout.fraction: null)", field="cti.heldout.fraction")
    else:
        objects, _ = attack_kb.load_bundle(source)
        raw, catalogue = read_bundle(objects)
        actor_of = {o["id"]: o["source_ref"] for o in objects if o.get("type") == "relationship"}
    by_actor: dict[str, list] = defaultdict(list)
    for ex in raw:
        by_actor[actor_of[ex.origin]].append(ex)
    out: dict[str, set[str]] = defaultdict(set)
    for actor, examples in by_actor.items():
        for rec in build_corpus(examples, catalogue, to_parent, min_length)[0]:
            out[rec["id"]].add(actor)
    return dict(out)


def heldout_split(splits: Mapping[str, list[dict]], actors: Mapping[str, set[str]], fraction: float,
                  seed: int) -> tuple[dict[str, list[dict]], dict]:
    """Held-out ``train``/``val``/``test`` sets from the main ``splits`` (see the module docstring)
    and a summary (actor counts, set sizes, records left out)."""
    if not 0 < fraction < 1:
        raise ValueError(f"cti.heldout.fraction must lie strictly between 0 and 1, got {fraction}")
    every = sorted({a for ids in actors.values() for a in ids})
    if len(every) < 2:
        raise ValueError(f"the held-out groups split needs at least 2 actors, the corpus names {len(every)}")
    k = min(len(every) - 1, max(1, round(fraction * len(every))))
    held = set(random.Random(seed).sample(every, k))
    out: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    dropped = {"mixed": 0, "no_actor": 0}
    for name in ("train", "val", "test"):
        for rec in splits[name]:
            ids = actors.get(rec["id"], set())
            if not ids:
                dropped["no_actor"] += 1
            elif ids <= held:
                out["test"].append(rec)
            elif ids & held:
                dropped["mixed"] += 1
            elif name != "test":
                out[name].append(rec)
    for rows in out.values():
        rows.sort(key=lambda r: r["id"])
    summary = {"fraction": fraction, "seed": seed, "actors": len(every), "heldout_actors": k,
               **{f"n_{s}": len(out[s]) for s in out}, **{f"dropped_{d}": n for d, n in dropped.items()}}
    return out, summary


def build_heldout(source: str, split_files: Mapping[str, str], stats_file: str, out: Mapping[str, str],
                  min_length: int, to_parent: bool, fraction: float, seed: int, package_dir: str | None = None) -> dict:
    """Write the held-out split (``out``: train, val, test, stats) from the main split files.

    The stats file is the main one with the held-out sizes, and a source line saying what was held out
    (the CTI table caption reads it)."""
    splits = {s: read_jsonl(split_files[s]) for s in ("train", "val", "test")}
    actors = record_actors(source, min_length, to_parent, package_dir)
    sets, summary = heldout_split(splits, actors, fraction, seed)
    if not sets["train"] or not sets["test"]:
        raise ValueError(f"the held-out groups split is empty on one side ({summary}); change cti.heldout.fraction")
    for name, rows in sets.items():
        write_jsonl(out[name], rows)
    stats = read_json(stats_file)
    stats.update(source=(f"{stats.get('source', '')}; held-out groups split: the procedure examples of "
                         f"{summary['heldout_actors']} of {summary['actors']} ATT&CK groups, software and campaigns "
                         f"(seeded, fraction {fraction}) form the test set, training and validation use only texts "
                         f"of the other actors ({summary['dropped_mixed']} texts shared by both kinds left out)"),
                 examples=sum(summary[f"n_{s}"] for s in ("train", "val", "test")), heldout=summary,
                 **{f"n_{s}": summary[f"n_{s}"] for s in ("train", "val", "test")})
    write_json(out["stats"], stats)
    log.info("held-out groups split: %s", summary)
    return summary
