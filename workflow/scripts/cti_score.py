"""Snakemake entry of cti_score: map answers onto labels; metrics with bootstrap intervals, per-label scores, predictions."""

from tinysec.cti.evaluate import score_file
from tinysec.io import script_logging

with script_logging(snakemake):
    score_file(snakemake.input.model, snakemake.input.answers, snakemake.input.test, snakemake.wildcards.contestant,
               dict(snakemake.output.items()), intervals=snakemake.params.intervals)
