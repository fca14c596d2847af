"""Snakemake entry: one NER method's training corpus (baseline: raw rows; LLM: rephrased template rows)."""

from tinysec.gpu import claim_gpus
from tinysec.io import script_logging
from tinysec.ner.methods import method_corpus_job

with script_logging(snakemake) as log:
    p = snakemake.params
    llm = None
    n_gpus = snakemake.resources.gpu if p.kind == "llm" else 0
    with claim_gpus(n_gpus):
        if p.kind == "llm":
            import torch

            from tinysec.ner.rephrase import make_rewriter

            torch.set_num_threads(snakemake.threads)
            llm = make_rewriter(p.llm_entry, snakemake.input.get("llm"), p.chain["max_new_tokens"], p.seed)
        stats = method_corpus_job(p.kind, snakemake.input.train, snakemake.input.val, snakemake.output,
                                  rephrase_rows=p.chain["train_rephrase_rows"],
                                  max_tries=p.chain["train_max_tries"], llm=llm)
    log.info("method corpus: %s", stats)
