"""Snakemake entry of cti_finetune: LoRA fine-tune one LLM on one task (shared, resumable training code)."""

import torch

from tinysec.cti.contestants import finetune
from tinysec.io import script_logging
from tinysec.models.train import TrainJob

with script_logging(snakemake):
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    job = TrainJob(model_dir=snakemake.input.model, train_file=snakemake.input.train, out_dir=snakemake.output.model,
                   metrics_file=snakemake.output.metrics, hparams=p.hparams, prompt=p.prompt,
                   checkpoint_dir=p.checkpoint_dir, log_file=snakemake.log[0], memory_fraction=p.memory_fraction)
    finetune(job, task=snakemake.wildcards.task, labels_file=snakemake.input.labels, label=p.label,
             gpus=snakemake.resources.gpu)
