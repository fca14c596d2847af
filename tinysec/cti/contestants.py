"""The model folder of each kind of CTI contestant: LoRA fine-tune, zero-shot base LLM or API
model, TF-IDF baseline (see :mod:`tinysec.cti.predictor` for the folder's manifest)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..io import read_jsonl, write_jsonl
from .labels import Catalogue
from .predictor import answer, label_mapper, manifest_base, safetensors_numel, write_manifest
from .prompts import label_field, to_records, zero_shot_choices

if TYPE_CHECKING:  # the training code imports torch lazily; only its job type is needed here
    from ..models.train import TrainJob


def finetune(job: TrainJob, *, task: str, labels_file: str, label: str, gpus: int = 0) -> dict:
    """LoRA fine-tune ``job.model_dir`` on the ``task`` instruction records made from the CTI
    examples in ``job.train_file`` (shared training code), then write the manifest that makes
    ``job.out_dir`` a CTI model folder named ``label``. Returns the training metrics."""
    from ..models.train import run_job

    _, _, mapper = label_mapper(labels_file, task)
    records = to_records(read_jsonl(job.train_file), task, mapper)
    metrics = run_job(replace(job, records=records, train_file=None), gpus_per_job=gpus)
    params = safetensors_numel(job.model_dir) + safetensors_numel(job.out_dir)
    write_manifest(job.out_dir, kind="lora", label=label, model_dir=job.model_dir, prompt=dict(job.prompt or {}),
                   parameters=params, train_seconds=metrics.get("wall_seconds"), train_tokens=metrics.get("train_tokens"),
                   **manifest_base(task, labels_file))
    return metrics


def llm_manifest(out_dir: str, kind: str, task: str, labels_file: str, train_file: str, label: str,
                 model_dir: str | None = None, api_entry: Mapping[str, Any] | None = None,
                 prompt: Mapping[str, Any] | None = None, gen: Mapping[str, Any] | None = None,
                 choices_limit: int | None = None) -> dict:
    """Model folder of a zero-shot base LLM or API model: the manifest with the label choices."""
    base = manifest_base(task, labels_file)
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
              settings: Mapping[str, Any], seed: int, full: bool = False, label: str | None = None) -> None:
    """Fit the TF-IDF baseline, save it as a CTI model folder and answer the texts of ``test_file``.

    ``full``: the training file is the whole training split rather than the subsample (own label);
    ``label`` overrides the row's display name."""
    from .tfidf import TfidfOvr

    field = label_field(task)
    train = read_jsonl(train_file)
    model = TfidfOvr.fit([r["text"] for r in train], [r[field] for r in train], dict(settings), seed=seed)
    model.save(Path(out_dir) / "tfidf")
    label = label or (f"TF-IDF + LR, full train split ({len(train)})" if full else "TF-IDF + LR (one-vs-rest)")
    write_manifest(out_dir, kind="tfidf", label=label, parameters=model.n_parameters,
                   **manifest_base(task, labels_file))
    write_jsonl(answers_file, answer(out_dir, read_jsonl(test_file)))
