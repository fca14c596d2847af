"""Snakemake entry: precision and recall per entity type on the real loopback nmap scans."""

from tinysec.io import script_logging
from tinysec.ner.tables import Method, real_caption, real_table
from tinysec.reports import write_table

with script_logging(snakemake):
    methods = [Method(**m) for m in snakemake.params.methods]
    write_table(real_table(methods), snakemake.output.table, snakemake.output.md,
                real_caption(methods, snakemake.params.context))
