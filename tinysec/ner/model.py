"""Encoder + token-classification head + word-level CRF (pytorch-crf), with marginals and a batched Viterbi.

The CRF runs over *words*, not subwords: the encoder's vector of each word's first subword is
gathered into a packed ``(batch, words, hidden)`` tensor whose mask is contiguous and starts on.
Words the tokenizer turns into no subword at all (e.g. a lone zero-width character) borrow the
``[CLS]`` vector, so every word keeps a slot; words cut off by ``max_length`` are masked off at the
end of the sequence (they are predicted ``O``).

A trained tagger folder is a standard ``save_pretrained`` encoder folder (config, weights,
tokenizer) plus ``crf_head.safetensors`` (head and CRF weights), ``tagger.json`` (labels,
max length, dropout) and, when a temperature was fitted, ``calibration.json``
(:mod:`tinysec.ner.calibration`; without it the confidences are uncalibrated, T = 1).
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchcrf import CRF

from ..io import InputError
from .calibration import read_temperature

HEAD_FILE = "crf_head.safetensors"
META_FILE = "tagger.json"

# model types whose byte-level BPE tokenizer needs add_prefix_space=True for pre-split words
PREFIX_SPACE_TYPES = {"roberta", "longformer", "bart", "gpt2", "deberta", "mvp", "led"}


def load_tokenizer(path: str | os.PathLike, **kwargs):
    """Fast tokenizer of an encoder folder; RoBERTa-style ones get ``add_prefix_space=True``."""
    from transformers import AutoConfig, AutoTokenizer

    model_type = getattr(AutoConfig.from_pretrained(path), "model_type", "")
    if model_type in PREFIX_SPACE_TYPES:
        kwargs.setdefault("add_prefix_space", True)
    return AutoTokenizer.from_pretrained(path, **kwargs)


@dataclass
class WordBatch:
    """Subword inputs plus, per word, the position of its first subword and the word mask."""

    input_ids: torch.Tensor       # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    first_subword: torch.Tensor   # (B, W) position in T of each word's first subword (0 = [CLS] fallback)
    word_mask: torch.Tensor       # (B, W) bool, contiguous, first timestep always on
    n_kept: list[int]             # words that fit in max_length, per sentence

    def to(self, device) -> WordBatch:
        return WordBatch(self.input_ids.to(device), self.attention_mask.to(device),
                         self.first_subword.to(device), self.word_mask.to(device), self.n_kept)


def encode_words(tokenizer, sentences: list[list[str]], max_length: int) -> WordBatch:
    """Tokenize pre-split sentences and locate each word's first subword."""
    if not sentences:
        raise ValueError("encode_words needs at least one sentence")
    # an empty sentence still needs one word slot (the CRF mask must start on)
    safe = [words if words else [""] for words in sentences]
    enc = tokenizer(safe, is_split_into_words=True, truncation=True, max_length=max_length,
                    padding=True, return_tensors="pt")
    width = max(len(w) for w in safe)
    first = torch.zeros(len(safe), width, dtype=torch.long)
    mask = torch.zeros(len(safe), width, dtype=torch.bool)
    kept: list[int] = []
    n_subwords = enc["attention_mask"].sum(1).tolist()
    for b, words in enumerate(safe):
        # word id of every subword position (NaN: special or padding); first occurrence of each word
        wid = np.array(enc.word_ids(b), dtype=float)
        valid = np.flatnonzero(~np.isnan(wid))
        ids, where = np.unique(wid[valid].astype(np.int64), return_index=True)
        # words after the last one that got a subword were truncated away
        n = int(ids[-1]) + 1 if len(ids) else len(words)
        if len(ids) and n < len(words) and n_subwords[b] < max_length:
            n = len(words)  # trailing words with no subwords, not truncation
        n = max(n, 1)
        keep = ids < n
        first[b, torch.from_numpy(ids[keep])] = torch.from_numpy(valid[where[keep]])
        mask[b, :n] = True
        kept.append(n if sentences[b] else 0)
    return WordBatch(enc["input_ids"], enc["attention_mask"], first, mask, kept)


# ---------------------------------------------------------------- CRF inference, vectorised over the batch
def crf_marginals(crf: CRF, emissions: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Posterior P(y_t = k | x) of every word and tag by forward-backward in log space.

    ``emissions`` is (B, W, K), ``mask`` (B, W) contiguous with its first column on. Every score
    (emissions, start, end, transitions) is divided by ``temperature`` first (temperature scaling,
    :mod:`tinysec.ner.calibration`). Rows sum to 1 at unmasked positions; masked positions are 0.
    """
    B, W, K = emissions.shape
    mask = mask.bool()
    t_inv = 1.0 / temperature
    emissions = emissions * t_inv
    trans, start, end = crf.transitions * t_inv, crf.start_transitions * t_inv, crf.end_transitions * t_inv
    alphas = [start + emissions[:, 0]]
    for t in range(1, W):
        nxt = torch.logsumexp(alphas[-1].unsqueeze(2) + trans.unsqueeze(0), dim=1) + emissions[:, t]
        alphas.append(torch.where(mask[:, t, None], nxt, alphas[-1]))
    betas = [end.expand(B, K)]
    for t in range(W - 2, -1, -1):
        nxt = torch.logsumexp(trans.unsqueeze(0) + (emissions[:, t + 1] + betas[0]).unsqueeze(1), dim=2)
        betas.insert(0, torch.where(mask[:, t + 1, None], nxt, end.expand(B, K)))
    alpha = torch.stack(alphas, 1)
    beta = torch.stack(betas, 1)
    log_z = torch.logsumexp(alphas[-1] + end, dim=1)  # alphas[-1] carries the last valid step
    marg = torch.exp(alpha + beta - log_z[:, None, None]).clamp(max=1.0)  # fp rounding can exceed 1 by ~1e-5
    return marg * mask.unsqueeze(-1)


def viterbi_paths(crf: CRF, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Best tag path per sentence as a (B, W) tensor (positions past a sentence's end repeat its last
    tag); the recursion and the backtrace are vectorised over the batch."""
    B, W, K = emissions.shape
    mask = mask.bool()
    score = crf.start_transitions + emissions[:, 0]
    identity = torch.arange(K, device=emissions.device).expand(B, K)
    history = []
    for t in range(1, W):
        best, idx = (score.unsqueeze(2) + crf.transitions.unsqueeze(0)).max(dim=1)
        on = mask[:, t, None]
        score = torch.where(on, best + emissions[:, t], score)
        history.append(torch.where(on, idx, identity))  # identity pointers carry the end tag back
    last = (score + crf.end_transitions).argmax(dim=1)
    path = [last]
    for idx in reversed(history):
        path.insert(0, idx.gather(1, path[0].unsqueeze(1)).squeeze(1))
    return torch.stack(path, 1)


def viterbi_decode(crf: CRF, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
    """Best tag path per sentence (:func:`viterbi_paths` cut to each sentence's length).

    Same result as ``crf.decode`` (which backtracks each sentence in a Python loop).
    """
    return _cut(viterbi_paths(crf, emissions, mask), mask)


def _cut(values: torch.Tensor, mask: torch.Tensor) -> list[list]:
    """Rows of a (B, W) tensor as lists cut to each row's mask length."""
    lengths = mask.bool().sum(1).tolist()
    return [row[:n] for row, n in zip(values.tolist(), lengths)]


def length_batches(lengths: list[int], batch_size: int, spread: float = 1.3) -> list[list[int]]:
    """Indices sorted by ``lengths``, cut into batches of at most ``batch_size`` whose longest is at
    most ``spread`` x their shortest (plus 8), so that little of a padded batch is padding."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and lengths[i] <= spread * lengths[batches[-1][0]] + 8:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


# ---------------------------------------------------------------- the model
class EncoderCRFTagger(nn.Module):
    """Encoder, dropout, linear emission head and a word-level CRF."""

    def __init__(self, encoder, labels: list[str], head_dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.labels = list(labels)
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(encoder.config.hidden_size, len(self.labels))
        self.crf = CRF(len(self.labels), batch_first=True)
        self.temperature = 1.0  # CRF-score temperature of the confidences (calibration.json; 1 = uncalibrated)

    @classmethod
    def from_encoder(cls, path: str | os.PathLike, labels: list[str], attention_dropout: float | None = None,
                     hidden_dropout: float | None = None) -> EncoderCRFTagger:
        """Fresh head and CRF on a pretrained encoder; dropout values override the encoder config."""
        from transformers import AutoConfig, AutoModel

        cfg = AutoConfig.from_pretrained(path)
        set_dropout(cfg, attention_dropout, hidden_dropout)
        encoder = AutoModel.from_pretrained(path, config=cfg, dtype=torch.float32, add_pooling_layer=False) \
            if _has_pooler(cfg) else AutoModel.from_pretrained(path, config=cfg, dtype=torch.float32)
        drop = hidden_dropout if hidden_dropout is not None else getattr(cfg, "hidden_dropout_prob", 0.1)
        return cls(encoder, labels, head_dropout=drop)

    def emissions(self, batch: WordBatch) -> torch.Tensor:
        """(B, W, K) tag scores of each word, from its first subword's vector."""
        hidden = self.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        index = batch.first_subword.unsqueeze(-1).expand(-1, -1, hidden.size(-1))
        words = hidden.gather(1, index)
        return self.head(self.dropout(words))

    def loss(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token cross-entropy plus CRF negative log-likelihood (both averaged per word)."""
        mask = mask.bool()
        ce = F.cross_entropy(emissions[mask], tags[mask])
        nll = -self.crf(emissions, tags, mask=mask, reduction="token_mean")
        return ce + nll

    @torch.inference_mode()
    def predict(self, batch: WordBatch) -> tuple[list[list[int]], list[list[float]]]:
        """Viterbi tag ids and, per word, the calibrated CRF marginal probability of the chosen tag
        (marginals at the tagger's fitted ``temperature``)."""
        paths, probs, _raw = self.predict_calibrated(batch)
        return paths, probs

    @torch.inference_mode()
    def predict_calibrated(self, batch: WordBatch) -> tuple[list[list[int]], list[list[float]], list[list[float]]]:
        """Viterbi tag ids, per-word marginals of the chosen tag at the fitted ``temperature``, and
        the same marginals at temperature 1 (uncalibrated; the same lists when ``temperature`` is 1)."""
        em = self.emissions(batch)
        mask = batch.word_mask
        paths = viterbi_paths(self.crf, em, mask)
        calibrated = self._path_marginals(em, mask, paths, self.temperature)
        raw = calibrated if self.temperature == 1.0 else self._path_marginals(em, mask, paths, 1.0)
        return _cut(paths, mask), calibrated, raw

    def _path_marginals(self, em: torch.Tensor, mask: torch.Tensor, paths: torch.Tensor,
                        temperature: float) -> list[list[float]]:
        """Per sentence, the marginal probability of each word's tag on ``paths`` (one gather for the batch)."""
        marg = crf_marginals(self.crf, em, mask, temperature)
        return _cut(marg.gather(2, paths.unsqueeze(2)).squeeze(2), mask)

    # ------------------------------------------------------------ persistence
    def save(self, out_dir: str | os.PathLike, tokenizer, meta: dict | None = None) -> Path:
        """Write the encoder (save_pretrained), tokenizer, head+CRF (safetensors) and tagger.json."""
        from safetensors.torch import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(out)
        tokenizer.save_pretrained(out)
        tensors = {f"head.{k}": v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
        tensors.update({f"crf.{k}": v.detach().cpu().contiguous() for k, v in self.crf.state_dict().items()})
        save_file(tensors, str(out / HEAD_FILE))
        info = {"labels": self.labels, "head_dropout": self.dropout.p, **(meta or {})}
        (out / META_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> tuple[EncoderCRFTagger, object, dict]:
        """Load a tagger folder; returns (model in eval mode, tokenizer, tagger.json contents).

        A missing, corrupt or truncated file raises :class:`~tinysec.io.InputError` naming it and
        saying how to rebuild the folder."""
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel

        path = Path(path)
        meta = read_meta(path)
        for weights in sorted(path.glob("*.safetensors")):
            check_safetensors(weights, path)
        try:
            cfg = AutoConfig.from_pretrained(path)
            kwargs = {"add_pooling_layer": False} if _has_pooler(cfg) else {}
            encoder = AutoModel.from_pretrained(path, dtype=torch.float32, **kwargs)
            model = cls(encoder, meta["labels"], head_dropout=meta.get("head_dropout", 0.1))
            state = load_file(str(path / HEAD_FILE))
            model.head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
            model.crf.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("crf.")})
            tokenizer = load_tokenizer(path)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise InputError(path, f"cannot load the tagger ({type(exc).__name__}: {str(exc)[:300]}); "
                                   f"{rebuild_hint(path)}") from None
        model.temperature = read_temperature(path)
        return model.to(device).eval(), tokenizer, {**meta, "temperature": model.temperature}


def rebuild_hint(folder: Path) -> str:
    """How to rebuild a tagger folder: its snakemake target for pipeline taggers."""
    parts = Path(folder).parts
    if len(parts) >= 5 and parts[-5:-2] == ("results", "ner", "models"):
        target = "/".join(parts[-5:])
        return f"rebuild it with `snakemake --cores all --force {target}` (rule ner_train)"
    return ("retrain it into that folder (pipeline taggers are rebuilt with "
            "`snakemake --cores all --force results/ner/models/<encoder>/<variant>`)")


def read_meta(path: Path) -> dict:
    """``tagger.json`` of a tagger folder, checked: an object whose ``labels`` is a non-empty list of strings."""
    from ..io import read_json

    if not (path / META_FILE).is_file() or not (path / HEAD_FILE).is_file():
        raise InputError(path, f"not a trained tagger folder (needs {META_FILE} and {HEAD_FILE}); {rebuild_hint(path)}")
    try:
        meta = read_json(path / META_FILE)
    except InputError as exc:
        raise InputError(path / META_FILE, f"corrupt: {str(exc).split(': ', 1)[-1]}; {rebuild_hint(path)}",
                         row=exc.row) from None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if not (isinstance(labels, list) and labels and all(isinstance(x, str) and x for x in labels)):
        raise InputError(path / META_FILE, f"corrupt: 'labels' must be a non-empty list of tag names; "
                                           f"{rebuild_hint(path)}", field="labels")
    return meta


def check_safetensors(file: Path, folder: Path) -> None:
    """Refuse a truncated or corrupt ``.safetensors`` file: its header must parse and its size must
    match the tensors the header declares."""
    size = file.stat().st_size
    with open(file, "rb") as fh:
        head = fh.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        problem = None if 2 <= n <= size - 8 else f"header length {n} does not fit in {size} bytes"
        if problem is None:
            try:
                header = json.loads(fh.read(n))
                end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
                problem = None if 8 + n + end == size else f"{size} bytes, the header declares {8 + n + end}"
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                problem = f"unreadable header ({type(exc).__name__})"
    if problem:
        raise InputError(file, f"corrupt or truncated weights file: {problem}; {rebuild_hint(folder)}")


def set_dropout(cfg, attention: float | None, hidden: float | None) -> None:
    """Override attention/hidden dropout on a transformers config (BERT/RoBERTa attribute names)."""
    if attention is not None:
        for name in ("attention_probs_dropout_prob", "attention_dropout"):
            if hasattr(cfg, name):
                setattr(cfg, name, attention)
    if hidden is not None:
        for name in ("hidden_dropout_prob", "hidden_dropout", "dropout"):
            if hasattr(cfg, name):
                setattr(cfg, name, hidden)


def _has_pooler(cfg) -> bool:
    return getattr(cfg, "model_type", "") in {"bert", "roberta", "xlm-roberta", "camembert"}
