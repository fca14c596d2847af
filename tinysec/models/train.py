"""Supervised fine-tuning of a causal LM on (instruction, input, output) records: LoRA or all parameters.

Public API (also used by the CTI section):

- :func:`finetune` trains one model on plain records with a hyperparameter dict and writes a PEFT
  adapter (``method: lora``, loadable with ``PeftModel.from_pretrained``) or a safetensors model
  (``method: full``) to ``out_dir``; it returns the training metrics.
- :func:`run_job` runs a :class:`TrainJob` for a rule script: it claims GPUs (:func:`tinysec.gpu.claim_gpus`),
  relaunches itself through ``accelerate launch --num_processes N`` when a job has more than one
  GPU, runs :func:`finetune` and writes ``train_metrics.json``.

What makes it faster than a plain ``Trainer`` run on the same data:

- batches are grouped by length (shuffled groups of similar length), so little compute goes to
  padding; the padding fraction is reported;
- the loss is computed on answer tokens only and the output projection (vocabulary-sized) runs
  only at those positions, not at every prompt and padding position;
- on CPU an optimizer step's micro-batches run as one batch (``merge_micro_batches``,
  :func:`micro_batches`);
- batches of Llama-family models run packed, without padding (``pack_batches``,
  :mod:`tinysec.models.packing`);
- LoRA layers draw their dropout masks faster and add the adapter's update inside one ``addmm``
  (:mod:`tinysec.models.fastlora`), and RMSNorms run a closed-form backward
  (:mod:`tinysec.models.fastnorm`);
- on CPU in fp32, linear layers run oneDNN's packed GEMM, frozen ones from weights packed once
  (:mod:`tinysec.models.fastlinear`).

Resuming: every ``save_every`` optimizer steps the trainable weights, optimizer, scheduler, RNG and
progress go to ``checkpoint_dir`` (kept outside the rule's outputs, which Snakemake deletes when a
job fails). A rerun with the same ``checkpoint_dir`` continues from the last checkpoint.

Timings (:class:`tinysec.torchutil.StepClock`): the metrics give the training loop's wall time, the
process CPU time, the median optimizer-step time and the steady-state estimate (median step time x
steps), which a few steps slowed by other load on the machine barely move.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..io import InputError, read_json, write_json
from ..schema import schema_defaults
from ..torchutil import StepClock, adamw, length_grouped_batches, peak_memory_mb
from . import packing
from .prompts import IGNORE_INDEX, prompt_format

log = logging.getLogger(__name__)

#: Hyperparameters that no config schema holds: the method (a rule wildcard) and the seed
#: (the config's top-level ``seed``); the others default to ``instruct.train`` / ``instruct.lora``.
BASE_HPARAMS: dict[str, Any] = {"method": "lora", "seed": schema_defaults("config.schema.yaml")["seed"]}


def default_hparams() -> dict[str, Any]:
    """Hyperparameters of a run that sets none: :data:`BASE_HPARAMS` and the defaults of the
    ``instruct.train`` and ``instruct.lora`` schemas (``lora.target_modules`` is left out: it is
    chosen from the model's family, :func:`lora_target_modules`)."""
    train = schema_defaults("instruct.schema.yaml", "train")
    train.pop("full_lr")  # applied by tinysec.plan.Instruct.hparams before a job starts
    lora = schema_defaults("instruct.schema.yaml", "lora")
    lora.pop("target_modules")  # a family -> modules table in the config, a list here
    return {**BASE_HPARAMS, **train, "lora": lora}


#: LoRA target modules per model family, used when the hyperparameters name none.
LORA_TARGETS: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense"],
    "phi3": ["qkv_proj", "o_proj"],
}


def merge_hparams(hparams: Mapping[str, Any] | None) -> dict[str, Any]:
    """:func:`default_hparams` overlaid with ``hparams`` (the ``lora`` sub-dict merged key by key)."""
    defaults = default_hparams()
    out = {**defaults, **{k: v for k, v in (hparams or {}).items() if k != "lora"}}
    out["lora"] = {**defaults["lora"], **((hparams or {}).get("lora") or {})}
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

    ``grouped``: :func:`tinysec.torchutil.length_grouped_batches` with windows of ``batch_size *
    group_factor`` examples, longest first. Otherwise plain shuffled batches.
    """
    rng = random.Random(seed)
    if grouped:
        return length_grouped_batches(lengths, batch_size, rng, group=group_factor, descending=True)
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    return [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]


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
    answer token. Models with logit soft-capping fall back to the full forward. Called with a packed
    row (``position_ids``, ``targets``, ``lengths`` of :func:`tinysec.models.packing.pack`), the decoder
    runs padding-free.
    """
    import torch
    import torch.nn.functional as F

    class AnswerLoss(torch.nn.Module):
        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, input_ids, attention_mask=None, labels=None, position_ids=None, targets=None,
                    lengths=None):
            base = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
            decoder = base.get_decoder()
            if lengths is not None:  # one packed row (tinysec.models.packing.pack)
                hidden = decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False,
                                 tinysec_lengths=lengths).last_hidden_state
            else:
                targets = labels[:, 1:]
                if getattr(base.config, "final_logit_softcapping", None):
                    keep = targets != IGNORE_INDEX
                    logits = self.lm(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
                    return F.cross_entropy(logits[keep].float(), targets[keep], reduction="sum")
                hidden = decoder(input_ids=input_ids, attention_mask=attention_mask,
                                 use_cache=False).last_hidden_state[:, :-1]
            keep = targets != IGNORE_INDEX
            logits = base.get_output_embeddings()(hidden[keep])
            return F.cross_entropy(logits.float(), targets[keep], reduction="sum")

    return AnswerLoss(model)


def load_trainable(model_dir: str | os.PathLike, method: str, lora: dict[str, Any], dtype):
    """The model of ``model_dir`` ready to train: LoRA-wrapped (``peft``, with the faster dropout and
    update of :func:`tinysec.models.fastlora.speed_up_lora`) or with all weights trainable; its
    RMSNorms get the closed-form backward of :mod:`tinysec.models.fastnorm`, its linear layers
    the oneDNN forward of :mod:`tinysec.models.fastlinear`.

    LoRA without ``target_modules`` adapts those of the model's family (``config.model_type``),
    and writes them into ``lora``, so the run's metrics name them."""
    from transformers import AutoModelForCausalLM

    from . import fastlinear
    from .fastnorm import speed_up_rms_norms

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model.config.use_cache = False
    speed_up_rms_norms(model)
    fastlinear.speed_up_linears(model)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        from .fastlora import speed_up_lora

        if "target_modules" not in lora:  # none named: the modules of the model's family
            lora["target_modules"] = lora_target_modules(model.config.model_type)
        cfg = LoraConfig(r=int(lora["r"]), lora_alpha=int(lora["alpha"]), lora_dropout=float(lora["dropout"]),
                         target_modules=list(lora["target_modules"]), task_type="CAUSAL_LM", bias="none")
        model = get_peft_model(model, cfg)
        speed_up_lora(model)
    return model


def count_params(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


# ---------------------------------------------------------------------------- checkpoints
def _save_checkpoint(ckpt_dir: Path, wrapper, optimizer, scheduler, state: TrainState) -> None:
    """Write trainable weights, optimizer/scheduler/RNG state and ``state.json`` to ``ckpt_dir`` atomically."""
    import torch
    from safetensors.torch import save_file

    tmp = ckpt_dir.with_name(ckpt_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {n: p.detach().cpu().contiguous() for n, p in wrapper.named_parameters() if p.requires_grad}
    save_file(weights, str(tmp / "trainable.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state()}, tmp / "optim.pt")
    write_json(tmp / "state.json", asdict(state))
    old = ckpt_dir.with_name(ckpt_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if ckpt_dir.exists():
        os.replace(ckpt_dir, old)
    os.replace(tmp, ckpt_dir)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(ckpt_dir: Path, wrapper, optimizer, scheduler) -> dict | None:
    """Restore a checkpoint into the model, optimizer, scheduler and RNG; its ``state.json`` (None: no checkpoint)."""
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
@dataclass
class TrainState:
    """Progress of one fine-tuning run; a checkpoint's ``state.json`` holds it as a dict.

    ``elapsed``, ``cpu_seconds`` and ``step_seconds`` are the wall seconds, process CPU seconds
    and per-optimizer-step seconds measured up to the checkpoint (carried over on resume).
    """

    step: int = 0
    epoch: int = 0
    batch: int = 0
    elapsed: float = 0.0
    cpu_seconds: float = 0.0
    tokens: int = 0
    answer_tokens: int = 0
    pad_tokens: int = 0
    loss_curve: list[dict] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)
    fingerprint: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainState:
        """State from a checkpoint's dict; keys it does not know are ignored, missing ones default."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class _Job:
    """Everything a fine-tuning run sets up before its first step."""

    hp: dict[str, Any]
    accelerator: Any
    device: str
    tokenizer: Any
    pad_id: int
    examples: list[dict]
    dropped: int
    packed: bool
    wrapper: Any
    params: list
    optimizer: Any
    scheduler: Any
    total_steps: int
    trainable: int
    total: int

    @property
    def world(self) -> int:
        return self.accelerator.num_processes


def _setup(model_dir: str | os.PathLike, records: Sequence[Mapping[str, Any]], hparams: Mapping[str, Any] | None,
           prompt: Mapping[str, Any] | None, device: str | None) -> _Job:
    """Tokenise the records, load the trainable model, build optimizer and scheduler (accelerate-prepared)."""
    import torch
    from accelerate import Accelerator
    from transformers import AutoTokenizer, get_scheduler

    from .sources import compute_dtype

    hp = merge_hparams(hparams)
    accelerator = Accelerator(cpu=(device == "cpu"))
    dev = str(accelerator.device)
    torch.manual_seed(hp["seed"])

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    examples, dropped = encode_records(tokenizer, records, hp["cutoff"], prompt)
    if not examples:
        raise ValueError("no training example left after tokenisation (all answers cut away by cutoff?)")

    model = load_trainable(model_dir, hp["method"], hp["lora"], compute_dtype(dev))
    trainable, total = count_params(model)
    packed = hp["pack_batches"] and packing.supports_packing(model.config)
    if packed:
        model.config._attn_implementation = packing.register()
    wrapper = _answer_loss_module(model)
    params = [p for p in wrapper.parameters() if p.requires_grad]
    optimizer = adamw(params, lr=hp["lr"], weight_decay=hp["weight_decay"])

    per_step = hp["batch_size"] * hp["grad_accum"] * accelerator.num_processes
    total_steps = math.ceil(len(examples) / per_step) * hp["epochs"]
    if hp["max_steps"]:
        total_steps = min(total_steps, hp["max_steps"])
    scheduler = get_scheduler(hp["scheduler"], optimizer, num_warmup_steps=int(hp["warmup_ratio"] * total_steps),
                              num_training_steps=total_steps)
    wrapper, optimizer = accelerator.prepare(wrapper, optimizer)
    return _Job(hp, accelerator, dev, tokenizer, pad_id, examples, dropped, packed, wrapper, params, optimizer, scheduler,
                total_steps, trainable, total)


def _resume(job: _Job, ckpt: Path | None, prompt: Mapping[str, Any] | None) -> TrainState:
    """A fresh state, or the one of ``ckpt`` (weights, optimizer, scheduler and RNG restored) when it
    was written with the same data and hyperparameters; a checkpoint of other settings is deleted."""
    fingerprint = json.dumps({"hp": job.hp, "examples": len(job.examples), "prompt": dict(prompt or {})},
                             sort_keys=True, default=str)
    state = TrainState(fingerprint=fingerprint)
    if ckpt is None:
        return state
    if (ckpt / "state.json").is_file() and read_json(ckpt / "state.json").get("fingerprint") != fingerprint:
        log.warning("checkpoint %s was written with other data or hyperparameters; starting over", ckpt)
        shutil.rmtree(ckpt, ignore_errors=True)
    loaded = _load_checkpoint(ckpt, job.accelerator.unwrap_model(job.wrapper), job.optimizer, job.scheduler)
    if loaded:
        state = TrainState.from_dict({**loaded, "fingerprint": fingerprint})
        log.info("resuming from checkpoint %s at optimizer step %d (epoch %d)", ckpt, state.step, state.epoch)
    return state


def micro_batches(hp: Mapping[str, Any], device: str) -> tuple[int, int]:
    """(examples per forward pass, forward passes per optimizer step and process). With
    ``merge_micro_batches`` on CPU, a step's ``grad_accum`` micro-batches run as one batch: the
    loss (summed over the step's answer tokens) and the gradient are the same, the matrix
    products bigger."""
    if hp["merge_micro_batches"] and device == "cpu":
        return hp["batch_size"] * hp["grad_accum"], 1
    return hp["batch_size"], hp["grad_accum"]


def _step_groups(job: _Job, epoch: int) -> list[list[list[int]]]:
    """The epoch's batches (:func:`micro_batches`), cut into the groups of one optimizer step:
    the forward passes per step of every process."""
    hp = job.hp
    size, passes = micro_batches(hp, job.device)
    batches = make_batches([len(e["input_ids"]) for e in job.examples], size, hp["seed"] * 1000 + epoch,
                           grouped=hp["batching"] == "length")
    n = passes * job.world
    return [batches[i:i + n] for i in range(0, len(batches), n)]


def _device_batch(job: _Job, rows: list[dict]) -> tuple[dict[str, Any], int, int]:
    """The model inputs of ``rows`` on the job's device (packed or right-padded), with their numbers of
    real and padding token slots."""
    if job.packed:
        batch = packing.pack(rows, job.accelerator.device)
        return batch, batch["input_ids"].numel(), 0
    batch = {k: v.to(job.accelerator.device) for k, v in collate(rows, job.pad_id).items()}
    real = int(batch["attention_mask"].sum())
    return batch, real, batch["attention_mask"].numel() - real


def _optimizer_step(job: _Job, state: TrainState, group: list[list[int]]) -> float:
    """Forward and backward over this rank's batches of ``group``, then one optimizer step; returns the
    mean answer-token loss of the group and adds the token counts to ``state``."""
    import torch

    acc, world, examples = job.accelerator, job.world, job.examples
    n_answer = sum(sum(1 for t in examples[i]["labels"][1:] if t != IGNORE_INDEX) for b in group for i in b)
    loss_sum = 0.0
    for b in group[acc.process_index::world]:
        batch, real, pad = _device_batch(job, [examples[i] for i in b])
        loss = job.wrapper(**batch) / n_answer * world
        acc.backward(loss)
        loss_sum += loss.item() / world
        state.tokens += real * world
        state.pad_tokens += pad * world
    state.answer_tokens += n_answer
    if world > 1:
        loss_sum = float(acc.reduce(torch.tensor(loss_sum, device=acc.device), "sum"))
    if job.hp["max_grad_norm"]:
        acc.clip_grad_norm_(job.params, job.hp["max_grad_norm"])
    job.optimizer.step()
    job.scheduler.step()
    job.optimizer.zero_grad(set_to_none=True)
    return loss_sum


def _train_loop(job: _Job, state: TrainState, clock: StepClock, ckpt: Path | None, bar: Any,
                stop_after_steps: int | None) -> bool:
    """Optimizer steps until ``total_steps`` (or the last epoch) is reached, each timed by ``clock`` and
    checkpointed every ``save_every`` steps; True when ``stop_after_steps`` stopped it first."""
    hp, steps_this_call = job.hp, 0
    while state.step < job.total_steps and state.epoch < hp["epochs"]:
        groups = _step_groups(job, state.epoch)
        for g in range(state.batch, len(groups)):
            with clock.step():
                loss = _optimizer_step(job, state, groups[g])
            state.step, state.batch, steps_this_call = state.step + 1, g + 1, steps_this_call + 1
            state.loss_curve.append({"step": state.step, "loss": round(loss, 5),
                                     "epoch": round(state.epoch + (g + 1) / len(groups), 4)})
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
            done = state.step >= job.total_steps
            save_now = hp["save_every"] and state.step % hp["save_every"] == 0
            stop_now = stop_after_steps is not None and steps_this_call >= stop_after_steps
            if ckpt is not None and (save_now or stop_now) and not done and job.accelerator.is_main_process:
                _save_checkpoint(ckpt, job.accelerator.unwrap_model(job.wrapper), job.optimizer, job.scheduler,
                                 replace(state, elapsed=clock.wall(), cpu_seconds=clock.cpu()))
            if done:
                return False
            if stop_now:
                return True
        state.epoch, state.batch = state.epoch + 1, 0
    return False


def _save_result(job: _Job, out_dir: str | os.PathLike, ckpt: Path | None) -> None:
    """Write the adapter or model and the tokenizer to ``out_dir`` (main process); drop the checkpoint."""
    job.accelerator.wait_for_everyone()
    if job.accelerator.is_main_process:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        job.accelerator.unwrap_model(job.wrapper).lm.save_pretrained(out, safe_serialization=True)
        job.tokenizer.save_pretrained(out)
        if ckpt is not None:
            shutil.rmtree(ckpt, ignore_errors=True)


def _summary(job: _Job, state: TrainState, clock: StepClock, resumed_from: int) -> dict[str, Any]:
    """The training metrics of a finished run (see :func:`finetune`)."""
    times = clock.summary(state.step)
    wall = times["wall_seconds"]
    curve = state.loss_curve
    tail = [c["loss"] for c in curve[-max(1, min(10, len(curve) // 5)):]]
    return {
        "method": job.hp["method"],
        "device": job.device,
        "world_size": job.world,
        "examples": len(job.examples),
        "dropped_by_cutoff": job.dropped,
        "epochs": job.hp["epochs"],
        "optimizer_steps": state.step,
        "resumed_from_step": resumed_from,
        **times,
        "train_tokens": state.tokens,
        "answer_tokens": state.answer_tokens,
        "tokens_per_second": round(state.tokens / wall, 3) if wall > 0 else None,
        "padding_fraction": round(state.pad_tokens / max(1, state.tokens + state.pad_tokens), 4),
        "peak_memory_mb": round(peak_memory_mb(job.device), 1),
        "trainable_params": job.trainable,
        "total_params": job.total,
        "loss_curve": curve,
        "final_loss": round(sum(tail) / len(tail), 5) if tail else None,
        "hparams": job.hp,
    }


def finetune(model_dir: str | os.PathLike, records: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike,
             hparams: Mapping[str, Any] | None = None, *, prompt: Mapping[str, Any] | None = None,
             checkpoint_dir: str | os.PathLike | None = None, device: str | None = None,
             progress: bool = True, stop_after_steps: int | None = None) -> dict[str, Any]:
    """Fine-tune the causal LM in ``model_dir`` on ``records`` and save the result to ``out_dir``.

    - ``records``: dicts with ``instruction``, ``input`` and ``output``.
    - ``hparams``: see :func:`default_hparams` (``method`` 'lora' or 'full', ``lr``, ``epochs``,
      ``batch_size`` (per device), ``grad_accum``, ``merge_micro_batches``, ``cutoff``, ``lora: {r, alpha, dropout,
      target_modules}``, ``batching``, ``save_every``, ``max_steps``, ``seed``).
    - ``prompt``: keyword arguments of :func:`tinysec.models.prompts.prompt_format`
      (``chat_template``, ``template``, ``system``); generation must use the same.
    - ``checkpoint_dir``: where resumable checkpoints live; removed after success.
    - ``stop_after_steps``: stop (without saving the model) after this many optimizer steps in this
      call, leaving the checkpoint; for tests of resuming.

    ``out_dir`` receives a PEFT adapter (lora) or a safetensors model (full), plus the tokenizer.
    Returns the metrics: ``wall_seconds``, ``cpu_seconds`` (process CPU time, all threads),
    ``median_step_seconds`` (median optimizer-step time), ``steady_state_seconds`` (median step
    time x optimizer steps: the training time without the slow steps outside load causes; these
    four cover the training loop, resumed calls included), ``train_tokens`` (non-padding),
    ``tokens_per_second``, ``answer_tokens``, ``padding_fraction``, ``peak_memory_mb``,
    ``trainable_params``, ``total_params``, ``loss_curve`` ([{step, loss}]), ``final_loss`` and the
    run settings.
    """
    from tqdm.auto import tqdm

    job = _setup(model_dir, records, hparams, prompt, device)
    ckpt = Path(checkpoint_dir) if checkpoint_dir else None
    state = _resume(job, ckpt, prompt)
    resumed_from = state.step
    log.info("%s fine-tuning: %d examples (%d dropped by cutoff), %d optimizer steps, %d trainable of %d "
             "parameters, device %s", job.hp["method"], len(job.examples), job.dropped, job.total_steps,
             job.trainable, job.total, job.device)

    job.wrapper.train()
    clock = StepClock(state.elapsed, state.cpu_seconds, state.step_seconds).start()
    with tqdm(total=job.total_steps, initial=state.step, desc=f"{job.hp['method']} fine-tuning",
              disable=not progress, mininterval=5) as bar:
        stopped = _train_loop(job, state, clock, ckpt, bar, stop_after_steps)
    clock.stop()  # the timings cover the loop, not saving the result
    if stopped:
        job.accelerator.wait_for_everyone()
        return {"stopped_at_step": state.step}
    _save_result(job, out_dir, ckpt)
    return _summary(job, state, clock, resumed_from)


# ---------------------------------------------------------------------------- rule entry point
def _in_distributed_launch() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass
class TrainJob:
    """One fine-tuning job: what a rule script (or the accelerate relaunch, from JSON) runs.

    Training data: ``records``, else the JSONL ``train_file``. ``log_file`` is where relaunched
    processes log."""

    model_dir: str
    out_dir: str
    metrics_file: str
    hparams: dict[str, Any] = field(default_factory=dict)
    prompt: dict[str, Any] | None = None
    checkpoint_dir: str | None = None
    train_file: str | None = None
    records: list[dict] | None = None
    device: str | None = None
    log_file: str | None = None
    memory_fraction: float | None = None  # GPU memory cap of each training process (None: none)


def run_job(job: TrainJob, gpus_per_job: int = 0) -> dict[str, Any]:
    """Run one fine-tuning job and write its metrics to ``job.metrics_file``.

    With ``gpus_per_job > 1`` and that many GPUs free, the job is re-run through
    ``accelerate launch --num_processes N -m tinysec.models.train <job.json>``. Each training
    process caps its GPU memory at ``job.memory_fraction`` (:func:`tinysec.gpu.cap_memory`).
    """
    from ..gpu import cap_memory, claim_gpus
    from ..io import read_records

    with claim_gpus(gpus_per_job) as ids:
        if len(ids) > 1 and not _in_distributed_launch():
            from ..gpu import launch_command, run_launch

            spec_file = Path(job.metrics_file).with_suffix(".spec.json")
            write_json(spec_file, asdict(job))
            run_launch(launch_command("tinysec.models.train", [str(spec_file)], num_processes=len(ids),
                                      mixed_precision="no"), log_file=job.log_file)
            spec_file.unlink(missing_ok=True)
            return read_json(job.metrics_file)
        cap_memory(job.memory_fraction)
        records = job.records or read_records(job.train_file, "instruct_train")
        metrics = finetune(job.model_dir, records, job.out_dir, job.hparams, prompt=job.prompt,
                           checkpoint_dir=job.checkpoint_dir, device=job.device)
        if int(os.environ.get("RANK", "0")) == 0:
            write_json(job.metrics_file, metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    """``python -m tinysec.models.train job.json`` (used by the accelerate relaunch)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m tinysec.models.train JOB.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_job(TrainJob(**json.loads(Path(argv[0]).read_text(encoding="utf-8"))), gpus_per_job=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
