"""Snakemake entry of generate_base and generate_finetuned: answers of one local contestant (base
weights, plus a LoRA adapter or in place of them a fully fine-tuned model) on the evaluation set."""

import torch

from tinysec.io import script_logging
from tinysec.models.generate import run_job

with script_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    n = run_job(snakemake.input.eval, snakemake.output.answers, model_dir=snakemake.input.model,
                adapter_dir=snakemake.input.get("adapter"), gen=snakemake.params.gen,
                prompt=snakemake.params.prompt, gpus_per_job=snakemake.resources.gpu)
    log.info("wrote %d answers to %s", n, snakemake.output.answers)
