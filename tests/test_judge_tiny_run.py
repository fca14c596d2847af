"""The tiny-config DAG (shared `tiny_run` fixture) produces every judging table and figure."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

FIGURES = ["win_rate_predicted", "battle_counts", "battle_counts_no_ties", "battle_counts_ties"]


def test_battles_tables_and_figures(tiny_run):
    judge_dir = tiny_run / "results" / "battles" / "reference"
    summary = json.loads((judge_dir / "summary.json").read_text())
    assert summary["battles"] > 0 and summary["flip_rate"] == 0.0  # similarity judging is symmetric
    pair_files = sorted(judge_dir.glob("*__vs__*.jsonl"))
    assert len(pair_files) == len(summary["pairs"]) >= 2
    for path in pair_files:
        for row in map(json.loads, path.read_text().splitlines()):
            a, b = path.stem.split("__vs__")
            assert (row["model_a"], row["model_b"]) == (a, b)
            assert row["verdict"] in {"model_a", "model_b", "tie"} and row["raw_ab"].startswith("sim_A=")
    exported = [json.loads(line) for line in (judge_dir / "battles.jsonl").read_text().splitlines()]
    assert len(exported) == summary["valid"]

    elo = pd.read_csv(tiny_run / "results" / "tables" / "elo.csv")
    models = set(elo["model"])
    assert models == {m for b in exported for m in (b["model_a"], b["model_b"])}
    assert elo["bt"].mean() == pytest.approx(1000, abs=0.5)
    assert (elo["bt_lower"] <= elo["bt"]).all() and (elo["bt"] <= elo["bt_upper"]).all()
    assert (elo["rank"] >= 1).all() and elo["battles"].sum() == 2 * len(exported)
    assert "position-flip rate" in (tiny_run / "results" / "tables" / "elo.md").read_text()

    vs = sorted((tiny_run / "results" / "tables").glob("vs_*.csv"))
    assert vs, "no vs_{opponent} table"
    for path in vs:
        df = pd.read_csv(path)
        opponent = path.stem[len("vs_"):]
        assert {"custom_wins", "ties", f"{opponent}_wins", "win_or_tie_rate"} <= set(df.columns)
        assert ((df["win_or_tie_rate"] >= 0) & (df["win_or_tie_rate"] <= 1)).all()
        assert "flip rate" in path.with_suffix(".md").read_text()
    for name in FIGURES:
        png = tiny_run / "results" / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
