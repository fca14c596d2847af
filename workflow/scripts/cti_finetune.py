"""Snakemake entry of cti_finetune: LoRA fine-tune one LLM on one task (shared, resumable training code)."""

import torch

from tinysec.cti.steps import finetune
from tinysec.io import script_logging

with script_logging(snakemake):
    torch.set_num_threads(snakemake.threads)
    finetune(snakemake.input.model, snakemake.input.train, snakemake.input.labels, snakemake.wildcards.task,
             snakemake.output.model, snakemake.output.metrics, snakemake.params.hparams, snakemake.params.prompt,
             snakemake.params.checkpoint_dir, snakemake.params.gpus, snakemake.params.label,
             log_file=snakemake.log[0])
