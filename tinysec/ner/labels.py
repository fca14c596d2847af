"""Entity types and the conversion between character spans and word-level BIO tags.

Spans are dicts ``{start, end, type, text}`` with character offsets into the sample's text.
Words come from :func:`tinysec.ner.tokenize.word_spans`. A word belongs to the span that
covers the most of its characters (ties: the earlier span); the first word of a span gets
``B-``, the following words ``I-``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from ..io import InputError
from ..schema import schema_defaults
from .tokenize import word_spans

#: Default of ``ner_data.entity_types`` in its schema (the study's six types).
DEFAULT_TYPES = tuple(schema_defaults("ner_data.schema.yaml")["entity_types"])


def entity_types(cfg: dict | None = None) -> list[str]:
    """Entity types of the ``ner_data`` config section (``entity_types``), default :data:`DEFAULT_TYPES`."""
    types = list((cfg or {}).get("entity_types") or DEFAULT_TYPES)
    bad = [t for t in types if not t or not t.replace("_", "").isalnum() or not t.isupper()]
    if bad or len(set(types)) != len(types):
        raise ValueError(f"entity_types must be distinct upper-case names, got {types}")
    return types


def bio_labels(types: Iterable[str]) -> list[str]:
    """``['O', 'B-T1', 'I-T1', 'B-T2', ...]`` (a fixed order, usable as a label vocabulary)."""
    out = ["O"]
    for t in types:
        out += [f"B-{t}", f"I-{t}"]
    return out


def check_spans(text: str, spans: Sequence[dict], where: str = "<sample>", row: int | None = None,
                types: Iterable[str] | None = None, words: Sequence[tuple[int, int]] | None = None) -> None:
    """Raise :class:`InputError` naming ``where``/``row`` when a span does not match the text.

    With ``words`` (word spans of ``text``), a span must also start and end on word boundaries,
    so its word-level BIO tags describe exactly it.
    """
    allowed = set(types) if types is not None else None
    starts = {a for a, _ in words} if words is not None else None
    ends = {b for _, b in words} if words is not None else None
    prev_end = -1
    for sp in sorted(spans, key=lambda s: (s["start"], s["end"])):
        start, end = sp.get("start"), sp.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise InputError(where, f"span {sp} is outside the text (length {len(text)})", row=row, field="spans")
        if "text" in sp and text[start:end] != sp["text"]:
            raise InputError(where, f"span {start}:{end} reads {text[start:end]!r}, expected {sp['text']!r}",
                             row=row, field="spans")
        if allowed is not None and sp.get("type") not in allowed:
            raise InputError(where, f"span type {sp.get('type')!r} is not one of {sorted(allowed)}",
                             row=row, field="spans")
        if starts is not None and (start not in starts or end not in ends):
            raise InputError(where, f"span {start}:{end} {text[start:end]!r} does not start and end on word "
                             "boundaries", row=row, field="spans")
        if start < prev_end:
            raise InputError(where, f"span {start}:{end} overlaps the previous span", row=row, field="spans")
        prev_end = end


def spans_to_bio(text: str, spans: Sequence[dict], words: Sequence[tuple[int, int]] | None = None) -> list[str]:
    """Word-level BIO tags of ``text`` for character ``spans``."""
    words = word_spans(text) if words is None else words
    tags = ["O"] * len(words)
    owner: list[int | None] = [None] * len(words)
    best = [0] * len(words)
    ends = [e for _, e in words]
    for si, sp in enumerate(spans):
        wi = bisect.bisect_right(ends, sp["start"])  # first word ending after the span starts
        while wi < len(words) and words[wi][0] < sp["end"]:
            ws, we = words[wi]
            overlap = min(we, sp["end"]) - max(ws, sp["start"])
            if overlap > best[wi]:
                owner[wi], best[wi] = si, overlap
            wi += 1
    prev = None
    for wi, si in enumerate(owner):
        if si is not None:
            tags[wi] = ("I-" if si == prev else "B-") + spans[si]["type"]
        prev = si
    return tags


def bio_to_spans(text: str, tags: Sequence[str], words: Sequence[tuple[int, int]] | None = None) -> list[dict]:
    """Character spans from word-level BIO tags (an ``I-`` without a matching start opens a span)."""
    words = word_spans(text) if words is None else words
    if len(words) != len(tags):
        raise ValueError(f"{len(tags)} tags for {len(words)} words")
    spans: list[dict] = []
    cur: dict | None = None
    for (ws, we), tag in zip(words, tags):
        kind, _, typ = tag.partition("-")
        if kind == "I" and cur is not None and cur["type"] == typ:
            cur["end"] = we
            continue
        if cur is not None:
            spans.append(cur)
            cur = None
        if kind in ("B", "I"):
            cur = {"start": ws, "end": we, "type": typ}
    if cur is not None:
        spans.append(cur)
    for sp in spans:
        sp["text"] = text[sp["start"]:sp["end"]]
    return spans
