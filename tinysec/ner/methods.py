"""The NER study's methods: the raw-text baseline, the template identification module, and the
chain with an identification/extraction LLM. Corpus and evaluation jobs of each method.

Method kinds (``ner.methods`` in the config; :func:`method_kind`):

- ``baseline``: the encoder + CRF fine-tuned on the raw tool text as it comes (the ``raw``
  rendering rows only; no normaliser, no templates, no LLM, no adversarial training);
- ``templates``: the identification module without an LLM: the robust tagger trained on template
  and raw rows (with adversarial variants), tagging the normalised input;
- any other name, a key of ``models:``: the robust tagger trained on rows whose template
  samples that LLM rephrased, tagging through :func:`tinysec.ner.chain.tag_with_chain`.

Every method tags the same raw test inputs (:func:`raw_testset_job`), and its predictions file
has the layout of :mod:`tinysec.ner.predict` (test set ``clean``) plus ``hallucinated``,
``segments`` and ``context`` per row.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..io import InputError, read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

FIXED_METHODS = ("baseline", "templates")


def method_kind(name: str) -> str:
    """``baseline``, ``templates`` or ``llm`` (a model name)."""
    return name if name in FIXED_METHODS else "llm"


def _rows(path: str | os.PathLike) -> list[dict]:
    rows = read_jsonl(path)
    for i, row in enumerate(rows, start=1):
        for key in ("id", "text", "spans"):
            if key not in row:
                raise InputError(path, f"missing field '{key}'", row=i, field=key)
    return rows


def raw_rows(rows: Sequence[dict]) -> list[dict]:
    """The ``raw`` rendering rows (the tool text as it comes)."""
    return [r for r in rows if r.get("rendering") == "raw"]


def raw_testset_job(test_path: str, out_path: str, max_rows: int | None, seed: int) -> int:
    """The raw test inputs every method is evaluated on: the raw rows of the test split, a seeded
    source-stratified sample of ``max_rows`` of them (None: all)."""
    from .train import stratified_sample

    rows = raw_rows(_rows(test_path))
    if not rows:
        raise InputError(test_path, "no raw-rendering test rows to evaluate the methods on", field="rendering")
    return write_jsonl(out_path, stratified_sample(rows, max_rows, seed))


def method_corpus_job(kind: str, train: str, val: str, out: Mapping[str, str], rephrase_rows: int = 0,
                      max_tries: int = 1, llm=None) -> dict:
    """The training and validation rows of one method: ``baseline`` keeps the raw rows; ``llm``
    rephrases the first ``rephrase_rows`` template rows of the training split with ``llm`` (the
    corpus builder's reflection loop, which keeps the gold strings so the rows stay labelled;
    the test inputs never see it). Writes ``out['train']``, ``out['val']``, ``out['stats']``."""
    from .rephrase import reflect_rephrase

    tr, va = _rows(train), _rows(val)
    stats: dict[str, Any] = {"kind": kind}
    if kind == "baseline":
        tr, va = raw_rows(tr), raw_rows(va)
    elif kind == "llm":
        at = [i for i, s in enumerate(tr) if s.get("rendering") == "template"][:rephrase_rows or None]
        res = reflect_rephrase([tr[i] for i in at], llm, max_tries=max_tries)
        for i, s in zip(at, res.samples):
            tr[i] = s
        stats["rephrase"] = {"attempted": len(at), "rewritten": res.rewritten, "fallbacks": res.fallbacks,
                             "retries": res.retries}
    else:
        raise ValueError(f"method kind {kind!r} has no corpus of its own")
    if not tr:
        raise InputError(train, f"no training rows for method kind {kind!r}")
    stats.update(train=write_jsonl(out["train"], tr), val=write_jsonl(out["val"], va))
    write_json(out["stats"], stats)
    return stats


def _prediction_row(row: dict, res: dict) -> dict:
    return {"testset": "clean", "family": "clean", "id": row["id"], "orig_id": row.get("orig_id", row["id"]),
            "source": row.get("source", ""), "text": row["text"],
            "gold": [{k: s[k] for k in ("start", "end", "type")} for s in row["spans"]],
            "pred": res["entities"], "rejected": res.get("rejected", []),
            "hallucinated": res.get("hallucinated", []), "segments": res.get("segments"),
            "context": res.get("context")}


def predict_method(kind: str, tagger, test_path: str, out_path: str, stats_path: str, llm=None,
                   rounds: int = 0) -> dict:
    """Tag the raw test inputs with one method and write its predictions and stats (entities
    kept, hallucinated entities dropped, LLM calls and cache hits). Only the texts reach the
    tagger and the LLM."""
    from .chain import tag_with_chain

    rows = _rows(test_path)
    texts = [r["text"] for r in rows]
    results = tag_with_chain(texts, tagger, llm, rounds) if kind == "llm" else tagger.tag(texts, progress=True)
    out = [_prediction_row(r, res) for r, res in zip(rows, results)]
    write_jsonl(out_path, out)
    stats = {"kind": kind, "inputs": len(out), "entities": sum(len(r["pred"]) for r in out),
             "hallucinated": sum(len(r["hallucinated"]) for r in out)}
    if kind == "llm":
        stats.update(llm_calls=llm.misses, cache_hits=llm.hits, fallbacks=sum(r["fallback"] for r in results),
                     regenerated=sum(r["regenerated"] for r in results),
                     omission_checks=sum(r["rounds"] for r in results), saw_gold_labels=False)
    write_json(stats_path, stats)
    return stats


__all__ = ["FIXED_METHODS", "method_kind", "raw_rows", "raw_testset_job", "method_corpus_job", "predict_method"]
