"""Snakemake entry of cti_answer: answers of one LLM contestant on the test subset (GPU claimed)."""

import torch

from tinysec.cti.predictor import answer_file
from tinysec.io import script_logging

with script_logging(snakemake):
    torch.set_num_threads(snakemake.threads)
    answer_file(snakemake.input.model, snakemake.input.test, snakemake.output.answers, snakemake.resources.gpu,
                gen=snakemake.params.gen)
