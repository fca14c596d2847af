"""Snakemake entry of cti_table: the tactic or technique extraction table (P/R/F1 per contestant)."""

from tinysec.cti.tables import build_table
from tinysec.io import script_logging

with script_logging(snakemake):
    build_table(snakemake.wildcards.task, list(snakemake.input.metrics), snakemake.input.stats,
                snakemake.input.train, snakemake.input.test, snakemake.input.labels, snakemake.output.csv,
                snakemake.output.md, snakemake.params.hparams, snakemake.params.choices,
                memory_fraction=snakemake.params.memory_fraction, top_techniques=snakemake.params.top_techniques)
