"""Identification module: decode/normalise text with an offset map, detect raw tool formats,
and assess the context of an OSINT record.

Normalisation runs four steps in this order, each keeping a map from every output character
to the offset of the original character it came from:

1. strip invisible format characters (the training half of the ``zero_width`` table);
2. Unicode NFKC (fullwidth ``ｅｘａｍｐｌｅ`` -> ``example``, ligatures, superscripts);
3. fold look-alike letters (the training half of the ``homoglyph`` table, built from the Unicode
   confusables data of the ``confusable-homoglyphs`` package) and letters with a diacritic (the
   training half of the ``diacritic`` table) to their ASCII letter;
4. fold leetspeak digits inside domain- and host-like tokens (the digits of the training half of
   the ``leet`` table).

The tables and their training/held-out split live in :mod:`tinysec.ner.substitutions`. The
normaliser knows only the training halves (and NFKC), so a substitution from a held-out half,
which is what the perturbed test sets use, is left as it is. ``full=True`` folds both halves; it
is for building gold labels (locating entities an LLM paraphrase obfuscated), never for tagging.
Steps 3 and 4 are one character to one character, so only steps 1 and 2 change lengths.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .substitutions import HALVES, TRAIN, table, values


def _halves(full: bool) -> tuple[str, ...]:
    return HALVES if full else (TRAIN,)


@lru_cache(maxsize=2)
def invisible_chars(full: bool = False) -> frozenset[str]:
    """Invisible characters the normaliser strips: the training half of the ``zero_width`` table."""
    return frozenset(v for h in _halves(full) for v in values("zero_width", h))


@lru_cache(maxsize=2)
def leet_fold(full: bool = False) -> dict[str, str]:
    """Leetspeak digit -> letter: the digits of the training half of the ``leet`` table."""
    return {v: k for h in _halves(full) for k, vs in table("leet", h).items() for v in vs if v.isdigit()}


# Most combining marks kept after one base character: the limit of Unicode's Stream-Safe Text
# Format (UAX #15); longer runs ("Zalgo" text) are cut so normalisation stays linear.
MAX_MARKS_PER_CLUSTER = 30


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


@lru_cache(maxsize=2)
def fold_map(full: bool = False) -> dict[str, str]:
    """Non-ASCII letter -> ASCII letter: the training halves of the homoglyph and diacritic tables."""
    return {v: k for name in ("homoglyph", "diacritic") for h in _halves(full)
            for k, vs in table(name, h).items() for v in vs}


def fold_char(ch: str, full: bool = False) -> str:
    """Fold one character to its ASCII letter when :func:`fold_map` knows it (else return it unchanged)."""
    return ch if ch.isascii() else fold_map(full).get(ch, ch)


def _fold_leet_token(tok: str, fold: dict[str, str]) -> str:
    """Fold leet digits of a host-like token.

    In each label, leet digits of ``fold`` between letters are folded (``g00gle`` when ``0`` is
    in it); once a label has one such digit, its other leet digits are folded too.
    The TLD label is folded when it starts with a letter (``c0m``). ``web1`` or ``ns-1828`` stay
    as they are.
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
            if c not in fold:
                continue
            left = next((x for x in reversed(chars[:i]) if not x.isdigit()), "")
            right = next((x for x in label[i + 1:] if not x.isdigit()), "")
            if left.isalpha() and right.isalpha():
                sandwiched.append(i)
        if is_tld or sandwiched:
            chars = [fold.get(c, c) for c in chars]
        out.append("".join(chars))
    return ".".join(out)


def fold_leet(text: str, full: bool = False) -> str:
    """Fold leetspeak digits inside domain/host-like tokens; same length as ``text``."""
    fold = leet_fold(full)
    return _HOSTLIKE.sub(lambda m: _fold_leet_token(m.group(0), fold), text)


def normalize(text: str, leet: bool = True, full: bool = False) -> Normalized:
    """Decode and normalise ``text``; see the module docstring for the steps.

    Returns a :class:`Normalized` (``text``, ``offsets``) that also unpacks as a pair.
    """
    if text.isascii():  # fast path: nothing to strip, compose or fold
        return Normalized(fold_leet(text, full) if leet else text, tuple(range(len(text))), text)
    invisible = invisible_chars(full)
    chars: list[str] = []
    offsets: list[int] = []
    # invisible chars go before clustering, so a mark after one still joins its letter
    keep = [i for i, c in enumerate(text) if c not in invisible]
    for start, cluster in _clusters("".join(text[i] for i in keep)):
        first = keep[start]  # the cluster's first char's offset in ``text``
        for ch in unicodedata.normalize("NFKC", cluster):
            if ch in invisible or (unicodedata.combining(ch) and chars and chars[-1].isascii()):
                continue  # a diacritic left on a folded (ASCII) letter is stripped too
            chars.append(fold_char(ch, full))
            offsets.append(first)
    out = "".join(chars)
    if leet:
        out = fold_leet(out, full)
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

# WHOIS labels, English and the localised ones of ccTLD registries (DENIC, AFNIC, TCI, JPRS, NIC.LV):
# "key: value" lines, JPRS's "[label]   value" lines and NIC.LV's "[Section]" headers
_WHOIS_KEYS = re.compile(
    r"^\s*(?:Domain(?: Name)?|Registrar|Registrant|Creation Date|Registry Expiry Date|Name ?Servers?|Nserver|"
    r"OrgName|NetRange|inetnum|org-name|netname|state|paid-till|Inhaber|Registrierungsstelle|Angelegt am|"
    r"Nom de domaine|Titulaire|Serveur de noms|Bureau d'enregistrement|Домен|Регистратор|Сервер DNS|"
    r"Администратор|Оплачен до)\s*:"
    r"|^\[(?:ドメイン名|登録者名|ネームサーバ|Domain Name|Registrant|Name Server)\][ \t]+\S"
    r"|^\[(?:Domain|Holder|Registrar|Nservers)\][ \t]*$", re.I | re.M)
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
