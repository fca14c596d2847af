"""Snakemake entry: correctly recognised entities per source and method, and their bar figure."""

from tinysec.io import script_logging
from tinysec.ner.tables import Method, caption, counts_figure, counts_table
from tinysec.reports import write_table

with script_logging(snakemake):
    methods = [Method(**m) for m in snakemake.params.methods]
    df = counts_table(methods)
    write_table(df, snakemake.output.table, snakemake.output.md,
                caption("counts", methods, snakemake.params.context), floatfmt=".0f")
    counts_figure(df, snakemake.output.figure,
                  title=f"Correct entities per source and method ({snakemake.params.context['run_name']})")
