"""Instruction fine-tuning speed on the embedded SmolLM2-135M: ours vs ``transformers.Trainer`` + ``peft``.

Side by side in one run, on the same ATT&CK training examples, hyperparameters and number of
optimiser steps, fp32 on CPU:

1. ours, LoRA: :func:`tinysec.models.train.finetune` (length-grouped batches, output projection
   only at answer positions, a step's micro-batches run as one batch on CPU, the faster LoRA dropout
   and update of :mod:`tinysec.models.fastlora`, linear layers through oneDNN's packed GEMM of
   :mod:`tinysec.models.fastlinear`);
2. the baseline: a plain ``Trainer`` + ``peft`` LoRA run (random batches padded to the longest,
   loss from the model's own full-sequence logits);
3. ours, full fine-tuning (all weights) on the same examples.

Throughput is useful (non-padding) tokens per second. Each run's fraction of GEMM peak counts the
matmul FLOPs of the useful work: per token, 2 x decoder matmul parameters forward and 2x backward
(input gradients), plus 2x more for weight gradients in full fine-tuning; the vocabulary projection
at answer positions only, with the same factors; attention scores are not counted (a few %). The
peak is the nominal 100 GFLOP/s fp32 GEMM of the reference 2-core machine; a 2048x2048 matmul
measured in the same run is reported beside it.

LoRA and the baseline run ``--repeats`` times in alternating pairs (the first LoRA run after an
untimed one-step warm-up); the speedup is the median of the per-pair ratios, and each pair is
reported. Full fine-tuning runs once.

Checks: LoRA >= 1.5x the baseline in useful tokens/s (median pair); LoRA padding fraction <= 10%; full
fine-tuning's fraction of GEMM peak >= 0.9x LoRA's (same efficiency relative to its FLOPs). The
load average before and after each run is recorded (the machine may be shared), and useful tokens
per process CPU second beside tokens per wall second: on a busy machine the CPU-time ratio
(``speedup_per_cpu_second``) moves less with outside load than the wall-time one.

Writes ``results/bench/train.json``. Usage::

    python bench/train.py [--train-examples 48] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "train.json"
TARGETS = {"lora_speedup": 1.5, "padding_fraction": 0.10, "full_vs_lora_efficiency": 0.9}
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))
from _bench_common import NOMINAL_PEAK_GFLOPS, ensure_model, load, machine, measured_peak_gflops  # noqa: E402


def matmul_params(model_dir: Path) -> tuple[int, int]:
    """(decoder matmul parameters, vocabulary projection parameters) of a causal LM folder."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    decoder = sum(m.weight.numel() for m in model.get_decoder().modules() if isinstance(m, torch.nn.Linear))
    return decoder, model.get_output_embeddings().weight.numel()


def useful_flops(method: str, tokens: int, answer_tokens: int, params: tuple[int, int]) -> float:
    """Matmul FLOPs of the useful work (see the module docstring): 4 (LoRA) or 6 (full) per parameter."""
    factor = 6 if method == "full" else 4
    return factor * (params[0] * tokens + params[1] * answer_tokens)


def run_ours(model_dir: Path, records: list[dict], hp: dict) -> dict:
    """One finetune run (after an untimed one-step warm-up); its metrics and the load around it."""
    from tinysec.models.train import finetune

    with tempfile.TemporaryDirectory() as tmp:
        finetune(model_dir, records, Path(tmp) / "warm", {**hp, "max_steps": 1}, progress=False)
        before = load()
        m = finetune(model_dir, records, Path(tmp) / "out", hp, progress=False)
    keep = ("wall_seconds", "cpu_seconds", "median_step_seconds", "steady_state_seconds", "train_tokens",
            "answer_tokens", "tokens_per_second", "padding_fraction", "optimizer_steps", "peak_memory_mb")
    return {**{k: m[k] for k in keep}, "load_before": before, "load_after": load()}


def run_baseline(model_dir: Path, records: list[dict], hp: dict) -> dict:
    """Plain Trainer + peft LoRA on the same examples and hyperparameters; token counts from the collator."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from tinysec.models.prompts import IGNORE_INDEX
    from tinysec.models.train import encode_records

    tok = AutoTokenizer.from_pretrained(model_dir)
    examples, _ = encode_records(tok, records, hp["cutoff"])
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    lora = hp["lora"]
    model = get_peft_model(model, LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                                             target_modules=lora["target_modules"], task_type="CAUSAL_LM"))
    tok.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    collator = DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=IGNORE_INDEX)
    counted = {"real": 0, "total": 0, "answer": 0}

    def counting_collator(feats):
        batch = collator(feats)
        counted["real"] += int(batch["attention_mask"].sum())
        counted["total"] += batch["attention_mask"].numel()
        counted["answer"] += int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
        return batch

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=hp["batch_size"],
                                 gradient_accumulation_steps=hp["grad_accum"], learning_rate=hp["lr"],
                                 num_train_epochs=hp["epochs"], lr_scheduler_type="cosine", warmup_steps=0.03,
                                 logging_steps=1000, save_strategy="no", report_to=[], use_cpu=True,
                                 dataloader_num_workers=0, seed=hp["seed"], disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=counting_collator)
        before, t0, c0 = load(), time.perf_counter(), time.process_time()
        trainer.train()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "train_tokens": counted["real"],
            "answer_tokens": counted["answer"], "tokens_per_second": round(counted["real"] / wall, 2),
            "padding_fraction": round(1 - counted["real"] / max(1, counted["total"]), 4),
            "optimizer_steps": trainer.state.global_step, "load_before": before, "load_after": load()}


def add_efficiency(run: dict, method: str, params: tuple[int, int]) -> dict:
    """Useful GFLOP/s and fraction of the nominal GEMM peak of one run."""
    gflops = useful_flops(method, run["train_tokens"], run["answer_tokens"], params) / run["wall_seconds"] / 1e9
    per_cpu = run["train_tokens"] / run["cpu_seconds"] if run.get("cpu_seconds") else None
    return {**run, "useful_gflops_per_s": round(gflops, 2), "fraction_of_gemm_peak": round(gflops / NOMINAL_PEAK_GFLOPS, 3),
            "tokens_per_cpu_second": round(per_cpu, 2) if per_cpu else None}


def median_pair(pairs: list[tuple[dict, dict]]) -> tuple[dict, dict, float]:
    """The (LoRA, baseline) pair with the median speedup, and that speedup."""
    ranked = sorted(pairs, key=lambda p: p[0]["tokens_per_second"] / p[1]["tokens_per_second"])
    lora, base = ranked[(len(ranked) - 1) // 2]
    return lora, base, lora["tokens_per_second"] / base["tokens_per_second"]


def checks(lora: dict, base: dict, full: dict) -> list[dict]:
    """The targets of this bench, each ``{target, measured, holds}`` (``lora`` and ``base``: the
    median pair)."""
    speedup = lora["tokens_per_second"] / base["tokens_per_second"]
    parity = full["fraction_of_gemm_peak"] / lora["fraction_of_gemm_peak"]
    return [
        {"target": f"LoRA useful tokens/s vs Trainer+peft >= {TARGETS['lora_speedup']}x",
         "measured": round(speedup, 2), "holds": speedup >= TARGETS["lora_speedup"]},
        {"target": f"LoRA padding fraction <= {TARGETS['padding_fraction']}",
         "measured": lora["padding_fraction"], "holds": lora["padding_fraction"] <= TARGETS["padding_fraction"]},
        {"target": f"full FT fraction of GEMM peak >= {TARGETS['full_vs_lora_efficiency']}x LoRA's",
         "measured": round(parity, 2), "holds": parity >= TARGETS["full_vs_lora_efficiency"]},
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--train-examples", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="alternating LoRA / baseline pairs")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)

    import torch

    from tinysec.data.attack import build_attack_dataset
    from tinysec.models.train import lora_target_modules, merge_hparams

    torch.set_num_threads(args.threads)
    model_dir = ensure_model(args.model)
    train, _ = build_attack_dataset(args.train_examples, 8, seed=0)
    lora_hp = merge_hparams({"epochs": 1, "cutoff": 512, "save_every": 0,
                             "lora": {"target_modules": lora_target_modules("llama")}})
    params = matmul_params(model_dir)
    result = {"task": "instruction fine-tuning, useful (non-padding) tokens/s, ours vs Trainer+peft",
              "machine": machine(), "model": args.model, "train_examples": len(train),
              "hparams": {k: lora_hp[k] for k in ("lr", "batch_size", "grad_accum", "merge_micro_batches", "cutoff",
                                                  "epochs")},
              "matmul_params": {"decoder": params[0], "vocab_projection": params[1]},
              "gemm_peak_gflops": {"nominal": NOMINAL_PEAK_GFLOPS, "measured_now": round(measured_peak_gflops(), 1)}}
    pairs = []
    for _ in range(args.repeats):
        lora = add_efficiency(run_ours(model_dir, train, lora_hp), "lora", params)
        print(json.dumps({"lora": lora}), flush=True)
        base = add_efficiency(run_baseline(model_dir, train, lora_hp), "lora", params)
        print(json.dumps({"baseline": base}), flush=True)
        pairs.append((lora, base))
    lora, base, speedup = median_pair(pairs)
    full = add_efficiency(run_ours(model_dir, train, {**lora_hp, "method": "full", "lr": 2e-5}), "full", params)
    print(json.dumps({"full": full}), flush=True)
    result.update({"ours_lora": lora, "baseline_trainer_peft": base, "ours_full": full,
                   "speedup": round(speedup, 2),
                   "speedup_each_pair": [round(a["tokens_per_second"] / b["tokens_per_second"], 2) for a, b in pairs],
                   "pairs": [{"ours_lora": a, "baseline_trainer_peft": b} for a, b in pairs],
                   "speedup_per_cpu_second": round(lora["tokens_per_cpu_second"] / base["tokens_per_cpu_second"], 2),
                   "targets": TARGETS, "checks": checks(lora, base, full),
                   "note": "numbers taken on a shared 2-core machine: see the load averages"})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
