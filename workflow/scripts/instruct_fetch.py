"""Snakemake entry: put one configured instruction data file in place (download with sha256, or local path)."""

from tinysec.download import fetch_entry
from tinysec.io import script_logging

with script_logging(snakemake):
    fetch_entry(snakemake.params.entry, snakemake.output.data)
