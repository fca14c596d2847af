"""``tinysec`` command line. Each sub-command lives in the module of its concern and exposes
``add_arguments(parser)`` and ``run(args) -> int``; this file only wires them up."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "rate": ("tinysec.rating.cli", "Rate a battles file (FastChat/HackMentor shape) with Elo or Bradley-Terry."),
    "cti-eval": ("tinysec.cti.cli", "Score a JSONL of (text, label ids) with a trained model or a baseline."),
    "tag": ("tinysec.tag", "Tag raw tool output (nmap, dig, whois, shodan) or plain text with entities."),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinysec", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                p.set_defaults(_unavailable=f"'{name}' is not available: {exc}")
                continue
            raise
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "_unavailable", None):
        print(args._unavailable, file=sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except ValueError as exc:
        print(f"tinysec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written: name it, no traceback
        print(f"tinysec {args.command}: error: {os_error_message(exc)}", file=sys.stderr)
        return 2


def os_error_message(exc: OSError) -> str:
    """``path: reason`` of an OSError (its own message when it names no path)."""
    if exc.filename is None or not exc.strerror:
        return str(exc)
    return f"{exc.filename}: {exc.strerror}"


if __name__ == "__main__":
    sys.exit(main())
