"""Snakemake entry: build the cleaned instruction training and evaluation sets and their quality report."""

from tinysec.data.build import build_instruct_data
from tinysec.io import script_logging, write_json, write_jsonl

with script_logging(snakemake) as log:
    train, evl, quality = build_instruct_data(
        snakemake.params.data, list(snakemake.input.train), list(snakemake.input.eval),
        snakemake.params.train_names, snakemake.params.eval_names, seed=snakemake.params.seed)
    write_jsonl(snakemake.output.train, train)
    write_jsonl(snakemake.output.eval, evl)
    write_json(snakemake.output.quality, quality)
    log.info("instruction data: %d training, %d evaluation items", len(train), len(evl))
