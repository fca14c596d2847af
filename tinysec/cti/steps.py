"""The steps of the CTI pipeline, one function per Snakemake rule (the rule scripts stay thin)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..io import read_json, read_jsonl, write_json, write_jsonl
from ..reports import write_table
from .corpus import build_corpus, load_source
from .evaluate import score_answers
from .labels import Catalogue
from .outputs import LabelMapper
from .predictor import answer, load_manifest, mapper_of, safetensors_numel, write_manifest
from .prompts import label_field, to_records, zero_shot_choices
from .splits import SPLITS, check_leakage, stratified_split, subsample
from .tables import caption, results_frame

log = logging.getLogger(__name__)


def build_dataset(source: str, out: Mapping[str, str], min_length: int, to_parent: bool,
                  fractions: Sequence[float], seed: int, package_dir: str | None = None) -> dict:
    """Read, clean, merge and split the configured source; writes the splits, labels.json and stats."""
    raw, catalogue, label = load_source(source, package_dir)
    records, stats = build_corpus(raw, catalogue, to_parent, min_length)
    if not records:
        raise ValueError(f"no CTI examples left from {source} after cleaning (min_length={min_length})")
    splits = stratified_split(records, tuple(fractions), seed)
    check_leakage(splits)
    for name in SPLITS:
        write_jsonl(out[name], splits[name])
    write_json(out["labels"], {"to_parent": to_parent, "catalogue": catalogue.to_dict()})
    stats = {**stats, "source": label, **{f"n_{s}": len(splits[s]) for s in SPLITS}}
    write_json(out["stats"], stats)
    log.info("CTI corpus: %s", stats)
    return stats


def make_subset(train: str, test: str, out_train: str, out_test: str, n_train: int | None, n_test: int | None,
                seed: int) -> None:
    """Seeded subsamples of the train and test splits (the sizes the models actually see)."""
    write_jsonl(out_train, subsample(read_jsonl(train), n_train, seed))
    write_jsonl(out_test, subsample(read_jsonl(test), n_test, seed + 1))


def _labels(labels_file: str, task: str) -> tuple[Catalogue, bool, LabelMapper]:
    meta = read_json(labels_file)
    catalogue = Catalogue.from_dict(meta["catalogue"])
    to_parent = bool(meta["to_parent"])
    return catalogue, to_parent, LabelMapper(task, catalogue, catalogue.labels(task, to_parent), to_parent)


def _manifest_base(task: str, labels_file: str) -> dict:
    catalogue, to_parent, mapper = _labels(labels_file, task)
    return {"task": task, "to_parent": to_parent, "labels": mapper.valid, "catalogue": catalogue.to_dict()}


def finetune(model_dir: str, train_file: str, labels_file: str, task: str, out_dir: str, metrics_file: str,
             hparams: Mapping[str, Any], prompt: Mapping[str, Any], checkpoint_dir: str,
             gpus: int, label: str, log_file: str | None = None) -> dict:
    """LoRA fine-tune ``model_dir`` on the task's instruction records (shared training code), then
    write the manifest that makes ``out_dir`` a CTI model folder."""
    from ..models.train import run_job

    _, _, mapper = _labels(labels_file, task)
    records = to_records(read_jsonl(train_file), task, mapper)
    metrics = run_job({"model_dir": model_dir, "records": records, "out_dir": out_dir, "metrics_file": metrics_file,
                       "hparams": dict(hparams), "prompt": dict(prompt), "checkpoint_dir": checkpoint_dir,
                       "log_file": log_file}, gpus_per_job=gpus)
    params = safetensors_numel(model_dir) + safetensors_numel(out_dir)
    write_manifest(out_dir, kind="lora", label=label, model_dir=model_dir, prompt=dict(prompt),
                   parameters=params, **_manifest_base(task, labels_file))
    return metrics


def llm_manifest(out_dir: str, kind: str, task: str, labels_file: str, train_file: str, label: str,
                 model_dir: str | None = None, api_entry: Mapping[str, Any] | None = None,
                 prompt: Mapping[str, Any] | None = None, gen: Mapping[str, Any] | None = None,
                 choices_limit: int | None = None) -> dict:
    """Model folder of a zero-shot base LLM or API model: the manifest with the label choices."""
    base = _manifest_base(task, labels_file)
    catalogue = Catalogue.from_dict(base["catalogue"])
    choices = zero_shot_choices(task, catalogue, base["labels"], read_jsonl(train_file), choices_limit)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    entry = None
    if api_entry is not None:  # the entry names the key's environment variable, never the key
        entry = {k: v for k, v in api_entry.items() if k in ("source", "label", "api")}
    return write_manifest(out_dir, kind=kind, label=label, model_dir=model_dir, api_entry=entry,
                          prompt=dict(prompt or {}), gen=dict(gen or {}), choices=choices,
                          parameters=safetensors_numel(model_dir) if model_dir else None, **base)


def fit_tfidf(train_file: str, test_file: str, labels_file: str, task: str, out_dir: str, answers_file: str,
              settings: Mapping[str, Any], seed: int, full: bool = False) -> None:
    """Fit the TF-IDF baseline, save it as a CTI model folder and answer the test subset.

    ``full``: the training file is the whole training split rather than the subsample (own label)."""
    from .tfidf import TfidfOvr

    field = label_field(task)
    train = read_jsonl(train_file)
    model = TfidfOvr.fit([r["text"] for r in train], [r[field] for r in train], dict(settings), seed=seed)
    model.save(Path(out_dir) / "tfidf")
    label = f"TF-IDF + LR, full train split ({len(train)})" if full else "TF-IDF + LR (one-vs-rest)"
    write_manifest(out_dir, kind="tfidf", label=label, parameters=model.n_parameters,
                   **_manifest_base(task, labels_file))
    write_jsonl(answers_file, answer(out_dir, read_jsonl(test_file)))


def answer_file(model_dir: str, test_file: str, out_file: str, gpus: int, gen: Mapping[str, Any] | None = None) -> int:
    """Answers of an LLM model folder for the test subset (GPU claimed for local models).

    ``gen`` (generation settings) is a parameter of this step, not of training, so changing it
    never reruns a fine-tune."""
    from ..gpu import claim_gpus

    manifest = load_manifest(model_dir)
    with claim_gpus(0 if manifest["kind"] == "api" else min(1, gpus)):
        rows = answer(model_dir, read_jsonl(test_file), gen=gen)
    return write_jsonl(out_file, rows)


def score_file(model_dir: str, answers_file: str, test_file: str, contestant: str, out: Mapping[str, str]) -> dict:
    """Metrics, per-label table and predictions of one contestant on one task."""
    manifest = load_manifest(model_dir)
    mapper = mapper_of(manifest)
    test = read_jsonl(test_file)
    gold = [r[label_field(manifest["task"])] for r in test]
    scored = score_answers(test, gold, read_jsonl(answers_file), mapper)
    metrics = {"model": contestant, "label": manifest.get("label", contestant), "kind": manifest["kind"],
               "task": manifest["task"], "parameters": manifest.get("parameters"), **scored.metrics}
    write_json(out["metrics"], metrics)
    scored.per_label.to_csv(out["per_label"], index=False)
    write_jsonl(out["predictions"], scored.predictions)
    return metrics


def build_table(task: str, metrics_files: Sequence[str], stats_file: str, train_file: str, test_file: str,
                labels_file: str, csv: str, md: str, hparams: Mapping[str, Any], choices_limit: int | None) -> None:
    """The ``task`` table (model, parameters, P/R/F1 micro and macro, exact match, invalid rate)."""
    from ..reports import device_description

    df = results_frame([read_json(f) for f in metrics_files])
    _, to_parent, mapper = _labels(labels_file, task)
    text = caption(task, read_json(stats_file), len(read_jsonl(train_file)), len(read_jsonl(test_file)),
                   len(mapper.valid), to_parent, device_description(),
                   choices_limit if choices_limit and choices_limit < len(mapper.valid) else None, hparams)
    write_table(df, csv, md, text)
