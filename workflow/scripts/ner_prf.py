"""Snakemake entry: P/R/F1 per method and test set, and its grouped-bar figure."""

from tinysec.io import script_logging
from tinysec.ner.tables import Method, caption, prf_figure, prf_table
from tinysec.reports import write_table

with script_logging(snakemake):
    methods = [Method(**m) for m in snakemake.params.methods]
    df = prf_table(methods, snakemake.params.context["threshold"])
    text = caption("prf", methods, snakemake.params.context)
    write_table(df, snakemake.output.table, snakemake.output.md, text)
    prf_figure(df, snakemake.output.figure, title=f"NER methods on the raw test inputs ({snakemake.params.context['run_name']})")
