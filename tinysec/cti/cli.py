"""``tinysec cti-eval``: score a JSONL of (text, label ids) with a CTI model folder.

Each line needs ``text`` and the gold labels in ``labels`` (or ``tactics`` / ``techniques``): a
non-empty list or comma-separated string of ATT&CK ids (tactic names are accepted for the tactic
task); anything else is an error naming the file, row and field.
Label ids outside the model's label set are reported and kept as gold labels (they count as
misses), never silently dropped. Outputs (``--out``, ``--per-label``, ``--predictions``) are written
atomically, create their folders, and may not be the gold file, a model-folder file or each other.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..io import InputError, atomic_path, check_outputs, iter_records, write_json, write_jsonl
from .corpus import example_id, split_ids
from .evaluate import score_answers
from .predictor import answer, load_manifest, mapper_of
from .prompts import label_field
from .tables import METRIC_COLUMNS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="JSONL with 'text' and 'labels' (or 'tactics'/'techniques') per line")
    parser.add_argument("--model", required=True, type=Path,
                        help="CTI model folder with cti_model.json (results/cti/<model>/<task>_model)")
    parser.add_argument("--task", required=True, choices=("tactic", "technique"))
    parser.add_argument("--device", default=None, help="torch device for LLMs (default: cuda when present, else cpu)")
    parser.add_argument("--out", type=Path, default=None, help="write the metrics as JSON here")
    parser.add_argument("--per-label", type=Path, default=None, help="write per-label scores as CSV here")
    parser.add_argument("--predictions", type=Path, default=None, help="write per-text predictions as JSONL here")


def read_gold(path: Path, task: str, mapper) -> tuple[list[dict], list[list[str]], dict[str, list[int]]]:
    """Rows, canonical gold label sets and unknown labels (label -> line numbers) of a user JSONL."""
    rows, gold, unknown = [], [], {}
    for lineno, rec in iter_records(path, "cti_gold"):  # text and label fields checked there
        text = rec["text"]
        key = "labels" if "labels" in rec else label_field(task)
        if key not in rec:
            raise InputError(path, f"no gold labels: expected 'labels' or '{label_field(task)}'", row=lineno, field="labels")
        labels = []
        for raw in split_ids(rec[key], on_space=task == "technique"):  # tactic names hold spaces
            mapped = mapper.map(raw)
            if len(mapped.labels) == 1 and not mapped.unmapped:
                labels.append(mapped.labels[0])
            else:
                unknown.setdefault(raw, []).append(lineno)
                labels.append(raw)
        rows.append({"id": str(rec.get("id") or example_id(text)), "text": text})
        gold.append(sorted(set(labels)))
    return rows, gold, unknown


def input_files(args: argparse.Namespace) -> list[Path]:
    """Every file cti-eval reads: the gold file and the files of the model folder."""
    model = Path(args.model)
    return [args.file, *(p for p in model.rglob("*") if p.is_file())] if model.is_dir() else [args.file]


def run(args: argparse.Namespace) -> int:
    inputs = input_files(args)
    check_outputs({"--out": args.out, "--per-label": args.per_label, "--predictions": args.predictions}, inputs)
    manifest = load_manifest(args.model)
    if manifest["task"] != args.task:
        raise ValueError(f"model folder {args.model} was trained for the {manifest['task']} task, not {args.task}")
    mapper = mapper_of(manifest)
    rows, gold, unknown = read_gold(args.file, args.task, mapper)
    if unknown:
        print(f"{len(unknown)} gold label(s) in {args.file} are not in the model's {args.task} label set "
              f"(kept as gold labels, so they count as misses):", file=sys.stderr)
        for label, lines in sorted(unknown.items()):
            shown = ", ".join(map(str, lines[:10])) + (" ..." if len(lines) > 10 else "")
            print(f"  {label!r}: line(s) {shown}", file=sys.stderr)
    answers = answer(args.model, rows, device=args.device)
    scored = score_answers(rows, gold, answers, mapper)
    metrics = {**scored.metrics, "unknown_gold_labels": {k: v for k, v in sorted(unknown.items())},
               "model": str(args.model), "kind": manifest["kind"], "task": args.task}
    print(f"{manifest.get('label', args.model)} ({manifest['kind']}) on {args.file}: {len(rows)} texts, "
          f"{args.task} task")
    for col in METRIC_COLUMNS:
        print(f"  {col:16s} {metrics[col]:.4f}")
    print(f"  {'unknown labels':16s} {len(unknown)}")
    if args.out:
        write_json(args.out, metrics, inputs=inputs)
    if args.per_label:
        with atomic_path(args.per_label, inputs=inputs) as fh:
            scored.per_label.to_csv(fh, index=False)
    if args.predictions:
        write_jsonl(args.predictions, scored.predictions, inputs=inputs)
    return 0
