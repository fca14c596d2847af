"""Cleaning of instruction data: exact duplicates and the ROUGE-L diversity rule.

The studies keep a training item only when its instruction has ROUGE-L F below 0.6 against every
evaluation instruction. ROUGE-L comes from ``rouge-score``; an exact bound
(F <= 2 * |token multiset overlap| / (|a| + |b|)) skips the pairs that cannot reach the threshold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence


def _key(item: dict) -> tuple[str, str, str]:
    return tuple(" ".join(str(item.get(k, "") or "").split()) for k in ("instruction", "input", "output"))


def dedupe(items: Iterable[dict]) -> tuple[list[dict], int]:
    """Drop exact duplicates (same instruction, input and output up to whitespace); keep the first."""
    seen, kept, removed = set(), [], 0
    for item in items:
        k = _key(item)
        if k in seen:
            removed += 1
            continue
        seen.add(k)
        kept.append(item)
    return kept, removed


class RougeLFilter:
    """Finds training instructions too close (ROUGE-L F >= ``threshold``) to any reference instruction."""

    def __init__(self, references: Sequence[str], threshold: float = 0.6):
        from rouge_score import rouge_scorer

        self.threshold = threshold
        self.scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
        self._tok = self.scorer._tokenizer
        self.refs = [(r, Counter(self._tok.tokenize(r))) for r in references]
        self.refs = [(r, c, sum(c.values())) for r, c in self.refs if c]

    def max_score(self, text: str) -> float:
        """Highest ROUGE-L F of ``text`` against the references (0 when no pair can pass the bound)."""
        toks = Counter(self._tok.tokenize(text))
        n = sum(toks.values())
        best = 0.0
        if not n:
            return best
        for ref, counts, m in self.refs:
            bound = 2 * sum((toks & counts).values()) / (n + m)
            if bound < self.threshold or bound <= best:
                continue
            best = max(best, self.scorer.score(ref, text)["rougeL"].fmeasure)
        return best

    def too_close(self, text: str) -> bool:
        return self.max_score(text) >= self.threshold


def rouge_filter(train: Iterable[dict], eval_instructions: Sequence[str],
                 threshold: float = 0.6) -> tuple[list[dict], int]:
    """Drop training items whose instruction has ROUGE-L F >= ``threshold`` against any evaluation
    instruction; returns the kept items and how many were dropped."""
    filt = RougeLFilter(eval_instructions, threshold)
    kept, removed = [], 0
    for item in train:
        if filt.too_close(item["instruction"]):
            removed += 1
        else:
            kept.append(item)
    return kept, removed
