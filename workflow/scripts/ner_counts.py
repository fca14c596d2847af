"""Snakemake entry: correctly recognised entities per source (Table 1 analog)."""

from tinysec.io import script_logging
from tinysec.ner.tables import Method, caption, counts_table
from tinysec.reports import write_table

with script_logging(snakemake):
    methods = [Method(**m) for m in snakemake.params.methods]
    df = counts_table(methods, baseline=methods[0])
    write_table(df, snakemake.output.table, snakemake.output.md,
                caption("counts", methods, snakemake.params.context), floatfmt=".0f")
