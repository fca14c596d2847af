"""The tagger's view of raw tool output: same length as the input, markup blanked.

Parsed inputs (Nmap XML, Shodan JSON) are shown to the tagger with markup, JSON keys and
punctuation blanked out and attribute/string values kept in place, so every span of the view is
a span of the original text. Text formats (nmap normal output, dig, WHOIS, plain text) are shown
as they are. ``tinysec tag`` and the NER corpus's raw rendering both build the view here.
"""

from __future__ import annotations

import json
import re

from ..io import InputError
from .identify import FORMATS

_XML_TAG = re.compile(r"<(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.S)
_XML_SKIP = re.compile(r"<!--.*?-->|<\?.*?\?>|<!DOCTYPE[^>]*>|<!\[CDATA\[|\]\]>", re.S)
_QUOTED = re.compile(r"\"([^\"]*)\"|'([^']*)'")
_JSON_TOKEN = re.compile(r"\"(?:[^\"\\]|\\.)*\"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_JSON_ESCAPE = re.compile(r"\\u[0-9a-fA-F]{4}|\\.")


def _blank(s: str) -> str:
    """Same length, newlines kept, everything else a space."""
    return "".join(c if c == "\n" else " " for c in s)


def xml_view(raw: str, where: str = "<input>", nmap: bool = False) -> str:
    """XML with markup blanked and attribute values / text nodes kept in place; with ``nmap``
    the root element must be ``<nmaprun>``."""
    from defusedxml import ElementTree

    try:
        root = ElementTree.fromstring(raw.encode("utf-8"))
    except ElementTree.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise InputError(where, f"malformed XML: {exc}", row=line) from None
    except Exception as exc:  # defusedxml refuses entity expansion, DTD tricks
        raise InputError(where, f"refused XML: {exc}") from None
    if nmap and root.tag != "nmaprun":
        raise InputError(where, f"XML input that is not an Nmap report (root <{root.tag}>, expected <nmaprun>)")
    out = _XML_SKIP.sub(lambda m: _blank(m.group(0)), raw)

    def tag(m: re.Match) -> str:
        text = m.group(0)
        chars = list(_blank(text))
        for q in _QUOTED.finditer(text):
            a, b = q.span(1) if q.group(1) is not None else q.span(2)
            chars[a:b] = text[a:b]
        return "".join(chars)

    return _XML_TAG.sub(tag, out)


def json_view(raw: str, where: str = "<input>") -> str:
    """Shodan JSON with keys, punctuation and escapes blanked and values kept in place."""
    try:
        json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(where, f"malformed JSON: {exc.msg} at column {exc.colno}", row=exc.lineno) from None
    chars = list(_blank(raw))
    for m in _JSON_TOKEN.finditer(raw):
        tok = m.group(0)
        if tok.startswith('"'):
            if raw[m.end():].lstrip(" \t\r\n").startswith(":"):
                continue  # a key
            inner = _JSON_ESCAPE.sub(lambda e: " " * len(e.group(0)), tok[1:-1])
            chars[m.start() + 1:m.end() - 1] = inner
        else:
            chars[m.start():m.end()] = tok
    return "".join(chars)


FORMATS_IN = ("auto", *FORMATS)


def tagger_view(raw: str, where: str = "<input>", format_in: str = "auto") -> tuple[str, str, str | None]:
    """``(format, text the tagger sees, note)``; the text has the same length as ``raw``.

    A leading UTF-8 byte order mark is blanked and ignored by detection. With ``format_in="auto"``
    the format is detected, and an input that looks like Nmap XML but does not parse as one is
    tagged as plain text (``note`` says why). A forced ``format_in`` makes such input an error.
    """
    bom = raw.startswith("\ufeff")
    body = raw[1:] if bom else raw
    if format_in == "auto":
        fmt, view, note = _auto_view(body, where)
    else:
        fmt, view, note = format_in, _forced_view(body, where, format_in), None
    return fmt, (" " + view if bom else view), note


def _auto_view(raw: str, where: str) -> tuple[str, str, str | None]:
    """Detected format, view and fallback note of ``raw`` (see :func:`tagger_view`)."""
    from .identify import detect_format

    fmt = detect_format(raw)
    note = None
    head = raw.lstrip()[:1]
    if fmt == "nmap_xml":
        try:
            return fmt, xml_view(raw, where, nmap=True), None
        except InputError as exc:
            fmt, note = "text", f"{exc}; tagged as plain text (--format-in nmap_xml makes this an error)"
    elif fmt == "shodan_json":
        return fmt, json_view(raw, where), None
    elif head in ("{", "["):
        try:
            json.loads(raw)
        except json.JSONDecodeError as exc:
            note = (f"{where}: not JSON ({exc.msg} at line {exc.lineno}); tagged as {fmt} "
                    "(--format-in shodan_json makes this an error)")
    return fmt, raw, note


def _forced_view(raw: str, where: str, fmt: str) -> str:
    """The tagger's view of ``raw`` read as ``fmt``; structured input that does not parse is an error."""
    if fmt == "nmap_xml":
        return xml_view(raw, where, nmap=True)
    if fmt == "shodan_json":
        return json_view(raw, where)
    return raw


def line_windows(text: str, max_words: int) -> list[tuple[int, int]]:
    """``(start, end)`` slices of ``text`` that hold at most ``max_words`` words each (words of
    :func:`tinysec.ner.tokenize.word_spans`), cut only at line starts: blank-line separated blocks
    are packed whole where they fit, a longer block is cut between lines, and a single line longer
    than ``max_words`` is a window of its own. Slices without any word are left out; together the
    windows hold every word of ``text`` once, in order."""
    from .tokenize import word_spans

    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    lines, pos = [], 0
    for line in text.splitlines(keepends=True):
        lines.append((pos, pos + len(line), len(word_spans(line))))
        pos += len(line)
    windows: list[tuple[int, int]] = []
    start, count, last_blank = None, 0, None
    for a, b, n in lines:
        if start is not None and count + n > max_words:
            carried = sum(k for x, _, k in lines if last_blank is not None and last_blank <= x < a)
            cut = last_blank if last_blank is not None and last_blank > start and carried + n <= max_words else a
            windows.append((start, cut))
            count = carried if cut != a else 0
            start, last_blank = cut, None
        if start is None:
            start = a
        count += n
        if n == 0:
            last_blank = b
    if start is not None:
        windows.append((start, len(text)))
    return [(a, b) for a, b in windows if word_spans(text[a:b])]
