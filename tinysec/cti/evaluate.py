"""Scoring answers of one model on one task: label mapping, metrics, per-label detail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..io import read_jsonl, write_json, write_jsonl
from .metrics import bootstrap, per_label, scores
from .outputs import LabelMapper
from .predictor import load_manifest, mapper_of
from .prompts import label_field


@dataclass
class Scored:
    predictions: list[dict]  # {id, text, gold, predicted, answer, unmapped, invalid}
    metrics: dict
    per_label: pd.DataFrame


def score_answers(gold_rows: Sequence[dict], gold: Sequence[Sequence[str]], answers: Sequence[dict],
                  mapper: LabelMapper, intervals: Mapping[str, Any] | None = None) -> Scored:
    """Map every answer onto the label set and score it against ``gold`` (aligned with ``gold_rows``).

    ``answers`` rows carry ``id`` and ``answer``; every gold row must have exactly one answer.
    Metrics add the invalid-output rate (answers that map to no label) and the count of answer
    fragments that matched no label. With ``intervals`` (``resamples``, ``confidence``, ``seed``)
    they also hold the bootstrap bounds ``{metric}_lo``/``{metric}_hi`` over the test items
    (:func:`tinysec.cti.metrics.bootstrap`) and the settings under ``bootstrap``.
    """
    by_id = {a["id"]: a for a in answers}
    missing = [r["id"] for r in gold_rows if r["id"] not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} test examples have no answer (first: {missing[0]})")
    preds = []
    for row, labels in zip(gold_rows, gold):
        ans = by_id[row["id"]]
        mapped = mapper.map(ans.get("answer"))
        preds.append({"id": row["id"], "text": row.get("text", ""), "gold": list(labels), "predicted": mapped.labels,
                      "answer": ans.get("answer", ""), "unmapped": mapped.unmapped, "invalid": mapped.invalid})
    gold_sets, pred_sets = [p["gold"] for p in preds], [p["predicted"] for p in preds]
    metrics = scores(gold_sets, pred_sets)
    if intervals is not None:
        settings = {k: intervals[k] for k in ("resamples", "confidence", "seed")}
        metrics.update(bootstrap(gold_sets, pred_sets, **settings), bootstrap=settings)
    n = max(1, len(preds))
    metrics["invalid_rate"] = sum(p["invalid"] for p in preds) / n
    metrics["unmapped_fragments"] = sum(len(p["unmapped"]) for p in preds)
    names = {lab: mapper.catalogue.name(lab) for p in preds for lab in p["gold"] + p["predicted"]}
    table = per_label([p["gold"] for p in preds], [p["predicted"] for p in preds], names)
    return Scored(preds, metrics, table)


def score_file(model_dir: str, answers_file: str, test_file: str, contestant: str, out: Mapping[str, str],
               intervals: Mapping[str, Any] | None = None) -> dict:
    """Metrics (with bootstrap intervals when ``intervals`` is given, see :func:`score_answers`),
    per-label table and predictions of one contestant on one task."""
    manifest = load_manifest(model_dir)
    mapper = mapper_of(manifest)
    test = read_jsonl(test_file)
    gold = [r[label_field(manifest["task"])] for r in test]
    scored = score_answers(test, gold, read_jsonl(answers_file), mapper, intervals)
    metrics = {"model": contestant, "label": manifest.get("label", contestant), "kind": manifest["kind"],
               "task": manifest["task"], "parameters": manifest.get("parameters"),
               "train_seconds": manifest.get("train_seconds"), "train_tokens": manifest.get("train_tokens"), **scored.metrics}
    write_json(out["metrics"], metrics)
    scored.per_label.to_csv(out["per_label"], index=False)
    write_jsonl(out["predictions"], scored.predictions)
    return metrics
