"""One ratings table from a battles file: online Elo (file order), shuffled-order Elo median and
interval, Bradley-Terry rating and bootstrap interval, rank by CI, battles and answer length."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

from .battles import Battles
from .bt import BTParams, bradley_terry, rank_by_ci
from .elo import EloParams, online_elo, shuffled_elo


def mean_answer_words(rows: list[dict], models: list[str]) -> list[float]:
    """Mean answer length in words per model, from ``answer_words_a/b`` fields (NaN when absent);
    each (model, question) counts once."""
    seen: dict[str, dict] = defaultdict(dict)
    for r in rows:
        for side in ("a", "b"):
            n = r.get(f"answer_words_{side}")
            if isinstance(n, (int, float)):
                seen[r[f"model_{side}"]][r.get("question_id", id(r))] = n
    return [float(np.mean(list(seen[m].values()))) if seen[m] else float("nan") for m in models]


def rank_within(lower: np.ndarray, upper: np.ndarray, component: np.ndarray) -> np.ndarray:
    """:func:`rank_by_ci` computed separately inside each component (models of different
    components never met, so their intervals are not compared)."""
    rank = np.empty(len(lower), dtype=np.int64)
    for c in np.unique(component):
        idx = np.flatnonzero(component == c)
        rank[idx] = rank_by_ci(lower[idx], upper[idx])
    return rank


def rate(battles: Battles, elo: EloParams = EloParams(), bt: BTParams = BTParams(), n_orders: int = 1000,
         rounds: int = 1000, seed: int = 0, ci: float = 0.95, methods=("elo", "bt"),
         rows: list[dict] | None = None) -> pd.DataFrame:
    """Ratings table, one row per model, sorted by rank then rating (best first).

    ``rank`` uses the Bradley-Terry CI when ``bt`` is among ``methods``, else the shuffled-Elo interval.
    When the battle graph has more than one connected component, a ``component`` column (see
    :meth:`Battles.components`) comes first, ranks are computed within each component and the
    table is sorted by component first.
    """
    df = pd.DataFrame({"model": battles.models})
    if "elo" in methods:
        df["elo"] = online_elo(battles, elo)
        sh = shuffled_elo(battles, elo, n_orders=n_orders, seed=seed, ci=ci)
        df["elo_median"], df["elo_lower"], df["elo_upper"] = sh.median, sh.lower, sh.upper
    if "bt" in methods:
        res = bradley_terry(battles, bt, rounds=rounds, seed=seed, ci=ci)
        df["bt"] = res.rating
        df["bt_lower"] = res.lower if res.lower is not None else res.rating
        df["bt_upper"] = res.upper if res.upper is not None else res.rating
    lo, hi = ("bt_lower", "bt_upper") if "bt" in methods else ("elo_lower", "elo_upper")
    component = battles.components()
    df.insert(1, "rank", rank_within(df[lo].to_numpy(), df[hi].to_numpy(), component))
    sort = ["rank"]
    if component.max(initial=1) > 1:
        df.insert(0, "component", component)
        sort = ["component", "rank"]
    df["battles"] = battles.counts()
    if rows is not None:
        df["mean_answer_words"] = mean_answer_words(rows, battles.models)
    key = "bt" if "bt" in methods else "elo_median"
    df = df.sort_values([*sort, key], ascending=[True] * len(sort) + [False]).reset_index(drop=True)
    num = df.select_dtypes("float").columns
    df[num] = df[num].round(1)
    return df
