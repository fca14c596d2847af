"""LLMs used directly as NER systems (the study's comparison rows, "<LLM> (direct)").

Each test input is sent to the LLM with the prompt of ``resources/ner/direct_prompt.txt`` (the
entity type list of the label set filled in; the input text is the only other content, so no
gold label reaches the LLM). The answer is parsed as a JSON list of ``{type, text}`` entities
(:func:`parse_entities`):

- an answer holding no JSON value of a known shape is *invalid*: no entities, counted;
- an entity whose type is not in the label set is dropped and counted (``unknown_type``);
- the remaining entity strings go through the tag-time chain's mapping
  (:func:`tinysec.ner.chain.map_back`): every whole-word occurrence in the input (else through
  the normaliser) becomes a span; a string found nowhere in the input is dropped and counted as a
  hallucination.

Calls go through :class:`tinysec.ner.chain.LLMCache` (content-hash cache shared with the chain).
Predictions rows have the layout of :mod:`tinysec.ner.methods` (test set ``clean``) plus
``answer``, ``invalid`` and ``unknown_type``, so the NER tables score them with the same strict
span metric.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..io import InputError, read_text, write_json, write_jsonl
from ..paths import resource
from .chain import map_back

log = logging.getLogger(__name__)

Rewriter = Callable[[list[dict]], list[str]]

#: The shipped direct-NER prompt; ``{types}`` is replaced by the entity types.
PROMPT_FILE = resource("ner", "direct_prompt.txt")
_TEXT_KEYS = ("text", "entity", "value", "name", "span")
_TYPE_KEYS = ("type", "label", "entity_type", "category")
_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)


def load_prompt(path: str | os.PathLike = PROMPT_FILE) -> str:
    """The prompt template at ``path``; it must contain ``{types}``."""
    template = read_text(path)
    if "{types}" not in template:
        raise InputError(path, "the direct-NER prompt has no {types} placeholder for the entity types")
    return template.strip()


def build_instruction(template: str, types: Sequence[str]) -> str:
    """The instruction sent with every input: ``template`` with the entity types filled in."""
    return template.replace("{types}", ", ".join(types))


def _json_values(answer: str) -> list[Any]:
    """The JSON arrays and objects of ``answer`` (code fences removed), in order; a value nested in
    one that decoded is not returned on its own."""
    text = _FENCE.sub(" ", answer)
    dec = json.JSONDecoder()
    out, pos = [], 0
    while (m := re.compile(r"[\[{]").search(text, pos)) is not None:
        try:
            value, pos = dec.raw_decode(text, m.start())
            out.append(value)  # values nested in it are not tried on their own
        except ValueError:
            pos = m.start() + 1
    return out


def _first(obj: dict, keys: Sequence[str]) -> Any:
    low = {str(k).lower(): v for k, v in obj.items()}
    return next((low[k] for k in keys if k in low), None)


def _single(value: Any) -> tuple[Any, Any] | None:
    """``(type, text)`` of one entity object ``{"type": ..., "text": ...}`` (key aliases allowed)."""
    if isinstance(value, dict) and _first(value, _TEXT_KEYS) is not None:
        return _first(value, _TYPE_KEYS), _first(value, _TEXT_KEYS)
    return None


def _entity_list(value: Any) -> list[tuple[Any, Any]] | None:
    """``[(type, text)]`` of one JSON value of a known shape: a list of entity objects (or of
    ``[type, text]`` pairs), ``{"entities": [...]}``, or ``{TYPE: [texts]}``; None otherwise (a
    single entity object too: see :func:`parse_entities`)."""
    if isinstance(value, dict) and isinstance(_first(value, ("entities",)), list):
        return _entity_list(_first(value, ("entities",)))
    if _single(value) is not None:
        return None
    if isinstance(value, dict):
        pairs = []
        for typ, texts in value.items():
            for t in texts if isinstance(texts, list) else [texts]:
                if not isinstance(t, (str, int, float)):
                    return None
                pairs.append((typ, t))
        return pairs
    if not isinstance(value, list):
        return None
    pairs = []
    for item in value:
        if (pair := _single(item)) is not None:
            pairs.append(pair)
        elif isinstance(item, list) and len(item) == 2:
            pairs.append((item[0], item[1]))
        else:
            return None
    return pairs


def parse_entities(answer: str, types: Sequence[str]) -> tuple[list[dict] | None, list[dict]]:
    """``(entities, unknown_type)`` of one LLM answer: entities ``{type, text}`` with a type of
    ``types`` (case-insensitive) and a non-empty text, and the entities whose type is not one of
    them. The first JSON list of a known shape is used; without one, the separate entity objects of
    the answer (a list cut off by the token limit leaves its complete objects). ``entities`` is None
    when the answer holds neither (invalid)."""
    values = _json_values(answer or "")
    pairs = next((p for p in map(_entity_list, values) if p is not None), None)
    if pairs is None:
        pairs = [p for p in map(_single, values) if p is not None] or None
    if pairs is None:
        return None, []
    known = {t.upper(): t for t in types}
    ents, unknown, seen = [], [], set()
    for typ, text in pairs:
        text = str(text).strip() if isinstance(text, (str, int, float)) else ""
        typ = str(typ).strip() if typ is not None else ""
        if not text:
            continue
        if typ.upper() not in known:
            unknown.append({"type": typ, "text": text})
        elif (known[typ.upper()], text) not in seen:
            seen.add((known[typ.upper()], text))
            ents.append({"type": known[typ.upper()], "text": text})
    return ents, unknown


def tag_direct(texts: Sequence[str], llm: Rewriter, types: Sequence[str], template: str) -> list[dict]:
    """Ask the LLM for the entities of each text (one batched call) and map them to spans of the
    text. Per text: ``{entities, hallucinated, unknown_type, invalid, answer}``."""
    instruction = build_instruction(template, types)
    answers = llm([{"id": f"direct-{i}", "instruction": instruction, "input": t} for i, t in enumerate(texts)])
    if len(answers) != len(texts):
        raise ValueError(f"LLM returned {len(answers)} answers for {len(texts)} inputs")
    out = []
    for text, answer in zip(texts, answers):
        ents, unknown = parse_entities(answer, types)
        kept, hall = map_back(text, ents or [])
        out.append({"entities": kept, "hallucinated": hall, "unknown_type": unknown,
                    "invalid": ents is None, "answer": answer})
    return out


def direct_stats(results: Sequence[dict], inputs_total: int) -> dict:
    """Counters of one direct run: inputs, invalid answers, entities kept, hallucinated, unknown type."""
    return {"kind": "direct", "inputs": len(results), "inputs_total": inputs_total,
            "invalid_answers": sum(r["invalid"] for r in results),
            "entities": sum(len(r["entities"]) for r in results),
            "hallucinated": sum(len(r["hallucinated"]) for r in results),
            "unknown_type": sum(len(r["unknown_type"]) for r in results), "saw_gold_labels": False}


def predict_direct(llm: Rewriter, types: Sequence[str], test_path: str, out_path: str, stats_path: str,
                   max_rows: int | None = None, seed: int = 0, prompt_path: str | os.PathLike = PROMPT_FILE) -> dict:
    """Tag a seeded, source-stratified sample of ``max_rows`` (None: all) raw test inputs of
    ``test_path`` with the LLM directly; write the predictions (layout of the method rows) and the
    stats (with the LLM calls and cache hits when ``llm`` is an :class:`~tinysec.ner.chain.LLMCache`)."""
    from .methods import _prediction_row, _rows
    from .train import stratified_sample

    rows = _rows(test_path)
    picked = stratified_sample(rows, max_rows, seed)
    results = tag_direct([r["text"] for r in picked], llm, types, load_prompt(prompt_path))
    preds = [{**_prediction_row(r, res), "answer": res["answer"], "invalid": res["invalid"],
              "unknown_type": res["unknown_type"]} for r, res in zip(picked, results)]
    write_jsonl(out_path, preds)
    stats = direct_stats(results, len(rows))
    if hasattr(llm, "misses"):
        stats.update(llm_calls=llm.misses, cache_hits=llm.hits)
    write_json(stats_path, stats)
    log.info("direct NER: %s", stats)
    return stats


__all__ = ["PROMPT_FILE", "build_instruction", "direct_stats", "load_prompt", "parse_entities", "predict_direct",
           "tag_direct"]
