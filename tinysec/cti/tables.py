"""The CTI result tables (analogs of the study's Tables 6 and 7), one per task."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from ..io import read_json, read_jsonl
from .predictor import label_mapper

KIND_TEXT = {"lora": "LoRA fine-tune", "zero-shot": "base LLM, zero-shot", "api": "API model, zero-shot",
             "tfidf": "TF-IDF + one-vs-rest logistic regression"}
METRIC_COLUMNS = ["precision_micro", "recall_micro", "f1_micro", "precision_macro", "recall_macro", "f1_macro",
                  "exact_match", "invalid_rate"]
STUDY = {"tactic": "Table 6", "technique": "Table 7"}


def results_frame(entries: Sequence[Mapping]) -> pd.DataFrame:
    """One row per contestant from its metrics JSON (``model``, ``label``, ``kind``, ``parameters``, scores)."""
    rows = []
    for m in entries:
        params = m.get("parameters")
        rows.append({"model": m.get("label") or m["model"], "kind": KIND_TEXT.get(m["kind"], m["kind"]),
                     "parameters_million": round(params / 1e6, 3) if params else None,
                     **{c: m[c] for c in METRIC_COLUMNS}, "n_test": m["n"]})
    return pd.DataFrame(rows, columns=["model", "kind", "parameters_million", *METRIC_COLUMNS, "n_test"])


def caption(task: str, stats: Mapping, n_train: int, n_test: int, n_labels: int, to_parent: bool,
            device: str, zero_shot_choices: int | None, hparams: Mapping) -> str:
    """Caption of the ``task`` table: data, sizes, models and metric definitions."""
    what = "tactics" if task == "tactic" else "techniques" + (" (sub-techniques folded into their parent)" if to_parent else "")
    zs = (f" Zero-shot prompts list {zero_shot_choices} labels (the most frequent in the training subset)."
          if zero_shot_choices else " Zero-shot prompts list every label.")
    return (
        f"**CTI {task} extraction** (our analog of the study's {STUDY[task]}). Multi-label extraction of ATT&CK "
        f"{what} from CTI sentences: {stats.get('source', '')}; {stats.get('examples', '?')} cleaned, merged texts split "
        f"8:1:1, stratified by technique. Models are trained on a seeded subsample of **{n_train}** training texts and "
        f"scored on **{n_test}** test texts; {n_labels} {task} labels are valid. LoRA fine-tunes use batch "
        f"{hparams.get('batch_size')}, lr {hparams.get('lr')}, {hparams.get('epochs')} epochs (the study's "
        f"hyperparameters are batch 2, lr 1e-4, 3 epochs).{zs} Device: {device}. "
        "**precision_micro** is the study's precision: correct predicted labels / all predicted labels, pooled over "
        "the test set (micro-averaged over predicted labels); recall_micro = correct / all gold labels; F1 their "
        "harmonic mean. Macro scores average per label over every label in the gold or predicted sets. "
        "exact_match: share of texts whose predicted set equals the gold set. invalid_rate: share of answers that "
        "map to no valid label. parameters_million: weights of the model in millions (base weights plus adapter for LoRA; "
        "coefficients for TF-IDF; blank when unknown). The study reports ChatGPT at 42.60% tactic and 17.90% "
        "technique precision on its own data."
    )


def build_table(task: str, metrics_files: Sequence[str], stats_file: str, train_file: str, test_file: str,
                labels_file: str, csv: str, md: str, hparams: Mapping[str, Any], choices_limit: int | None) -> None:
    """The ``task`` table (model, parameters, P/R/F1 micro and macro, exact match, invalid rate)."""
    from ..reports import device_description, write_table

    df = results_frame([read_json(f) for f in metrics_files])
    _, to_parent, mapper = label_mapper(labels_file, task)
    text = caption(task, read_json(stats_file), len(read_jsonl(train_file)), len(read_jsonl(test_file)),
                   len(mapper.valid), to_parent, device_description(),
                   choices_limit if choices_limit and choices_limit < len(mapper.valid) else None, hparams)
    write_table(df, csv, md, text)
