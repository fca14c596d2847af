"""Tables 1-2 analog: every fine-tuned model against one reference opponent."""

from __future__ import annotations

import pandas as pd

from .battle import summarize


def vs_table(rows_by_model: dict[str, list[dict]], opponent: str) -> pd.DataFrame:
    """One row per model: its wins, ties, the opponent's wins, the win-or-tie rate over valid
    battles, invalid battles and the position-flip rate. ``rows_by_model[m]`` are the battle rows
    of ``m`` (as model_a) against ``opponent`` (as model_b)."""
    out = []
    for model, rows in rows_by_model.items():
        if any(r["model_a"] != model or r["model_b"] != opponent for r in rows):
            raise ValueError(f"battles of {model} vs {opponent} name other models")
        s = summarize(rows)
        out.append({"model": model, "custom_wins": s["wins_a"], "ties": s["ties"],
                    f"{opponent}_wins": s["wins_b"],
                    "win_or_tie_rate": (s["wins_a"] + s["ties"]) / s["valid"] if s["valid"] else float("nan"),
                    "invalid": s["invalid"], "flip_rate": s["flip_rate"]})
    return pd.DataFrame(out)
