"""The qualitative example: one raw Nmap input, tagged by the baseline and by
the best method, side by side.

The input (:func:`load_example`) is, in order of preference:

1. ``real``: the text (``-oN``) output of the real ``nmap -sV`` scan of services the pipeline
   started on 127.0.0.1 (``results/ner/real/records.jsonl``, :mod:`tinysec.osint.real_scan`);
2. ``collected``: a collected Nmap record (``results/osint/raw/nmap/<target>.json``);
3. ``test``: the raw test input of the configured source with the most gold entities (synthetic;
   the caption says so).

Real and collected records are shown as ``tinysec tag`` shows them (tagger view, gold projected on
it). The best method (:func:`best_method`) is the non-baseline method with the highest strict F1
on the raw test inputs (its predictions file; ties: config order). Both sides tag the input as
``tinysec tag --method`` does (:func:`tag_example`): the encoder + CRF in line windows, or, for an
LLM method, the tag-time chain, whose entities not in the input are dropped and listed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..io import InputError, read_records
from .tables import testset_scores

KINDS = {"real": "real `nmap -sV` text output (services the pipeline started on 127.0.0.1)",
         "collected": "collected Nmap record", "test": "raw test input (synthetic corpus)"}


def load_example(kind: str, path: str | os.PathLike, types: Sequence[str], source: str = "nmap") -> dict:
    """``{id, text, gold, kind}`` of the example input of ``kind`` (see :data:`KINDS`) read from ``path``."""
    if kind == "test":
        rows = [r for r in read_records(path, "ner_test_sentences")]
        pick = [r for r in rows if r.get("source") == source] or rows
        if not pick:
            raise InputError(path, "no raw test input to show in the example")
        row = max(pick, key=lambda r: (len(r["spans"]), -len(r["text"])))
        return {"id": row["id"], "text": row["text"], "kind": kind,
                "gold": [{k: s[k] for k in ("start", "end", "type")} for s in row["spans"]]}
    from ..osint.record import load_record, load_records
    from .render import render_raw

    records = load_records(path) if kind == "real" else [load_record(path)]
    rendered = [(rec, render_raw(rec, types, where=str(path), row=i)) for i, rec in enumerate(records, start=1)]
    rec, ren = next(((rec, r) for rec, r in rendered if r.format == "nmap_text"), rendered[0])
    return {"id": rec["id"], "text": ren.text, "kind": kind,
            "gold": [{k: s[k] for k in ("start", "end", "type")} for s in ren.spans]}


def method_f1(predictions: str | os.PathLike) -> float:
    """Strict micro F1 of a method's predictions on its clean (raw) test inputs."""
    rows = [r for r in read_records(predictions, "ner_predictions") if r["testset"] == "clean"]
    return testset_scores(rows)["ALL"]["f1"]


def best_method(methods: Sequence[Mapping[str, Any]]) -> tuple[dict, dict]:
    """``(baseline, best)`` of the method rows (dicts with ``method`` and ``predictions``): the
    ``baseline`` row and the other row with the highest strict F1 (first in order on ties); each
    gets its ``f1``."""
    scored = [{**m, "f1": method_f1(m["predictions"])} for m in methods]
    base = next((m for m in scored if m["method"] == "baseline"), None)
    others = [m for m in scored if m["method"] != "baseline"]
    if base is None or not others:
        raise ValueError(f"the example needs the baseline and one other method, got {[m['method'] for m in methods]}")
    return base, max(others, key=lambda m: m["f1"])  # max keeps the first of equal F1s


def tag_example(text: str, method: Mapping[str, Any], post: Mapping[str, Any], batch_size: int = 16,
                device: str = "cpu", llm=None, rounds: int = 0) -> dict:
    """Tag ``text`` with one method's tagger (``method['model']``, normaliser ``method['normalize']``)
    as ``tinysec tag --method`` does; an LLM method (``llm`` given) runs the tag-time chain.
    Returns ``{entities, hallucinated}`` with entity spans in ``text``."""
    from .chain import tag_with_chain
    from .corpus import RAW_MAX_WORDS
    from .postprocess import PostprocessSettings, Tagger
    from .predict import tag_windows

    tagger = Tagger(method["model"], PostprocessSettings(**post), normalize=method["normalize"], device=device,
                    batch_size=batch_size)
    res = tag_with_chain([text], tagger, llm, rounds)[0] if llm is not None else tag_windows(tagger, [text], RAW_MAX_WORDS)[0]
    ents = [{**e, "text": text[e["start"]:e["end"]]} for e in res["entities"]]
    return {"entities": ents, "hallucinated": res.get("hallucinated", [])}


def _cell(text: str, ents: Sequence[Mapping[str, Any]], gold: set | None) -> str:
    items = []
    for e in sorted(ents, key=lambda e: e["start"]):
        mark = "" if gold is None else (" ✓" if (e["start"], e["end"], e["type"]) in gold else " ✗")
        conf = f" ({e['confidence']:.2f}{', flagged' if e.get('flagged') else ''})" if "confidence" in e else ""
        items.append(f"`{text[e['start']:e['end']]}`{conf}{mark}".replace("|", "\\|").replace("\n", " "))
    return "<br>".join(items)


def side_by_side(example: Mapping[str, Any], sides: Sequence[tuple[str, Mapping[str, Any]]],
                 types: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """The long table (one row per gold or found entity: ``column, type, text, start, end, confidence,
    flagged, correct``) and the Markdown lines of the side-by-side table (one row per entity type;
    columns gold, then each side; last rows: correct / found / gold, and dropped hallucinations)."""
    text, gold = example["text"], {(g["start"], g["end"], g["type"]) for g in example["gold"]}
    rows = [{"column": "gold", "type": g["type"], "text": text[g["start"]:g["end"]], "start": g["start"],
             "end": g["end"], "confidence": "", "flagged": "", "correct": ""} for g in example["gold"]]
    for label, res in sides:
        rows += [{"column": label, "type": e["type"], "text": e["text"], "start": e["start"], "end": e["end"],
                  "confidence": round(e["confidence"], 4) if "confidence" in e else "",
                  "flagged": bool(e.get("flagged", False)), "correct": (e["start"], e["end"], e["type"]) in gold}
                 for e in res["entities"]]
    labels = [label.replace("|", "\\|") for label, _ in sides]
    md = ["| type | gold | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(sides)]
    seen = [t for t in types] + sorted({e["type"] for _, r in sides for e in r["entities"]} - set(types))
    for typ in seen:
        cells = [_cell(text, [g for g in example["gold"] if g["type"] == typ], None)]
        cells += [_cell(text, [e for e in r["entities"] if e["type"] == typ], gold) for _, r in sides]
        if any(cells):
            md.append(f"| {typ} | " + " | ".join(c or "-" for c in cells) + " |")
    counts = [f"{len({(e['start'], e['end'], e['type']) for e in r['entities']} & gold)} / "
              f"{len(r['entities'])} / {len(gold)}" for _, r in sides]
    md.append(f"| correct / found / gold | {len(gold)} | " + " | ".join(counts) + " |")
    if any(r["hallucinated"] for _, r in sides):
        hall = ["<br>".join(f"{h['type']}: `{h['text']}`" for h in r["hallucinated"]) or "-" for _, r in sides]
        md.append("| dropped (not in the input) | - | " + " | ".join(hall) + " |")
    return pd.DataFrame(rows, columns=["column", "type", "text", "start", "end", "confidence", "flagged", "correct"]), md


def example_caption(example: Mapping[str, Any], base: Mapping[str, Any], best: Mapping[str, Any],
                    context: Mapping[str, Any]) -> str:
    """Caption of ``ner_example``: the input's provenance, the two methods and why the second was
    chosen, how gold was made, the marks and the threshold."""
    gold_note = ("the IP, service names, software and versions the pipeline started, wherever nmap prints them"
                 if example["kind"] == "real" else "the record's gold entities projected on the text")
    return " ".join([
        f"**ner_example** ({context['run_name']}). Qualitative comparison on one raw Nmap input: "
        f"{KINDS[example['kind']]}, `{example['id']}`, tagged as `tinysec tag --method` tags it.",
        f"Left: {base['label']} (strict F1 {base['f1']:.3f} on the raw test inputs). Right: {best['label']}, the "
        f"best other method by that F1 ({best['f1']:.3f}; identification LLM: {best.get('llm') or 'none'}).",
        f"Gold: {gold_note}. ✓ exact span and type match a gold entity, ✗ does not; (confidence) is the CRF-marginal "
        f"confidence, flagged below {context['threshold']:g}. Neither method saw gold labels.",
    ])


def example_markdown(example: Mapping[str, Any], table: Sequence[str], caption: str) -> str:
    """The whole ``ner_example.md``: caption, the raw input, the side-by-side table."""
    fence = "~~~~" if "```" in example["text"] else "```"
    return "\n".join([caption, "", f"Raw input (Nmap: {KINDS[example['kind']]}, `{example['id']}`):", "",
                      fence, example["text"].rstrip("\n"), fence, "", *table]) + "\n"


__all__ = ["KINDS", "best_method", "example_caption", "example_markdown", "load_example", "method_f1",
           "side_by_side", "tag_example"]
