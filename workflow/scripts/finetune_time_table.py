"""Snakemake entry: the fine-tuning time table (LoRA vs full) from every job's train_metrics.json,
timing-only runs (instruct.timing_only) extrapolated."""

from tinysec.io import script_logging
from tinysec.models.timing import write_finetune_time_table

with script_logging(snakemake):
    write_finetune_time_table(list(snakemake.input.metrics), snakemake.output.csv, snakemake.output.md,
                              models=list(snakemake.params.models), labels=snakemake.params.labels,
                              train_size=snakemake.params.train_size,
                              extrapolate=list(snakemake.params.extrapolate))
