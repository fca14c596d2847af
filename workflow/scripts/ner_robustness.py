"""Snakemake entry: F1 on clean and perturbed test sets, drop and attack success rate."""

from tinysec.io import script_logging
from tinysec.ner.tables import Method, caption, robustness_table
from tinysec.reports import write_table

with script_logging(snakemake):
    methods = [Method(**m) for m in snakemake.params.methods]
    df = robustness_table(methods, snakemake.params.families)
    write_table(df, snakemake.output.table, snakemake.output.md,
                caption("robustness", methods, snakemake.params.context))
