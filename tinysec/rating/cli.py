"""``tinysec rate BATTLES.jsonl``: rate any battles file in the FastChat/HackMentor shape."""

from __future__ import annotations

import argparse

from ..io import read_jsonl
from .battles import Battles
from .bt import BTParams
from .elo import EloParams
from .rate import rate


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("battles", help="JSONL with model_a, model_b, win (model_a | model_b | tie)")
    p.add_argument("--method", choices=("elo", "bt", "both"), default="both",
                   help="online/shuffled Elo, Bradley-Terry, or both (default)")
    p.add_argument("--k", type=float, default=32.0, help="Elo K factor (default 32)")
    p.add_argument("--scale", type=float, default=400.0)
    p.add_argument("--base", type=float, default=10.0)
    p.add_argument("--initial", type=float, default=1000.0)
    p.add_argument("--bootstrap", type=int, default=1000,
                   help="bootstrap rounds (BT) and random orders (Elo) (default 1000)")
    p.add_argument("--ci", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--csv", help="also write the table as CSV here")


def run(args: argparse.Namespace) -> int:
    rows = read_jsonl(args.battles)
    battles = Battles.from_records(rows, path=args.battles)
    methods = ("elo", "bt") if args.method == "both" else (args.method,)
    elo = EloParams(k=args.k, scale=args.scale, base=args.base, initial=args.initial)
    bt = BTParams(scale=args.scale, base=args.base, initial=args.initial)
    df = rate(battles, elo, bt, n_orders=args.bootstrap, rounds=args.bootstrap, seed=args.seed, ci=args.ci,
              methods=methods, rows=rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    print(f"{len(battles)} battles, {len(battles.models)} models")
    print(df.to_markdown(index=False, floatfmt=".1f"))
    return 0
