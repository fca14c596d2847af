"""Snakemake entry of cti_data: read, clean, merge and split the CTI source."""

from tinysec.cti.splits import build_dataset
from tinysec.io import script_logging

with script_logging(snakemake):
    build_dataset(snakemake.params.source, dict(snakemake.output.items()), snakemake.params.min_length,
                  snakemake.params.to_parent, snakemake.params.split, snakemake.params.seed)
