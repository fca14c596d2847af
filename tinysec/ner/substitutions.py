"""Substitution tables of the perturbation operators, each split into a training and a held-out half.

Every table maps a key (an ASCII letter, a word, or ``*`` for a plain list) to the values an
operator may put in its place:

========================  ==========================================================================
``homoglyph``             ASCII letter -> look-alike letters of other scripts (Unicode confusables
                          data of the ``confusable-homoglyphs`` package; BMP, NFKC-stable, same case,
                          no Latin base letter under NFD)
``leet``                  letter -> leetspeak digit or symbol (hand-written)
``diacritic``             ASCII letter -> its precomposed variants with one combining mark
``zero_width``            ``*`` -> invisible format characters
``wrapper``               ``*`` -> templates of symbols around an entity (``[{e}]``)
``markup``                ``*`` -> link markup around a domain (``[{e}](https://www.{u})``)
``separator``             ``*`` -> symbols inserted between two letters or digits of an entity
``abbreviation``          word -> its usual abbreviation (``corporation`` -> ``corp``)
``abbreviation_style``    ``*`` -> rules that shorten a word no table knows (drop vowels, ...)
========================  ==========================================================================

The split is deterministic: within each key, the values are ordered by a SHA-256 hash of
``(table, key, value)`` and dealt alternately to the two halves, starting with the half the hash
of ``(table, key)`` picks; so a key with several values has values in both halves. Adversarial
training variants draw from :data:`TRAIN`, the perturbed test sets from :data:`HELDOUT`, and the
identification module's normaliser (:mod:`tinysec.ner.identify`) is built from :data:`TRAIN`
halves only, so no test substitution is one it folds.
"""

from __future__ import annotations

import hashlib
import json
import string
import unicodedata
from functools import cache, lru_cache
from pathlib import Path

TRAIN = "train"
HELDOUT = "heldout"
HALVES = (TRAIN, HELDOUT)

# one letter per symbol, so folding a symbol back is never ambiguous
LEET = {"a": "4@", "b": "8", "c": "(<", "e": "3", "g": "96", "i": "1!", "l": "|", "o": "0",
        "s": "5$", "t": "7+", "z": "2"}
# grave, acute, circumflex, tilde, macron, breve, dot above, diaeresis, ring, double acute, caron,
# dot below, cedilla, ogonek
MARKS = "\u0300\u0301\u0302\u0303\u0304\u0306\u0307\u0308\u030a\u030b\u030c\u0323\u0327\u0328"
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad",
              "\u2061", "\u2062", "\u2063", "\u2064", "\u180e")
WRAPPERS = ("[{e}]", "({e})", "<{e}>", "**{e}**", '"{e}"', "'{e}'", "{{{e}}}", "`{e}`", "\u00ab{e}\u00bb",
            "|{e}|")
# ``{e}``: the (labelled) entity; ``{u}``: an unlabelled copy inside the markup
MARKUP = ("[{e}](https://www.{u})", '<a href="https://{u}">{e}</a>', "[url]{e}[/url]", "<https://{e}>")
SEPARATORS = (".", "-", "~", "+")
ABBREVIATIONS = {
    "corporation": "corp", "incorporated": "inc", "limited": "ltd", "company": "co",
    "international": "intl", "technologies": "tech", "technology": "tech", "communications": "comms",
    "systems": "sys", "services": "svcs", "service": "svc", "networks": "nets", "network": "net",
    "management": "mgmt", "government": "govt", "department": "dept", "university": "univ",
    "association": "assn", "laboratories": "labs", "security": "sec", "software": "sw",
    "microsoft": "msft", "server": "srv", "internet": "inet", "information": "info",
    "solutions": "sol", "hosting": "hstg", "cloudflare": "cf", "amazon": "amzn", "google": "goog",
    "apache": "apch", "openssh": "ossh", "development": "dev", "administration": "admin",
}
ABBREVIATION_STYLES = ("vowels", "truncate", "initials", "contract")
RESOURCES = ("homoglyph", "leet", "diacritic", "zero_width", "wrapper", "markup", "separator",
             "abbreviation", "abbreviation_style")


def _hash(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()[:8], "big")


def split_table(name: str, full: dict[str, tuple[str, ...]]) -> dict[str, dict[str, tuple[str, ...]]]:
    """``{TRAIN: table, HELDOUT: table}``: each key's values dealt alternately in hash order."""
    out: dict[str, dict[str, list[str]]] = {TRAIN: {}, HELDOUT: {}}
    for key, values in full.items():
        first = _hash(name, key) % 2
        for i, value in enumerate(sorted(set(values), key=lambda v: _hash(name, key, v))):
            out[HALVES[(first + i) % 2]].setdefault(key, []).append(value)
    return {h: {k: tuple(sorted(v)) for k, v in t.items()} for h, t in out.items()}


@lru_cache(maxsize=1)
def unicode_confusables() -> dict[str, list[str]]:
    """Raw Unicode confusables data (``confusables.json`` of the ``confusable-homoglyphs`` package)."""
    import confusable_homoglyphs

    path = Path(confusable_homoglyphs.__file__).parent / "confusables.json"
    data = json.loads(path.read_text("utf-8"))
    return {key: [g["c"] for g in glyphs] for key, glyphs in data.items()}


def _homoglyph_full() -> dict[str, tuple[str, ...]]:
    """Each look-alike listed under one letter only (the first in sorted order)."""
    out: dict[str, list[str]] = {}
    seen: set[str] = set()
    for key, glyphs in sorted(unicode_confusables().items()):
        if not (len(key) == 1 and key in string.ascii_letters):
            continue
        for c in glyphs:
            if len(c) != 1 or c.isascii() or ord(c) > 0xFFFF or not c.isalpha():
                continue
            base = "".join(x for x in unicodedata.normalize("NFD", c) if not unicodedata.combining(x))
            if unicodedata.normalize("NFKC", c) == c and c.isupper() == key.isupper() and not base.isascii() \
                    and c not in seen:
                seen.add(c)
                out.setdefault(key, []).append(c)
    return {k: tuple(v) for k, v in out.items()}


def _diacritic_full() -> dict[str, tuple[str, ...]]:
    out = {}
    for c in string.ascii_letters:
        options = [unicodedata.normalize("NFC", c + m) for m in MARKS]
        options = [o for o in options if len(o) == 1]
        if options:
            out[c] = tuple(options)
    return out


def full_table(name: str) -> dict[str, tuple[str, ...]]:
    """The whole (unsplit) table ``name``."""
    if name == "homoglyph":
        return _homoglyph_full()
    if name == "diacritic":
        return _diacritic_full()
    if name == "leet":
        return {k: tuple(v) for k, v in LEET.items()}
    if name == "abbreviation":
        return {k: (v,) for k, v in ABBREVIATIONS.items()}
    lists = {"zero_width": ZERO_WIDTH, "wrapper": WRAPPERS, "markup": MARKUP, "separator": SEPARATORS,
             "abbreviation_style": ABBREVIATION_STYLES}
    if name not in lists:
        raise ValueError(f"unknown substitution table {name!r} (known: {', '.join(RESOURCES)})")
    return {"*": tuple(lists[name])}


@cache
def table(name: str, half: str) -> dict[str, tuple[str, ...]]:
    """Half ``half`` (:data:`TRAIN` or :data:`HELDOUT`) of the substitution table ``name``."""
    if half not in HALVES:
        raise ValueError(f"unknown half {half!r} of substitution table {name!r}; choose from {HALVES}")
    return split_table(name, full_table(name))[half]


def values(name: str, half: str) -> tuple[str, ...]:
    """The values of a list table (key ``*``) in one half."""
    return table(name, half).get("*", ())


def pairs(name: str, half: str) -> set[tuple[str, str]]:
    """``{(key, value)}`` of one half of a table."""
    return {(k, v) for k, vs in table(name, half).items() for v in vs}


def split_note() -> str:
    """One sentence for table captions: how the perturbation tables are split and who uses which half."""
    sizes = ", ".join(f"{name} {len(pairs(name, TRAIN))}/{len(pairs(name, HELDOUT))}" for name in RESOURCES)
    return ("Perturbation tables are split by a SHA-256 hash into a training half (adversarial training "
            "variants; the only half the identification module's normaliser folds) and a held-out half "
            f"(every perturbed test set), training/held-out entries: {sizes}; `char` substitutes random "
            "characters.")
