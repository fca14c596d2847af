"""Training settings of one NER tagger and the named variants (baseline, robust, ablations).

Imports neither torch nor transformers: the workflow computes each tagger's settings while it
builds the DAG (``params`` of rule ``ner_train``), and :mod:`tinysec.ner.train` uses them to train.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..schema import CONFIG_SCHEMAS, schema_defaults

ABLATIONS = ("no-adv-samples", "no-adv-loss", "no-consistency", "no-grad-mask", "no-dropout")
VARIANTS = ("baseline", "robust") + ABLATIONS
#: Schema of the ``ner`` config section, the one place the robust defaults are written.
NER_SCHEMA = CONFIG_SCHEMAS / "ner.schema.yaml"


@dataclass
class TrainSettings:
    """Hyper-parameters and robust-training switches of one tagger."""

    epochs: int = 3                     # at most; fewer when early stopping on validation F1 ends it
    patience: int = 2                   # epochs without a val-F1 improvement before stopping (0 = never early)
    max_val_rows: int | None = None     # seeded source-stratified sample of the validation rows
    batch_size: int = 16
    lr: float = 2e-5
    head_lr: float = 1e-3
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 128
    max_grad_norm: float = 1.0
    seed: int = 0
    max_train_rows: int | None = None   # seeded source-stratified sample of the clean rows
    # robust fine-tuning switches
    adv_samples: bool = False           # use perturbed variants (train.adv.jsonl)
    adv_loss: bool = True               # alpha/beta mixed loss in every batch; off = variants are plain extra data
    alpha: float = 0.5
    beta: float = 0.5
    consistency_loss: bool = False      # add the KL consistency term (needs adv_samples)
    consistency: float = 1.0            # lambda, the weight of the KL term
    grad_mask: bool = False
    grad_mask_quantile: float = 0.99
    grad_mask_momentum: float = 0.9
    attention_dropout: float | None = None  # None = the encoder's own value (untuned)
    hidden_dropout: float | None = None

    @classmethod
    def from_dict(cls, d: dict) -> TrainSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        return cls(**d)


def robust_defaults() -> dict:
    """Defaults of the ``ner.robust`` config block, read from its schema."""
    return schema_defaults(NER_SCHEMA.name, "robust")


def variant_settings(variant: str, ner_cfg: dict, seed: int = 0) -> dict:
    """Training settings (a plain dict, for Snakemake ``params``) of a named variant.

    ``baseline``: clean data, encoder's own dropout. ``robust``: every component of the
    ``robust`` config block (keys it omits take the schema's defaults). ``no-<component>``:
    robust with that component removed.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown tagger variant {variant!r}; choose from {VARIANTS}")
    base = dict(ner_cfg.get("train", {}), seed=seed)
    if variant in ABLATIONS:
        base.update(ner_cfg.get("ablation_train") or {})
    if variant == "baseline":
        return base
    rob = {**robust_defaults(), **ner_cfg.get("robust", {})}
    s = dict(base, adv_samples=True, adv_loss=True, alpha=rob["alpha"], beta=rob["beta"],
             consistency_loss=rob["consistency_loss"], consistency=rob["consistency"], grad_mask=True,
             grad_mask_quantile=rob["grad_mask_quantile"], grad_mask_momentum=rob["grad_mask_momentum"],
             attention_dropout=rob["attention_dropout"], hidden_dropout=rob["hidden_dropout"])
    if variant == "no-adv-samples":
        s.update(adv_samples=False, consistency_loss=False)
    elif variant == "no-adv-loss":
        s.update(adv_loss=False)
    elif variant == "no-consistency":
        s.update(consistency_loss=False)
    elif variant == "no-grad-mask":
        s.update(grad_mask=False)
    elif variant == "no-dropout":
        s.update(attention_dropout=None, hidden_dropout=None)
    return s
