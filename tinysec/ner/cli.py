"""``tinysec tag``: tag raw tool output or plain text with a trained encoder+CRF tagger.

Each input (a file, or stdin for ``-`` / no path) is detected with the identification module
(:func:`tinysec.ner.identify.detect_format`): Nmap XML or text, dig output, WHOIS text, Shodan
JSON, or plain text; ``--format-in`` forces a format. Structured inputs are parsed first: without
``--format-in``, input that does not parse is tagged as plain text (a note on stderr says why);
with it, malformed XML/JSON is an error naming the file and line. One refused input (missing,
a folder, empty, not UTF-8, malformed under ``--format-in``) is named on stderr and the others are
still tagged. Parsed inputs are shown to the tagger as a *same-length view* of the raw text
(:mod:`tinysec.ner.view`): markup,
JSON keys and punctuation are blanked out, attribute and string values stay where they are, so
every entity span printed is a span of the original input. The view is then normalised
(identification module) and tagged; spans are mapped back through the normaliser's offset map.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..io import InputError
from .view import FORMATS_IN, json_view, tagger_view, xml_view  # noqa: F401  (re-exported: views live in ner.view)

DEFAULT_MODEL = "results/ner/models/minilm/robust"


def read_input(path: str) -> tuple[str, str]:
    """``(name, text)`` of one input (``-`` is stdin); a missing path, a folder, empty or non-UTF-8
    input raises :class:`InputError` naming it."""
    from ..io import read_text

    if path != "-":
        return path, read_text(path)
    data = sys.stdin.buffer.read()
    if not data.strip():
        raise InputError("<stdin>", "input is empty")
    try:
        return "<stdin>", data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("<stdin>", f"not valid UTF-8 at byte {exc.start}") from None


def read_views(paths: list[str], format_in: str) -> tuple[list[tuple[str, str, str, str]], int]:
    """``(name, raw, format, view)`` of every input that can be read and parsed, and the number
    refused; each refusal and each fallback note is printed on stderr, naming the input."""
    views, refused = [], 0
    for path in paths or ["-"]:
        try:
            name, raw = read_input(path)
            fmt, view, note = tagger_view(raw, name, format_in)
        except InputError as exc:
            print(f"tinysec tag: error: {exc}", file=sys.stderr)
            refused += 1
            continue
        if note:
            print(f"tinysec tag: note: {note}", file=sys.stderr)
        views.append((name, raw, fmt, view))
    return views, refused


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="input files; '-' or none reads stdin")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"trained tagger folder (default: {DEFAULT_MODEL}, the default run's robust model)")
    parser.add_argument("--format", choices=("json", "table"), default="table", help="output format")
    parser.add_argument("--format-in", choices=FORMATS_IN, default="auto",
                        help="input format (default: auto-detect per input; input that looks like Nmap XML but "
                             "does not parse is tagged as text). A forced nmap_xml / shodan_json input that does "
                             "not parse is an error")
    parser.add_argument("--threshold", type=float, default=0.85, help="CRF-marginal confidence threshold, in [0, 1]")
    parser.add_argument("--flag-low-confidence", action="store_true",
                        help="keep entities below the threshold, flagged, instead of dropping them")
    parser.add_argument("--no-normalize", action="store_true", help="skip the identification module's normaliser")
    parser.add_argument("--batch-size", type=int, default=16, help="texts per forward pass, >= 1")


def load_tagger(args: argparse.Namespace):
    """The :class:`~tinysec.ner.postprocess.Tagger` of ``--model``; a clear error when it is missing."""
    from .postprocess import PostprocessSettings, Tagger

    if not 0 <= args.threshold <= 1:  # also refuses NaN
        raise ValueError(f"--threshold must be in [0, 1], got {args.threshold}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not (Path(args.model) / "tagger.json").is_file():
        raise ValueError(f"no trained tagger at {args.model} (no tagger.json): build it with "
                         f"`snakemake --cores all {args.model}` or pass --model DIR")
    post = PostprocessSettings(args.threshold, "flag" if args.flag_low_confidence else "drop")
    return Tagger(args.model, post, normalize=not args.no_normalize, batch_size=args.batch_size)


def print_docs(docs: list[dict], as_json: bool, as_list: bool) -> None:
    """Tagged documents on stdout: JSON (a list when ``as_list``) or one table per input."""
    if as_json:
        json.dump(docs if as_list else docs[0], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    from tabulate import tabulate

    for doc in docs:
        print(f"# {doc['input']} ({doc['format']}): {len(doc['entities'])} entities")
        rows = [(e["type"], f"{e['start']}-{e['end']}", f"{e['confidence']:.3f}" + (" !" if e["flagged"] else ""),
                 e["text"].replace("\n", " ")) for e in doc["entities"]]
        print(tabulate(rows, headers=["type", "span", "confidence", "text"], disable_numparse=True) if rows else "(no entities)")


def run(args: argparse.Namespace) -> int:
    """Tag every input that can be read; exit status 0 when all were tagged, 1 when some were
    refused (each named on stderr) and the others tagged, 2 when none could be tagged."""
    paths = args.paths or ["-"]
    views, refused = read_views(paths, args.format_in)
    if not views:
        return 2
    tagger = load_tagger(args)
    results = tagger.tag([view for _, _, _, view in views])
    docs = []
    for (name, raw, fmt, _), res in zip(views, results):
        ents = [{**e, "text": raw[e["start"]:e["end"]]} for e in res["entities"]]
        docs.append({"input": name, "format": fmt, "entities": ents})
    print_docs(docs, args.format == "json", as_list=len(paths) > 1)
    if refused:
        print(f"tinysec tag: error: {refused} of {len(paths)} inputs refused (named above); the others were tagged",
              file=sys.stderr)
        return 1
    return 0
