"""Snakemake entry: LLM paraphrase perturbations of the test set (similarity + syntactic filter)."""

import torch

from tinysec.gpu import claim_gpus
from tinysec.io import script_logging
from tinysec.ner.rephrase import paraphrase_job

with script_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    with claim_gpus(snakemake.resources.gpu):
        stats = paraphrase_job(snakemake.input.test, snakemake.output.perturbed, snakemake.output.stats,
                               snakemake.params.paraphrase, snakemake.params.llm_entry,
                               snakemake.input.get("llm"), snakemake.input.embedder, snakemake.params.seed)
    log.info("paraphrase: %s", stats)
