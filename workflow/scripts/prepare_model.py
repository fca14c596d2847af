"""Snakemake entry: materialise one model source as a save_pretrained folder."""

from tinysec.io import script_logging
from tinysec.models.sources import prepare_model

with script_logging(snakemake) as log:
    prepare_model(snakemake.wildcards.model, snakemake.params.entry, snakemake.output.model)
