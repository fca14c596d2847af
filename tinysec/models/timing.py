"""The fine-tuning time table: LoRA vs full fine-tuning cost per base model.

Each training job's ``train_metrics.json`` gives four timings of its training loop (see
:func:`tinysec.models.train.finetune`): wall time, process CPU time, median optimizer-step time
and the steady-state estimate (median step time x optimizer steps). The full/LoRA ratio is
computed from the steady-state estimates, which outside load on a shared machine barely moves.

Timing-only runs (``instruct.timing_only``) train for a few optimizer steps only; their
steady-state time is extrapolated to the whole run (median step time x the optimizer steps of
all epochs), their wall, CPU and loss cells stay empty, and their ``*_timing`` cell says
"extrapolated from N steps". Every row gets the steady-state time of one epoch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import pandas as pd

from ..io import InputError, read_json, record_problem
from ..reports import device_description, write_table

#: Metrics keys the table reads, and the column (after the ``<method>_`` prefix) each becomes.
COLUMNS = {"steady_state_seconds": "steady_seconds", "wall_seconds": "wall_seconds", "cpu_seconds": "cpu_seconds",
           "median_step_seconds": "median_step_seconds", "tokens_per_second": "tokens_per_s",
           "peak_memory_mb": "peak_mem_mb", "final_loss": "final_loss", "padding_fraction": "padding"}
ORDER = ["timing", "steady_seconds", "epoch_seconds", "wall_seconds", "cpu_seconds", "median_step_seconds",
         "tokens_per_s", "peak_mem_mb", "trainable_m", "final_loss", "padding"]
#: Columns measured over the whole run only, left empty for an extrapolated row.
WHOLE_RUN_ONLY = ("wall_seconds", "cpu_seconds", "final_loss")


def _read_metrics(path: str | os.PathLike) -> dict:
    """A job's metrics, checked against format ``train_metrics`` (every key the table reads)."""
    m = read_json(path)
    problem = record_problem(m, "train_metrics")
    if problem is not None:
        field, message = problem
        raise InputError(path, f"{message} (written by an older version? re-run the fine-tuning job)", field=field)
    return m


def steps_per_epoch(m: Mapping) -> int:
    """Optimizer steps of one epoch of a run: examples / (per-device batch x grad-accum x processes)."""
    hp = m["hparams"]
    return math.ceil(m["examples"] / (hp["batch_size"] * hp["grad_accum"] * m["world_size"]))


def method_cells(m: Mapping, extrapolate: bool) -> dict:
    """The ``<method>_*`` cells of one run (see the module docstring for extrapolated runs)."""
    cells = {col: m[key] for key, col in COLUMNS.items()}
    per_epoch = steps_per_epoch(m)
    cells["epoch_seconds"] = round(m["median_step_seconds"] * per_epoch, 3)
    cells["trainable_m"] = round(m["trainable_params"] / 1e6, 3)
    cells["timing"] = f"measured ({m['optimizer_steps']} steps)"
    if extrapolate:
        full_steps = math.ceil(per_epoch * m["epochs"])
        cells["steady_seconds"] = round(m["median_step_seconds"] * full_steps, 3)
        cells.update({col: "" for col in WHOLE_RUN_ONLY})
        cells["timing"] = f"extrapolated from {m['optimizer_steps']} steps"
    return cells


def finetune_time_frame(metrics_files: Sequence[str | os.PathLike], models: Sequence[str],
                        labels: Mapping[str, str] | None = None,
                        extrapolate: Sequence[bool] | None = None) -> pd.DataFrame:
    """One row per model; ``models[i]`` names the base model of ``metrics_files[i]``, and
    ``extrapolate[i]`` says whether it is a timing-only run (default: none is)."""
    extrapolate = list(extrapolate) if extrapolate is not None else [False] * len(metrics_files)
    if not len(models) == len(extrapolate) == len(metrics_files):
        raise ValueError(f"{len(metrics_files)} metrics files but {len(models)} model names and "
                         f"{len(extrapolate)} extrapolate flags")
    rows: dict[str, dict] = {}
    for path, model, extra in zip(metrics_files, models, extrapolate):
        m = _read_metrics(path)
        method = m["method"]
        row = rows.setdefault(model, {"model": (labels or {}).get(model, model), "parameters_m": None})
        if f"{method}_steady_seconds" in row:
            raise InputError(path, f"a second '{method}' run of model '{model}'", field="method")
        if method == "full" or row["parameters_m"] is None:
            row["parameters_m"] = round(m["total_params"] / 1e6, 2)
        row.update({f"{method}_{col}": v for col, v in method_cells(m, extra).items()})
    for row in rows.values():
        both = "lora_steady_seconds" in row and "full_steady_seconds" in row and row["lora_steady_seconds"] > 0
        row["full_over_lora"] = round(row["full_steady_seconds"] / row["lora_steady_seconds"], 2) if both else ""
    df = pd.DataFrame(list(rows.values())).astype(object).fillna("")  # a method a model lacks: empty cells
    order = ["model", "parameters_m", "full_over_lora"] + [f"{meth}_{col}" for col in ORDER for meth in ("lora", "full")]
    return df[[c for c in order if c in df.columns]]


def caption(first: Mapping, device: str, train_size: int | None = None) -> str:
    """What the table holds: device, data size, hyperparameters and every column."""
    hp = first.get("hparams", {})
    world = first.get("world_size", 1)
    return (
        f"Fine-tuning cost, LoRA vs all parameters, measured on {device}. "
        f"{first.get('examples', train_size)} training examples, {hp.get('epochs')} epoch(s), per-device batch "
        f"{hp.get('batch_size')}, gradient accumulation {hp.get('grad_accum')}, {world} process(es): effective "
        f"batch {hp.get('batch_size', 0) * hp.get('grad_accum', 0) * world}; cutoff {hp.get('cutoff')} tokens. "
        f"Four timings of the training loop (model loading excluded): *_steady_seconds: steady-state estimate, "
        f"median optimizer-step time x optimizer steps (the time without the slow steps that other load on "
        f"the machine causes); *_epoch_seconds: the same for one epoch (median step time x optimizer steps "
        f"per epoch); *_wall_seconds: wall-clock time; *_cpu_seconds: CPU time of the training "
        f"process (all threads); *_median_step_seconds: median time of one optimizer step. "
        f"*_timing: 'measured (N steps)' for a whole run; 'extrapolated from N steps' for a timing-only run "
        f"(timed, never judged), which trained for N optimizer steps only: its steady-state and epoch "
        f"times are the median step time x the steps of the whole run / of one epoch, and its wall, CPU "
        f"and loss cells are empty. "
        f"full_over_lora: full/LoRA ratio of the steady-state estimates. parameters_m: total parameters "
        f"(millions); *_tokens_per_s: non-padding training tokens per wall-clock second; *_peak_mem_mb: peak "
        f"memory (CUDA max allocated on GPU, max resident set on CPU); *_trainable_m: trainable parameters "
        f"(millions); *_final_loss: mean answer-token loss over the last steps; *_padding: fraction of batch "
        f"positions that were padding."
    )


def write_finetune_time_table(metrics_files: Sequence[str | os.PathLike], csv_path: str | os.PathLike,
                              md_path: str | os.PathLike, *, models: Sequence[str],
                              labels: Mapping[str, str] | None = None, train_size: int | None = None,
                              device: str | None = None, extrapolate: Sequence[bool] | None = None) -> pd.DataFrame:
    """Write ``finetune_time.{csv,md}`` (see :func:`finetune_time_frame` and :func:`caption`)."""
    df = finetune_time_frame(metrics_files, models, labels, extrapolate)
    first = read_json(metrics_files[0]) if metrics_files else {}
    write_table(df, csv_path, md_path, caption(first, device or device_description(), train_size))
    return df
