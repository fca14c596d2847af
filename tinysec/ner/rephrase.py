"""Optional LLM rewriting of NER samples.

- :func:`reflect_rephrase`: the identification module's semantic refinement with the study's
  reflection loop. A rewrite must keep every gold entity string verbatim; when one is missing
  the text is regenerated, up to ``max_tries`` times, then the template text is kept (counted
  as a fallback).
- :func:`paraphrase_perturb`: LLM paraphrase perturbations, kept only when the cosine
  similarity to the original (sentence encoder) exceeds the threshold and a syntactic filter
  passes: every entity still present (possibly obfuscated, found through
  :func:`tinysec.ner.identify.normalize`) and no truncation.

A *rewriter* is any callable ``rewriter(requests) -> texts`` taking ``[{id, instruction, input}]``;
:func:`make_rewriter` builds one over a local model (:mod:`tinysec.models.generate`) or an
OpenAI-compatible API (:mod:`tinysec.models.api`). Tests pass stand-in rewriters.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .identify import normalize
from .labels import spans_to_bio
from .tokenize import word_spans, words

log = logging.getLogger(__name__)

Rewriter = Callable[[list[dict]], list[str]]

REPHRASE_INSTRUCTION = (
    "You are a penetration testing analyst. Rewrite the following scan summary as fluent natural "
    "language. Keep every fact, and copy each of these strings exactly as written: {entities}.")
REPHRASE_RETRY = " Your previous rewrite left out: {missing}. Include them exactly."
PARAPHRASE_INSTRUCTION = (
    "Paraphrase or symbolically obfuscate the following text while keeping its contextual meaning. "
    "Keep every entity ({entities}); you may obfuscate how they are written.")


def make_rewriter(entry: Mapping[str, Any], model_dir: str | None, max_new_tokens: int = 256,
                  seed: int = 0) -> Rewriter:
    """Rewriter over a config model entry: ``api:`` sources through the shared API client, others
    through the local model folder ``model_dir``."""
    from ..models.sources import model_entry, parse_source

    gen = {"max_new_tokens": max_new_tokens, "seed": seed}
    if parse_source(entry["source"]).kind == "api":
        from ..models.generate import api_answer_records

        return lambda reqs: [r["answer"] for r in api_answer_records(entry, reqs, gen)]
    from ..models.generate import answer_records

    prompt = {"chat_template": model_entry(entry)["chat_template"]}
    return lambda reqs: [r["answer"] for r in answer_records(model_dir, reqs, gen, prompt=prompt)]


_BOUNDARY_L = r"(?<![\w.\-/@])"
_BOUNDARY_R = r"(?![\w\-/@]|\.\w)"


def locate_entities(text: str, entities: Sequence[tuple[str, str]]) -> tuple[list[dict], list[tuple[str, str]]]:
    """Spans of every whole-word occurrence of each ``(type, text)`` entity in ``text``.

    Longer entities are placed first and occurrences never overlap. Returns ``(spans, missing)``.
    """
    taken = [False] * len(text)
    spans, missing = [], []
    for etype, ent in sorted(set(entities), key=lambda e: -len(e[1])):
        found = False
        for m in re.finditer(_BOUNDARY_L + re.escape(ent) + _BOUNDARY_R, text):
            if any(taken[m.start():m.end()]):
                continue
            taken[m.start():m.end()] = [True] * (m.end() - m.start())
            spans.append({"start": m.start(), "end": m.end(), "type": etype, "text": ent})
            found = True
        if not found:
            missing.append((etype, ent))
    spans.sort(key=lambda s: s["start"])
    return spans, missing


@dataclass
class RephraseResult:
    """Rewritten samples and the loop's counters."""

    samples: list[dict]
    fallbacks: int = 0
    retries: int = 0
    rewritten: int = 0
    tries: list[int] = field(default_factory=list)


def _entities(sample: dict) -> list[tuple[str, str]]:
    return sorted({(s["type"], s["text"]) for s in sample["spans"]})


def reflect_rephrase(samples: Sequence[dict], rewriter: Rewriter, max_tries: int = 3) -> RephraseResult:
    """Rephrase ``samples`` (dicts with ``id``, ``text``, ``spans``) with the reflection loop.

    Rewrites run batched: every round sends the samples still missing an entity. A kept
    rewrite gets new spans (all whole-word occurrences of the gold strings), tokens and tags.
    """
    out = [dict(s) for s in samples]
    pending = {i: [] for i in range(len(out))}  # index -> missing entities of the last try
    tries = [0] * len(out)
    res = RephraseResult(out)
    for attempt in range(max_tries):
        if not pending:
            break
        idx = sorted(pending)
        reqs = []
        for i in idx:
            ents = _entities(out[i])
            instruction = REPHRASE_INSTRUCTION.format(entities="; ".join(t for _, t in ents))
            if pending[i]:
                instruction += REPHRASE_RETRY.format(missing="; ".join(t for _, t in pending[i]))
            reqs.append({"id": out[i]["id"], "instruction": instruction, "input": samples[i]["text"]})
        texts = rewriter(reqs)
        if len(texts) != len(reqs):
            raise ValueError(f"rewriter returned {len(texts)} texts for {len(reqs)} requests")
        if attempt:
            res.retries += len(idx)
        for i, new_text in zip(idx, texts):
            tries[i] += 1
            new_text = (new_text or "").strip()
            spans, missing = locate_entities(new_text, _entities(out[i]))
            if new_text and not missing:
                out[i].update(text=new_text, spans=spans, tokens=words(new_text),
                              tags=spans_to_bio(new_text, spans), rephrased=True)
                res.rewritten += 1
                del pending[i]
            else:
                pending[i] = missing or _entities(out[i])
    for i in pending:
        log.info("sample %s: entities %s still missing after %d rewrites; template kept",
                 out[i]["id"], [t for _, t in pending[i]], tries[i])
        out[i]["rephrased"] = False
    res.fallbacks = len(pending)
    res.tries = tries
    return res


# ---------------------------------------------------------------- paraphrase perturbations
def find_obfuscated(text: str, entities: Sequence[tuple[str, str]]) -> tuple[list[dict], list[tuple[str, str]]]:
    """Like :func:`locate_entities` but matches in normalised text (leet, homoglyphs, zero-width,
    diacritics undone with both halves of the substitution tables: this builds gold labels) and
    reports spans in the original ``text``."""
    norm = normalize(text, full=True)
    norm_ents = [(t, normalize(e, full=True).text) for t, e in entities]
    spans_n, missing_n = locate_entities(norm.text, norm_ents)
    back = {(t, normalize(e, full=True).text): (t, e) for t, e in entities}
    spans = []
    for sp in spans_n:
        a, b = norm.original_span(sp["start"], sp["end"])
        spans.append({"start": a, "end": b, "type": sp["type"], "text": text[a:b]})
    return spans, [back[m] for m in missing_n]


def truncated(original: str, candidate: str, min_length_ratio: float = 0.6) -> bool:
    """A candidate is truncated when it is much shorter than the original or stops mid-sentence."""
    if len(words(candidate)) < min_length_ratio * len(words(original)):
        return True
    return not re.search(r"[.!?)\]\"']\s*$", candidate)


def paraphrase_word_map(clean: dict, text: str, spans: Sequence[dict]) -> list[int]:
    """Words inside an entity map to the clean entity's words (by position); others to -1."""
    clean_words = word_spans(clean["text"])
    by_key: dict[tuple[str, str], list[int]] = {}
    for sp in clean["spans"]:
        ids = [k for k, (a, b) in enumerate(clean_words) if a < sp["end"] and b > sp["start"]]
        by_key.setdefault((sp["type"], normalize(sp["text"], full=True).text), ids)
    out = []
    ws = word_spans(text)
    for a, b in ws:
        hit = next((sp for sp in spans if a < sp["end"] and b > sp["start"]), None)
        if hit is None:
            out.append(-1)
            continue
        ids = by_key.get((hit["type"], normalize(hit["text"], full=True).text), [])
        pos = sum(1 for a2, b2 in ws if a2 < a and a2 >= hit["start"] and b2 <= hit["end"]) if ids else 0
        out.append(ids[min(pos, len(ids) - 1)] if ids else -1)
    return out


#: Why a paraphrase is dropped: similarity not above the threshold, an entity not found in it,
#: or empty / cut short (:func:`truncated`).
DROP_REASONS = ("low_similarity", "missing_entity", "truncated")


@dataclass
class ParaphraseStats:
    """Counters of one paraphrase run: paraphrases requested and kept, and the dropped ones by
    reason (:data:`DROP_REASONS`)."""

    requested: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    similarities: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        sims = self.similarities
        return {"requested": self.requested, "kept": self.kept, **{r: self.dropped[r] for r in DROP_REASONS},
                "mean_similarity": round(sum(sims) / len(sims), 4) if sims else None}


def paraphrase_perturb(samples: Sequence[dict], rewriter: Rewriter, similarity: Callable[[list[str], list[str]], Any],
                       threshold: float, min_length_ratio: float) -> tuple[list[dict], ParaphraseStats]:
    """Paraphrase each sample once and keep those passing the semantic and syntactic filters.

    ``similarity(a, b)`` returns the cosine similarity of ``a[i]`` and ``b[i]`` (e.g.
    :meth:`tinysec.models.embed.SentenceEmbedder.similarity`). Kept rows carry ``orig_id``,
    ``family='paraphrase'``, ``similarity`` and ``word_map``.
    """
    stats = ParaphraseStats(requested=len(samples))
    if not samples:
        return [], stats
    reqs = [{"id": s["id"], "instruction": PARAPHRASE_INSTRUCTION.format(
        entities="; ".join(t for _, t in _entities(s))), "input": s["text"]} for s in samples]
    texts = [(t or "").strip() for t in rewriter(reqs)]
    sims = [float(x) for x in similarity([s["text"] for s in samples], texts)]
    stats.similarities = sims
    kept = []
    for s, text, sim in zip(samples, texts, sims):
        if not text or truncated(s["text"], text, min_length_ratio):
            stats.dropped["truncated"] += 1
            continue
        spans, missing = find_obfuscated(text, _entities(s))
        if missing:
            stats.dropped["missing_entity"] += 1
            continue
        if not sim > threshold:
            stats.dropped["low_similarity"] += 1
            continue
        row = {k: v for k, v in s.items() if k not in ("text", "tokens", "tags", "spans")}
        row.update(id=f"{s['id']}~paraphrase", orig_id=s["id"], family="paraphrase", text=text,
                   tokens=words(text), tags=spans_to_bio(text, spans), spans=spans,
                   word_map=paraphrase_word_map(s, text, spans), similarity=round(sim, 4))
        kept.append(row)
        stats.kept += 1
    return kept, stats


# ---------------------------------------------------------------- rule jobs
def paraphrase_rows(samples: Sequence[dict], cfg: Mapping[str, Any], llm_entry: Mapping[str, Any],
                    llm_dir: str | None, embedder_dir: str, seed: int = 0) -> tuple[list[dict], dict]:
    """Paraphrase (at most ``cfg['max_samples']``; 0: all) samples with the configured model; filtered rows + stats.

    ``cfg`` is the validated ``ner_data.paraphrase`` block (``threshold``, ``min_length_ratio``,
    ``max_new_tokens``, ``max_samples``)."""
    from ..models.embed import SentenceEmbedder

    todo = [s for s in samples if s["spans"]]
    if cfg["max_samples"]:
        todo = todo[:cfg["max_samples"]]
    rewriter = make_rewriter(llm_entry, llm_dir, int(cfg["max_new_tokens"]), seed)
    embedder = SentenceEmbedder(embedder_dir)
    kept, stats = paraphrase_perturb(todo, rewriter, embedder.similarity, float(cfg["threshold"]),
                                     float(cfg["min_length_ratio"]))
    log.info("paraphrases kept: %d of %d", stats.kept, stats.requested)
    return kept, stats.as_dict()


def paraphrase_job(test_path: str, out_path: str, stats_path: str, cfg: Mapping[str, Any],
                   llm_entry: Mapping[str, Any], llm_dir: str | None, embedder_dir: str, seed: int = 0) -> dict:
    """``test.paraphrase.jsonl`` from the test split, plus a stats JSON."""
    from ..io import read_records, write_json, write_jsonl

    kept, stats = paraphrase_rows(read_records(test_path, "ner_test_sentences", allow_empty=True), cfg, llm_entry, llm_dir, embedder_dir, seed)
    write_jsonl(out_path, kept)
    write_json(stats_path, stats)
    return stats
