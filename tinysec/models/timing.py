"""The fine-tuning time table (analog of the study's Tables 3 and 4): LoRA vs full per model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from ..io import read_json
from ..reports import device_description, write_table


def finetune_time_frame(metrics_files: Sequence[str | os.PathLike],
                        labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per model from ``results/finetune/<model>-<method>/train_metrics.json`` files."""
    rows: dict[str, dict] = {}
    for path in metrics_files:
        m = read_json(path)
        name = Path(path).parent.name
        method = m["method"]
        model = name[: -len(method) - 1] if name.endswith(f"-{method}") else name
        row = rows.setdefault(model, {"model": (labels or {}).get(model, model), "parameters_m": None})
        row["parameters_m"] = round(m["total_params"] / 1e6, 2) if method == "full" or row["parameters_m"] is None \
            else row["parameters_m"]
        row[f"{method}_seconds"] = m["wall_seconds"]
        row[f"{method}_tokens_per_s"] = m["tokens_per_second"]
        row[f"{method}_peak_mem_mb"] = m["peak_memory_mb"]
        row[f"{method}_trainable_m"] = round(m["trainable_params"] / 1e6, 3)
        row[f"{method}_final_loss"] = m["final_loss"]
        row[f"{method}_padding"] = m["padding_fraction"]
    df = pd.DataFrame(list(rows.values()))
    if {"lora_seconds", "full_seconds"} <= set(df.columns):
        df["full_over_lora"] = (df["full_seconds"] / df["lora_seconds"]).round(2)
    order = ["model", "parameters_m", "lora_seconds", "full_seconds", "full_over_lora", "lora_tokens_per_s",
             "full_tokens_per_s", "lora_peak_mem_mb", "full_peak_mem_mb", "lora_trainable_m", "full_trainable_m",
             "lora_final_loss", "full_final_loss", "lora_padding", "full_padding"]
    return df[[c for c in order if c in df.columns]]


def write_finetune_time_table(metrics_files: Sequence[str | os.PathLike], csv_path: str | os.PathLike,
                              md_path: str | os.PathLike, labels: Mapping[str, str] | None = None,
                              train_size: int | None = None, device: str | None = None) -> pd.DataFrame:
    """Write ``finetune_time.{csv,md}``; the caption names the device and defines every column."""
    df = finetune_time_frame(metrics_files, labels)
    first = read_json(metrics_files[0]) if metrics_files else {}
    hp = first.get("hparams", {})
    caption = (
        f"Fine-tuning cost, LoRA vs all parameters (analog of the study's Tables 3 and 4), measured on "
        f"{device or device_description()}. {first.get('examples', train_size)} training examples, "
        f"{hp.get('epochs')} epoch(s), per-device batch {hp.get('batch_size')}, gradient accumulation "
        f"{hp.get('grad_accum')}, cutoff {hp.get('cutoff')} tokens. parameters_m: total parameters (millions); "
        f"*_seconds: wall-clock training time; full_over_lora: full/LoRA time ratio; *_tokens_per_s: "
        f"non-padding training tokens per second; *_peak_mem_mb: peak memory (CUDA max allocated on GPU, "
        f"max resident set on CPU); *_trainable_m: trainable parameters (millions); *_final_loss: mean "
        f"answer-token loss over the last steps; *_padding: fraction of batch positions that were padding."
    )
    write_table(df, csv_path, md_path, caption)
    return df
