"""The CTI result tables, one per task: every contestant's scores with intervals, and training cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..io import InputError, read_json, read_jsonl
from .metrics import INTERVAL_METRICS
from .predictor import label_mapper

KIND_TEXT = {"lora": "LoRA fine-tune", "zero-shot": "base LLM, zero-shot", "api": "API model, zero-shot",
             "tfidf": "TF-IDF + one-vs-rest logistic regression",
             "encoder": "encoder classifier (sigmoid head, fine-tuned)"}
#: Scores of a metrics JSON the tables and ``tinysec cti-eval`` show (``precision_example``: the study's figure).
METRIC_COLUMNS = ["precision_example", "precision_micro", "recall_micro", "f1_micro", "precision_macro",
                  "recall_macro", "f1_macro", "exact_match", "invalid_rate"]
#: The score whose best row the ``..._vs_best`` column compares every row's interval with.
MAIN_METRIC = "f1_micro"
VS_BEST = f"{MAIN_METRIC}_vs_best"
LLM_KINDS = ("lora", "zero-shot", "api")


#: What training cost a trained row (LoRA, encoder): wall seconds and tokens seen; blank for the others.
TRAINED = ["train_seconds", "train_tokens"]
#: Columns of a table row read from a metrics JSON: each score, and the bounds of the interval ones.
SCORED = [c for m in METRIC_COLUMNS for c in ((m, f"{m}_lo", f"{m}_hi") if m in INTERVAL_METRICS else (m,))]


def results_frame(entries: Sequence[Mapping]) -> pd.DataFrame:
    """One row per contestant from its metrics JSON (``model``, ``label``, ``kind``, ``parameters``,
    training seconds and tokens when it was trained, scores and their bootstrap bounds), with
    :data:`VS_BEST` (see :func:`versus_best`)."""
    rows = []
    for m in entries:
        params = m.get("parameters")
        rows.append({"model": m.get("label") or m["model"], "kind": KIND_TEXT.get(m["kind"], m["kind"]),
                     "parameters_million": round(params / 1e6, 3) if params else None, "n_test": m["n"],
                     **{c: m.get(c) for c in TRAINED}, **{c: m[c] for c in SCORED}})
    df = pd.DataFrame(rows, columns=["model", "kind", "parameters_million", "n_test", *TRAINED, *SCORED])
    df[VS_BEST] = versus_best(df)
    return df


def versus_best(df: pd.DataFrame) -> list[str]:
    """Per row: 'best' (highest :data:`MAIN_METRIC`; the first on a tie), 'overlaps' (its interval
    overlaps the best row's) or 'below' (its interval lies wholly below the best row's)."""
    if not len(df):
        return []
    best = int(df[MAIN_METRIC].to_numpy().argmax())
    lo, hi = df.at[best, f"{MAIN_METRIC}_lo"], df.at[best, f"{MAIN_METRIC}_hi"]
    return ["best" if i == best else "overlaps" if r[f"{MAIN_METRIC}_hi"] >= lo and r[f"{MAIN_METRIC}_lo"] <= hi
            else "below" for i, r in df.iterrows()]


def markdown_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` for reading: each interval metric as ``0.53 [0.41, 0.66]``, other scores to 3 places."""
    out = df[["model", "kind", "parameters_million", "n_test"]].copy()
    for c in TRAINED:  # blank, not NaN, for rows that were not trained here
        out[c] = ["" if v is None or pd.isna(v) else f"{float(v):.0f}" for v in df[c]]
    for m in METRIC_COLUMNS:
        if m in INTERVAL_METRICS:
            out[m] = [f"{v:.2f} [{lo:.2f}, {hi:.2f}]" for v, lo, hi in zip(df[m], df[f"{m}_lo"], df[f"{m}_hi"])]
        else:
            out[m] = [f"{v:.3f}" for v in df[m]]
    out[VS_BEST] = df[VS_BEST]
    return out


def scored_on_text(df: pd.DataFrame, kinds: Sequence[str], n_full: int) -> str:
    """Which rows were scored on which test items (LLM rows: a seeded subset; the others: all)."""
    llm = sorted({int(n) for n, k in zip(df["n_test"], kinds) if k in LLM_KINDS})
    rest = sorted({int(n) for n, k in zip(df["n_test"], kinds) if k not in LLM_KINDS})
    rest_kinds = ", ".join(sorted({KIND_TEXT.get(k, k) for k in kinds if k not in LLM_KINDS}))
    parts = []
    if rest:
        parts.append(f"Rows of kind {rest_kinds} are scored on the whole test split "
                     f"(**{', '.join(map(str, rest))}** texts)")
    if llm:
        subset = "the whole test split" if llm == [n_full] else "a seeded random subset of the test split"
        parts.append(f"LLM rows on {subset} (**{', '.join(map(str, llm))}** texts, column n_test)")
    return "; ".join(parts) + "." if parts else "No rows."


def interval_text(settings: Mapping | None) -> str:
    """What the bracketed intervals are."""
    if not settings:
        return "No intervals were computed."
    return (f"Brackets: {100 * settings['confidence']:g}% percentile bootstrap interval over test items "
            f"({settings['resamples']} resamples, seed {settings['seed']}; rows scored on the same test items "
            "share the resamples). The CSV has them as <metric>_lo and <metric>_hi. "
            f"{VS_BEST}: 'best' marks the row with the highest {MAIN_METRIC} (the main metric: it weighs missed "
            "labels as well as wrong ones), 'overlaps' a row whose interval overlaps the best row's (not "
            "distinguishable from it at this sample size), 'below' one whose interval lies wholly below.")


def caption(task: str, stats: Mapping, n_train: int, n_labels: int, to_parent: bool, device: str,
            zero_shot_choices: int | None, hparams: Mapping, tests: str, intervals: str,
            memory_fraction: float | None) -> str:
    """Caption of the ``task`` table: data, sizes, models and metric definitions."""
    what = "tactics" if task == "tactic" else "techniques" + (" (sub-techniques folded into their parent)" if to_parent else "")
    zs = (f" Zero-shot prompts list {zero_shot_choices} labels (the most frequent in the training subset)."
          if zero_shot_choices else " Zero-shot prompts list every label.")
    cap = (f"capped at {100 * memory_fraction:g}% of each GPU's memory (torch.cuda.set_per_process_memory_fraction, "
           "applied only on CUDA; the study's cap was 50% of an A100)" if memory_fraction
           else "without a GPU memory cap (the study capped its fine-tunes at 50% of an A100)")
    return (
        f"**CTI {task} extraction**. Multi-label extraction of ATT&CK "
        f"{what} from CTI sentences: {stats.get('source', '')}; {stats.get('examples', '?')} cleaned, merged texts split "
        f"8:1:1, stratified by technique. Models are trained on a seeded subsample of **{n_train}** training texts "
        f"(a 'full train split' row, when present, on all of them). {tests} {n_labels} {task} labels are valid. LoRA fine-tunes use batch "
        f"{hparams.get('batch_size')}, lr {hparams.get('lr')}, {hparams.get('epochs')} epochs (the study's "
        f"hyperparameters are batch 2, lr 1e-4, 3 epochs), {cap}.{zs} Device: {device}. "
        "**precision_example** is the study's single precision figure: for each test text, correct predicted labels "
        "/ predicted labels, averaged over the texts; an empty or unparseable answer scores 0. precision_micro = "
        "correct predicted labels / all predicted labels pooled over the test texts (an empty answer adds nothing "
        "to the denominator, so it is not the study's figure); recall_micro = correct / all gold labels; F1 their "
        "harmonic mean. Macro scores average per label over every label in the gold or predicted sets. "
        f"{intervals} exact_match: share of texts whose predicted set equals the gold set. invalid_rate: share of "
        "answers that map to no valid label. parameters_million: weights of the model in millions (base weights plus "
        "adapter for LoRA; coefficients for TF-IDF; blank when unknown). train_seconds / train_tokens: wall seconds of "
        "training and the non-padding tokens it processed, for the LoRA and encoder rows (blank for the others). The study reports ChatGPT at 42.60% tactic "
        "and 17.90% technique precision on its own data."
    )


def build_table(task: str, metrics_files: Sequence[str], stats_file: str, train_file: str, test_file: str,
                labels_file: str, csv: str, md: str, hparams: Mapping[str, Any], choices_limit: int | None,
                memory_fraction: float | None = None, top_techniques: int | None = None) -> None:
    """The ``task`` table: one row per contestant with parameters, test size, per-example precision,
    micro and macro P/R/F1 with bootstrap intervals, exact match, invalid rate and :data:`VS_BEST`.

    ``test_file`` is the LLM rows' test subset; ``memory_fraction`` the fine-tunes' GPU memory cap;
    ``top_techniques`` the restriction of the subsamples to the most frequent techniques (caption)."""
    from ..reports import device_description, write_table

    entries = [read_json(f) for f in metrics_files]
    for path, entry in zip(metrics_files, entries):
        missing = [c for c in ("model", "kind", "n", *SCORED) if c not in entry]
        if missing:
            raise InputError(path, "metrics file lacks a score the table shows (rerun cti_score)", field=missing[0])
    df = results_frame(entries)
    stats = read_json(stats_file)
    _, to_parent, mapper = label_mapper(labels_file, task)
    tests = scored_on_text(df, [m["kind"] for m in entries], int(stats.get("n_test", len(read_jsonl(test_file)))))
    text = caption(task, stats, len(read_jsonl(train_file)), len(mapper.valid), to_parent, device_description(),
                   choices_limit if choices_limit and choices_limit < len(mapper.valid) else None, hparams, tests,
                   interval_text(entries[0].get("bootstrap") if entries else None), memory_fraction)
    if top_techniques:
        text += (f" The training subsample and the LLM rows' test subset hold only texts whose techniques are all among "
                 f"the **{top_techniques} most frequent techniques** of the training split (so a small LLM's row "
                 "measures something); the rows scored on the whole test split are not restricted.")
    write_table(df, csv, md, text, md_df=markdown_frame(df))
