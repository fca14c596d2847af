"""Strict entity-level precision, recall and F1.

An entity counts as correct only when its span *and* type equal a gold entity's exactly.
Counts are summed over all sentences (micro); per type the same on that type's entities.

    P = TP / (TP + FP)    R = TP / (TP + FN)    F1 = 2 P R / (P + R) = 2 TP / (2 TP + FP + FN)

(0 when a denominator is 0). F1 is always computed from the same micro counts as P and R, so
it follows from the P and R of the same row (unlike the study's own F1 column).

:func:`span_counts` matches character or word spans directly; :func:`seqeval_scores` runs
seqeval in strict IOB2 mode on word tags. The two agree on word-level tags (tested).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

F1_DEFINITION = ("strict entity-level scores (exact span and type), micro-averaged over summed counts: "
                 "P = TP/(TP+FP), R = TP/(TP+FN), F1 = 2PR/(P+R) = 2TP/(2TP+FP+FN)")


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 of summed counts."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def _key(span) -> tuple:
    if isinstance(span, dict):
        return span["start"], span["end"], span["type"]
    return tuple(span)


def span_counts(gold: Iterable[Sequence], pred: Iterable[Sequence]) -> dict[str, Counter]:
    """Per type ``Counter(tp, fp, fn)`` (and ``"ALL"``) of exact span+type matches, sentence by sentence.

    Each item of ``gold``/``pred`` is one sentence's list of spans: dicts with start/end/type or
    ``(start, end, type)`` tuples.
    """
    out: dict[str, Counter] = {"ALL": Counter(tp=0, fp=0, fn=0)}
    for g_sent, p_sent in zip(gold, pred, strict=True):
        g, p = Counter(map(_key, g_sent)), Counter(map(_key, p_sent))
        for key in g | p:
            typ = key[2]
            tp = min(g[key], p[key])
            c = out.setdefault(typ, Counter(tp=0, fp=0, fn=0))
            for counter in (c, out["ALL"]):
                counter["tp"] += tp
                counter["fp"] += p[key] - tp
                counter["fn"] += g[key] - tp
    return out


def span_scores(gold: Iterable[Sequence], pred: Iterable[Sequence]) -> dict[str, dict]:
    """``{type or "ALL": {precision, recall, f1, tp, fp, fn, support}}`` from :func:`span_counts`."""
    scores = {}
    for typ, c in span_counts(gold, pred).items():
        p, r, f = prf(c["tp"], c["fp"], c["fn"])
        scores[typ] = {"precision": p, "recall": r, "f1": f, "tp": c["tp"], "fp": c["fp"], "fn": c["fn"],
                       "support": c["tp"] + c["fn"]}
    return scores


def strict_word_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Strict IOB2 entities of a tag sequence as ``(first word, last word + 1, type)``."""
    from .postprocess import path_entities

    return [(a, b, t) for a, b, t, _ in path_entities(list(tags), [1.0] * len(tags))]


def seqeval_scores(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> dict[str, dict]:
    """seqeval strict IOB2 micro scores (``"ALL"``) and per type, same shape as :func:`span_scores`."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    g, p = [list(x) for x in gold_tags], [list(x) for x in pred_tags]
    kw = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    out = {"ALL": {"precision": precision_score(g, p, average="micro", **kw),
                   "recall": recall_score(g, p, average="micro", **kw),
                   "f1": f1_score(g, p, average="micro", **kw)}}
    report = classification_report(g, p, output_dict=True, **kw)
    for typ, row in report.items():
        if typ.endswith(" avg"):
            continue
        out[typ] = {"precision": row["precision"], "recall": row["recall"], "f1": row["f1-score"],
                    "support": int(row["support"])}
    return out
