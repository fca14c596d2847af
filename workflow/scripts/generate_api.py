"""Snakemake entry of generate_api: answers of one API reference model on the evaluation set."""

from tinysec.io import script_logging
from tinysec.models.generate import run_api_job

with script_logging(snakemake) as log:
    n = run_api_job(snakemake.input.eval, snakemake.output.answers, api_entry=snakemake.params.api_entry,
                    gen=snakemake.params.gen, system=snakemake.params.system)
    log.info("wrote %d answers to %s", n, snakemake.output.answers)
