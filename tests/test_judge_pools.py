"""Rating pools, judging orders and timing-only models: config checks, the battle builder and
tables on hand-made battles, and the real outputs of the tiny-config run (shared `tiny_run`)."""

from __future__ import annotations

import copy
import json
import math

import pandas as pd
import pytest
import yaml
from conftest import REPO, TINY, run_snakemake
from test_judge_verdicts import LongerWins

from tinysec import plan
from tinysec.config import ConfigError, validate_config
from tinysec.judge.battle import judge_pairs, summarize
from tinysec.judge.cache import JudgmentCache
from tinysec.judge.tables import vs_table

SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"


def tiny_config(mutate) -> dict:
    raw = yaml.safe_load(TINY.read_text())
    mutate(raw)
    return validate_config(copy.deepcopy(raw), SCHEMA)


def judge_plan(cfg: dict) -> plan.Judge:
    models = plan.Models(cfg)
    return plan.Judge(cfg, models, plan.Instruct(cfg, models))


def hf_judge_on(model: str):
    def mutate(c):
        c["judge"]["judge"] = "llm"
        c["judge"]["judges"]["llm"] = {"kind": "hf", "model": model}
    return mutate


def test_a_judge_in_a_pool_it_judges_is_refused_without_the_flag():
    with pytest.raises(ConfigError) as err:
        tiny_config(hf_judge_on("tiny-llama"))
    msg = str(err.value)
    # pool `all` (every contestant) and pool `finetuned` both hold tiny-llama and its fine-tunes
    assert "judge.pools.all.allow_self_judging: true" in msg and "judge.pools.finetuned" in msg
    assert msg.count("would rate itself") == 2 and "tiny-llama-lora, tiny-llama-full, tiny-llama in this pool" in msg

    def allowed(c):
        hf_judge_on("tiny-llama")(c)
        c["judge"]["pools"] = {"all": {"allow_self_judging": True},
                               "others": {"members": ["tiny-llama-ref", "tiny-llama-lora"]}}
    with pytest.raises(ConfigError, match=r"judge\.pools\.others: the judge 'llm' \(model 'tiny-llama'\)"):
        tiny_config(allowed)

    def fine(c):
        allowed(c)
        c["judge"]["pools"]["others"]["allow_self_judging"] = True
    judge = judge_plan(tiny_config(fine))
    assert judge.pool_settings("others")["self_judged"] == ["tiny-llama-lora"]
    # vs tables are not pools: their captions name the judge's own answers (params.self_judged)
    assert judge.self_judged(["tiny-llama-ref", "tiny-llama-lora", "tiny-llama-full"]) == ["tiny-llama-lora",
                                                                                             "tiny-llama-full"]
    # the reference judge has no model: nothing is self-judged
    assert judge_plan(tiny_config(lambda c: None)).pool_settings("all")["self_judged"] == []


@pytest.mark.parametrize("mutate, where", [
    (lambda c: c["judge"]["pools"].update(bad={"members": ["tiny-llama", "nobody"]}),
     "judge.pools.bad.members[1]: 'nobody' is not a contestant"),
    (lambda c: c["judge"]["pools"].update(ties={"members": ["tiny-llama", "tiny-llama-ref"]}),
     "judge.pools.ties: its output results/figures/battle_counts_ties.png is also an output of pool 'all'"),
    (lambda c: c["judge"].update(orders=["ba"]), "judge.orders"),
    (lambda c: c["judge"]["pools"].update(p={"rating": "median"}), "judge.pools.p.rating"),
    (lambda c: c["instruct"]["timing_only"].update(lora=["ghost"]), "instruct.timing_only.lora[0]: model 'ghost'"),
])
def test_bad_pools_orders_and_timing_models_name_their_key(mutate, where):
    with pytest.raises(ConfigError, match="invalid config") as err:
        tiny_config(mutate)
    assert where in str(err.value)


ITEMS = [{"id": str(i), "instruction": f"q{i}", "input": "", "output": "ref"} for i in range(5)]
# x wins item 0, equal lengths on 1 and 4 (the judge prefers whichever is shown first), 2 is
# unjudgeable, y wins item 3
ANSWERS = {"x": {"0": "long answer", "1": "same", "2": "???", "3": "a", "4": "abcd"},
           "y": {"0": "short", "1": "SAME", "2": "fine", "3": "b is longer", "4": "wxyz"}}


def test_single_order_judges_each_item_once_and_rows_sum_to_the_items(tmp_path):
    judge = LongerWins()
    battles, stats = judge_pairs(ITEMS, ANSWERS, [("x", "y")], judge, JudgmentCache(tmp_path / "c.sqlite"),
                                 orders=["ab"])
    rows = battles[("x", "y")]
    assert judge.asked == 5 and stats["judgments"] == 5
    assert [r["verdict"] for r in rows] == ["model_a", "model_a", "invalid", "model_b", "model_a"]
    assert all(r["verdict_ba"] is None and r["raw_ba"] is None for r in rows)
    assert summarize(rows)["flip_rate"] is None and summarize(rows)["two_orders"] == 0
    df = vs_table({"x": rows}, "y", ["ab"])
    row = df.iloc[0]
    assert (row["custom_wins"], row["ties"], row["y_wins"], row["invalid"]) == (3, 0, 1, 1)
    assert row["custom_wins"] + row["ties"] + row["y_wins"] + row["invalid"] == row["items"] == 5
    assert "flip_rate" not in df.columns and not any(c.startswith("debiased_") for c in df.columns)
    with pytest.raises(ValueError, match=r"\[ab\] or \[ab, ba\]"):
        judge_pairs(ITEMS, ANSWERS, [("x", "y")], judge, JudgmentCache(tmp_path / "d.sqlite"), orders=["ba"])


def test_two_orders_show_single_order_counts_next_to_debiased_ones(tmp_path):
    judge, cache = LongerWins(), JudgmentCache(tmp_path / "c.sqlite")
    judge_pairs(ITEMS, ANSWERS, [("x", "y")], judge, cache, orders=["ab"])
    battles, stats = judge_pairs(ITEMS, ANSWERS, [("x", "y")], judge, cache, orders=["ab", "ba"])
    assert stats["cached"] == 5 and stats["judged"] == 5  # the A/B judgments are reused
    row = vs_table({"x": battles[("x", "y")]}, "y", ["ab", "ba"]).iloc[0]
    # single order: the study's counting (position bias included), rows sum to the 5 items
    assert (row["custom_wins"], row["ties"], row["y_wins"], row["invalid"], row["items"]) == (3, 0, 1, 1, 5)
    # debiased: items 1 and 4 flip with the position, so they become ties
    assert (row["debiased_custom_wins"], row["debiased_ties"], row["debiased_y_wins"]) == (1, 2, 1)
    assert row["flip_rate"] == pytest.approx(0.5) and row["win_or_tie_rate"] == pytest.approx(0.75)


@pytest.mark.slow
def test_pools_filter_battles_into_their_own_tables_and_figures(tiny_run):
    cfg = yaml.safe_load(TINY.read_text())
    members = cfg["judge"]["pools"]["finetuned"]["members"]
    battles = [json.loads(x) for x in (tiny_run / "results/battles/reference/battles.jsonl").read_text().splitlines()]
    inside = [b for b in battles if b["model_a"] in members and b["model_b"] in members]
    assert 0 < len(inside) < len(battles)
    tables = tiny_run / "results" / "tables"
    full, pool = pd.read_csv(tables / "elo.csv"), pd.read_csv(tables / "elo_finetuned.csv")
    assert set(full["model"]) == {m for b in battles for m in (b["model_a"], b["model_b"])}
    assert set(pool["model"]) == set(members) and pool["battles"].sum() == 2 * len(inside)
    md = (tables / "elo_finetuned.md").read_text()
    assert "Pool `finetuned`: tiny-llama-lora, tiny-llama-full, tiny-llama" in md
    assert "predicted win-rate figure uses online Elo, one pass in battle-file order (column elo)" in md
    assert "median Elo over shuffled battle orders (column elo_median)" in (tables / "elo.md").read_text()
    for suffix in ("", "_finetuned"):
        for name in ("win_rate_predicted", "battle_counts", "battle_counts_no_ties", "battle_counts_ties"):
            png = tiny_run / "results" / "figures" / f"{name}{suffix}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


@pytest.mark.slow
def test_single_order_vs_counts_sum_to_the_items(tiny_run):
    n_items = len((tiny_run / "results/data/instruct_eval.jsonl").read_text().splitlines())
    df = pd.read_csv(tiny_run / "results/tables/vs_tiny-llama-ref.csv")
    assert list(df["model"]) == ["tiny-llama-lora", "tiny-llama-full"]
    assert (df["custom_wins"] + df["ties"] + df["tiny-llama-ref_wins"] + df["invalid"] == n_items).all()
    assert (df["items"] == n_items).all()
    # the tiny config judges both orders: the debiased counts and the flip rate sit next to them
    assert {"debiased_custom_wins", "debiased_ties", "debiased_tiny-llama-ref_wins", "flip_rate"} <= set(df.columns)
    assert "single-order counts" in (tiny_run / "results/tables/vs_tiny-llama-ref.md").read_text()


@pytest.mark.slow
def test_timing_only_models_appear_in_the_time_table_marked_extrapolated(tiny_run):
    metrics = json.loads((tiny_run / "results/timing/tiny-llama-ref-lora/train_metrics.json").read_text())
    assert metrics["optimizer_steps"] == 2 and metrics["hparams"]["max_steps"] == 2
    assert not (tiny_run / "results/timing/tiny-llama-ref-lora/weights").exists()  # temp(): removed
    table = pd.read_csv(tiny_run / "results/tables/finetune_time.csv").set_index("model")
    assert list(table.index) == ["TinyLlama-random", "TinyLlama-random-ref"]
    ref, measured = table.loc["TinyLlama-random-ref"], table.loc["TinyLlama-random"]
    assert ref["lora_timing"] == "extrapolated from 2 steps" and measured["lora_timing"].startswith("measured")
    hp = metrics["hparams"]
    per_epoch = math.ceil(metrics["examples"] / (hp["batch_size"] * hp["grad_accum"] * metrics["world_size"]))
    assert per_epoch * hp["epochs"] > 2  # really an extrapolation
    assert ref["lora_steady_seconds"] == pytest.approx(metrics["median_step_seconds"] * per_epoch * hp["epochs"],
                                                       rel=1e-3, abs=1e-3)
    assert pd.isna(ref["lora_wall_seconds"]) and pd.isna(ref["full_steady_seconds"])
    assert "extrapolated from N steps" in (tiny_run / "results/tables/finetune_time.md").read_text()


@pytest.mark.slow
def test_paper_dry_run_lists_the_study_pool_and_the_timing_runs(tmp_path):
    out = run_snakemake(tmp_path, "-n", configfile=REPO / "config" / "paper.yaml", timeout=900).stdout
    for path in ("results/tables/elo_study.md", "results/figures/win_rate_predicted_study.png",
                 "results/figures/battle_counts_no_ties_study.png", "results/tables/elo.md",
                 "results/timing/llama-7b-full/train_metrics.json", "results/timing/vicuna-13b-lora/train_metrics.json",
                 "results/timing/qwen1.5-14b-lora/train_metrics.json"):
        assert path in out, path
    assert "gpu=2" in out  # the study's two GPUs per fine-tuning job
