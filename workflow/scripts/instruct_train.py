"""Snakemake entry of train_lora and train_full: one fine-tuning job (GPU-claimed, accelerate when >1 GPU)."""

import torch

from tinysec.io import script_logging
from tinysec.models.train import run_job

with script_logging(snakemake):
    torch.set_num_threads(snakemake.threads)
    out = snakemake.output.adapter if hasattr(snakemake.output, "adapter") else snakemake.output.model
    run_job({"model_dir": snakemake.input.model, "train_file": snakemake.input.train, "out_dir": out,
             "metrics_file": snakemake.output.metrics, "hparams": snakemake.params.hparams,
             "prompt": snakemake.params.prompt, "checkpoint_dir": snakemake.params.checkpoint_dir,
             "log_file": snakemake.log[0]},
            gpus_per_job=snakemake.params.gpus)
