"""Snakemake entry of train_lora and train_full (`use rule train_lora as train_full`): one
fine-tuning job (GPU-claimed, accelerate when it has more than one GPU)."""

import torch

from tinysec.io import script_logging
from tinysec.models.train import TrainJob, run_job

with script_logging(snakemake):
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    run_job(TrainJob(model_dir=snakemake.input.model, train_file=snakemake.input.train,
                     out_dir=snakemake.output.weights, metrics_file=snakemake.output.metrics,
                     hparams=p.hparams, prompt=p.prompt, checkpoint_dir=p.checkpoint_dir,
                     log_file=snakemake.log[0]),
            gpus_per_job=snakemake.resources.gpu)
