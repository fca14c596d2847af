"""Instruction-tuning speed on the embedded SmolLM2-135M, ours vs plain baselines, side by side.

1. LoRA training, non-padding tokens per second: :func:`tinysec.models.train.finetune` (length-grouped
   batches, output projection only at answer positions) against a plain ``transformers.Trainer`` +
   ``peft`` run on the same examples, hyperparameters and number of steps (random batches padded to
   the longest, loss from the model's own full-sequence logits). Target: >= 1.3x.
2. Generation, generated tokens per second: :func:`tinysec.models.generate.generate_batched`
   (continuous batching) against one ``model.generate`` call per prompt. Target: >= 4x.
   ``bench/generate.py`` is the fuller generation bench (also against batched HF ``generate``).

Writes ``results/bench/instruct.json``. Usage::

    python bench/instruct.py [--train-examples 48] [--prompts 32] [--max-new-tokens 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "instruct.json"


def ensure_model(name: str) -> Path:
    """The prepared folder of config model ``name`` (prepared once under resources/models/)."""
    import yaml

    from tinysec.models.sources import prepare_model

    path = REPO / "resources" / "models" / name
    if not (path / "config.json").is_file():
        entry = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["models"][name]
        prepare_model(name, entry, path)
    return path


def bench_training(model_dir: Path, records: list[dict], hp: dict) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from tinysec.models.train import encode_records, finetune

    with tempfile.TemporaryDirectory() as tmp:  # untimed warm-up (allocator, kernels), then the timed run
        finetune(model_dir, records[: hp["batch_size"] * hp["grad_accum"]], Path(tmp) / "warm", hp, progress=False)
        ours = finetune(model_dir, records, Path(tmp) / "ours", hp, progress=False)

    tok = AutoTokenizer.from_pretrained(model_dir)
    examples, _ = encode_records(tok, records, hp["cutoff"])
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    lora = hp["lora"]
    model = get_peft_model(model, LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                                             target_modules=lora["target_modules"], task_type="CAUSAL_LM"))
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    collator = DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=-100)
    tok.pad_token_id = pad_id
    counted = {"real": 0, "total": 0}

    class CountingCollator:
        def __call__(self, feats):
            batch = collator(feats)
            counted["real"] += int(batch["attention_mask"].sum())
            counted["total"] += batch["attention_mask"].numel()
            return batch

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=hp["batch_size"],
                                 gradient_accumulation_steps=hp["grad_accum"], learning_rate=hp["lr"],
                                 num_train_epochs=hp["epochs"], lr_scheduler_type="cosine", warmup_steps=0.03,
                                 logging_steps=1000, save_strategy="no", report_to=[], use_cpu=True,
                                 dataloader_num_workers=0, seed=hp["seed"], disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=CountingCollator())
        t0 = time.perf_counter()
        trainer.train()
        base_wall = time.perf_counter() - t0
    base = {"wall_seconds": round(base_wall, 2), "train_tokens": counted["real"],
            "tokens_per_second": round(counted["real"] / base_wall, 2),
            "padding_fraction": round(1 - counted["real"] / max(1, counted["total"]), 4)}
    keep = ("wall_seconds", "train_tokens", "tokens_per_second", "padding_fraction", "optimizer_steps")
    ours_s = {k: ours[k] for k in keep}
    return {"ours": ours_s, "baseline_trainer_peft": base,
            "speedup": round(ours_s["tokens_per_second"] / base["tokens_per_second"], 2), "target": 1.3}


def bench_generation(model_dir: Path, records: list[dict], max_new_tokens: int, batch_size: int) -> dict:
    import torch

    from tinysec.models.generate import generate_batched, load_for_generation
    from tinysec.models.prompts import prompt_format

    model, tok = load_for_generation(model_dir, device="cpu")
    fmt = prompt_format(tok)
    prompts = [fmt.prompt_ids(r["instruction"], r["input"]) for r in records]
    gen = {"max_new_tokens": max_new_tokens, "batch_size": batch_size}
    t0 = time.perf_counter()
    ours = generate_batched(model, tok, prompts, gen, progress=False)
    ours_wall = time.perf_counter() - t0
    ours_tokens = sum(o["n_tokens"] for o in ours)

    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    t0 = time.perf_counter()
    base_tokens = 0
    with torch.inference_mode():
        for p in prompts:  # the plain way: one prompt per generate call
            ids = torch.tensor([p])
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=pad_id)
            new = out[0, len(p):].tolist()
            eos = model.generation_config.eos_token_id
            eos = set(eos if isinstance(eos, list) else [eos])
            base_tokens += next((i + 1 for i, t in enumerate(new) if t in eos), len(new))
    base_wall = time.perf_counter() - t0
    return {"ours": {"wall_seconds": round(ours_wall, 2), "tokens": ours_tokens,
                     "tokens_per_second": round(ours_tokens / ours_wall, 2), "batch_size": batch_size},
            "baseline_one_at_a_time": {"wall_seconds": round(base_wall, 2), "tokens": base_tokens,
                                       "tokens_per_second": round(base_tokens / base_wall, 2)},
            "speedup": round((ours_tokens / ours_wall) / (base_tokens / base_wall), 2), "target": 4.0,
            "prompts": len(prompts), "max_new_tokens": max_new_tokens}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--train-examples", type=int, default=48)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", choices=["train", "generate"], default=None)
    args = ap.parse_args(argv)

    import torch

    from tinysec.data.attack import build_attack_dataset
    from tinysec.models.train import lora_target_modules, merge_hparams
    from tinysec.reports import device_description

    torch.set_num_threads(args.threads)
    model_dir = ensure_model(args.model)
    train, evl = build_attack_dataset(args.train_examples, max(args.prompts, 8), seed=0)
    hp = merge_hparams({"epochs": 1, "cutoff": 512, "lora": {"target_modules": lora_target_modules("llama")}})
    result = {"machine": f"{platform.node()}: {device_description()}, torch threads {args.threads}",
              "model": args.model, "train_examples": len(train), "hparams": {k: hp[k] for k in
                                                                           ("lr", "batch_size", "grad_accum", "cutoff", "epochs")}}
    if args.skip != "train":
        result["lora_training"] = bench_training(model_dir, train, hp)
        print(json.dumps(result["lora_training"]), flush=True)
    if args.skip != "generate":
        result["generation"] = bench_generation(model_dir, evl[: args.prompts], args.max_new_tokens, args.batch_size)
        print(json.dumps(result["generation"]), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
