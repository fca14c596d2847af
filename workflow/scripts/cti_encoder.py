"""Snakemake entry of cti_encoder: fine-tune the encoder classifier (both tasks, CPU, fp32) and answer the test texts."""

import torch

from tinysec.cti.encoder import fit_and_answer
from tinysec.io import script_logging

with script_logging(snakemake):
    torch.set_num_threads(snakemake.threads)
    out = {"classifier": snakemake.output.classifier, "metrics": snakemake.output.metrics,
           "models": {t: snakemake.output[f"{t}_model"] for t in snakemake.params.tasks},
           "answers": {t: snakemake.output[f"{t}_answers"] for t in snakemake.params.tasks}}
    fit_and_answer(snakemake.input.encoder, snakemake.input.train, snakemake.input.val, snakemake.input.test,
                   snakemake.input.labels, snakemake.params.tasks, out, snakemake.params.settings,
                   snakemake.params.seed, snakemake.params.label)
