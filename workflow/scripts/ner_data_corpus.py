"""Snakemake entry: OSINT records -> NER corpus splits (optionally LLM-rephrased)."""

from tinysec.gpu import claim_gpus
from tinysec.io import script_logging
from tinysec.ner.corpus import corpus_job
from tinysec.ner.rephrase import make_rewriter

with script_logging(snakemake) as log:
    p = snakemake.params
    rephrase = p.rephrase
    n_gpus = 0
    if rephrase["enabled"]:
        import torch

        torch.set_num_threads(snakemake.threads)
        n_gpus = snakemake.resources.gpu
    with claim_gpus(n_gpus):
        rewriter = (make_rewriter(p.llm_entry, snakemake.input.get("llm"), rephrase["max_new_tokens"], p.seed)
                    if rephrase["enabled"] else None)
        stats = corpus_job(snakemake.input.records, snakemake.output, p.types, p.seed, p.templates,
                           p.max_records, p.split, rephrase, rewriter)
    log.info("NER corpus: %s", stats)
