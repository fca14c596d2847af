"""Adversarial perturbations of NER samples that keep the labels aligned.

Every operator rewrites one entity and returns an :class:`EntityEdit`: the new entity
characters, each with the offset (inside the entity) of the clean character it came from, or
-1 when inserted, plus symbols inserted *around* the entity (brackets, markup), which are never
part of a span. :func:`perturb_sample` applies an operator family to a sample and returns the
new text, the moved spans, word-level BIO tags and the ``word_map`` (for each perturbed word,
the index of the clean word it came from, or -1 when the word is wholly inserted).

Operators: ``char`` (substitute/delete about ``char_rate`` of the entity characters),
``leet``, ``homoglyph``, ``diacritic``, ``zero_width`` and ``symbol`` (markup links, brackets,
inner dots).
"""

from __future__ import annotations

import bisect
import random
import string
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Sequence

from .identify import confusable_map
from .labels import spans_to_bio
from .tokenize import word_spans

ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060")
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "l": "1", "g": "9", "b": "8"}
DIACRITICS = ("\u0308", "\u0301", "\u0300", "\u0302", "\u0303")  # diaeresis, acute, grave, circumflex, tilde


@dataclass
class EntityEdit:
    """New entity characters with their clean offsets (-1: inserted) and symbols around them."""

    chars: list[tuple[str, int]]
    before: str = ""
    after: str = ""


@dataclass
class Perturbed:
    """A perturbed sample: text, spans, BIO tags, word_map and per-character origins."""

    text: str
    spans: list[dict]
    tags: list[str]
    word_map: list[int]
    origin: list[int] = field(repr=False)
    operators: list[str] = field(default_factory=list)
    words: list[tuple[int, int]] = field(default_factory=list, repr=False)


def _identity(text: str) -> list[tuple[str, int]]:
    return [(c, i) for i, c in enumerate(text)]


def _pick(rng: random.Random, n: int, rate: float) -> list[int]:
    """Indices chosen with probability ``rate`` each, at least one when ``n > 0``."""
    chosen = [i for i in range(n) if rng.random() < rate]
    return chosen or ([rng.randrange(n)] if n else [])


# ---------------------------------------------------------------- operators
def op_char(text: str, rng: random.Random, rate: float = 0.12) -> EntityEdit:
    """Substitute (same character class) or delete about ``rate`` of the characters; never all."""
    chars = _identity(text)
    edits = set(_pick(rng, len(text), rate))
    out = []
    for i, (c, o) in enumerate(chars):
        if i not in edits:
            out.append((c, o))
            continue
        deletable = len(text) - sum(1 for j in edits if j < i) > 1
        if rng.random() < 0.5 and deletable:
            continue  # deletion
        if c.isdigit():
            pool = string.digits
        elif c.isupper():
            pool = string.ascii_uppercase
        elif c.isalpha():
            pool = string.ascii_lowercase
        else:
            out.append((c, o))  # punctuation inside an entity is kept
            continue
        out.append((rng.choice([p for p in pool if p != c.lower() and p != c]), o))
    if not out:
        out = chars[:1]
    return EntityEdit(out)


def op_leet(text: str, rng: random.Random, rate: float = 0.5) -> EntityEdit:
    """Replace letters by leetspeak digits (``google`` -> ``g00gl3``)."""
    cands = [i for i, c in enumerate(text) if c.lower() in LEET]
    keep = {cands[j] for j in _pick(rng, len(cands), rate)}
    return EntityEdit([(LEET[c.lower()] if i in keep else c, i) for i, c in enumerate(text)])


@lru_cache(maxsize=1)
def homoglyphs() -> dict[str, list[str]]:
    """ASCII letter -> Cyrillic/Greek look-alikes (inverse of the confusables fold map)."""
    inv: dict[str, list[str]] = {}
    for ch, base in confusable_map().items():
        if not (base.isalpha() and ch.isalpha() and unicodedata.normalize("NFKC", ch) == ch):
            continue
        name = unicodedata.name(ch, "")
        if name.startswith(("CYRILLIC", "GREEK")) and ch.isupper() == base.isupper():
            inv.setdefault(base, []).append(ch)
    return {k: sorted(v) for k, v in inv.items()}


def op_homoglyph(text: str, rng: random.Random, rate: float = 0.5) -> EntityEdit:
    """Replace Latin letters by Cyrillic/Greek homoglyphs (``е`` for ``e``)."""
    table = homoglyphs()
    cands = [i for i, c in enumerate(text) if c in table]
    keep = {cands[j] for j in _pick(rng, len(cands), rate)}
    return EntityEdit([(rng.choice(table[c]) if i in keep else c, i) for i, c in enumerate(text)])


@lru_cache(maxsize=1)
def diacritic_variants() -> dict[str, list[str]]:
    """ASCII letter -> its precomposed variants with one of :data:`DIACRITICS`."""
    out = {}
    for c in string.ascii_letters:
        options = [unicodedata.normalize("NFC", c + m) for m in DIACRITICS]
        options = [o for o in options if len(o) == 1]
        if options:
            out[c] = options
    return out


def op_diacritic(text: str, rng: random.Random, rate: float = 0.3) -> EntityEdit:
    """Add diacritics to letters (``Ubuntu`` -> ``Ubüntu``), precomposed so the length is kept."""
    table = diacritic_variants()
    cands = [i for i, c in enumerate(text) if c in table]
    keep = {cands[j] for j in _pick(rng, len(cands), rate)}
    return EntityEdit([(rng.choice(table[c]) if i in keep else c, i) for i, c in enumerate(text)])


def op_zero_width(text: str, rng: random.Random, rate: float = 0.3) -> EntityEdit:
    """Insert zero-width characters between entity characters."""
    gaps = _pick(rng, len(text) - 1, rate) if len(text) > 1 else []
    out: list[tuple[str, int]] = []
    for i, c in enumerate(text):
        out.append((c, i))
        if i in gaps:
            out.append((rng.choice(ZERO_WIDTH), -1))
    return EntityEdit(out)


def op_symbol(text: str, rng: random.Random, rate: float = 0.2, etype: str | None = None) -> EntityEdit:
    """Markup or symbol insertion: a Markdown link (domains), brackets around, or inner dots."""
    kind = rng.choice(["markup", "brackets", "dots"]) if etype == "DOMAIN" else rng.choice(["brackets", "dots"])
    chars = _identity(text)
    if kind == "markup":
        return EntityEdit(chars, "[", f"](https://www.{text})")
    if kind == "brackets":
        left, right = rng.choice([("[", "]"), ("(", ")"), ("<", ">"), ("**", "**"), ('"', '"')])
        return EntityEdit(chars, left, right)
    gaps = [i for i in range(len(text) - 1) if text[i].isalnum() and text[i + 1].isalnum()]
    if not gaps:
        return EntityEdit(chars, "[", "]")
    chosen = {gaps[j] for j in _pick(rng, len(gaps), rate)}
    out: list[tuple[str, int]] = []
    for i, c in enumerate(text):
        out.append((c, i))
        if i in chosen:
            out.append((rng.choice(".-"), -1))
    return EntityEdit(out)


OPERATORS: dict[str, Callable[..., EntityEdit]] = {
    "char": op_char, "leet": op_leet, "homoglyph": op_homoglyph, "diacritic": op_diacritic,
    "zero_width": op_zero_width, "symbol": op_symbol,
}


def apply_operator(name: str, text: str, rng: random.Random, etype: str | None = None,
                   char_rate: float = 0.12) -> EntityEdit:
    """Run operator ``name`` on one entity string."""
    if name not in OPERATORS:
        raise ValueError(f"unknown perturbation operator {name!r} (known: {sorted(OPERATORS)})")
    if name == "char":
        return op_char(text, rng, char_rate)
    if name == "symbol":
        return op_symbol(text, rng, etype=etype)
    return OPERATORS[name](text, rng)


# ---------------------------------------------------------------- samples
def word_map(clean_text: str, new_text: str, origin: Sequence[int],
             clean_words: Sequence[tuple[int, int]] | None = None,
             new_words: Sequence[tuple[int, int]] | None = None) -> list[int]:
    """For each word of ``new_text``, the index of the clean word its first kept char came from, or -1."""
    clean_words = word_spans(clean_text) if clean_words is None else clean_words
    new_words = word_spans(new_text) if new_words is None else new_words
    starts = [s for s, _ in clean_words]
    out = []
    for ws, we in new_words:
        src = next((origin[i] for i in range(ws, we) if origin[i] >= 0), -1)
        if src < 0:
            out.append(-1)
            continue
        k = bisect.bisect_right(starts, src) - 1
        out.append(k if k >= 0 and clean_words[k][0] <= src < clean_words[k][1] else -1)
    return out


def perturb_sample(text: str, spans: Sequence[dict], operators: Sequence[str], rng: random.Random,
                   entity_prob: float = 0.6, char_rate: float = 0.12) -> Perturbed:
    """Perturb the entities of one sample with operators drawn from ``operators``.

    Each entity is perturbed with probability ``entity_prob`` (at least one per sample).
    """
    spans = sorted(spans, key=lambda s: s["start"])
    chosen = set(_pick(rng, len(spans), entity_prob))
    parts: list[str] = []
    origin: list[int] = []
    new_spans: list[dict] = []
    used: list[str] = []
    pos = 0

    def emit(s: str, orig: Sequence[int]) -> None:
        parts.append(s)
        origin.extend(orig)

    for k, sp in enumerate(spans):
        emit(text[pos:sp["start"]], range(pos, sp["start"]))
        ent = text[sp["start"]:sp["end"]]
        if k in chosen:
            op = rng.choice(list(operators))
            edit = apply_operator(op, ent, rng, etype=sp["type"], char_rate=char_rate)
            used.append(op)
        else:
            edit = EntityEdit(_identity(ent))
        emit(edit.before, [-1] * len(edit.before))
        start = len(origin)
        emit("".join(c for c, _ in edit.chars), [sp["start"] + o if o >= 0 else -1 for _, o in edit.chars])
        end = len(origin)
        emit(edit.after, [-1] * len(edit.after))
        new_spans.append({"start": start, "end": end, "type": sp["type"]})
        pos = sp["end"]
    emit(text[pos:], range(pos, len(text)))
    new_text = "".join(parts)
    for sp in new_spans:
        sp["text"] = new_text[sp["start"]:sp["end"]]
    new_words = word_spans(new_text)
    return Perturbed(new_text, new_spans, spans_to_bio(new_text, new_spans, new_words),
                     word_map(text, new_text, origin, new_words=new_words), origin, used, new_words)
