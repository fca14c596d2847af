"""Snakemake entry: tag the raw test inputs with one NER method (LLM methods: the tag-time chain)."""

import torch

from tinysec.gpu import claim_gpus
from tinysec.io import script_logging
from tinysec.models.sources import default_device
from tinysec.ner.methods import predict_method
from tinysec.ner.postprocess import PostprocessSettings, Tagger

with script_logging(snakemake) as log:
    p = snakemake.params
    torch.set_num_threads(snakemake.threads)
    with claim_gpus(snakemake.resources.gpu):
        tagger = Tagger(snakemake.input.model, PostprocessSettings(**p.postprocess), normalize=p.normalize,
                        device=default_device(), batch_size=p.batch_size)
        llm = None
        if p.kind == "llm":
            from tinysec.ner.chain import chain_llm

            llm = chain_llm(p.llm_entry, snakemake.wildcards.ner_method, snakemake.input.get("llm"), p.cache,
                            p.chain["max_new_tokens"], p.seed)
        stats = predict_method(p.kind, tagger, snakemake.input.test, snakemake.output.predictions,
                               snakemake.output.stats, llm=llm, rounds=p.chain["reflection_rounds"])
    log.info("method %s: %s", snakemake.wildcards.ner_method, stats)
