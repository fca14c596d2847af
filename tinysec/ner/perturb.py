"""Adversarial perturbations of NER samples that keep the labels aligned.

Every operator rewrites one entity and returns an :class:`EntityEdit`: the new entity
characters, each with the offset (inside the entity) of the clean character it came from, or
-1 when inserted, plus symbols inserted *around* the entity (brackets, markup), which are never
part of a span. :func:`perturb_sample` applies an operator family to a sample and returns the
new text, the moved spans, word-level BIO tags and the ``word_map`` (for each perturbed word,
the index of the clean word it came from, or -1 when the word is wholly inserted).

Operators: ``char`` (substitute or delete each entity character with probability ``char_rate``;
it runs on every entity it is drawn for, so about ``char_rate`` of all entity characters change),
``leet``, ``homoglyph``, ``diacritic``, ``zero_width``, ``symbol`` (markup links, brackets,
inner separators) and ``abbreviation`` (known abbreviations, dropped vowels, truncation,
contraction, initials).

The table-driven operators draw from one half of their substitution tables
(:mod:`tinysec.ner.substitutions`): ``half="train"`` for adversarial training variants,
``half="heldout"`` (the default) for the perturbed test sets. ``char`` substitutes random
characters and is the same in both.
"""

from __future__ import annotations

import bisect
import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .labels import spans_to_bio
from .substitutions import HALVES, HELDOUT, table, values
from .tokenize import word_spans

CHAR_PUNCT = ".,-:_/;"


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
def _char_pool(c: str) -> str:
    """Replacement characters of the same class as ``c`` (never ``c`` itself)."""
    if c.isdigit():
        pool = string.digits
    elif c.isupper():
        pool = string.ascii_uppercase
    elif c.isalpha():
        pool = string.ascii_lowercase
    else:
        pool = CHAR_PUNCT
    return "".join(p for p in pool if p != c and p != c.lower())


def op_char(text: str, rng: random.Random, rate: float = 0.12, force: bool = False) -> EntityEdit:
    """Each character, with probability ``rate``, is substituted (same class) or deleted; never all.

    Whitespace is only deleted (a substitute there would be a word of no clean word). ``force``:
    change one character when the draw picked none.
    """
    edits = {i for i in range(len(text)) if rng.random() < rate}
    if force and not edits and text:
        edits = {rng.randrange(len(text))}
    out: list[tuple[str, int]] = []
    deleted = 0
    for i, c in enumerate(text):
        if i not in edits:
            out.append((c, i))
        elif (c.isspace() or rng.random() < 0.5) and len(text) - deleted > 1:
            deleted += 1
        else:
            out.append((rng.choice(_char_pool(c)), i))
    return EntityEdit(out)


def _substitute(text: str, rng: random.Random, subs: dict[str, tuple[str, ...]], rate: float,
                key: Callable[[str], str] = lambda c: c) -> EntityEdit:
    """Replace about ``rate`` of the characters ``subs`` knows (at least one) by one of their values."""
    cands = [i for i, c in enumerate(text) if key(c) in subs]
    keep = {cands[j] for j in _pick(rng, len(cands), rate)}
    return EntityEdit([(rng.choice(subs[key(c)]) if i in keep else c, i) for i, c in enumerate(text)])


def op_leet(text: str, rng: random.Random, rate: float = 0.5, half: str = HELDOUT) -> EntityEdit:
    """Replace letters by leetspeak digits and symbols (``google`` -> ``g00gl3``)."""
    return _substitute(text, rng, table("leet", half), rate, key=str.lower)


def op_homoglyph(text: str, rng: random.Random, rate: float = 0.5, half: str = HELDOUT) -> EntityEdit:
    """Replace Latin letters by look-alikes from other scripts (Cyrillic ``е`` for ``e``)."""
    return _substitute(text, rng, table("homoglyph", half), rate)


def op_diacritic(text: str, rng: random.Random, rate: float = 0.3, half: str = HELDOUT) -> EntityEdit:
    """Add diacritics to letters (``Ubuntu`` -> ``Ubüntu``), precomposed so the length is kept."""
    return _substitute(text, rng, table("diacritic", half), rate)


def op_zero_width(text: str, rng: random.Random, rate: float = 0.3, half: str = HELDOUT) -> EntityEdit:
    """Insert invisible format characters between entity characters."""
    gaps = set(_pick(rng, len(text) - 1, rate)) if len(text) > 1 else set()
    return _insert_after(text, gaps, values("zero_width", half), rng)


def _insert_after(text: str, positions: set[int], chars: tuple[str, ...], rng: random.Random) -> EntityEdit:
    """``text`` with one unlabelled character drawn from ``chars`` after each of ``positions``."""
    out: list[tuple[str, int]] = []
    for i, c in enumerate(text):
        out.append((c, i))
        if i in positions:
            out.append((rng.choice(chars), -1))
    return EntityEdit(out)


def _around(template: str, text: str) -> EntityEdit:
    """Symbols around the entity from a template (``{e}``: the entity, ``{u}``: an unlabelled copy)."""
    before, after = template.format(e="\x00", u=text).split("\x00")
    return EntityEdit(_identity(text), before, after)


def op_symbol(text: str, rng: random.Random, rate: float = 0.2, etype: str | None = None,
              half: str = HELDOUT) -> EntityEdit:
    """Markup or symbol insertion: link markup (domains), symbols around, or inner separators."""
    kind = rng.choice(["markup", "brackets", "dots"]) if etype == "DOMAIN" else rng.choice(["brackets", "dots"])
    if kind == "markup":
        return _around(rng.choice(values("markup", half)), text)
    gaps = [i for i in range(len(text) - 1) if text[i].isalnum() and text[i + 1].isalnum()]
    if kind == "brackets" or not gaps:
        return _around(rng.choice(values("wrapper", half)), text)
    chosen = {gaps[j] for j in _pick(rng, len(gaps), rate)}
    return _insert_after(text, chosen, values("separator", half), rng)


_WORD_RUN = re.compile(r"[A-Za-z]+")
VOWELS = frozenset("aeiouAEIOU")


def _match_case(word: str, abbr: str) -> str:
    if word.isupper():
        return abbr.upper()
    return abbr[:1].upper() + abbr[1:] if word[:1].isupper() else abbr


def _shorten(word: str, style: str) -> str | None:
    """``word`` shortened by one abbreviation style, or None when the style does not apply."""
    if style == "vowels" and len(word) >= 4:
        out = word[0] + "".join(c for c in word[1:] if c not in VOWELS)
    elif style == "truncate" and len(word) >= 6:
        out = word[:4] + "."
    elif style == "contract" and len(word) >= 6:
        out = word[:3] + "'" + word[-1]
    else:
        return None
    return out if out != word else None


def _aligned(word: str, start: int, short: str) -> list[tuple[str, int]]:
    """Characters of ``short`` with the offsets of the word's characters they match in order (-1: none)."""
    out, j = [], 0
    for k, c in enumerate(short):
        hit = next((i for i in range(j, len(word)) if word[i].lower() == c.lower()), -1) if k else 0
        out.append((c, start + hit if hit >= 0 else -1))
        j = hit + 1 if hit >= 0 else j
    return out


def op_abbreviation(text: str, rng: random.Random, half: str = HELDOUT) -> EntityEdit:
    """Abbreviate the words of an entity.

    A word the half's ``abbreviation`` table knows gets its abbreviation (``Corporation`` ->
    ``Corp``); an entity of several words may become its initials (``Amazon Web Services`` ->
    ``AWS``); other words are shortened by a style of the half (``vowels``: ``Cldflr``,
    ``truncate``: ``Clou.``, ``contract``: ``Clo'e``). Entities without letters stay as they are.
    """
    known = table("abbreviation", half)
    styles = list(values("abbreviation_style", half))
    style = rng.choice(styles)
    words = text.split()
    if style == "initials" and len(words) >= 2 and all(w.isalpha() for w in words):
        starts = [m.start() for m in re.finditer(r"\S+", text)]
        return EntityEdit([(text[i].upper(), i) for i in starts])
    order = [style] + [s for s in styles if s != style]
    out: list[tuple[str, int]] = []
    pos = 0
    for m in _WORD_RUN.finditer(text):
        word = m.group(0)
        short = _match_case(word, known[word.lower()][0]) if word.lower() in known else \
            next((r for r in (_shorten(word, s) for s in order) if r), None)
        if short is None:
            continue
        out += [(c, i) for i, c in enumerate(text[pos:m.start()], start=pos)] + _aligned(word, m.start(), short)
        pos = m.end()
    out += [(c, i) for i, c in enumerate(text[pos:], start=pos)]
    return EntityEdit(out)


OPERATORS: dict[str, Callable[..., EntityEdit]] = {
    "char": op_char, "leet": op_leet, "homoglyph": op_homoglyph, "diacritic": op_diacritic,
    "zero_width": op_zero_width, "symbol": op_symbol, "abbreviation": op_abbreviation,
}


def apply_operator(name: str, text: str, rng: random.Random, etype: str | None = None,
                   char_rate: float = 0.12, half: str = HELDOUT, force: bool = False) -> EntityEdit:
    """Run operator ``name`` on one entity string, with substitutions from table half ``half``."""
    if name not in OPERATORS:
        raise ValueError(f"unknown perturbation operator {name!r} (known: {sorted(OPERATORS)})")
    if half not in HALVES:
        raise ValueError(f"unknown substitution half {half!r}; choose from {HALVES}")
    if name == "char":
        return op_char(text, rng, char_rate, force=force)
    if name == "symbol":
        return op_symbol(text, rng, etype=etype, half=half)
    return OPERATORS[name](text, rng, half=half)


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


def _changed(edit: EntityEdit, ent: str) -> bool:
    return bool(edit.before or edit.after) or edit.chars != _identity(ent)


def _entity_edits(text: str, spans: list[dict], operators: Sequence[str], rng: random.Random,
                  entity_prob: float, char_rate: float, half: str) -> tuple[list[EntityEdit], list[str]]:
    """One edit per entity and the operators applied (in entity order).

    Each entity draws an operator; ``char`` always runs (at ``char_rate`` per character), the
    others run with probability ``entity_prob``. At least one entity is perturbed per sample.
    """
    ops = [rng.choice(list(operators)) for _ in spans]
    on = [op == "char" or rng.random() < entity_prob for op in ops]
    if spans and not any(on):
        on[rng.randrange(len(spans))] = True
    ents = [text[sp["start"]:sp["end"]] for sp in spans]
    edits = [apply_operator(op, ent, rng, etype=sp["type"], char_rate=char_rate, half=half) if run
             else EntityEdit(_identity(ent)) for op, run, ent, sp in zip(ops, on, ents, spans)]
    char_ks = [k for k, (op, run) in enumerate(zip(ops, on)) if run and op == "char"]
    if char_ks and not any(_changed(e, ent) for e, ent in zip(edits, ents)):
        k = rng.choice(char_ks)
        edits[k] = op_char(ents[k], rng, char_rate, force=True)
    return edits, [op for op, run in zip(ops, on) if run]


def perturb_sample(text: str, spans: Sequence[dict], operators: Sequence[str], rng: random.Random,
                   entity_prob: float = 0.6, char_rate: float = 0.12, half: str = HELDOUT) -> Perturbed:
    """Perturb the entities of one sample with operators drawn from ``operators`` (see
    :func:`_entity_edits`), substitutions from table half ``half``."""
    spans = sorted(spans, key=lambda s: s["start"])
    edits, used = _entity_edits(text, spans, operators, rng, entity_prob, char_rate, half)
    parts: list[str] = []
    origin: list[int] = []
    new_spans: list[dict] = []
    pos = 0

    def emit(s: str, orig: Sequence[int]) -> None:
        parts.append(s)
        origin.extend(orig)

    for sp, edit in zip(spans, edits):
        emit(text[pos:sp["start"]], range(pos, sp["start"]))
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
