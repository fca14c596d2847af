"""Battles in the FastChat/HackMentor shape: one JSON object per line with ``model_a``, ``model_b``
and the outcome in ``win`` (HackMentor) or ``winner`` (FastChat), one of ``model_a | model_b | tie``
(FastChat's ``tie (bothbad)`` counts as a tie; other fields are kept but ignored by the ratings)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..io import InputError, check_record, iter_jsonl

WINS = ("model_a", "model_b", "tie")
OUTCOME_KEYS = ("win", "winner")  # HackMentor writes 'win', FastChat 'winner'
# FastChat also writes these tie flavours; they count as ties.
_ALIASES = {"tie (bothbad)": "tie", "tie (both bad)": "tie"}


def outcome(row: dict, path: str | os.PathLike, row_no: int) -> tuple[str, str]:
    """``(outcome, key it was read from)`` of one battle row already checked against format
    ``battles`` (outcome values); errors name the file, row and field."""
    keys = [k for k in OUTCOME_KEYS if k in row]
    if not keys:
        raise InputError(path, "no outcome: expected a 'win' or 'winner' field", row=row_no, field="win")
    values = {k: _ALIASES.get(row[k], row[k]) for k in keys}
    if len(set(values.values())) > 1:
        raise InputError(path, f"'win' ({row['win']!r}) and 'winner' ({row['winner']!r}) disagree",
                         row=row_no, field="winner")
    return values[keys[0]], keys[0]


@dataclass
class Battles:
    """Battles as integer arrays: ``a``, ``b`` index into ``models``; ``score`` is the score of
    model a (1 win, 0.5 tie, 0 loss). Rows keep their input order."""

    models: list[str]
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray
    outcome_keys: Counter = field(default_factory=Counter)  # rows per outcome key ('win' / 'winner')

    def __len__(self) -> int:
        return len(self.score)

    @classmethod
    def from_records(cls, rows: list[dict], path: str | os.PathLike = "<battles>",
                     models: list[str] | None = None) -> Battles:
        """Validate ``rows`` (errors name the file, row and field) and index their models.

        ``models`` fixes the model order (others are appended in order of appearance)."""
        names = list(models or [])
        index = {m: i for i, m in enumerate(names)}
        a, b, s, keys = [], [], [], Counter()
        for row_no, row in enumerate(rows, start=1):
            pair = []
            check_record(row, "battles", path, row_no)
            for key in ("model_a", "model_b"):
                name = row[key]
                if name not in index:
                    index[name] = len(names)
                    names.append(name)
                pair.append(index[name])
            if pair[0] == pair[1]:
                raise InputError(path, f"a model cannot battle itself ({row['model_a']})", row=row_no, field="model_b")
            win, key = outcome(row, path, row_no)
            keys[key] += 1
            a.append(pair[0])
            b.append(pair[1])
            s.append({"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[win])
        return cls(names, np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64),
                   np.asarray(s, dtype=np.float64), keys)

    @classmethod
    def read(cls, path: str | os.PathLike, models: list[str] | None = None) -> Battles:
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

    def components(self) -> np.ndarray:
        """Connected component of each model in the battle graph (models linked by any battle),
        numbered 1, 2, ... by size, largest first (ties: the one whose first model comes first)."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        m = len(self.models)
        graph = coo_matrix((np.ones(len(self.a)), (self.a, self.b)), shape=(m, m))
        _, labels = connected_components(graph, directed=False)
        sizes = np.bincount(labels)
        first = np.array([np.flatnonzero(labels == c)[0] for c in range(len(sizes))])
        order = sorted(range(len(sizes)), key=lambda c: (-sizes[c], first[c]))
        renumber = {c: i + 1 for i, c in enumerate(order)}
        return np.array([renumber[c] for c in labels], dtype=np.int64)
