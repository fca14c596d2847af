"""Snakemake entry: tag the real-scan records with one trained tagger."""

import torch

from tinysec.gpu import claim_gpus
from tinysec.io import script_logging
from tinysec.models.sources import default_device
from tinysec.ner.postprocess import PostprocessSettings
from tinysec.ner.predict import predict_real

with script_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    with claim_gpus(snakemake.resources.gpu):
        n = predict_real(
            snakemake.input.model,
            snakemake.input.records,
            snakemake.output.predictions,
            types=snakemake.params.types,
            post=PostprocessSettings(**snakemake.params.postprocess),
            normalize=snakemake.params.normalize,
            batch_size=snakemake.params.batch_size,
            device=default_device(),
        )
    log.info("tagged %d real-scan outputs", n)
