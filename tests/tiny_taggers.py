"""Tiny hand-set taggers for tests of tagging, the CLI and the method chain."""

from __future__ import annotations

from pathlib import Path

import torch

from tinysec.models.tiny import build_random_model
from tinysec.ner.labels import bio_labels
from tinysec.ner.model import EncoderCRFTagger, load_tokenizer


def save_ip_tagger(base: Path, out: Path | None = None, bias: float = 12.0, max_length: int = 256,
                   types: tuple[str, ...] = ("IP", "DOMAIN")) -> Path:
    """A random 1-layer BERT + CRF over the BIO labels of ``types`` that tags every word B-IP (head bias ``bias``,
    zero weights and CRF), so only the regex validation decides what is kept; saved to ``out``
    (default ``base/tagger``), whose path is returned."""
    enc = build_random_model("bert", base / "enc", hidden=32, layers=1, heads=2)
    labels = bio_labels(list(types))
    model = EncoderCRFTagger.from_encoder(enc, labels)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[labels.index("B-IP")] = bias
        for p in model.crf.parameters():
            p.zero_()
    out = out or base / "tagger"
    model.save(out, load_tokenizer(enc), {"max_length": max_length})
    return out
