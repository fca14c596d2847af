"""The instruct section in the real tiny-config Snakemake run, incremental answers, and the real
SmolLM2 GGUF model answering a question."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import yaml
from conftest import TINY, run_snakemake

CONTESTANTS = ["tiny-llama", "tiny-llama-lora", "tiny-llama-full", "tiny-llama-ref"]


def test_tiny_run_produces_adapters_metrics_answers_and_time_table(tiny_run):
    lora = tiny_run / "results/finetune/tiny-llama-lora"
    full = tiny_run / "results/finetune/tiny-llama-full"
    assert (lora / "adapter/adapter_config.json").is_file() and (lora / "adapter/adapter_model.safetensors").is_file()
    assert (full / "model/model.safetensors").is_file()
    for d, method in ((lora, "lora"), (full, "full")):
        m = json.loads((d / "train_metrics.json").read_text())
        assert m["method"] == method and m["examples"] == 24
        assert m["wall_seconds"] > 0 and m["train_tokens"] > 0 and m["tokens_per_second"] > 0
        assert m["steady_state_seconds"] > 0 and m["cpu_seconds"] > 0 and m["median_step_seconds"] > 0
        assert len(m["loss_curve"]) == m["optimizer_steps"] == 4 and m["final_loss"] > 0
        assert 0 <= m["padding_fraction"] < 1
    assert not (tiny_run / "results/checkpoints/tiny-llama-lora").exists()

    evl = [json.loads(line) for line in (tiny_run / "results/data/instruct_eval.jsonl").read_text().splitlines()]
    train = [json.loads(line) for line in (tiny_run / "results/data/instruct_train.jsonl").read_text().splitlines()]
    assert len(evl) == 8 and len(train) == 24
    assert set(evl[0]) == {"id", "instruction", "input", "output", "kind"}
    for name in CONTESTANTS:
        rows = [json.loads(line) for line in (tiny_run / f"results/answers/{name}.jsonl").read_text().splitlines()]
        assert [r["id"] for r in rows] == [e["id"] for e in evl], name
        assert all(set(r) == {"id", "instruction", "input", "answer", "n_tokens", "seconds"} for r in rows)
        assert all(0 < r["n_tokens"] <= 8 for r in rows)

    q = json.loads((tiny_run / "results/data/instruct_quality.json").read_text())
    assert q["eval_items"] == 8 and q["train_items"] == 24 and q["rouge_l_removed"] > 0

    table = pd.read_csv(tiny_run / "results/tables/finetune_time.csv")
    assert list(table["model"]) == ["TinyLlama-random", "TinyLlama-random-ref"]  # + the timing-only row
    row = table.iloc[0]
    assert row["full_over_lora"] == pytest.approx(row["full_steady_seconds"] / row["lora_steady_seconds"], abs=0.01)
    assert row["lora_wall_seconds"] > 0 and row["full_cpu_seconds"] > 0
    assert row["full_trainable_m"] > row["lora_trainable_m"]
    md = (tiny_run / "results/tables/finetune_time.md").read_text()
    assert re.search(r"measured on (CPU|\d+x )", md) and "| TinyLlama-random" in md


def test_adding_a_reference_generates_only_its_answers(tiny_run, tmp_path):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["models"]["tiny-llama-ref2"] = {**cfg["models"]["tiny-llama-ref"], "label": "ref2"}
    cfg["models"]["tiny-llama-ref2"]["random"] = {**cfg["models"]["tiny-llama-ref"]["random"], "seed": 7}
    cfg["instruct"]["references"].append("tiny-llama-ref2")
    path = tmp_path / "tiny_plus.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    targets = [f"results/answers/{c}.jsonl" for c in CONTESTANTS + ["tiny-llama-ref2"]]
    out = run_snakemake(tiny_run, *targets, "results/tables/finetune_time.md", "-n", "--quiet", "rules",
                        configfile=path).stdout
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M))
    assert jobs.get("generate_base") == "1" and jobs.get("prepare_model") == "1", out
    for rule in ("instruct_data", "train_lora", "train_full", "generate_finetuned", "finetune_time_table"):
        assert rule not in jobs, (rule, out)


def test_real_smollm2_gguf_answers_coherently(tmp_path):
    import torch

    from tinysec.models.generate import answer_records
    from tinysec.models.sources import prepare_model

    torch.set_num_threads(2)
    cfg = yaml.safe_load((TINY.parent / "config.yaml").read_text())
    model_dir = prepare_model("smollm2-135m", cfg["models"]["smollm2-135m"], tmp_path / "smollm2-135m")
    rec = {"id": "q1", "instruction": "What is phishing in cybersecurity?", "input": ""}
    (row,) = answer_records(model_dir, [rec], {"max_new_tokens": 40, "repetition_penalty": 1.15}, progress=False)
    words = re.findall(r"[A-Za-z]+", row["answer"])
    assert len(words) >= 12, row
    assert re.search(r"phish|email|attack|scam|fraud", row["answer"], re.I), row
    assert len(set(w.lower() for w in words)) / len(words) > 0.5, row  # not a loop
