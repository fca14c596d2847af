"""Multi-label scores of predicted label sets against gold label sets, with bootstrap intervals.

- micro: true positives, false positives and false negatives pooled over every (example, label)
  pair; micro precision is the share of all predicted labels that are correct (an example with
  no predicted label adds nothing to its denominator);
- macro: the unweighted mean over every label that occurs in the gold or the predicted sets
  (a label never predicted has precision 0, one never in the gold set recall 0);
- per-example precision (``precision_example``, the study's single "precision" figure):
  |predicted ∩ gold| / |predicted| for each example, averaged over the examples; an example with
  an empty predicted set (an empty or unparseable answer) scores 0;
- exact match: share of examples whose predicted set equals the gold set.

Every score is computed by one function, :func:`_weighted_scores`, from item weights: all ones for
the point estimate, the multiplicities of a resample for each bootstrap replicate
(:func:`bootstrap`). Undefined ratios (0/0) are 0, as scikit-learn's ``zero_division=0``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support
from sklearn.preprocessing import MultiLabelBinarizer

PRF = [f"{m}_{a}" for a in ("micro", "macro") for m in ("precision", "recall", "f1")]
INTERVAL_METRICS = [*PRF, "precision_example"]  # the scores that get a bootstrap interval
CHUNK = 256  # bootstrap replicates scored at once (bounds memory: CHUNK x items weights)


def binarize(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]):
    """Indicator matrices of gold and predicted label sets over their joint label list."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold label sets but {len(pred)} predictions")
    classes = sorted({lab for s in gold for lab in s} | {lab for s in pred for lab in s})
    mlb = MultiLabelBinarizer(classes=classes)
    mlb.fit([classes])
    return mlb.transform([list(s) for s in gold]), mlb.transform([list(s) for s in pred]), classes


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, 0 where den is 0."""
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _weighted_scores(w: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Every score under item weights ``w`` (replicates x items): one value per replicate."""
    both = (y_true & y_pred).astype(float)
    yt, yp = y_true.astype(float), y_pred.astype(float)
    tp, gold, pred = w @ both, w @ yt, w @ yp  # replicates x labels
    out = {}
    s_tp, s_gold, s_pred = tp.sum(1), gold.sum(1), pred.sum(1)
    out.update(precision_micro=_ratio(s_tp, s_pred), recall_micro=_ratio(s_tp, s_gold),
               f1_micro=_ratio(2 * s_tp, s_gold + s_pred))
    present = (gold + pred) > 0
    n_present = present.sum(1)
    for name, per in (("precision", _ratio(tp, pred)), ("recall", _ratio(tp, gold)), ("f1", _ratio(2 * tp, gold + pred))):
        out[f"{name}_macro"] = _ratio((per * present).sum(1), n_present)
    weight = w.sum(1)
    item_precision = _ratio(both.sum(1), yp.sum(1))  # 0 for an empty predicted set
    out["precision_example"] = _ratio(w @ item_precision, weight)
    out["exact_match"] = _ratio(w @ (y_true == y_pred).all(1).astype(float), weight)
    return out


def scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro/macro precision, recall, F1, per-example precision and exact-match rate of ``pred``
    against ``gold`` (see the module docstring), and the number of examples ``n``."""
    y_true, y_pred, _ = binarize(gold, pred)
    values = _weighted_scores(np.ones((1, len(gold))), y_true, y_pred)
    return {"n": len(gold), **{k: float(v[0]) for k, v in values.items()}}


def resample_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """Multiplicities (resamples x n) of ``resamples`` seeded draws of n items with replacement."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    flat = (np.arange(resamples)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(float)


def bootstrap(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], resamples: int, confidence: float,
              seed: int) -> dict[str, float]:
    """Percentile bootstrap intervals over test items: ``{metric}_lo`` and ``{metric}_hi`` for
    every metric of :data:`INTERVAL_METRICS`.

    Items are drawn with replacement ``resamples`` times from a generator seeded with ``seed``, so
    the same seed, item count and answers give the same intervals, and two models scored on the
    same test items see the same resamples (a paired bootstrap). With no items both bounds are 0.
    """
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"bootstrap needs resamples >= 1 and 0 < confidence < 1, got {resamples}, {confidence}")
    y_true, y_pred, _ = binarize(gold, pred)
    n = len(gold)
    if n == 0:
        return {f"{m}_{end}": 0.0 for m in INTERVAL_METRICS for end in ("lo", "hi")}
    weights = resample_weights(n, resamples, seed)
    values: dict[str, list[np.ndarray]] = {m: [] for m in INTERVAL_METRICS}
    for start in range(0, resamples, CHUNK):
        chunk = _weighted_scores(weights[start:start + CHUNK], y_true, y_pred)
        for m in INTERVAL_METRICS:
            values[m].append(chunk[m])
    tail = (1 - confidence) / 2
    out = {}
    for m in INTERVAL_METRICS:
        lo, hi = np.quantile(np.concatenate(values[m]), [tail, 1 - tail])
        out[f"{m}_lo"], out[f"{m}_hi"] = float(lo), float(hi)
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
