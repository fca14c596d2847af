"""Battles in the FastChat/HackMentor shape: one JSON object per line with ``model_a``, ``model_b``
and ``win`` in ``model_a | model_b | tie`` (other fields are kept but ignored by the ratings)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..io import InputError, iter_jsonl

WINS = ("model_a", "model_b", "tie")
# FastChat also writes these tie flavours; they count as ties.
_ALIASES = {"tie (bothbad)": "tie", "tie (both bad)": "tie"}


@dataclass
class Battles:
    """Battles as integer arrays: ``a``, ``b`` index into ``models``; ``score`` is the score of
    model a (1 win, 0.5 tie, 0 loss). Rows keep their input order."""

    models: list[str]
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.score)

    @classmethod
    def from_records(cls, rows: list[dict], path: str | os.PathLike = "<battles>",
                     models: list[str] | None = None) -> "Battles":
        """Validate ``rows`` (errors name the file, row and field) and index their models.

        ``models`` fixes the model order (others are appended in order of appearance)."""
        names = list(models or [])
        index = {m: i for i, m in enumerate(names)}
        a, b, s = [], [], []
        for row_no, row in enumerate(rows, start=1):
            pair = []
            for key in ("model_a", "model_b"):
                name = row.get(key)
                if not isinstance(name, str) or not name:
                    raise InputError(path, f"'{key}' must be a non-empty string, got {name!r}", row=row_no, field=key)
                if name not in index:
                    index[name] = len(names)
                    names.append(name)
                pair.append(index[name])
            if pair[0] == pair[1]:
                raise InputError(path, f"a model cannot battle itself ({row['model_a']})", row=row_no, field="model_b")
            win = _ALIASES.get(row.get("win"), row.get("win"))
            if win not in WINS:
                raise InputError(path, f"'win' must be one of {', '.join(WINS)}, got {row.get('win')!r}",
                                 row=row_no, field="win")
            a.append(pair[0])
            b.append(pair[1])
            s.append({"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[win])
        return cls(names, np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), np.asarray(s, dtype=np.float64))

    @classmethod
    def read(cls, path: str | os.PathLike, models: list[str] | None = None) -> "Battles":
        """Read a battles JSONL file; an empty file is an error."""
        rows = list(iter_jsonl(path))
        return cls.from_records(rows, path=path, models=models)

    def canonical_order(self) -> np.ndarray:
        """A permutation that sorts battles by content (model names, score), independent of input order."""
        names = np.asarray(self.models, dtype=object)
        keys = np.rec.fromarrays([names[self.a].astype(str), names[self.b].astype(str), self.score])
        return np.argsort(keys, kind="stable")

    def counts(self) -> np.ndarray:
        """Battles per model (either side)."""
        return np.bincount(np.concatenate([self.a, self.b]), minlength=len(self.models))
