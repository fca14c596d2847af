"""Snakemake entry of cti_subset: seeded train/test subsamples (the sizes in the table captions)."""

from tinysec.cti.splits import make_subset
from tinysec.io import script_logging

with script_logging(snakemake):
    make_subset(snakemake.input.train, snakemake.input.test, snakemake.output.train, snakemake.output.test,
                snakemake.params.n_train, snakemake.params.n_test, snakemake.params.seed,
                top_techniques=snakemake.params.top_techniques)
