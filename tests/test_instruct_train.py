"""Prompt formatting, LoRA/full fine-tuning (metrics, adapters, kill-and-resume) and batched generation
on tiny random-weight Llama models built in the test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tinysec.models import generate, train
from tinysec.models.prompts import IGNORE_INDEX, prompt_format
from tinysec.models.tiny import build_random_model

RECORDS = [{"id": f"r{i}", "instruction": f"What does technique T{1000 + i} do?",
            "input": "" if i % 3 else "context about the host", "output": "It abuses PowerShell. " * (1 + i % 6)}
           for i in range(24)]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    return build_random_model("llama", tmp_path_factory.mktemp("m") / "tiny", hidden=32, layers=2, heads=2)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_loss_only_on_answer_tokens_and_same_prompt_in_generation(tiny_llama):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    for mode in ("auto", "alpaca"):
        fmt = prompt_format(tok, chat_template=mode)
        assert fmt.use_chat == (mode == "auto")
        rec = RECORDS[0]
        ex = fmt.encode(rec, cutoff=512)
        p = fmt.prompt_ids(rec["instruction"], rec["input"])
        assert ex["input_ids"][: len(p)] == p  # generation prompt == training prefix
        assert ex["labels"][: len(p)] == [IGNORE_INDEX] * len(p)
        answer = tok.decode([t for t in ex["labels"] if t != IGNORE_INDEX])
        assert answer.startswith("It abuses PowerShell.") and answer.rstrip().endswith(tok.eos_token)
    alpaca = prompt_format(tok, chat_template="alpaca").prompt("Q?", "ctx")
    assert "### Instruction:\nQ?" in alpaca and "### Input:\nctx" in alpaca
    assert prompt_format(tok, chat_template="alpaca").encode(RECORDS[0], cutoff=len(p)) is None


def test_length_grouping_cuts_padding():
    lengths = [10 + (i * 37) % 300 for i in range(600)]

    def pad_fraction(batches):
        pad = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
        return pad / sum(max(lengths[i] for i in b) * len(b) for b in batches)

    grouped = train.make_batches(lengths, 3, seed=1, grouped=True)
    plain = train.make_batches(lengths, 3, seed=1, grouped=False)
    assert sorted(i for b in grouped for i in b) == list(range(600))
    assert pad_fraction(grouped) < 0.1 < pad_fraction(plain)


def test_lora_adapter_loads_with_peft_and_metrics_are_complete(tiny_llama, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    m = train.finetune(tiny_llama, RECORDS, tmp_path / "lora",
                       {"epochs": 3, "lr": 5e-3, "lora": {"r": 4, "alpha": 8, "dropout": 0.0}}, progress=False)
    assert (tmp_path / "lora" / "adapter_config.json").is_file()
    assert (tmp_path / "lora" / "adapter_model.safetensors").is_file()
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    peft_model = PeftModel.from_pretrained(base, tmp_path / "lora")
    assert any("lora_A" in n for n, _ in peft_model.named_parameters())
    for key in ("wall_seconds", "train_tokens", "tokens_per_second", "peak_memory_mb", "trainable_params",
                "total_params", "loss_curve", "final_loss", "padding_fraction"):
        assert m[key] is not None, key
    assert 0 < m["trainable_params"] < m["total_params"]
    assert m["optimizer_steps"] == len(m["loss_curve"]) == 3 * 4  # 24 examples / (3*2) per step, 3 epochs
    assert m["train_tokens"] > m["answer_tokens"] > 0
    assert m["loss_curve"][-1]["loss"] < m["loss_curve"][0]["loss"]


def test_full_finetune_writes_safetensors_model(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM

    m = train.finetune(tiny_llama, RECORDS, tmp_path / "full", {"method": "full", "epochs": 1, "lr": 1e-3},
                       progress=False)
    assert (tmp_path / "full" / "model.safetensors").is_file()
    assert m["trainable_params"] == m["total_params"]
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "full")
    assert sum(p.numel() for p in reloaded.parameters()) == m["total_params"]


def test_merged_micro_batches_take_the_same_optimizer_step(tiny_llama, tmp_path):
    from safetensors.torch import load_file

    hp = {"epochs": 1, "max_steps": 1, "lr": 1e-2, "batching": "random", "save_every": 0, "cutoff": 48,
          "lora": {"dropout": 0.0}}  # random batches: both runs' first step holds the same 6 examples
    assert train.micro_batches(train.merge_hparams(hp), "cpu") == (6, 1)
    assert train.micro_batches(train.merge_hparams(hp), "cuda:0") == (3, 2)
    runs, weights = {}, {}
    for merged in (True, False):
        out = tmp_path / str(merged)
        runs[merged] = train.finetune(tiny_llama, RECORDS, out, {**hp, "merge_micro_batches": merged}, progress=False)
        weights[merged] = load_file(str(out / "adapter_model.safetensors"))
    assert runs[True]["loss_curve"][0]["loss"] == pytest.approx(runs[False]["loss_curve"][0]["loss"], rel=1e-5)
    assert runs[True]["train_tokens"] == runs[False]["train_tokens"]
    for name, w in weights[True].items():
        assert torch.allclose(w, weights[False][name], atol=1e-6), name
    assert any(not torch.all(w == 0) for n, w in weights[True].items() if "lora_B" in n)  # the step moved B


def test_packed_batches_take_the_same_optimizer_step_without_padding(tiny_llama, tmp_path):
    from safetensors.torch import load_file

    hp = {"epochs": 1, "max_steps": 2, "lr": 1e-2, "save_every": 0, "cutoff": 256, "batching": "random",
          "lora": {"dropout": 0.0}}
    runs, weights = {}, {}
    for packed in (True, False):
        out = tmp_path / str(packed)
        runs[packed] = train.finetune(tiny_llama, RECORDS, out, {**hp, "pack_batches": packed}, progress=False)
        weights[packed] = load_file(str(out / "adapter_model.safetensors"))
    assert runs[True]["padding_fraction"] == 0 < runs[False]["padding_fraction"]
    assert runs[True]["train_tokens"] == runs[False]["train_tokens"]
    for a, b in zip(runs[True]["loss_curve"], runs[False]["loss_curve"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    for name, w in weights[True].items():
        assert torch.allclose(w, weights[False][name], atol=1e-5), name  # two Adam steps: |w| ~ 1e-2


def test_killed_training_resumes_from_its_checkpoint(tiny_llama, tmp_path):
    records = RECORDS * 20  # 480 examples -> 80 optimizer steps per epoch
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    spec = {"model_dir": str(tiny_llama), "train_file": str(tmp_path / "train.jsonl"), "out_dir": str(tmp_path / "out"),
            "metrics_file": str(tmp_path / "metrics.json"), "checkpoint_dir": str(tmp_path / "ckpt"),
            "hparams": {"epochs": 1, "save_every": 3, "lr": 1e-3, "cutoff": 48}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "tinysec.models.train", str(tmp_path / "spec.json")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "ckpt" / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["step"] >= 6:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state.read_text())["step"]
    assert not (tmp_path / "metrics.json").exists() and killed_at >= 6
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == killed_at
    steps = -(-metrics["examples"] // 6)  # ceil(examples / (batch 3 * accumulation 2))
    assert metrics["examples"] + metrics["dropped_by_cutoff"] == 480 and steps > killed_at
    assert metrics["optimizer_steps"] == steps
    assert [c["step"] for c in metrics["loss_curve"]] == list(range(1, steps + 1))  # curve carried over
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "ckpt").exists()


def test_batched_generation_matches_one_at_a_time(tiny_llama):
    model, tok = generate.load_for_generation(tiny_llama, device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():  # a random tied-embedding model only repeats the last token; spread it
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    fmt = prompt_format(tok)
    prompts = [fmt.prompt_ids(r["instruction"], r["input"]) for r in RECORDS[:6]]
    gen = {"max_new_tokens": 6, "batch_size": 4, "repetition_penalty": 1.3}
    batched = generate.generate_batched(model, tok, prompts, gen, progress=False)
    single = [generate.generate_batched(model, tok, [p], {**gen, "batch_size": 1}, progress=False)[0] for p in prompts]
    assert [b["token_ids"] for b in batched] == [s["token_ids"] for s in single]
    assert [b["text"] for b in batched] == [s["text"] for s in single]
    assert all(b["n_tokens"] == len(b["token_ids"]) == 6 for b in batched)
    assert len({tuple(b["token_ids"]) for b in batched}) > 1  # prompts really differ in their continuations


def test_answer_rows_from_adapter_and_api(tiny_llama, tmp_path, monkeypatch):
    sys.path.insert(0, str(Path(__file__).parent))
    from openai_server import OpenAIServer

    train.finetune(tiny_llama, RECORDS[:6], tmp_path / "lora", {"epochs": 1}, progress=False)
    rows = generate.answer_records(tiny_llama, RECORDS[:3], {"max_new_tokens": 4}, adapter_dir=tmp_path / "lora",
                                   progress=False)
    assert [r["id"] for r in rows] == ["r0", "r1", "r2"]
    assert set(rows[0]) == {"id", "instruction", "input", "answer", "n_tokens", "seconds"}
    monkeypatch.setenv("REF_KEY", "sk-ref")
    with OpenAIServer(responder=lambda body: "answer to: " + body["messages"][-1]["content"],
                      script=["503"], key="sk-ref") as srv:
        entry = {"source": "api:ref", "api": {"base_url": srv.base_url, "model": "ref", "key_env": "REF_KEY",
                                              "concurrency": 2, "max_retries": 2, "backoff": 0.01}}
        rows = generate.api_answer_records(entry, RECORDS[:3], {"max_new_tokens": 16})
    assert [r["answer"] for r in rows] == [f"answer to: {RECORDS[i]['instruction']}" +
                                           (f"\n\n{RECORDS[i]['input']}" if RECORDS[i]["input"] else "")
                                           for i in range(3)]
    assert srv.calls == 4 and srv.requests[-1]["max_tokens"] == 16


def test_checkpoint_is_reused_only_with_the_same_settings(tiny_llama, tmp_path):
    hp = {"epochs": 1, "batch_size": 2, "grad_accum": 1, "save_every": 1}
    stopped = train.finetune(tiny_llama, RECORDS, tmp_path / "a", hp, checkpoint_dir=tmp_path / "ck",
                             stop_after_steps=3, progress=False)
    assert stopped == {"stopped_at_step": 3} and not (tmp_path / "a").exists()
    same = train.finetune(tiny_llama, RECORDS, tmp_path / "a", hp, checkpoint_dir=tmp_path / "ck", progress=False)
    assert same["resumed_from_step"] == 3 and same["optimizer_steps"] == 12
    train.finetune(tiny_llama, RECORDS, tmp_path / "b", hp, checkpoint_dir=tmp_path / "ck2", stop_after_steps=3,
                   progress=False)
    other = train.finetune(tiny_llama, RECORDS, tmp_path / "b", {**hp, "lr": 5e-4}, checkpoint_dir=tmp_path / "ck2",
                           progress=False)
    assert other["resumed_from_step"] == 0 and other["optimizer_steps"] == 12


def test_one_slow_step_moves_the_wall_time_not_the_steady_state_estimate(tiny_llama, tmp_path, monkeypatch):
    hp = {"epochs": 1, "batch_size": 2, "grad_accum": 1}  # 12 optimizer steps
    calm = train.finetune(tiny_llama, RECORDS, tmp_path / "calm", hp, progress=False)
    real_step, calls = train._optimizer_step, []

    def one_slow_step(job, state, group):  # outside load stalling the fifth step for 1 s
        calls.append(state.step)
        if len(calls) == 5:
            time.sleep(1.0)
        return real_step(job, state, group)

    monkeypatch.setattr(train, "_optimizer_step", one_slow_step)
    busy = train.finetune(tiny_llama, RECORDS, tmp_path / "busy", hp, progress=False)
    assert calls == list(range(12))
    for m in (calm, busy):
        assert m["optimizer_steps"] == 12 and m["cpu_seconds"] > 0 and m["median_step_seconds"] > 0
        assert m["steady_state_seconds"] == pytest.approx(12 * m["median_step_seconds"], abs=2e-3)
    assert busy["wall_seconds"] - busy["steady_state_seconds"] > 0.8  # the stall is in the wall time only
    assert busy["wall_seconds"] > calm["wall_seconds"] + 0.5
    assert abs(busy["steady_state_seconds"] - calm["steady_state_seconds"]) < 0.5
    assert busy["cpu_seconds"] < busy["wall_seconds"] - 0.8  # sleeping costs no CPU time


def test_timings_cover_the_training_loop_not_saving_the_result(tiny_llama, tmp_path, monkeypatch):
    real_save = train._save_result

    def slow_save(job, out_dir, ckpt):  # a slow disk: 1 s to write the adapter
        time.sleep(1.0)
        real_save(job, out_dir, ckpt)

    monkeypatch.setattr(train, "_save_result", slow_save)
    t0 = time.perf_counter()
    m = train.finetune(tiny_llama, RECORDS, tmp_path / "out", {"epochs": 1, "max_steps": 2}, progress=False)
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    assert time.perf_counter() - t0 > 1.0 and m["wall_seconds"] < 0.9


def test_finetune_time_table_ratio_comes_from_the_steady_state_estimates(tiny_llama, tmp_path):
    import pandas as pd

    from tinysec.io import InputError
    from tinysec.models.timing import write_finetune_time_table

    files = []
    for method in ("lora", "full"):
        m = train.finetune(tiny_llama, RECORDS[:12], tmp_path / method, {"method": method, "epochs": 1},
                           progress=False)
        files.append(tmp_path / f"{method}.json")
        files[-1].write_text(json.dumps(m))
    df = write_finetune_time_table(files, tmp_path / "t.csv", tmp_path / "t.md", models=["tiny", "tiny"],
                                   labels={"tiny": "Tiny"}, device="CPU test")
    row = pd.read_csv(tmp_path / "t.csv").iloc[0]
    assert list(df["model"]) == ["Tiny"] and row["model"] == "Tiny"
    assert row["full_over_lora"] == pytest.approx(row["full_steady_seconds"] / row["lora_steady_seconds"], abs=0.01)
    for meth in ("lora", "full"):
        m = json.loads((tmp_path / f"{meth}.json").read_text())
        assert row[f"{meth}_wall_seconds"] == m["wall_seconds"] and row[f"{meth}_cpu_seconds"] == m["cpu_seconds"]
        assert row[f"{meth}_steady_seconds"] == m["steady_state_seconds"]
    md = (tmp_path / "t.md").read_text()
    for name in ("*_steady_seconds", "*_wall_seconds", "*_cpu_seconds", "*_median_step_seconds", "measured on CPU test"):
        assert name in md, name
    old = {k: v for k, v in json.loads(files[0].read_text()).items() if k != "steady_state_seconds"}
    files[0].write_text(json.dumps(old))
    with pytest.raises(InputError, match=r"lora\.json, field 'steady_state_seconds'"):
        write_finetune_time_table(files, tmp_path / "u.csv", tmp_path / "u.md", models=["tiny", "tiny"])
    assert not (tmp_path / "u.csv").exists()
