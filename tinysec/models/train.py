"""Supervised fine-tuning of a causal LM on (instruction, input, output) records: LoRA or all parameters.

Public API (also used by the CTI section):

- :func:`finetune` trains one model on plain records with a hyperparameter dict and writes a PEFT
  adapter (``method: lora``, loadable with ``PeftModel.from_pretrained``) or a safetensors model
  (``method: full``) to ``out_dir``; it returns the training metrics.
- :func:`run_job` is what a rule script calls: it claims GPUs (:func:`tinysec.gpu.claim_gpus`),
  relaunches itself through ``accelerate launch --num_processes N`` when a job has more than one
  GPU, runs :func:`finetune` and writes ``train_metrics.json``.

What makes it faster than a plain ``Trainer`` run on the same data:

- batches are grouped by length (shuffled groups of similar length), so little compute goes to
  padding; the padding fraction is reported;
- the loss is computed on answer tokens only and the output projection (vocabulary-sized) runs
  only at those positions, not at every prompt and padding position.

Resuming: every ``save_every`` optimizer steps the trainable weights, optimizer, scheduler, RNG and
progress go to ``checkpoint_dir`` (kept outside the rule's outputs, which Snakemake deletes when a
job fails). A rerun with the same ``checkpoint_dir`` continues from the last checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..io import InputError, read_json, write_json
from .prompts import IGNORE_INDEX, prompt_format

log = logging.getLogger(__name__)

#: Defaults of the hyperparameter dict (the study's values where it gives them).
DEFAULTS: dict[str, Any] = {
    "method": "lora",
    "lr": 1e-4,
    "epochs": 3,
    "batch_size": 3,
    "grad_accum": 2,
    "cutoff": 1024,
    "warmup_ratio": 0.03,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "scheduler": "cosine",
    "batching": "length",     # 'length' (grouped by length) or 'random'
    "save_every": 20,         # optimizer steps between checkpoints (0: never)
    "max_steps": 0,           # cap on optimizer steps (0: no cap)
    "seed": 0,
    "lora": {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
}

#: LoRA target modules per model family, used when the hyperparameters name none.
LORA_TARGETS: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense"],
    "phi3": ["qkv_proj", "o_proj"],
}


def merge_hparams(hparams: Mapping[str, Any] | None) -> dict[str, Any]:
    """``DEFAULTS`` overlaid with ``hparams`` (the ``lora`` sub-dict merged key by key)."""
    out = {**DEFAULTS, **{k: v for k, v in (hparams or {}).items() if k != "lora"}}
    out["lora"] = {**DEFAULTS["lora"], **((hparams or {}).get("lora") or {})}
    if out["method"] not in ("lora", "full"):
        raise ValueError(f"unknown fine-tuning method {out['method']!r}; use 'lora' or 'full'")
    return out


def lora_target_modules(family: str, table: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """LoRA target modules of a model family (``table`` overrides :data:`LORA_TARGETS`)."""
    merged = {**LORA_TARGETS, **(table or {})}
    if family not in merged:
        raise ValueError(f"no LoRA target modules known for model family '{family}'; "
                         f"add it under instruct.lora.target_modules")
    return list(merged[family])


# ---------------------------------------------------------------------------- data
def encode_records(tokenizer: Any, records: Iterable[Mapping[str, Any]], cutoff: int,
                   prompt: Mapping[str, Any] | None = None) -> tuple[list[dict], int]:
    """Tokenise records into ``{input_ids, labels}`` examples; returns them and how many were dropped."""
    fmt = prompt_format(tokenizer, **(prompt or {}))
    examples, dropped = [], 0
    for rec in records:
        ex = fmt.encode(rec, cutoff)
        if ex is None:
            dropped += 1
        else:
            examples.append(ex)
    return examples, dropped


def make_batches(lengths: Sequence[int], batch_size: int, seed: int, grouped: bool = True,
                 group_factor: int = 50) -> list[list[int]]:
    """Batches of example indices for one epoch, deterministic in ``seed``.

    ``grouped``: shuffle, cut into groups of ``batch_size * group_factor`` examples, sort each
    group by length and split it into batches, then shuffle the batches (as in length-grouped
    sampling). Otherwise plain shuffled batches.
    """
    rng = random.Random(seed)
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    if not grouped:
        return [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    batches = []
    group = batch_size * group_factor
    for g in range(0, len(idx), group):
        chunk = sorted(idx[g:g + group], key=lambda i: -lengths[i])
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def collate(examples: Sequence[Mapping[str, list[int]]], pad_id: int):
    """Right-pad a batch: ``input_ids``, ``attention_mask``, ``labels`` tensors."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        labels[row, :n] = torch.tensor(e["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# ---------------------------------------------------------------------------- model
def _answer_loss_module(model):
    """Wrap ``model`` so forward returns the summed loss over answer tokens only.

    The decoder runs on the whole sequence; the output projection only where the next token is an
    answer token. Models with logit soft-capping fall back to the full forward.
    """
    import torch
    import torch.nn.functional as F

    class AnswerLoss(torch.nn.Module):
        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, input_ids, attention_mask, labels):
            base = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
            targets = labels[:, 1:]
            keep = targets != IGNORE_INDEX
            if getattr(base.config, "final_logit_softcapping", None):
                logits = self.lm(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
                return F.cross_entropy(logits[keep].float(), targets[keep], reduction="sum")
            hidden = base.get_decoder()(input_ids=input_ids, attention_mask=attention_mask,
                                        use_cache=False).last_hidden_state
            logits = base.get_output_embeddings()(hidden[:, :-1][keep])
            return F.cross_entropy(logits.float(), targets[keep], reduction="sum")

    return AnswerLoss(model)


def load_trainable(model_dir: str | os.PathLike, method: str, lora: Mapping[str, Any], dtype):
    """The model of ``model_dir`` ready to train: LoRA-wrapped (``peft``) or with all weights trainable."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model.config.use_cache = False
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        cfg = LoraConfig(r=int(lora["r"]), lora_alpha=int(lora["alpha"]), lora_dropout=float(lora["dropout"]),
                         target_modules=list(lora["target_modules"]), task_type="CAUSAL_LM", bias="none")
        model = get_peft_model(model, cfg)
    return model


def count_params(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def peak_memory_mb(device: str) -> float:
    """Peak memory of this process: CUDA max allocated on GPU, max resident set size on CPU."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------- checkpoints
def _save_checkpoint(ckpt_dir: Path, wrapper, optimizer, scheduler, state: dict) -> None:
    import torch
    from safetensors.torch import save_file

    tmp = ckpt_dir.with_name(ckpt_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {n: p.detach().cpu().contiguous() for n, p in wrapper.named_parameters() if p.requires_grad}
    save_file(weights, str(tmp / "trainable.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state()}, tmp / "optim.pt")
    write_json(tmp / "state.json", state)
    old = ckpt_dir.with_name(ckpt_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if ckpt_dir.exists():
        os.replace(ckpt_dir, old)
    os.replace(tmp, ckpt_dir)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(ckpt_dir: Path, wrapper, optimizer, scheduler) -> dict | None:
    import torch
    from safetensors.torch import load_file

    if not (ckpt_dir / "state.json").is_file():
        return None
    weights = load_file(str(ckpt_dir / "trainable.safetensors"))
    params = dict(wrapper.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in weights]
    if missing:
        raise InputError(ckpt_dir, f"checkpoint does not match the model ({len(missing)} trainable "
                         f"tensors missing, e.g. {missing[0]}); delete it to start over")
    with torch.no_grad():
        for n, t in weights.items():
            params[n].copy_(t)
    extra = torch.load(ckpt_dir / "optim.pt", weights_only=True)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    torch.set_rng_state(extra["torch_rng"])
    return read_json(ckpt_dir / "state.json")


# ---------------------------------------------------------------------------- training
def finetune(model_dir: str | os.PathLike, records: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike,
             hparams: Mapping[str, Any] | None = None, *, prompt: Mapping[str, Any] | None = None,
             checkpoint_dir: str | os.PathLike | None = None, device: str | None = None,
             progress: bool = True, stop_after_steps: int | None = None) -> dict[str, Any]:
    """Fine-tune the causal LM in ``model_dir`` on ``records`` and save the result to ``out_dir``.

    - ``records``: dicts with ``instruction``, ``input`` and ``output``.
    - ``hparams``: see :data:`DEFAULTS` (``method`` 'lora' or 'full', ``lr``, ``epochs``,
      ``batch_size`` (per device), ``grad_accum``, ``cutoff``, ``lora: {r, alpha, dropout,
      target_modules}``, ``batching``, ``save_every``, ``max_steps``, ``seed``).
    - ``prompt``: keyword arguments of :func:`tinysec.models.prompts.prompt_format`
      (``chat_template``, ``template``, ``system``); generation must use the same.
    - ``checkpoint_dir``: where resumable checkpoints live; removed after success.
    - ``stop_after_steps``: stop (without saving the model) after this many optimizer steps in this
      call, leaving the checkpoint; for tests of resuming.

    ``out_dir`` receives a PEFT adapter (lora) or a safetensors model (full), plus the tokenizer.
    Returns the metrics: ``wall_seconds``, ``train_tokens`` (non-padding), ``tokens_per_second``,
    ``answer_tokens``, ``padding_fraction``, ``peak_memory_mb``, ``trainable_params``,
    ``total_params``, ``loss_curve`` ([{step, loss}]), ``final_loss`` and the run settings.
    """
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, get_scheduler

    hp = merge_hparams(hparams)
    accelerator = Accelerator(cpu=(device == "cpu"))
    dev = str(accelerator.device)
    from .sources import compute_dtype

    dtype = compute_dtype(dev)
    torch.manual_seed(hp["seed"])

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    examples, dropped = encode_records(tokenizer, records, hp["cutoff"], prompt)
    if not examples:
        raise ValueError("no training example left after tokenisation (all answers cut away by cutoff?)")
    lengths = [len(e["input_ids"]) for e in examples]

    model = load_trainable(model_dir, hp["method"], hp["lora"], dtype)
    trainable, total = count_params(model)
    wrapper = _answer_loss_module(model)
    params = [p for p in wrapper.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hp["lr"], weight_decay=hp["weight_decay"])

    world, rank = accelerator.num_processes, accelerator.process_index
    per_step = hp["batch_size"] * hp["grad_accum"] * world
    steps_per_epoch = math.ceil(len(examples) / per_step)
    total_steps = steps_per_epoch * hp["epochs"]
    if hp["max_steps"]:
        total_steps = min(total_steps, hp["max_steps"])
    scheduler = get_scheduler(hp["scheduler"], optimizer, num_warmup_steps=int(hp["warmup_ratio"] * total_steps),
                              num_training_steps=total_steps)
    wrapper, optimizer = accelerator.prepare(wrapper, optimizer)

    ckpt = Path(checkpoint_dir) if checkpoint_dir else None
    state = {"step": 0, "epoch": 0, "batch": 0, "elapsed": 0.0, "tokens": 0, "answer_tokens": 0,
             "pad_tokens": 0, "loss_curve": []}
    fingerprint = json.dumps({"hp": hp, "examples": len(examples), "prompt": dict(prompt or {})},
                             sort_keys=True, default=str)
    if ckpt is not None and (ckpt / "state.json").is_file() and read_json(ckpt / "state.json").get("fingerprint") != fingerprint:
        log.warning("checkpoint %s was written with other data or hyperparameters; starting over", ckpt)
        shutil.rmtree(ckpt, ignore_errors=True)
    state["fingerprint"] = fingerprint
    if ckpt is not None:
        loaded = _load_checkpoint(ckpt, accelerator.unwrap_model(wrapper), optimizer, scheduler)
        if loaded:
            state.update(loaded)
            log.info("resuming from checkpoint %s at optimizer step %d (epoch %d)", ckpt, state["step"],
                     state["epoch"])
    resumed_from = state["step"]
    log.info("%s fine-tuning: %d examples (%d dropped by cutoff), %d optimizer steps, %d trainable of %d "
             "parameters, device %s", hp["method"], len(examples), dropped, total_steps, trainable, total, dev)

    wrapper.train()
    start = time.perf_counter()
    bar = tqdm(total=total_steps, initial=state["step"], desc=f"{hp['method']} fine-tuning", disable=not progress,
               mininterval=5)
    steps_this_call = 0
    done = state["step"] >= total_steps
    while not done and state["epoch"] < hp["epochs"]:
        batches = make_batches(lengths, hp["batch_size"], hp["seed"] * 1000 + state["epoch"],
                               grouped=hp["batching"] == "length")
        groups = [batches[i:i + hp["grad_accum"] * world] for i in range(0, len(batches), hp["grad_accum"] * world)]
        for g in range(state["batch"], len(groups)):
            group = groups[g]
            n_answer = sum(sum(1 for t in examples[i]["labels"][1:] if t != IGNORE_INDEX) for b in group for i in b)
            mine = group[rank::world]
            loss_sum = 0.0
            for b in mine:
                batch = {k: v.to(accelerator.device) for k, v in collate([examples[i] for i in b], pad_id).items()}
                loss = wrapper(**batch) / n_answer * world
                accelerator.backward(loss)
                loss_sum += loss.item() / world
                real = int(batch["attention_mask"].sum())
                state["tokens"] += real * world
                state["pad_tokens"] += (batch["attention_mask"].numel() - real) * world
            state["answer_tokens"] += n_answer
            if world > 1:
                loss_sum = float(accelerator.reduce(torch.tensor(loss_sum, device=accelerator.device), "sum"))
            if hp["max_grad_norm"]:
                accelerator.clip_grad_norm_(params, hp["max_grad_norm"])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            state["batch"] = g + 1
            steps_this_call += 1
            state["loss_curve"].append({"step": state["step"], "loss": round(loss_sum, 5),
                                        "epoch": round(state["epoch"] + (g + 1) / len(groups), 4)})
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum:.3f}")
            done = state["step"] >= total_steps
            save_now = hp["save_every"] and state["step"] % hp["save_every"] == 0
            stop_now = stop_after_steps is not None and steps_this_call >= stop_after_steps
            if ckpt is not None and (save_now or stop_now) and not done and accelerator.is_main_process:
                _save_checkpoint(ckpt, accelerator.unwrap_model(wrapper), optimizer, scheduler,
                                 {**state, "elapsed": state["elapsed"] + time.perf_counter() - start})
            if stop_now and not done:
                bar.close()
                accelerator.wait_for_everyone()
                return {"stopped_at_step": state["step"]}
            if done:
                break
        else:
            state["epoch"] += 1
            state["batch"] = 0
    bar.close()
    wall = state["elapsed"] + time.perf_counter() - start

    accelerator.wait_for_everyone()
    out = Path(out_dir)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        lm = accelerator.unwrap_model(wrapper).lm
        lm.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        if ckpt is not None:
            shutil.rmtree(ckpt, ignore_errors=True)
    curve = state["loss_curve"]
    tail = [c["loss"] for c in curve[-max(1, min(10, len(curve) // 5)):]]
    return {
        "method": hp["method"],
        "device": dev,
        "world_size": world,
        "examples": len(examples),
        "dropped_by_cutoff": dropped,
        "epochs": hp["epochs"],
        "optimizer_steps": state["step"],
        "resumed_from_step": resumed_from,
        "wall_seconds": round(wall, 3),
        "train_tokens": state["tokens"],
        "answer_tokens": state["answer_tokens"],
        "tokens_per_second": round(state["tokens"] / wall, 3) if wall > 0 else None,
        "padding_fraction": round(state["pad_tokens"] / max(1, state["tokens"] + state["pad_tokens"]), 4),
        "peak_memory_mb": round(peak_memory_mb(dev), 1),
        "trainable_params": trainable,
        "total_params": total,
        "loss_curve": curve,
        "final_loss": round(sum(tail) / len(tail), 5) if tail else None,
        "hparams": hp,
    }


# ---------------------------------------------------------------------------- rule entry point
def _in_distributed_launch() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def run_job(spec: Mapping[str, Any], gpus_per_job: int = 0) -> dict[str, Any]:
    """Run one fine-tuning job described by ``spec`` and write its metrics.

    ``spec`` keys: ``model_dir``, ``train_file`` (JSONL of records) or ``records``, ``out_dir``,
    ``metrics_file``, ``hparams``, ``prompt``, ``checkpoint_dir``, optional ``device`` and
    ``log_file`` (where the relaunched processes log).
    With ``gpus_per_job > 1`` and that many GPUs free, the job is re-run through
    ``accelerate launch --num_processes N -m tinysec.models.train <spec.json>``.
    """
    from ..gpu import claim_gpus
    from ..io import read_jsonl

    with claim_gpus(gpus_per_job) as ids:
        if len(ids) > 1 and not _in_distributed_launch():
            from ..gpu import launch_command, run_launch

            spec_file = Path(spec["metrics_file"]).with_suffix(".spec.json")
            write_json(spec_file, dict(spec))
            run_launch(launch_command("tinysec.models.train", [str(spec_file)], num_processes=len(ids),
                                      mixed_precision="no"), log_file=spec.get("log_file"))
            spec_file.unlink(missing_ok=True)
            return read_json(spec["metrics_file"])
        records = spec.get("records") or read_jsonl(spec["train_file"])
        metrics = finetune(spec["model_dir"], records, spec["out_dir"], spec.get("hparams"),
                           prompt=spec.get("prompt"), checkpoint_dir=spec.get("checkpoint_dir"),
                           device=spec.get("device"))
        if int(os.environ.get("RANK", "0")) == 0:
            write_json(spec["metrics_file"], metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    """``python -m tinysec.models.train spec.json`` (used by the accelerate relaunch)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m tinysec.models.train SPEC.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    run_job(spec, gpus_per_job=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
