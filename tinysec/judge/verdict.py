"""Verdicts: parse a judge's reply, map it to model terms, combine the two orders of a pair.

A judge sees the two answers as "A" (shown first) and "B" (shown second) and replies
``A`` / ``B`` / ``tie``; anything else is ``invalid``. In a battle of models a and b judged in both
orders, each verdict is mapped to ``model_a`` / ``model_b`` / ``tie`` / ``invalid`` and the two are
combined: agreement is kept, any disagreement becomes a tie (position bias removed), an invalid
order makes the battle invalid (excluded from ratings, counted in reports).
"""

from __future__ import annotations

import re

A, B, TIE, INVALID = "A", "B", "tie", "invalid"
MODEL_A, MODEL_B = "model_a", "model_b"

_OPTIONS = {
    A: re.compile(r"\b(?:model )?a(?: output)? is (?:the )?better\b"),
    B: re.compile(r"\b(?:model )?b(?: output)? is (?:the )?better\b"),
    TIE: re.compile(r"\btie\b"),
}


def _normalise(text: str) -> str:
    text = text.lower().replace("model-a-output", "model a output").replace("model-b-output", "model b output")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def parse_verdict(text: str | None) -> str:
    """``A``, ``B`` or ``tie`` when the reply names exactly one of the three options (case,
    punctuation and surrounding words tolerated; a bare ``A`` or ``B`` counts), else ``invalid``."""
    if not text:
        return INVALID
    norm = _normalise(text)
    if norm in ("a", "b"):
        return norm.upper()
    found = {opt for opt, pattern in _OPTIONS.items() if pattern.search(norm)}
    return found.pop() if len(found) == 1 else INVALID


def to_models(verdict: str, a_first: bool) -> str:
    """Map a positional verdict to model terms; ``a_first`` says whether model a was shown as A."""
    if verdict in (TIE, INVALID):
        return verdict
    shown_first = verdict == A
    return MODEL_A if shown_first == a_first else MODEL_B


def combine(ab: str, ba: str) -> str:
    """Combined verdict of the two orders (both already in model terms)."""
    if INVALID in (ab, ba):
        return INVALID
    return ab if ab == ba else TIE
