"""Snakemake entry: the raw test inputs every NER method tags."""

from tinysec.io import script_logging
from tinysec.ner.methods import raw_testset_job

with script_logging(snakemake) as log:
    n = raw_testset_job(snakemake.input.test, snakemake.output.test, snakemake.params.max_rows,
                        snakemake.params.seed)
    log.info("raw test inputs: %d", n)
