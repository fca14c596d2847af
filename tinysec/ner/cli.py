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
(identification module) and tagged in line windows of at most ``RAW_MAX_WORDS`` words (the windows the
corpus's raw rendering trains on); spans are mapped back through the normaliser's offset map.
Confidences are CRF marginals at the tagger's fitted temperature (``calibration.json``; 1 when the
folder has none); ``--format json`` also gives each input's format (detected or forced), the
temperature and each entity's uncalibrated ``confidence_raw``. Without ``--model`` the default run's
robust tagger is used (:func:`default_model`).
``--method NAME`` tags as one of the study's methods (:mod:`tinysec.ner.methods`): an LLM method
runs the tag-time chain of :mod:`tinysec.ner.chain` on the view and reports the entities it
dropped as hallucinated.

This module holds the command's options, input reading and output; its entry point (``run``, and
``--method``'s reading of the workflow plan) is :mod:`tinysec.tag`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..io import InputError
from .view import FORMATS_IN, json_view, tagger_view, xml_view  # noqa: F401  (re-exported: views live in ner.view)


def default_model() -> str:
    """The default run's robust tagger, ``results/ner/models/<encoder>/robust``, where ``<encoder>`` is
    ``ner.encoder`` of the embedded default config (``config/config.yaml``, else its schema default)."""
    import yaml

    from ..paths import CONFIG

    cfg = yaml.safe_load((CONFIG / "config.yaml").read_text(encoding="utf-8")) or {}
    encoder = (cfg.get("ner") or {}).get("encoder")
    if not encoder:
        schema = yaml.safe_load((CONFIG / "schema" / "ner.schema.yaml").read_text(encoding="utf-8"))
        encoder = schema["properties"]["encoder"]["default"]
    return f"results/ner/models/{encoder}/robust"


DEFAULT_MODEL = default_model()


def resolve_model(model: str) -> str:
    """``model`` as given; the default model, when it is not under the current folder, is looked for
    in the repository (where ``make run`` writes it)."""
    from ..paths import REPO

    if model == DEFAULT_MODEL and not Path(model).exists() and (REPO / model).exists():
        return str(REPO / model)
    return model


def missing_model_message(model: str) -> str:
    """What to do when ``model`` holds no trained tagger: the exact snakemake target that builds it."""
    from ..paths import REPO

    if model in (DEFAULT_MODEL, str(REPO / DEFAULT_MODEL)):
        return (f"no trained tagger at {DEFAULT_MODEL} (no tagger.json); without --model, `tinysec tag` uses the "
                f"default run's robust model: build it in {REPO} with `snakemake --cores all {DEFAULT_MODEL}` "
                "(rule ner_train on the embedded default config; `make run` builds it too), or pass --model DIR")
    return (f"no trained tagger at {model} (no tagger.json): build it with `snakemake --cores all {model}` "
            "or pass --model DIR")


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
    from .postprocess import PostprocessSettings

    parser.add_argument("paths", nargs="*", metavar="PATH", help="input files; '-' or none reads stdin")
    parser.add_argument("--model", default=None,
                        help=f"trained tagger folder (default: the --method's tagger, else {DEFAULT_MODEL}, the "
                             "default run's robust model)")
    parser.add_argument("--method", default=None, metavar="NAME",
                        help="a method of ner.methods in --configfile: baseline (no normaliser), templates, or an "
                             "identification/extraction LLM (the tag-time chain: context, template, LLM rephrasing, "
                             "omission check against the input, tagging, spans mapped back to the input; entities "
                             "not in the input are dropped and reported as hallucinated)")
    parser.add_argument("--configfile", default="config/config.yaml",
                        help="config whose ner.methods, models and ner.chain --method reads (default: config/config.yaml)")
    parser.add_argument("--format", choices=("json", "table"), default="table", help="output format")
    parser.add_argument("--format-in", choices=FORMATS_IN, default="auto",
                        help="input format (default: auto-detect per input; input that looks like Nmap XML but "
                             "does not parse is tagged as text). A forced nmap_xml / shodan_json input that does "
                             "not parse is an error")
    parser.add_argument("--threshold", type=float, default=PostprocessSettings.threshold,
                        help="CRF-marginal confidence threshold, in [0, 1] (default: ner.confidence_threshold)")
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
    args.model = args.model or DEFAULT_MODEL
    args.model = resolve_model(args.model)
    if not (Path(args.model) / "tagger.json").is_file():
        raise ValueError(missing_model_message(args.model))
    post = PostprocessSettings(args.threshold, "flag" if args.flag_low_confidence else "drop")
    return Tagger(args.model, post, normalize=not args.no_normalize, batch_size=args.batch_size)


def print_docs(docs: list[dict], as_json: bool, as_list: bool) -> None:
    """Tagged documents on stdout: JSON (a list when ``as_list``) or one table per input; in the
    table ``!`` marks a flagged entity, ``(repeat)`` one kept below the threshold because the same
    text and type is kept above it elsewhere in the input, and ``(propagated)`` one the tagger did
    not mark whose text is a confident entity elsewhere in the input (the context checks of
    :func:`tinysec.ner.postprocess.context_checks`)."""
    if as_json:
        json.dump(docs if as_list else docs[0], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    from tabulate import tabulate

    for doc in docs:
        print(f"# {doc['input']} ({doc['format']}): {len(doc['entities'])} entities")
        rows = [(e["type"], f"{e['start']}-{e['end']}", f"{e['confidence']:.3f}" + (" !" if e["flagged"] else "")
                 + (f" ({e['confirmed']})" if e.get("confirmed") else ""), e["text"].replace("\n", " ")) for e in doc["entities"]]
        print(tabulate(rows, headers=["type", "span", "confidence", "text"], disable_numparse=True) if rows else "(no entities)")
        if "hallucinated" in doc:
            print(f"({len(doc['hallucinated'])} entities found in the LLM's segments but not in the input: dropped)")
