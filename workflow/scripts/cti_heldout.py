"""Snakemake entry of cti_heldout: the held-out groups split (no ATT&CK actor on both sides)."""

from tinysec.cti.heldout import build_heldout
from tinysec.io import script_logging

with script_logging(snakemake):
    i = snakemake.input
    build_heldout(snakemake.params.source, {"train": i.train, "val": i.val, "test": i.test}, i.stats,
                  dict(snakemake.output.items()), snakemake.params.min_length, snakemake.params.to_parent,
                  snakemake.params.fraction, snakemake.params.seed)
