"""Snakemake entry: robust tagger with each component removed in turn."""

from tinysec.io import script_logging
from tinysec.ner.tables import Method, ablation_table, caption
from tinysec.reports import write_table

with script_logging(snakemake):
    methods = [Method(**m) for m in snakemake.params.methods]
    df = ablation_table(methods, snakemake.params.families)
    write_table(df, snakemake.output.table, snakemake.output.md,
                caption("ablation", methods, snakemake.params.context))
