"""A CTI model folder and its answers: LoRA fine-tune, zero-shot base LLM, API model or TF-IDF.

Every contestant of the CTI tables has a model folder with ``cti_model.json`` (the manifest):
``kind`` (``lora``, ``zero-shot``, ``api``, ``tfidf``), ``task``, ``to_parent``, the valid
``labels``, the label ``catalogue``, ``parameters`` and, by kind, the base model folder, prompt and
generation settings, the zero-shot label ``choices`` or the API entry (never a key). The
pipeline writes these folders and ``tinysec cti-eval --model DIR`` reads them, so both answer
through :func:`answer` alike. LLM answers come from :mod:`tinysec.models.generate`.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..io import InputError, check_record, read_json, read_jsonl, write_json, write_jsonl
from ..schema import schema_defaults
from .labels import Catalogue
from .outputs import LabelMapper
from .prompts import label_field, to_records

MANIFEST = "cti_model.json"
KINDS = ("lora", "zero-shot", "api", "tfidf", "encoder")


def write_manifest(folder: str | os.PathLike, **fields: Any) -> dict:
    """Write ``cti_model.json`` into ``folder``; returns the manifest."""
    if fields.get("kind") not in KINDS:
        raise ValueError(f"unknown CTI model kind {fields.get('kind')!r}; use one of {KINDS}")
    if fields.get("model_dir"):
        fields["model_dir"] = os.path.abspath(fields["model_dir"])
    write_json(Path(folder) / MANIFEST, fields)
    return fields


def load_manifest(model_dir: str | os.PathLike) -> dict:
    """The manifest of a CTI model folder (format ``cti_manifest``); a clear error when the folder is not one."""
    path = Path(model_dir) / MANIFEST
    if not path.is_file():
        raise InputError(model_dir, f"not a CTI model folder: {MANIFEST} is missing (train one with the "
                                    "pipeline: results/cti/<model>/<task>_model/)")
    return check_record(read_json(path), "cti_manifest", path)


def mapper_of(manifest: Mapping[str, Any]) -> LabelMapper:
    """The label mapper of a manifest (its task, catalogue, labels and parent mapping)."""
    return LabelMapper(manifest["task"], Catalogue.from_dict(manifest["catalogue"]), manifest["labels"],
                       bool(manifest.get("to_parent")))


def safetensors_numel(folder: str | os.PathLike) -> int:
    """Number of weights in the ``*.safetensors`` files of ``folder``, read from their headers only."""
    total = 0
    for path in sorted(Path(folder).glob("*.safetensors")):
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        for name, info in header.items():
            if name != "__metadata__":
                n = 1
                for d in info["shape"]:
                    n *= d
                total += n
    return total


def answer(model_dir: str | os.PathLike, rows: Sequence[dict], device: str | None = None,
           progress: bool = True, gen: Mapping[str, Any] | None = None) -> list[dict]:
    """Answers ``{id, answer, n_tokens, seconds}`` of the model in ``model_dir`` for ``rows`` ({id, text}).

    Generation settings: ``gen``, else the manifest's, else the defaults of ``cti.generation``
    (greedy)."""
    manifest = load_manifest(model_dir)
    kind, task = manifest["kind"], manifest["task"]
    if kind == "tfidf":
        from .tfidf import TfidfOvr

        model = TfidfOvr.load(Path(model_dir) / "tfidf")
        return [{"id": r["id"], "answer": ", ".join(labels), "n_tokens": 0, "seconds": 0.0}
                for r, labels in zip(rows, model.predict([r["text"] for r in rows]))]
    if kind == "encoder":
        from .encoder import predict

        return [{"id": r["id"], "answer": ", ".join(labels), "n_tokens": 0, "seconds": 0.0}
                for r, labels in zip(rows, predict(manifest["model_dir"], task, [r["text"] for r in rows]))]
    from ..models import generate

    mapper = mapper_of(manifest)
    settings = {**schema_defaults("cti.schema.yaml", "generation"), **(manifest.get("gen") or {}), **(gen or {})}
    unlabeled = [{**r, label_field(task): []} for r in rows]  # prompts only; gold stays with the caller
    records = to_records(unlabeled, task, mapper, manifest.get("choices"))
    if kind == "api":
        out = generate.api_answer_records(manifest["api_entry"], records, settings,
                                          system=(manifest.get("prompt") or {}).get("system"))
    else:
        adapter = model_dir if kind == "lora" else None
        out = generate.answer_records(manifest["model_dir"], records, settings,
                                      prompt=manifest.get("prompt"), adapter_dir=adapter, device=device,
                                      progress=progress)
    return [{"id": o["id"], "answer": o["answer"], "n_tokens": o["n_tokens"], "seconds": o["seconds"]} for o in out]


def label_mapper(labels_file: str, task: str) -> tuple[Catalogue, bool, LabelMapper]:
    """Catalogue, parent mapping and label mapper of ``task`` from a ``labels.json`` file."""
    meta = read_json(labels_file)
    catalogue = Catalogue.from_dict(meta["catalogue"])
    to_parent = bool(meta["to_parent"])
    return catalogue, to_parent, LabelMapper(task, catalogue, catalogue.labels(task, to_parent), to_parent)


def manifest_base(task: str, labels_file: str) -> dict:
    """The manifest fields every CTI model folder of ``task`` shares (labels, catalogue)."""
    catalogue, to_parent, mapper = label_mapper(labels_file, task)
    return {"task": task, "to_parent": to_parent, "labels": mapper.valid, "catalogue": catalogue.to_dict()}


def answer_file(model_dir: str, test_file: str, out_file: str, gpus: int, gen: Mapping[str, Any] | None = None) -> int:
    """Answers of an LLM model folder for the test subset (GPU claimed for local models).

    ``gen`` (generation settings) is a parameter of this step, not of training, so changing it
    never reruns a fine-tune."""
    from ..gpu import claim_gpus

    manifest = load_manifest(model_dir)
    with claim_gpus(0 if manifest["kind"] == "api" else min(1, gpus)):
        rows = answer(model_dir, read_jsonl(test_file), gen=gen)
    return write_jsonl(out_file, rows)
