"""Head-to-head tables: every fine-tuned model against one reference opponent (wins, ties, losses)."""

from __future__ import annotations

import pandas as pd

from .battle import check_orders, single_order, summarize


def _rate(wins: int, ties: int, valid: int) -> float | str:
    """(wins + ties) / valid, or '' (an empty cell, not NaN) when no battle was valid."""
    return round((wins + ties) / valid, 4) if valid else ""


def _counts(rows: list[dict], opponent: str, prefix: str = "") -> dict:
    s = summarize(rows)
    return {f"{prefix}custom_wins": s["wins_a"], f"{prefix}ties": s["ties"], f"{prefix}{opponent}_wins": s["wins_b"],
            f"{prefix}invalid": s["invalid"], f"{prefix}win_or_tie_rate": _rate(s["wins_a"], s["ties"], s["valid"])}


def vs_table(rows_by_model: dict[str, list[dict]], opponent: str, orders=("ab", "ba")) -> pd.DataFrame:
    """One row per model. ``rows_by_model[m]`` are the battle rows of ``m`` (as model_a) against
    ``opponent`` (as model_b).

    First the study's single-order counts: the A/B-order verdict of every item (``m`` shown
    first), so custom_wins + ties + <opponent>_wins + invalid = items. When ``orders`` holds both
    orders, then the debiased two-order counts (agreement kept, disagreement = tie) prefixed
    ``debiased_``, and ``flip_rate``: share of items with both verdicts valid whose verdicts differ."""
    both = check_orders(orders) == ["ab", "ba"]
    out = []
    for model, rows in rows_by_model.items():
        if any(r["model_a"] != model or r["model_b"] != opponent for r in rows):
            raise ValueError(f"battles of {model} vs {opponent} name other models")
        row = {"model": model, "items": len(rows), **_counts(single_order(rows), opponent)}
        if both:
            s = summarize(rows)
            flip = s["flip_rate"]
            row.update(_counts(rows, opponent, "debiased_"), flip_rate="" if flip is None else round(flip, 4))
        out.append(row)
    return pd.DataFrame(out)
