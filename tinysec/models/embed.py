"""Sentence embeddings with a mean-pooled encoder (all-MiniLM-L6-v2 by default)."""

from __future__ import annotations

import os

import numpy as np


class SentenceEmbedder:
    """Mean-pooled, L2-normalised sentence vectors from a ``save_pretrained`` encoder folder."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu", max_length: int = 256):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=torch.float32).to(device).eval()
        self.device, self.max_length = device, max_length

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts``; returns an array of shape (len(texts), dim) with unit-norm rows."""
        import torch

        out = []
        order = np.argsort([len(t) for t in texts])  # length-sorted batches pad less
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                idx = order[i:i + batch_size]
                enc = self.tokenizer([texts[j] for j in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                vec = torch.nn.functional.normalize(vec, dim=-1)
                out.append((idx, vec.float().cpu().numpy()))
        dim = out[0][1].shape[1] if out else 0
        result = np.zeros((len(texts), dim), dtype=np.float32)
        for idx, vec in out:
            result[idx] = vec
        return result

    def similarity(self, a: list[str], b: list[str]) -> np.ndarray:
        """Cosine similarity of ``a[i]`` and ``b[i]`` for each i."""
        ea, eb = self.encode(a), self.encode(b)
        return (ea * eb).sum(axis=1)
