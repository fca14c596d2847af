"""Snakemake entry: the test set under one perturbation family (labels kept aligned)."""

from tinysec.io import read_jsonl, script_logging, write_jsonl
from tinysec.ner.corpus import perturb_rows

with script_logging(snakemake) as log:
    p = snakemake.params
    rows = perturb_rows(read_jsonl(snakemake.input.test, allow_empty=True), snakemake.wildcards.family,
                        p.operators, p.seed, p.entity_prob, p.char_rate, with_word_map=True)
    n = write_jsonl(snakemake.output.perturbed, rows)
    log.info("family %s (%s): %d perturbed test samples", snakemake.wildcards.family, ", ".join(p.operators), n)
