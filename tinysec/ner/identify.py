"""Identification module: decode/normalise text with an offset map, detect raw tool formats,
and assess the context of an OSINT record.

Normalisation runs four steps in this order, each keeping a map from every output character
to the offset of the original character it came from:

1. strip invisible format characters (zero-width space/joiner/non-joiner, word joiner, BOM,
   soft hyphen);
2. Unicode NFKC (fullwidth ``ｅｘａｍｐｌｅ`` -> ``example``, ligatures, superscripts);
3. fold confusables (Cyrillic ``е`` -> Latin ``e``) with a map built from the Unicode
   confusables data shipped by the ``confusable-homoglyphs`` package, and strip diacritics
   from Latin letters (``Ubüntu`` -> ``Ubuntu``);
4. fold leetspeak digits inside domain- and host-like tokens (``g00gle.c0m`` -> ``google.com``).

Steps 3 and 4 are one character to one character, so only steps 1 and 2 change lengths.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")

# Most combining marks kept after one base character: the limit of Unicode's Stream-Safe Text
# Format (UAX #15); longer runs ("Zalgo" text) are cut so normalisation stays linear.
MAX_MARKS_PER_CLUSTER = 30

# Leetspeak digit -> letter, applied only inside domain/host-like tokens.
LEET_FOLD = {"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}

_HOSTLIKE = re.compile(r"(?<![\w.-])(?:[^\W_][\w-]*\.)+[^\W\d_][^\W_]*(?![\w-])", re.ASCII)
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


@dataclass(frozen=True)
class Normalized:
    """Normalised ``text`` and ``offsets[i]``: the original offset of ``text[i]``."""

    text: str
    offsets: tuple[int, ...]
    original: str

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a ``[start, end)`` span of the normalised text back to the original text."""
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"span ({start}, {end}) outside normalised text of length {len(self.text)}")
        o_start = self.offsets[start]
        o_end = self.offsets[end - 1] + 1
        # a combining mark folded into the last character belongs to the span
        while o_end < len(self.original) and unicodedata.combining(self.original[o_end]):
            o_end += 1
        return o_start, o_end

    def __iter__(self):  # allows ``text, offsets = normalize(s)``
        return iter((self.text, list(self.offsets)))


def _clusters(text: str) -> list[tuple[int, str]]:
    """Split into (start offset, base char + following combining marks) clusters, in linear time.

    A cluster keeps at most :data:`MAX_MARKS_PER_CLUSTER` combining marks; further marks of the
    same run are dropped (they still belong to the cluster's span in the original text). A lone
    surrogate code point becomes U+FFFD, so the output always encodes as UTF-8.
    """
    out: list[tuple[int, str]] = []
    start, parts, marks = -1, [], 0
    for i, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            ch = "\ufffd"
        elif parts and unicodedata.combining(ch):
            if marks < MAX_MARKS_PER_CLUSTER:
                parts.append(ch)
                marks += 1
            continue
        if parts:
            out.append((start, "".join(parts)))
        start, parts, marks = i, [ch], 0
    if parts:
        out.append((start, "".join(parts)))
    return out


@lru_cache(maxsize=1)
def confusable_map() -> dict[str, str]:
    """Non-ASCII character -> ASCII letter/digit it is confusable with (Unicode confusables)."""
    import confusable_homoglyphs

    data = json.loads((Path(confusable_homoglyphs.__file__).parent / "confusables.json").read_text("utf-8"))
    fold: dict[str, str] = {}
    # ASCII keys list their non-ASCII look-alikes; a non-ASCII key may list its ASCII twin.
    for key, glyphs in data.items():
        if len(key) == 1 and key.isascii() and key.isalnum():
            for g in glyphs:
                c = g["c"]
                if len(c) == 1 and not c.isascii():
                    fold.setdefault(c, key)
    for key, glyphs in data.items():
        if len(key) == 1 and not key.isascii() and key not in fold:
            for g in glyphs:
                c = g["c"]
                if len(c) == 1 and c.isascii() and c.isalnum():
                    fold[key] = c
                    break
    return fold


def fold_char(ch: str) -> str:
    """Fold one character to its ASCII look-alike or base letter (or return it unchanged)."""
    if ch.isascii():
        return ch
    folded = confusable_map().get(ch)
    if folded is not None:
        return folded
    base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
    if len(base) == 1 and base.isascii() and base.isalpha():
        return base
    return ch


def _fold_leet_token(tok: str) -> str:
    """Fold leet digits of a host-like token.

    In each label, digits between letters are folded (``g00gle``); once a label has one such
    digit, its other leet digits are folded too (``g00gl3`` -> ``google``). The TLD label is
    folded when it starts with a letter (``c0m``). ``web1`` or ``ns-1828`` stay as they are.
    """
    if _IPV4.match(tok):
        return tok
    labels = tok.split(".")
    out = []
    for li, label in enumerate(labels):
        chars = list(label)
        is_tld = li == len(labels) - 1 and len(labels) > 1 and label[:1].isalpha()
        sandwiched = []
        for i, c in enumerate(chars):
            if c not in LEET_FOLD:
                continue
            left = next((x for x in reversed(chars[:i]) if not x.isdigit()), "")
            right = next((x for x in label[i + 1:] if not x.isdigit()), "")
            if left.isalpha() and right.isalpha():
                sandwiched.append(i)
        if is_tld or sandwiched:
            chars = [LEET_FOLD.get(c, c) for c in chars]
        out.append("".join(chars))
    return ".".join(out)


def fold_leet(text: str) -> str:
    """Fold leetspeak digits inside domain/host-like tokens; same length as ``text``."""
    return _HOSTLIKE.sub(lambda m: _fold_leet_token(m.group(0)), text)


def normalize(text: str, leet: bool = True) -> Normalized:
    """Decode and normalise ``text``; see the module docstring for the steps.

    Returns a :class:`Normalized` (``text``, ``offsets``) that also unpacks as a pair.
    """
    if text.isascii():  # fast path: nothing to strip, compose or fold
        return Normalized(fold_leet(text) if leet else text, tuple(range(len(text))), text)
    chars: list[str] = []
    offsets: list[int] = []
    for start, cluster in _clusters(text):
        visible = "".join(c for c in cluster if c not in INVISIBLE)
        if not visible:
            continue
        # the first kept char's offset for the whole cluster
        first = start + next(i for i, c in enumerate(cluster) if c not in INVISIBLE)
        for ch in unicodedata.normalize("NFKC", visible):
            if ch in INVISIBLE or (unicodedata.combining(ch) and chars and chars[-1].isascii()):
                continue  # a diacritic left on a folded (ASCII) letter is stripped too
            chars.append(fold_char(ch))
            offsets.append(first)
    out = "".join(chars)
    if leet:
        out = fold_leet(out)
    return Normalized(out, tuple(offsets), text)


# ---------------------------------------------------------------- raw formats and contexts
FORMATS = ("nmap_xml", "nmap_text", "dig", "whois", "shodan_json", "text")
CONTEXTS = ("host", "dns", "registration", "banner", "vulnerability")
CONTEXT_NAMES = {
    "host": "host/service information",
    "dns": "DNS configuration",
    "registration": "registration data",
    "banner": "service banner",
    "vulnerability": "vulnerability",
}

_WHOIS_KEYS = re.compile(r"^\s*(Domain Name|Registrar|Registrant|Creation Date|Registry Expiry Date|"
                         r"Name Server|OrgName|NetRange|inetnum|org-name|netname)\s*:", re.I | re.M)
_DIG = re.compile(r"^;; (?:ANSWER|QUESTION) SECTION:|^; <<>> DiG", re.M)
_NMAP_TEXT = re.compile(r"^Nmap scan report for |^PORT\s+STATE\s+SERVICE", re.M)
_CVE = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.I)
_BANNER = re.compile(r"^(?:SSH-\d\.\d-|HTTP/\d(?:\.\d)?\s+\d{3}|220[ -]|Server:\s)", re.M | re.I)


def detect_format(raw: str) -> str:
    """Raw format of a tool output: one of :data:`FORMATS`."""
    head = raw.lstrip()
    if head.startswith("<") and ("<nmaprun" in raw[:4000] or "<!DOCTYPE nmaprun" in raw[:4000]):
        return "nmap_xml"
    if head.startswith("{") or head.startswith("["):
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, list) and obj:
            obj = obj[0]
        if isinstance(obj, dict) and ({"ip_str", "port", "data"} & obj.keys() or "matches" in obj):
            return "shodan_json"
    if _DIG.search(raw):
        return "dig"
    if _NMAP_TEXT.search(raw):
        return "nmap_text"
    if len(_WHOIS_KEYS.findall(raw)) >= 2:
        return "whois"
    return "text"


_SOURCE_CONTEXT = {"dns": "dns", "dig": "dns", "whois": "registration", "nmap": "host", "shodan": "banner"}
_FORMAT_CONTEXT = {"dig": "dns", "whois": "registration", "nmap_xml": "host", "nmap_text": "host",
                   "shodan_json": "banner"}


def classify_context(record_or_text: dict | str) -> str:
    """Context of a record (dict in the OSINT record format) or raw text: one of :data:`CONTEXTS`.

    Vulnerability evidence (CVE ids, ``vulns`` fields) wins over the source's usual context;
    otherwise the raw format decides, then the record's ``source``, then keywords.
    """
    if isinstance(record_or_text, dict):
        rec = record_or_text
        raw = rec.get("raw") or ""
        raw = raw if isinstance(raw, str) else json.dumps(raw)
        parsed = rec.get("parsed") or {}
        if _has_vulns(parsed) or _CVE.search(raw):
            return "vulnerability"
        fmt = detect_format(raw) if raw else "text"
        if fmt != "text":
            return _FORMAT_CONTEXT[fmt]
        src = str(rec.get("source", "")).lower()
        if src in _SOURCE_CONTEXT:
            return _SOURCE_CONTEXT[src]
        return _text_context(raw)
    text = record_or_text
    if _CVE.search(text):
        return "vulnerability"
    fmt = detect_format(text)
    return _FORMAT_CONTEXT.get(fmt) or _text_context(text)


def _has_vulns(parsed) -> bool:
    if isinstance(parsed, dict):
        for key, value in parsed.items():
            if key.lower() in ("vulns", "vulnerabilities", "cves", "cve") and value:
                return True
            if _has_vulns(value):
                return True
    elif isinstance(parsed, list):
        return any(_has_vulns(v) for v in parsed)
    return False


def _text_context(text: str) -> str:
    low = text.lower()
    if _BANNER.search(text):
        return "banner"
    if re.search(r"\b(registrar|registrant|registered|whois)\b", low):
        return "registration"
    if re.search(r"\b(a record|mx|ns record|nameserver|resolves?|dns|txt record|cname)\b", low):
        return "dns"
    return "host"
