"""Snakemake entry of cti_zero_shot_model: the model folder of a zero-shot base LLM or API model."""

from tinysec.cti.contestants import llm_manifest
from tinysec.io import script_logging

with script_logging(snakemake):
    entry = snakemake.params.entry
    api = snakemake.params.api
    llm_manifest(snakemake.output.model, "api" if api else "zero-shot", snakemake.wildcards.task,
                 snakemake.input.labels, snakemake.input.train, snakemake.params.label,
                 model_dir=None if api else snakemake.input.model[0], api_entry=entry if api else None,
                 prompt=snakemake.params.prompt, choices_limit=snakemake.params.choices)
