"""Tag-time identification and extraction with an LLM (the study's three-module chain).

For one input text (a raw tool output, as the tagger view shows it) :func:`tag_with_chain` runs:

1. **context assessment**: :func:`tinysec.ner.identify.classify_context` of the text;
2. **template selection**: the rephrasing prompt of that context (:data:`CONTEXT_PROMPTS`);
3. **LLM rephrasing** of the input into natural-language segments;
4. **omission check** (reflection, up to ``rounds`` times): the LLM is shown the ORIGINAL INPUT
   and its segments and asked what the segments leave out; a listed item counts as an omission
   only when it occurs in the original input and not in the segments; when there is one, the
   segments are regenerated with the omissions named;
5. **encoder + CRF tagging** of the final segments (:class:`tinysec.ner.postprocess.Tagger`);
6. **mapping back**: each entity's text is searched in the original input (whole words, then
   through the identification module's normaliser); its occurrences there become the spans of
   the result. An entity not found in the original input is dropped and counted as a
   hallucination. When the LLM wrote nothing, the input itself is tagged (a counted fallback)
   and its spans are kept as they are.

No function here takes gold labels: the prompts are built from the input text alone. Every LLM
call goes through :class:`LLMCache` (one JSON file per call under a cache folder, keyed by the
SHA-256 of model, generation settings and prompt) so reruns and other tables reuse answers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .identify import CONTEXT_NAMES, classify_context, normalize
from .rephrase import locate_entities

log = logging.getLogger(__name__)

Rewriter = Callable[[list[dict]], list[str]]

_ROLE = "You are a penetration testing analyst. "
_KEEP = (" Use one short sentence per fact, and copy every address, host name, port, product, version "
         "and organisation exactly as it is written in the input.")
#: Template selection: the rephrasing prompt of each context of :data:`tinysec.ner.identify.CONTEXTS`.
CONTEXT_PROMPTS = {
    "host": _ROLE + "Describe this port scan in natural language: the scanned host, each open or closed "
            "port with its service and the software that answers." + _KEEP,
    "dns": _ROLE + "Describe this DNS answer in natural language: each queried name and the records it "
           "resolves to (addresses, mail exchangers, name servers)." + _KEEP,
    "registration": _ROLE + "Describe this domain registration in natural language: the domain, its "
                    "registrar, registrant organisation, name servers and dates." + _KEEP,
    "banner": _ROLE + "Describe this service banner record in natural language: the host, its "
              "organisation, each port and the software and version it runs." + _KEEP,
    "vulnerability": _ROLE + "Describe this vulnerability evidence in natural language: the host, the "
                     "affected software and versions, and each vulnerability identifier." + _KEEP,
}
REFLECT_PROMPT = (
    "Compare the original input below with this rewrite of it:\n---\n{segments}\n---\n"
    "List every address, host name, port, product, version or organisation of the original input "
    "that the rewrite leaves out, one per line. Answer NONE when nothing is missing.")
RETRY_NOTE = " Your previous rewrite left out: {missing}. Include them exactly."
_ITEM = re.compile(r"[\w][\w.:/@-]*[\w]|\w")


def _hash(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class LLMCache:
    """A rewriter that answers from ``<folder>/<sha256>.json`` when the same call (model key,
    generation settings, instruction, input) was answered before, and calls ``rewriter`` for the
    rest (batched). ``hits`` / ``misses`` count calls."""

    def __init__(self, rewriter: Rewriter, folder: str | os.PathLike, model_key: Mapping[str, Any]):
        self.rewriter, self.folder, self.model_key = rewriter, Path(folder), dict(model_key)
        self.hits = self.misses = 0

    def _path(self, req: Mapping[str, Any]) -> Path:
        key = _hash({"model": self.model_key, "instruction": req["instruction"], "input": req.get("input", "")})
        return self.folder / key[:2] / f"{key}.json"

    def __call__(self, reqs: list[dict]) -> list[str]:
        paths = [self._path(r) for r in reqs]
        out: list[str | None] = [None] * len(reqs)
        for i, p in enumerate(paths):
            if p.is_file():
                try:
                    out[i] = json.loads(p.read_text("utf-8"))["answer"]
                except (ValueError, KeyError):
                    log.warning("unreadable LLM cache entry %s: calling the model again", p)
        todo = [i for i, v in enumerate(out) if v is None]
        self.hits += len(reqs) - len(todo)
        self.misses += len(todo)
        if todo:
            texts = self.rewriter([reqs[i] for i in todo])
            if len(texts) != len(todo):
                raise ValueError(f"LLM returned {len(texts)} answers for {len(todo)} requests")
            for i, text in zip(todo, texts):
                out[i] = text or ""
                paths[i].parent.mkdir(parents=True, exist_ok=True)
                tmp = paths[i].with_suffix(".tmp")
                tmp.write_text(json.dumps({"answer": out[i]}, ensure_ascii=False), "utf-8")
                tmp.replace(paths[i])
        return [str(v) for v in out]


@dataclass
class Segments:
    """The identification and extraction modules' result for one input."""

    context: str
    text: str
    rounds: int = 0                 # omission checks run
    regenerated: int = 0            # rewrites after an omission was found
    omissions: list[str] = field(default_factory=list)  # still missing after the last check
    fallback: bool = False          # the LLM gave no text: the input itself is tagged


def select_template(context: str) -> str:
    """Adaptive template selection: the rephrasing prompt of ``context``."""
    if context not in CONTEXT_PROMPTS:
        raise ValueError(f"no rephrasing template for context {context!r}; known: {sorted(CONTEXT_PROMPTS)}")
    return CONTEXT_PROMPTS[context]


def omissions(original: str, segments: str, answer: str) -> list[str]:
    """Items the LLM's omission check lists that really occur in ``original`` (whole words) and
    not in ``segments``; 'NONE' or an empty answer lists none."""
    if not answer.strip() or answer.strip().upper().startswith("NONE"):
        return []
    found: list[str] = []
    for item in _ITEM.findall(answer):
        if len(item) < 2 or item in found:
            continue
        in_orig, _ = locate_entities(original, [("X", item)])
        in_seg, _ = locate_entities(segments, [("X", item)])
        if in_orig and not in_seg:
            found.append(item)
    return found


def _rephrase_requests(texts: Sequence[str], idx: Sequence[int], prompts: Sequence[str],
                       missing: Mapping[int, list[str]]) -> list[dict]:
    reqs = []
    for i in idx:
        instruction = prompts[i] + (RETRY_NOTE.format(missing="; ".join(missing[i])) if missing.get(i) else "")
        reqs.append({"id": f"rephrase-{i}", "instruction": instruction, "input": texts[i]})
    return reqs


def identify_and_extract(texts: Sequence[str], llm: Rewriter, rounds: int) -> list[Segments]:
    """Steps 1-4 for every text (batched over texts): context, template, rephrasing, and up to
    ``rounds`` omission checks against the original input with regeneration."""
    contexts = [classify_context(t) for t in texts]
    prompts = [select_template(c) for c in contexts]
    out = [Segments(c, "") for c in contexts]
    missing: dict[int, list[str]] = {}
    pending = list(range(len(texts)))
    for attempt in range(rounds + 1):
        answers = llm(_rephrase_requests(texts, pending, prompts, missing)) if pending else []
        for i, ans in zip(pending, answers):
            out[i].text = (ans or "").strip()
            out[i].regenerated += 1 if attempt else 0
        if attempt == rounds:
            break
        check = [i for i in pending if out[i].text]
        reqs = [{"id": f"reflect-{i}", "instruction": REFLECT_PROMPT.format(segments=out[i].text),
                 "input": texts[i]} for i in check]
        answers = llm(reqs) if reqs else []
        pending = []
        for i, ans in zip(check, answers):
            out[i].rounds += 1
            missing[i] = omissions(texts[i], out[i].text, ans)
            out[i].omissions = missing[i]
            if missing[i]:
                pending.append(i)
        if not pending:
            break
    for i, seg in enumerate(out):
        if not seg.text:
            seg.text, seg.fallback = texts[i], True
    return out


def map_back(original: str, entities: Sequence[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Entities found in the segments -> spans of ``original``: every whole-word occurrence of the
    entity's text, else of its normalised form in the normalised original. Returns ``(kept,
    hallucinated)``; an entity found nowhere in the original is hallucinated."""
    norm = normalize(original)
    kept: dict[tuple[int, int, str], dict] = {}
    hallucinated = []
    for ent in entities:
        spans, _ = locate_entities(original, [(ent["type"], ent["text"])])
        if not spans:
            n_spans, _ = locate_entities(norm.text, [(ent["type"], normalize(ent["text"]).text)])
            spans = [dict(zip(("start", "end"), norm.original_span(s["start"], s["end"]))) for s in n_spans]
        if not spans:
            hallucinated.append({"type": ent["type"], "text": ent["text"]})
            continue
        for sp in spans:
            key = (sp["start"], sp["end"], ent["type"])
            extra = {k: ent[k] for k in ("confidence", "flagged", "confidence_raw") if k in ent}
            prev = kept.get(key)
            if prev is None or extra.get("confidence", 0) > prev.get("confidence", 0):
                kept[key] = {"start": sp["start"], "end": sp["end"], "type": ent["type"],
                             "text": original[sp["start"]:sp["end"]], **extra}
    return sorted(kept.values(), key=lambda e: (e["start"], e["end"])), hallucinated


def tag_with_chain(texts: Sequence[str], tagger, llm: Rewriter, rounds: int) -> list[dict]:
    """Steps 1-6 for every text: ``{entities, hallucinated, segments, context, rounds, regenerated,
    omissions, fallback}`` with entity spans in the original text."""
    segs = identify_and_extract(texts, llm, rounds)
    tagged = tagger.tag([s.text for s in segs])
    out = []
    for text, seg, res in zip(texts, segs, tagged):
        # a fallback tagged the input itself: its spans are already spans of the input
        kept, hall = (res["entities"], []) if seg.fallback else map_back(text, res["entities"])
        out.append({"entities": kept, "hallucinated": hall, "segments": seg.text, "context": seg.context,
                    "rounds": seg.rounds, "regenerated": seg.regenerated, "omissions": seg.omissions,
                    "fallback": seg.fallback})
    return out


def chain_llm(entry: Mapping[str, Any], name: str, model_dir: str | None, cache_dir: str | os.PathLike,
              max_new_tokens: int, seed: int) -> LLMCache:
    """The cached rewriter of model ``name`` (config entry ``entry``; local weights in ``model_dir``)."""
    from .rephrase import make_rewriter

    key = {"name": name, "source": entry["source"], "model": (entry.get("api") or {}).get("model", ""),
           "max_new_tokens": max_new_tokens, "seed": seed}
    return LLMCache(make_rewriter(entry, model_dir, max_new_tokens, seed), cache_dir, key)


__all__ = ["CONTEXT_NAMES", "CONTEXT_PROMPTS", "LLMCache", "Segments", "identify_and_extract", "map_back",
           "omissions", "select_template", "tag_with_chain", "chain_llm"]
