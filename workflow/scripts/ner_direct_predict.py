"""Snakemake entry: one LLM of ner.methods used directly as the NER system on the raw test inputs."""

import torch

from tinysec.gpu import claim_gpus
from tinysec.io import script_logging
from tinysec.ner.chain import chain_llm
from tinysec.ner.direct import predict_direct

with script_logging(snakemake) as log:
    p = snakemake.params
    torch.set_num_threads(snakemake.threads)
    with claim_gpus(snakemake.resources.gpu):
        llm = chain_llm(p.llm_entry, snakemake.wildcards.ner_method, snakemake.input.get("llm"), p.cache,
                        p.direct["max_new_tokens"], p.seed)
        stats = predict_direct(llm, p.types, snakemake.input.test, snakemake.output.predictions,
                               snakemake.output.stats, max_rows=p.direct["test_rows"], seed=p.seed)
    log.info("direct %s: %s", snakemake.wildcards.ner_method, stats)
