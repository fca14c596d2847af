"""Snakemake entry: one raw Nmap input tagged by the baseline and by the best method, side by side
(Markdown and CSV)."""

import torch

from tinysec.gpu import claim_gpus
from tinysec.io import atomic_path, script_logging
from tinysec.models.sources import default_device
from tinysec.ner.example import best_method, example_caption, example_markdown, load_example, side_by_side, tag_example

with script_logging(snakemake) as log:
    p = snakemake.params
    torch.set_num_threads(snakemake.threads)
    example = load_example(p.example["kind"], snakemake.input.example, p.types, p.source)
    base, best = best_method(p.methods)
    log.info("example %s (%s); best method %s (F1 %.3f)", example["id"], example["kind"], best["method"], best["f1"])
    sides = []
    with claim_gpus(snakemake.resources.gpu):
        for m in (base, best):
            llm = None
            if m["llm_entry"]:
                from tinysec.ner.chain import chain_llm

                llm = chain_llm(m["llm_entry"], m["method"], m["llm_dir"], p.cache, p.chain["max_new_tokens"], p.seed)
            sides.append((m["label"], tag_example(example["text"], m, p.postprocess, p.batch_size, default_device(),
                                                  llm=llm, rounds=p.chain["reflection_rounds"])))
    df, table = side_by_side(example, sides, p.types)
    with atomic_path(snakemake.output.csv) as fh:
        df.to_csv(fh, index=False)
    with atomic_path(snakemake.output.md) as fh:
        fh.write(example_markdown(example, table, example_caption(example, base, best, p.context)))
