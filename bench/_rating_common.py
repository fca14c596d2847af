"""Shared by the rating benches: simulated battles and the machine description."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tinysec.rating.battles import Battles

SCALE, BASE, INIT = 400.0, 10.0, 1000.0


def simulate(n_battles: int, n_models: int, seed: int = 0, tie_rate: float = 0.1) -> pd.DataFrame:
    """Battles among models with true ratings spread evenly over 800..1200, in FastChat's columns."""
    rng = np.random.default_rng(seed)
    true = np.linspace(800, 1200, n_models)
    a = rng.integers(0, n_models, n_battles)
    b = (a + rng.integers(1, n_models, n_battles)) % n_models
    p = 1 / (1 + BASE ** ((true[b] - true[a]) / SCALE))
    tie = rng.random(n_battles) < tie_rate
    winner = np.where(tie, "tie", np.where(rng.random(n_battles) < p, "model_a", "model_b"))
    names = np.array([f"model-{i:03d}" for i in range(n_models)])
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner})


def battles_from_frame(df: pd.DataFrame) -> Battles:
    """Battles with models indexed as FastChat's ``get_matchups_models`` does (pd.factorize of the
    model_a column followed by the model_b column), so both sides see the same cell order."""
    names = np.concatenate([df["model_a"].to_numpy(dtype=object), df["model_b"].to_numpy(dtype=object)])
    idx, models = pd.factorize(names)  # same codes as factorizing the concatenated Series
    n = len(df)
    winner = df["winner"].to_numpy(dtype=object)
    score = np.where(winner == "model_a", 1.0, np.where(winner == "model_b", 0.0, 0.5))  # anything else: a tie
    return Battles(list(models), idx[:n].astype(np.int64), idx[n:].astype(np.int64), score)
