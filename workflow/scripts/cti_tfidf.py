"""Snakemake entry of cti_tfidf: fit the TF-IDF + one-vs-rest logistic regression baseline and answer its test items (the whole test split)."""

from tinysec.cti.contestants import fit_tfidf
from tinysec.io import script_logging

with script_logging(snakemake):
    fit_tfidf(snakemake.input.train, snakemake.input.test, snakemake.input.labels, snakemake.wildcards.task,
              snakemake.output.model, snakemake.output.answers, snakemake.params.settings, snakemake.params.seed,
              full=snakemake.wildcards.variant == "tfidf-lr-full", label=snakemake.params.label)
