"""Rating figures of one pool: predicted win rates (heatmap) and battle counts per model pair."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .bt import predicted_win_rate


def _heatmap(matrix: pd.DataFrame, title: str, fmt: str, cmap: str, xlabel: str, ylabel: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(matrix.index), len(matrix.columns), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * n, 1.0 + 0.75 * n))
    values = matrix.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap)
    ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(matrix.index)), matrix.index)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                ax.text(j, i, format(values[i, j], fmt), ha="center", va="center", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return fig


def win_rate_figure(models: list[str], ratings, scale: float = 400.0, base: float = 10.0,
                    rating_name: str = "ratings"):
    """Win-rate heatmap: P(row model beats column model) predicted from the ratings, best model first;
    ``rating_name`` (which ratings: online Elo, shuffled median, Bradley-Terry) goes in the title."""
    order = np.argsort(-np.asarray(ratings, dtype=float))
    names = [models[i] for i in order]
    p = predicted_win_rate(np.asarray(ratings, dtype=float)[order], scale, base)
    return _heatmap(pd.DataFrame(p, index=names, columns=names),
                    f"Predicted win rate using {rating_name} for model A in an A vs. B battle", ".2f", "RdBu",
                    "model B", "model A")


def battle_counts(battles: pd.DataFrame, models: list[str], which: str = "all") -> pd.DataFrame:
    """Symmetric matrix of battle counts per model pair: ``all``, ``no_ties`` or ``ties``."""
    if which == "no_ties":
        battles = battles[battles["win"] != "tie"]
    elif which == "ties":
        battles = battles[battles["win"] == "tie"]
    elif which != "all":
        raise ValueError(f"which must be all, no_ties or ties, got {which!r}")
    m = pd.crosstab(battles["model_a"], battles["model_b"]).reindex(index=models, columns=models, fill_value=0)
    m = m.fillna(0) + m.fillna(0).T
    for name in models:
        m.loc[name, name] = np.nan
    return m


COUNT_TITLES = {"all": "Battle count of each combination of models",
                "no_ties": "Battle count of each combination of models (without ties)",
                "ties": "Tie count of each combination of models"}


def battle_count_figure(battles: pd.DataFrame, models: list[str], which: str = "all"):
    """Battle-count heatmap of :func:`battle_counts`."""
    return _heatmap(battle_counts(battles, models, which), COUNT_TITLES[which], ".0f", "Blues", "model", "model")
