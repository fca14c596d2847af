"""``tinysec rate BATTLES.jsonl``: rate any battles file in the FastChat/HackMentor shape.

Numeric options are checked before anything runs (the error names the option); the outcome key
read (``win`` / ``winner``) is printed above the table; a battle graph with more than one connected
component is warned about on stderr and gets a ``component`` column. ``--csv`` is written
atomically and may not be the battles file."""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from ..io import atomic_path, check_outputs, read_jsonl
from .battles import Battles
from .bt import BTParams
from .elo import EloParams
from .rate import rate

MAX_SCALE = 1e6      # larger scales squeeze every rating onto `initial`
MAX_INITIAL = 1e6    # |initial|
MAX_BOOTSTRAP = 1_000_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("battles", help="JSONL with model_a, model_b and the outcome in 'win' (HackMentor) or "
                                   "'winner' (FastChat): model_a | model_b | tie | tie (bothbad)")
    p.add_argument("--method", choices=("elo", "bt", "both"), default="both",
                   help="online/shuffled Elo, Bradley-Terry, or both (default)")
    p.add_argument("--k", type=float, default=32.0, help="Elo K factor, in (0, --scale] (default 32)")
    p.add_argument("--scale", type=float, default=400.0, help=f"rating scale, in (0, {MAX_SCALE:g}] (default 400)")
    p.add_argument("--base", type=float, default=10.0, help="odds base, finite and > 1 (default 10)")
    p.add_argument("--initial", type=float, default=1000.0,
                   help=f"initial / mean rating, |initial| <= {MAX_INITIAL:g} (default 1000)")
    p.add_argument("--bootstrap", type=int, default=1000,
                   help=f"bootstrap rounds (BT) and random orders (Elo), 1..{MAX_BOOTSTRAP} (default 1000)")
    p.add_argument("--ci", type=float, default=0.95, help="interval coverage, in (0, 1) (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="random seed, >= 0 (default 0)")
    p.add_argument("--csv", help="also write the table as CSV here")


def check_options(args: argparse.Namespace) -> None:
    """Refuse non-finite or out-of-range numeric options; the error names the option."""
    finite = {"--k": args.k, "--scale": args.scale, "--base": args.base, "--initial": args.initial, "--ci": args.ci}
    for name, value in finite.items():
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    rules = [
        ("--scale", 0 < args.scale <= MAX_SCALE, f"in (0, {MAX_SCALE:g}]", args.scale),
        ("--k", 0 < args.k <= args.scale, f"in (0, --scale = {args.scale:g}]", args.k),
        ("--base", args.base > 1, "greater than 1", args.base),
        ("--initial", abs(args.initial) <= MAX_INITIAL, f"in [-{MAX_INITIAL:g}, {MAX_INITIAL:g}]", args.initial),
        ("--bootstrap", 1 <= args.bootstrap <= MAX_BOOTSTRAP, f"in 1..{MAX_BOOTSTRAP}", args.bootstrap),
        ("--ci", 0 < args.ci < 1, "in (0, 1), e.g. 0.95", args.ci),
        ("--seed", args.seed >= 0, ">= 0", args.seed),
    ]
    for name, ok, expected, value in rules:
        if not ok:
            raise ValueError(f"{name} must be {expected}, got {value:g}")


def caption(battles: Battles, df) -> list[str]:
    """Lines printed above the table: counts, the outcome key(s) read, and the components."""
    keys = ", ".join(f"'{k}' ({n} rows)" for k, n in sorted(battles.outcome_keys.items()))
    lines = [f"{len(battles)} battles, {len(battles.models)} models; outcome read from {keys}"]
    if "component" in df.columns:
        n = int(df["component"].max())
        lines.append(f"The battle graph has {n} connected components (column 'component'): models of different "
                     "components never met, even indirectly, so ratings and ranks are comparable only within "
                     "a component.")
    return lines


def run(args: argparse.Namespace) -> int:
    check_options(args)
    check_outputs({"--csv": args.csv}, [args.battles])
    rows = read_jsonl(args.battles)
    battles = Battles.from_records(rows, path=args.battles)
    methods = ("elo", "bt") if args.method == "both" else (args.method,)
    elo = EloParams(k=args.k, scale=args.scale, base=args.base, initial=args.initial)
    bt = BTParams(scale=args.scale, base=args.base, initial=args.initial)
    df = rate(battles, elo, bt, n_orders=args.bootstrap, rounds=args.bootstrap, seed=args.seed, ci=args.ci,
              methods=methods, rows=rows)
    ratings = df.drop(columns=["mean_answer_words"], errors="ignore").select_dtypes("number").to_numpy(float)
    if not np.isfinite(ratings).all():
        raise ValueError(f"ratings overflowed to inf/NaN with --k {args.k:g}, --scale {args.scale:g}, "
                         f"--base {args.base:g}; use a smaller --k or a larger --scale")
    if "component" in df.columns:
        print(f"tinysec rate: warning: {args.battles}: the battle graph has {int(df['component'].max())} "
              "connected components; ratings are comparable only within a component", file=sys.stderr)
    if df.get("mean_answer_words") is not None and df["mean_answer_words"].isna().all():
        df = df.drop(columns=["mean_answer_words"])  # the file has no answer_words_a/b fields
    if args.csv:
        with atomic_path(args.csv, inputs=[args.battles]) as fh:
            df.to_csv(fh, index=False)
    print("\n".join(caption(battles, df)))
    shown = df.astype(object).where(df.notna(), None)  # a model without answer lengths: blank, not "nan"
    print(shown.to_markdown(index=False, floatfmt=".1f", missingval=""))
    return 0
