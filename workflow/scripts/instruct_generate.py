"""Snakemake entry of generate_base/lora/full/api: answers of one contestant on the evaluation set."""

import torch

from tinysec.io import script_logging
from tinysec.models.generate import run_job

with script_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    spec = {"eval_file": snakemake.input.eval, "out_file": snakemake.output.answers,
            "gen": snakemake.params.gen, "prompt": snakemake.params.prompt}
    if hasattr(snakemake.params, "api_entry"):
        spec["api_entry"] = snakemake.params.api_entry
    else:
        spec["model_dir"] = snakemake.input.model
        spec["adapter_dir"] = getattr(snakemake.input, "adapter", None)
    n = run_job(spec, gpus_per_job=getattr(snakemake.params, "gpus", 0))
    log.info("wrote %d answers to %s", n, snakemake.output.answers)
