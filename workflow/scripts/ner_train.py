"""Snakemake entry: fine-tune one encoder+CRF tagger (baseline, robust or an ablation)."""

import torch

from tinysec.gpu import claim_gpus
from tinysec.io import script_logging
from tinysec.models.sources import default_device
from tinysec.ner.train import TrainSettings, train_tuned

with script_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    with claim_gpus(snakemake.resources.gpu):
        train_tuned(
            snakemake.input.encoder,
            snakemake.input.train,
            snakemake.output.model,
            labels=snakemake.params.labels,
            settings=TrainSettings.from_dict(snakemake.params.settings),
            dropout_sweep=snakemake.params.dropout_sweep,
            adv_path=snakemake.input.get("adv"),
            val_path=snakemake.input.val,
            device=default_device(),
            meta={"encoder": snakemake.wildcards.ner_encoder, "variant": snakemake.wildcards.ner_variant},
        )
