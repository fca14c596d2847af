"""``tinysec tag``: tag raw tool output or plain text with a trained encoder+CRF tagger.

Each input (a file, or stdin for ``-`` / no path) is detected with the identification module
(:func:`tinysec.ner.identify.detect_format`): Nmap XML or text, dig output, WHOIS text, Shodan
JSON, or plain text. Structured inputs are parsed first (malformed XML/JSON is an error naming
the file and line) and shown to the tagger as a *same-length view* of the raw text: markup,
JSON keys and punctuation are blanked out, attribute and string values stay where they are, so
every entity span printed is a span of the original input. The view is then normalised
(identification module) and tagged; spans are mapped back through the normaliser's offset map.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..io import InputError

DEFAULT_MODEL = "results/ner/models/minilm/robust"

_XML_TAG = re.compile(r"<(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.S)
_XML_SKIP = re.compile(r"<!--.*?-->|<\?.*?\?>|<!DOCTYPE[^>]*>|<!\[CDATA\[|\]\]>", re.S)
_QUOTED = re.compile(r"\"([^\"]*)\"|'([^']*)'")
_JSON_TOKEN = re.compile(r"\"(?:[^\"\\]|\\.)*\"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_JSON_ESCAPE = re.compile(r"\\u[0-9a-fA-F]{4}|\\.")


def _blank(s: str) -> str:
    """Same length, newlines kept, everything else a space."""
    return "".join(c if c == "\n" else " " for c in s)


def xml_view(raw: str, where: str = "<input>") -> str:
    """Nmap XML with markup blanked and attribute values / text nodes kept in place."""
    from defusedxml import ElementTree

    try:
        ElementTree.fromstring(raw.encode("utf-8"))
    except ElementTree.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise InputError(where, f"malformed XML: {exc}", row=line) from None
    except Exception as exc:  # defusedxml refuses entity expansion, DTD tricks
        raise InputError(where, f"refused XML: {exc}") from None
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


def tagger_view(raw: str, where: str = "<input>") -> tuple[str, str]:
    """``(format, text the tagger sees)``; the text has the same length as ``raw``."""
    from .identify import detect_format

    fmt = detect_format(raw)
    head = raw.lstrip()[:200]
    if fmt == "text" and (head.startswith("{") or head.startswith("[")):
        json_view(raw, where)  # raises on malformed JSON
    if fmt == "text" and (head.startswith("<?xml") or head.startswith("<nmaprun")):
        xml_view(raw, where)  # raises on malformed XML
        raise InputError(where, "XML input that is not an Nmap report (no <nmaprun> element)")
    if fmt == "nmap_xml":
        return fmt, xml_view(raw, where)
    if fmt == "shodan_json":
        return fmt, json_view(raw, where)
    return fmt, raw


def read_inputs(paths: list[str]) -> list[tuple[str, str]]:
    """``(name, text)`` of each path (``-`` is stdin); empty or non-UTF-8 input is an error."""
    from ..io import read_text

    out = []
    for p in paths or ["-"]:
        if p == "-":
            data = sys.stdin.buffer.read()
            if not data.strip():
                raise InputError("<stdin>", "input is empty")
            try:
                out.append(("<stdin>", data.decode("utf-8")))
            except UnicodeDecodeError as exc:
                raise InputError("<stdin>", f"not valid UTF-8 at byte {exc.start}") from None
        else:
            if not Path(p).is_file():
                raise FileNotFoundError(f"no such input file: {p}")
            out.append((p, read_text(p)))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="input files; '-' or none reads stdin")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"trained tagger folder (default: {DEFAULT_MODEL}, the default run's robust model)")
    parser.add_argument("--format", choices=("json", "table"), default="table", help="output format")
    parser.add_argument("--threshold", type=float, default=0.85, help="CRF-marginal confidence threshold")
    parser.add_argument("--flag-low-confidence", action="store_true",
                        help="keep entities below the threshold, flagged, instead of dropping them")
    parser.add_argument("--no-normalize", action="store_true", help="skip the identification module's normaliser")
    parser.add_argument("--batch-size", type=int, default=16)


def run(args: argparse.Namespace) -> int:
    from .postprocess import PostprocessSettings, Tagger

    inputs = read_inputs(args.paths)
    views = [(name, raw, *tagger_view(raw, name)) for name, raw in inputs]
    if not (Path(args.model) / "tagger.json").is_file():
        raise FileNotFoundError(f"no trained tagger at {args.model}: build it with "
                                f"`snakemake {args.model}` or pass --model DIR")
    post = PostprocessSettings(args.threshold, "flag" if args.flag_low_confidence else "drop")
    tagger = Tagger(args.model, post, normalize=not args.no_normalize, batch_size=args.batch_size)
    results = tagger.tag([view for _, _, _, view in views])
    docs = []
    for (name, raw, fmt, _), res in zip(views, results):
        ents = [{**e, "text": raw[e["start"]:e["end"]]} for e in res["entities"]]
        docs.append({"input": name, "format": fmt, "entities": ents})
    if args.format == "json":
        json.dump(docs if len(docs) > 1 else docs[0], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        from tabulate import tabulate

        for doc in docs:
            print(f"# {doc['input']} ({doc['format']}): {len(doc['entities'])} entities")
            rows = [(e["type"], f"{e['start']}-{e['end']}", f"{e['confidence']:.3f}" + (" !" if e["flagged"] else ""),
                     e["text"].replace("\n", " ")) for e in doc["entities"]]
            print(tabulate(rows, headers=["type", "span", "confidence", "text"], disable_numparse=True) if rows else "(no entities)")
    return 0
