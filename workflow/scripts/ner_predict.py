"""Snakemake entry: tag the clean and perturbed test sets with one trained tagger."""

import torch

from tinysec.gpu import claim_gpus
from tinysec.io import script_logging
from tinysec.models.sources import default_device
from tinysec.ner.postprocess import PostprocessSettings
from tinysec.ner.predict import predict_testsets

with script_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    with claim_gpus(snakemake.resources.gpu):
        n = predict_testsets(
            snakemake.input.model,
            {name: snakemake.input[name] for name in snakemake.params.testsets},
            snakemake.output.predictions,
            PostprocessSettings(**snakemake.params.postprocess),
            normalize=snakemake.params.normalize,
            batch_size=snakemake.params.batch_size,
            device=default_device(),
            max_rows=snakemake.params.max_rows,
        )
    log.info("wrote %d prediction rows", n)
