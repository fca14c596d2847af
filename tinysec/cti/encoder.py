"""Encoder classifier baseline: a sentence encoder (the config's ``embedder``, MiniLM by default)
fine-tuned multi-label with a sigmoid head and binary cross-entropy.

One model answers both tasks: its head has one output per tactic and per technique label, trained
jointly on the CTI examples; each task keeps its own decision threshold, chosen on the validation
split (micro F1 over a grid; optionally at least the top label of the task per text). Training runs
on CPU in fp32 with length-grouped batches, and stops at the end of the step that crosses
``max_seconds`` (the time budget) or after ``epochs`` passes, whichever comes first.

A trained folder: the encoder and tokenizer (``save_pretrained``, safetensors), ``head.safetensors``
(the linear head) and ``encoder_clf.json`` (labels, thresholds, settings, what training saw).
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import InputError, read_json, write_json
from ..schema import schema_defaults
from ..torchutil import adamw, length_grouped_batches

log = logging.getLogger(__name__)

META = "encoder_clf.json"
HEAD = "head.safetensors"
#: Training settings of the ``cti.encoder`` schema (its row switch ``enabled`` and ``model`` left out).
DEFAULTS: dict[str, Any] = {k: v for k, v in schema_defaults("cti.schema.yaml", "encoder").items()
                            if k not in ("enabled", "model")}
THRESHOLDS = [round(0.05 * i, 2) for i in range(1, 20)]


def mean_pool(hidden, mask):
    """Mean of the token vectors under ``mask`` (sentence-transformers' pooling for MiniLM)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def _classifier_class():
    import torch

    class EncoderClassifier(torch.nn.Module):
        """Encoder + mean pooling + dropout + one linear layer (logits, one per label)."""

        def __init__(self, encoder, n_labels: int, dropout: float = 0.1):
            super().__init__()
            self.encoder = encoder
            self.dropout = torch.nn.Dropout(dropout)
            self.head = torch.nn.Linear(encoder.config.hidden_size, n_labels)

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.head(self.dropout(mean_pool(hidden, attention_mask)))

    return EncoderClassifier


def freeze_below(encoder, train_layers: int | None) -> int:
    """Freeze the embeddings and every transformer layer but the top ``train_layers`` (None: train
    all); backpropagation then stops at the lowest trained layer. Returns the trainable weights."""
    if train_layers is not None:
        layers = getattr(getattr(encoder, "encoder", None), "layer", None)
        if layers is None:
            raise ValueError("cti.encoder.train_layers needs a BERT-style encoder (encoder.layer); set it to null")
        keep = {id(p) for layer in list(layers)[len(layers) - min(train_layers, len(layers)):] for p in layer.parameters()}
        for p in encoder.parameters():
            p.requires_grad = id(p) in keep
    return sum(p.numel() for p in encoder.parameters() if p.requires_grad)


def _load_encoder(path: str | os.PathLike):
    import torch
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(path)


def label_matrix(label_sets: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    """0/1 matrix (texts x labels); labels outside ``labels`` are ignored."""
    index = {lab: j for j, lab in enumerate(labels)}
    y = np.zeros((len(label_sets), len(labels)), dtype=np.float32)
    for i, ls in enumerate(label_sets):
        for lab in ls:
            if lab in index:
                y[i, index[lab]] = 1.0
    return y


def encode(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of every text, truncated to ``max_length`` (special tokens included)."""
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def pad(ids: Sequence[Sequence[int]], pad_id: int):
    import torch

    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, :len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, :len(x)] = 1
    return input_ids, mask


def probabilities(model, tokenizer, texts: Sequence[str], max_length: int, batch_size: int) -> np.ndarray:
    """Sigmoid outputs (texts x labels), batches sorted by length."""
    import torch

    ids = encode(tokenizer, texts, max_length)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(ids), model.head.out_features), dtype=np.float32)
    model.eval()
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            x, m = pad([ids[i] for i in idx], tokenizer.pad_token_id or 0)
            out[idx] = torch.sigmoid(model(x, m)).numpy()
    return out


def decide(probs: np.ndarray, threshold: float, at_least_one: bool) -> np.ndarray:
    """0/1 decisions: every label at or above ``threshold``; with ``at_least_one`` the top label of a
    text whose scores all fall below it."""
    pred = (probs >= threshold).astype(np.float32)
    if at_least_one and probs.shape[1]:
        empty = pred.sum(1) == 0
        pred[empty, probs[empty].argmax(1)] = 1.0
    return pred


def micro_f1(gold: np.ndarray, pred: np.ndarray) -> float:
    tp = float((gold * pred).sum())
    denom = float(gold.sum() + pred.sum())
    return 2 * tp / denom if denom else 0.0


def choose_threshold(probs: np.ndarray, gold: np.ndarray) -> dict:
    """The (threshold, at_least_one) pair of the grid with the best micro F1 on ``gold`` (the first on a tie)."""
    best = None
    for at_least_one in (False, True):
        for t in THRESHOLDS:
            f1 = micro_f1(gold, decide(probs, t, at_least_one))
            if best is None or f1 > best["val_f1_micro"] + 1e-12:
                best = {"threshold": t, "at_least_one": at_least_one, "val_f1_micro": round(f1, 6)}
    return best


def settings_of(settings: Mapping[str, Any] | None) -> dict:
    """:data:`DEFAULTS` updated with ``settings``; unknown keys are an error naming the key."""
    unknown = sorted(set(settings or {}) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown encoder classifier setting {unknown[0]!r} (known: {', '.join(DEFAULTS)})")
    return {**DEFAULTS, **(settings or {})}


def train_loop(model, batches: Sequence[tuple[list[list[int]], np.ndarray]], s: Mapping[str, Any], pad_id: int,
               epochs_steps: int) -> dict:
    """AdamW (encoder ``lr``, head ``head_lr``, linear decay) over ``batches`` in order, BCE loss;
    stops after the step that crosses ``max_seconds``. Returns what it saw and how long it took."""
    import torch

    enc = [p for n, p in model.named_parameters() if not n.startswith("head.") and p.requires_grad]
    opt = adamw([{"params": enc, "lr": s["lr"]}, {"params": model.head.parameters(), "lr": s["head_lr"]}],
                weight_decay=s["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: max(0.0, 1.0 - k / max(1, epochs_steps)))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    t0, steps, texts, tokens, losses = time.perf_counter(), 0, 0, 0, []
    for ids, y in batches:
        x, m = pad(ids, pad_id)
        loss = loss_fn(model(x, m), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        steps, texts, tokens = steps + 1, texts + len(ids), tokens + int(m.sum())
        losses.append(float(loss.detach()))
        if steps % 20 == 0:
            log.info("step %d/%d: loss %.4f, %.0f tokens/s", steps, epochs_steps, np.mean(losses[-20:]),
                     tokens / (time.perf_counter() - t0))
        if s["max_seconds"] is not None and time.perf_counter() - t0 >= s["max_seconds"]:
            break
    seconds = time.perf_counter() - t0
    return {"steps": steps, "planned_steps": epochs_steps, "texts_seen": texts, "tokens_seen": tokens,
            "train_seconds": round(seconds, 2), "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
            "final_loss": round(float(np.mean(losses[-20:])), 5) if losses else None,
            "stopped_by_time": steps < epochs_steps}


def train(encoder_dir: str | os.PathLike, train_rows: Sequence[Mapping], val_rows: Sequence[Mapping],
          tasks: Mapping[str, Sequence[str]], settings: Mapping[str, Any] | None = None, seed: int = 0):
    """Fine-tune the encoder in ``encoder_dir`` on ``train_rows`` (``text``, ``tactics``, ``techniques``)
    for the labels of ``tasks`` (task -> label ids), then choose each task's threshold on ``val_rows``.

    Returns ``(model, tokenizer, meta)``; ``meta`` is what :func:`save` writes to ``encoder_clf.json``."""
    import torch

    from .prompts import label_field

    s = settings_of(settings)
    torch.manual_seed(seed)
    encoder, tokenizer = _load_encoder(encoder_dir)
    names = [(t, lab) for t in tasks for lab in tasks[t]]
    model = _classifier_class()(encoder, len(names))
    trainable = freeze_below(encoder, s["train_layers"])
    y = np.concatenate([label_matrix([r[label_field(t)] for r in train_rows], tasks[t]) for t in tasks], axis=1)
    ids = encode(tokenizer, [r["text"] for r in train_rows], s["max_length"])
    rng = random.Random(seed)
    per_epoch = math.ceil(len(ids) / s["batch_size"])
    planned = max(1, math.ceil(per_epoch * s["epochs"]))
    order: list[list[int]] = []
    while len(order) < planned:
        order += length_grouped_batches([len(x) for x in ids], s["batch_size"], rng)
    batches = ((([ids[i] for i in b]), y[b]) for b in order[:planned])
    report = train_loop(model, batches, s, tokenizer.pad_token_id or 0, planned)
    report.update(n_train=len(ids), epochs_done=round(report["texts_seen"] / max(1, len(ids)), 3),
                  trainable_encoder_weights=trainable)
    val = list(val_rows)[: s["max_val_rows"]] if s["max_val_rows"] else list(val_rows)
    probs = probabilities(model, tokenizer, [r["text"] for r in val], s["max_length"], s["eval_batch_size"])
    decisions, col = {}, 0
    for t in tasks:
        k = len(tasks[t])
        gold = label_matrix([r[label_field(t)] for r in val], tasks[t])
        decisions[t] = {**choose_threshold(probs[:, col:col + k], gold), "n_val": len(val)}
        col += k
    log.info("encoder classifier: %s; thresholds %s", report, decisions)
    meta = {"tasks": {t: list(tasks[t]) for t in tasks}, "decisions": decisions, "settings": s, "seed": seed,
            "train": report}
    return model, tokenizer, meta


def save(model, tokenizer, meta: Mapping[str, Any], out_dir: str | os.PathLike) -> Path:
    """Write the encoder and tokenizer (safetensors), the head and ``encoder_clf.json``."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    save_file({k: v.contiguous() for k, v in model.head.state_dict().items()}, str(out / HEAD))
    write_json(out / META, dict(meta))
    return out


def load(model_dir: str | os.PathLike):
    """``(model, tokenizer, meta)`` of a folder written by :func:`save`; a clear error when it is not one."""
    from safetensors.torch import load_file

    d = Path(model_dir)
    if not (d / META).is_file() or not (d / HEAD).is_file():
        raise InputError(d, f"not an encoder classifier folder: {META} or {HEAD} is missing (rerun cti_encoder)")
    meta = read_json(d / META)
    encoder, tokenizer = _load_encoder(d)
    n = sum(len(v) for v in meta["tasks"].values())
    model = _classifier_class()(encoder, n)
    model.head.load_state_dict(load_file(str(d / HEAD)))
    model.eval()
    return model, tokenizer, meta


def predict(model_dir: str | os.PathLike, task: str, texts: Sequence[str]) -> list[list[str]]:
    """Label set of each text for ``task``: the task's labels at or above its validation threshold."""
    model, tokenizer, meta = load(model_dir)
    if task not in meta["tasks"]:
        raise InputError(Path(model_dir) / META, f"the classifier was not trained for task {task!r}", field="tasks")
    s, col = meta["settings"], 0
    for t in meta["tasks"]:
        if t == task:
            break
        col += len(meta["tasks"][t])
    labels, d = meta["tasks"][task], meta["decisions"][task]
    probs = probabilities(model, tokenizer, texts, s["max_length"], s["eval_batch_size"])[:, col:col + len(labels)]
    pred = decide(probs, d["threshold"], d["at_least_one"])
    return [[labels[j] for j in np.flatnonzero(row)] for row in pred]


def fit_and_answer(encoder_dir: str, train_file: str, val_file: str, test_file: str, labels_file: str,
                   tasks: Sequence[str], out: Mapping[str, Any], settings: Mapping[str, Any] | None, seed: int,
                   label: str) -> dict:
    """Train one classifier for ``tasks`` (saved in ``out['classifier']``), write a CTI model folder
    per task (``out['models'][task]``, kind ``encoder``, pointing at the classifier), its answers to
    the texts of ``test_file`` (``out['answers'][task]``) and the training report (``out['metrics']``)."""
    from ..io import read_jsonl, write_jsonl
    from .predictor import label_mapper, manifest_base, safetensors_numel, write_manifest

    train_rows, val_rows, test_rows = read_jsonl(train_file), read_jsonl(val_file), read_jsonl(test_file)
    if not train_rows:
        raise InputError(train_file, "no training texts for the encoder classifier")
    valid = {t: label_mapper(labels_file, t)[2].valid for t in tasks}
    model, tokenizer, meta = train(encoder_dir, train_rows, val_rows, valid, settings, seed)
    save(model, tokenizer, {**meta, "encoder": os.path.abspath(encoder_dir)}, out["classifier"])
    params = safetensors_numel(out["classifier"])
    report = {**meta["train"], "decisions": meta["decisions"], "parameters": params, "label": label,
              "encoder": os.path.abspath(encoder_dir), "settings": meta["settings"]}
    texts, col = [r["text"] for r in test_rows], 0
    s = meta["settings"]
    probs = probabilities(model, tokenizer, texts, s["max_length"], s["eval_batch_size"])
    for t in tasks:
        labels, d = valid[t], meta["decisions"][t]
        pred = decide(probs[:, col:col + len(labels)], d["threshold"], d["at_least_one"])
        col += len(labels)
        Path(out["models"][t]).mkdir(parents=True, exist_ok=True)
        write_manifest(out["models"][t], kind="encoder", label=label, model_dir=out["classifier"], parameters=params,
                       train_seconds=meta["train"]["train_seconds"], train_tokens=meta["train"]["tokens_seen"],
                       **manifest_base(t, labels_file))
        write_jsonl(out["answers"][t], [{"id": r["id"], "answer": ", ".join(labels[j] for j in np.flatnonzero(row)),
                                         "n_tokens": 0, "seconds": 0.0} for r, row in zip(test_rows, pred, strict=False)])
    write_json(out["metrics"], report)
    return report
