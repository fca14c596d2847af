"""Multi-label scores (scikit-learn): micro and macro precision, recall and F1, exact match, per label.

- micro: true positives, false positives and false negatives pooled over every (example, label)
  pair; micro precision is the share of all predicted labels that are correct (the study's
  "precision");
- macro: the unweighted mean over every label that occurs in the gold or the predicted sets
  (a label never predicted has precision 0, one never in the gold set recall 0);
- exact match: share of examples whose predicted set equals the gold set.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.preprocessing import MultiLabelBinarizer


def binarize(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]):
    """Indicator matrices of gold and predicted label sets over their joint label list."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold label sets but {len(pred)} predictions")
    classes = sorted({lab for s in gold for lab in s} | {lab for s in pred for lab in s})
    mlb = MultiLabelBinarizer(classes=classes)
    mlb.fit([classes])
    return mlb.transform([list(s) for s in gold]), mlb.transform([list(s) for s in pred]), classes


def scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro/macro precision, recall, F1 and exact-match rate of ``pred`` against ``gold``."""
    y_true, y_pred, classes = binarize(gold, pred)
    out = {"n": len(gold)}
    if not classes:
        return {**out, **{f"{m}_{a}": 0.0 for a in ("micro", "macro") for m in ("precision", "recall", "f1")},
                "exact_match": 1.0 if len(gold) else 0.0}
    for avg in ("micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0)
        out.update({f"precision_{avg}": float(p), f"recall_{avg}": float(r), f"f1_{avg}": float(f)})
    out["exact_match"] = float(accuracy_score(y_true, y_pred))
    return out


def per_label(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], names: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per label: precision, recall, F1, support (gold count) and predicted count."""
    y_true, y_pred, classes = binarize(gold, pred)
    cols = ["label", "name", "precision", "recall", "f1", "support", "predicted"]
    if not classes:
        return pd.DataFrame(columns=cols)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    df = pd.DataFrame({"label": classes, "name": [(names or {}).get(c, "") for c in classes],
                       "precision": p, "recall": r, "f1": f, "support": s.astype(int),
                       "predicted": np.asarray(y_pred.sum(axis=0)).astype(int)})
    return df.sort_values(["support", "label"], ascending=[False, True]).reset_index(drop=True)[cols]
