"""Answer generation for instruction records: batched local models and OpenAI-compatible APIs.

Public API (also used by the CTI section):

- :func:`load_for_generation` loads a base model, optionally with a PEFT adapter on top.
- :func:`generate_batched` generates for many prompts with continuous batching: up to
  ``batch_size`` rows decode together over one KV cache, each row leaves at its stop token and a
  waiting prompt (longest first) is prefilled into its place; greedy by default (seeded sampling
  otherwise), ``max_new_tokens`` capped. Greedy outputs equal one ``model.generate`` per prompt.
- :func:`answer_records` turns records into answer rows ``{id, instruction, input, answer,
  n_tokens, seconds}``, formatting prompts exactly as training does (:mod:`.prompts`).
- :func:`api_answer_records` does the same through :class:`tinysec.models.api.ChatClient`.
- :func:`run_job` (local model, claims a GPU) and :func:`run_api_job` are what the rule scripts
  call; both write the answers JSONL.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io import read_records, write_jsonl
from ..schema import schema_defaults
from .prompts import prompt_format, user_message

log = logging.getLogger(__name__)

#: Defaults of the generation dict: those of the ``instruct.generation`` schema, and no extra
#: stop strings (``stop``: the answer is cut at the first one).
GEN_DEFAULTS: dict[str, Any] = {**schema_defaults("instruct.schema.yaml", "generation"), "stop": []}


def merge_gen(gen: Mapping[str, Any] | None) -> dict[str, Any]:
    """:data:`GEN_DEFAULTS` overlaid with ``gen``."""
    return {**GEN_DEFAULTS, **(gen or {})}


def load_for_generation(model_dir: str | os.PathLike, adapter_dir: str | os.PathLike | None = None,
                        device: str | None = None):
    """``(model, tokenizer)`` in eval mode, its weights frozen; ``adapter_dir`` adds a PEFT adapter
    (merged for speed). On CPU in fp32 its linear layers run oneDNN's packed GEMM
    (:mod:`tinysec.models.fastlinear`).

    A fine-tuned full model is just another ``model_dir``. The tokenizer comes from the adapter
    folder when it has one (training saves it there), else from ``model_dir``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from . import fastlinear
    from .sources import compute_dtype, default_device

    device = device or default_device()
    tok_dir = adapter_dir if adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").is_file() else model_dir
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=compute_dtype(device))
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    model.to(device).eval().requires_grad_(False)
    fastlinear.speed_up_linears(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _stop_ids(model, tokenizer) -> list[int]:
    """Token ids that end an answer: the generation config's EOS ids plus the tokenizer's EOS."""
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else ([ids] if isinstance(ids, int) else list(ids))
    for tok in (tokenizer.eos_token, "<|im_end|>", "<end_of_turn>"):
        tid = tokenizer.convert_tokens_to_ids(tok) if tok else None
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid not in ids:
            ids.append(tid)
    return ids


def _grow_layer_class():
    """A ``DynamicLayer`` that appends into a preallocated buffer instead of concatenating.

    ``keys``/``values`` stay views ``buffer[:, :, :n]`` so every ``DynamicLayer`` method (mask
    sizes, sequence length) works unchanged; a step writes one column in place (no full-cache copy).
    """
    from transformers.cache_utils import DynamicLayer

    class GrowLayer(DynamicLayer):
        spare = 64  # extra columns allocated whenever a buffer is (re)made

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized or self.keys.numel() == 0:
                self.lazy_initialization(key_states, value_states)
                self.set_states(key_states, value_states)
                return self.keys, self.values
            n, add = self.keys.shape[-2], key_states.shape[-2]
            if n + add > self._kbuf.shape[-2]:
                self.set_states(self.keys, self.values, extra=add)
            self._kbuf[:, :, n:n + add] = key_states
            self._vbuf[:, :, n:n + add] = value_states
            self.keys, self.values = self._kbuf[:, :, :n + add], self._vbuf[:, :, :n + add]
            return self.keys, self.values

        def set_states(self, keys, values, extra: int = 0):
            """Copy ``keys``/``values`` into fresh buffers with room for ``extra`` + spare columns."""
            b, h, n, d = keys.shape
            self._kbuf = keys.new_empty((b, h, n + extra + self.spare, d))
            self._vbuf = values.new_empty((b, h, n + extra + self.spare, values.shape[-1]))
            self._kbuf[:, :, :n] = keys
            self._vbuf[:, :, :n] = values
            self.keys, self.values = self._kbuf[:, :, :n], self._vbuf[:, :, :n]
            self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True

    return GrowLayer


@dataclass
class _Rows:
    """The running batch: its KV cache, 2-D attention mask, next positions, last tokens, and per
    row the prompt index and the tokens generated so far."""

    cache: Any
    mask: Any
    pos: Any
    last: Any
    idx: list[int]
    toks: list[list[int]]


def _new_cache():
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.layer_class_to_replicate = _grow_layer_class()
    return cache


def _prefill(model, prompt_ids, idx: list[int], pad_id: int, device):
    """Run the prompts ``idx`` (left padded to the longest) once; returns ``(_Rows, last logits)``."""
    import torch

    width = max(len(prompt_ids[i]) for i in idx)
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        n = len(prompt_ids[i])
        ids[row, width - n:] = torch.as_tensor(list(prompt_ids[i]), dtype=torch.long)
        mask[row, width - n:] = 1
    ids, mask = ids.to(device), mask.to(device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = _new_cache()
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True,
                logits_to_keep=1)
    rows = _Rows(cache, mask, mask.sum(-1), None, list(idx), [[] for _ in idx])
    return rows, out.logits[:, -1, :].float()


def _left_pad(t, width: int, dim: int):
    """``t`` padded with zeros on the left of ``dim`` up to ``width``."""
    import torch

    short = width - t.shape[dim]
    if short <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = short
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def _merge(a: _Rows | None, b: _Rows) -> _Rows:
    """Rows of ``a`` then rows of ``b`` in one batch; the narrower cache is left padded (masked)."""
    import torch

    if a is None or not a.idx:
        return b
    width = max(a.mask.shape[1], b.mask.shape[1])
    for la, lb in zip(a.cache.layers, b.cache.layers):
        keys = torch.cat([_left_pad(la.keys, width, 2), _left_pad(lb.keys, width, 2)])
        values = torch.cat([_left_pad(la.values, width, 2), _left_pad(lb.values, width, 2)])
        la.set_states(keys, values)
    mask = torch.cat([_left_pad(a.mask, width, 1), _left_pad(b.mask, width, 1)])
    return _Rows(a.cache, mask, torch.cat([a.pos, b.pos]), torch.cat([a.last, b.last]),
                 a.idx + b.idx, a.toks + b.toks)


def _keep(rows: _Rows, keep: list[int]) -> _Rows | None:
    """Only the rows at positions ``keep`` (None if none); columns masked in every remaining row
    are dropped."""
    import torch

    if not keep:
        return None
    sel = torch.as_tensor(keep, dtype=torch.long, device=rows.mask.device)
    mask = rows.mask.index_select(0, sel)
    dead = int((mask.sum(0) == 0).long().cumprod(0).sum())  # leading all-padding columns
    mask = mask[:, dead:]
    for layer in rows.cache.layers:
        layer.set_states(layer.keys.index_select(0, sel)[:, :, dead:], layer.values.index_select(0, sel)[:, :, dead:])
    return _Rows(rows.cache, mask, rows.pos.index_select(0, sel), rows.last.index_select(0, sel),
                 [rows.idx[k] for k in keep], [rows.toks[k] for k in keep])


def _decode_step(model, rows: _Rows):
    """One token for every row; returns the logits of the new position."""
    import torch

    rows.mask = torch.cat([rows.mask, rows.mask.new_ones((rows.mask.shape[0], 1))], dim=1)
    out = model(input_ids=rows.last[:, None], attention_mask=rows.mask, position_ids=rows.pos[:, None],
                past_key_values=rows.cache, use_cache=True)
    rows.pos = rows.pos + 1
    return out.logits[:, -1, :].float()


def _pick(logits, rows: _Rows, prompt_ids, g: Mapping[str, Any], rng):
    """Next token per row: repetition penalty over prompt and answer so far, then greedy argmax
    or seeded sampling (temperature, top-p)."""
    import torch

    penalty = float(g["repetition_penalty"])
    if penalty != 1.0:
        seqs = [list(prompt_ids[i]) + t for i, t in zip(rows.idx, rows.toks)]
        width = max(len(s) for s in seqs)
        seen = torch.as_tensor([s + [s[0]] * (width - len(s)) for s in seqs], device=logits.device)
        score = logits.gather(1, seen)
        logits = logits.scatter(1, seen, torch.where(score < 0, score * penalty, score / penalty))
    if not g["do_sample"]:
        return logits.argmax(-1)
    logits = logits / max(float(g["temperature"]), 1e-5)
    top_p = float(g["top_p"])
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1)
        drop = sorted_logits.softmax(-1).cumsum(-1) <= 1 - top_p
        drop[:, -1] = False
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=rng)[:, 0]


def _check_prompts(prompt_ids, g: Mapping[str, Any]) -> None:
    if int(g["max_new_tokens"]) < 1:
        raise ValueError(f"generation: max_new_tokens must be at least 1, got {g['max_new_tokens']!r}")
    for i, p in enumerate(prompt_ids):
        if len(p) == 0:
            raise ValueError(f"generation: prompt {i} is empty (no tokens)")


def _continuous_batches(model, prompt_ids, g: Mapping[str, Any], pad_id: int, stop: set[int],
                        on_done=None) -> dict[int, list[int]]:
    """Generated tokens per prompt index, with at most ``g['batch_size']`` rows decoding at once.

    Prompts enter longest first; a row leaves as soon as it emits a stop token or reaches
    ``max_new_tokens``, and free rows are refilled from the queue (prefilled together once a
    quarter of the rows, or the rest of the queue, is waiting), so the batch stays full.
    """
    import torch

    device = next(model.parameters()).device
    queue = deque(sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i])))
    slots, max_new = max(1, int(g["batch_size"])), int(g["max_new_tokens"])
    rng = torch.Generator(device=device).manual_seed(int(g["seed"]))
    rows: _Rows | None = None
    done: dict[int, list[int]] = {}
    while queue or (rows is not None and rows.idx):
        running = len(rows.idx) if rows is not None else 0
        if queue and (running == 0 or slots - running >= min(max(1, slots // 4), len(queue))):
            new, logits = _prefill(model, prompt_ids, [queue.popleft() for _ in range(min(slots - running,
                                                                                            len(queue)))],
                                   pad_id, device)
            new.last = _pick(logits, new, prompt_ids, g, rng)
            cur = new
        else:
            cur = rows
            cur.last = _pick(_decode_step(model, cur), cur, prompt_ids, g, rng)
        for t, tok in zip(cur.toks, cur.last.tolist()):
            t.append(tok)
        rows = cur if cur is rows else _merge(rows, cur)
        ended = [k for k, t in enumerate(rows.toks) if t[-1] in stop or len(t) >= max_new]
        if ended:
            for k in ended:
                done[rows.idx[k]] = rows.toks[k]
            rows = _keep(rows, [k for k in range(len(rows.idx)) if k not in set(ended)])
            if on_done:
                on_done(len(ended))
    return done


def generate_batched(model, tokenizer, prompt_ids: Sequence[Sequence[int]], gen: Mapping[str, Any] | None = None,
                     progress: bool = True) -> list[dict[str, Any]]:
    """Generate a continuation for every tokenised prompt, in input order.

    Continuous batching over the KV cache (:func:`_continuous_batches`): up to ``gen['batch_size']``
    rows decode together, each leaves at its stop token, and waiting prompts (longest first) fill
    the freed rows. Greedy by default (seeded sampling otherwise). Each result is ``{text, n_tokens,
    token_ids, seconds}``: ``n_tokens`` counts generated tokens up to and including the stop token,
    ``token_ids`` are those tokens, ``seconds`` is the total wall time shared out by generated tokens.
    """
    import torch
    from tqdm.auto import tqdm

    g = merge_gen(gen)
    _check_prompts(prompt_ids, g)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stop_ids = _stop_ids(model, tokenizer)
    bar = tqdm(total=len(prompt_ids), desc="generating", disable=not progress, mininterval=5)
    t0 = time.perf_counter()
    with torch.inference_mode():
        done = _continuous_batches(model, prompt_ids, g, pad_id, set(stop_ids), on_done=bar.update)
    secs = time.perf_counter() - t0
    bar.close()
    total = max(1, sum(len(t) for t in done.values()))
    results = []
    for i in range(len(prompt_ids)):
        new = done[i]
        toks = [t for t in new if t not in stop_ids and t != pad_id]
        text = tokenizer.decode(toks, skip_special_tokens=True)
        for s in g["stop"]:
            if s and s in text:
                text = text[:text.index(s)]
        results.append({"text": text.strip(), "n_tokens": len(new), "token_ids": new,
                        "seconds": round(secs * len(new) / total, 4)})
    return results


def answer_rows(records: Sequence[Mapping[str, Any]], outputs: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Answer rows in the interface format from records and ``{text, n_tokens, seconds}`` outputs."""
    return [{"id": r["id"], "instruction": r["instruction"], "input": r.get("input", "") or "",
             "answer": o["text"], "n_tokens": int(o["n_tokens"]), "seconds": float(o["seconds"])}
            for r, o in zip(records, outputs)]


def answer_records(model_dir: str | os.PathLike, records: Sequence[Mapping[str, Any]],
                   gen: Mapping[str, Any] | None = None, *, prompt: Mapping[str, Any] | None = None,
                   adapter_dir: str | os.PathLike | None = None, device: str | None = None,
                   progress: bool = True) -> list[dict[str, Any]]:
    """Answer every record (``id``, ``instruction``, ``input``) with a local model.

    ``prompt`` holds the keyword arguments of :func:`tinysec.models.prompts.prompt_format`; pass the
    same as in training. Returns rows ``{id, instruction, input, answer, n_tokens, seconds}``.
    """
    model, tokenizer = load_for_generation(model_dir, adapter_dir, device)
    fmt = prompt_format(tokenizer, **(prompt or {}))
    g = merge_gen(gen)
    if not fmt.use_chat:
        g["stop"] = list(g["stop"]) + ["\n### "]
    ids = [fmt.prompt_ids(r["instruction"], r.get("input", "") or "") for r in records]
    return answer_rows(records, generate_batched(model, tokenizer, ids, g, progress=progress))


def api_answer_records(entry: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                       gen: Mapping[str, Any] | None = None, system: str | None = None) -> list[dict[str, Any]]:
    """Answer every record through an OpenAI-compatible endpoint (config model entry ``entry``).

    Concurrency, timeouts, retries with backoff and the key's environment variable come from the
    entry's ``api`` block (see :mod:`tinysec.models.api`). ``n_tokens`` is the answer's whitespace
    word count (the API's tokenizer is unknown); ``seconds`` the mean wall time per item.
    """
    from .api import ChatClient

    g = merge_gen(gen)
    client = ChatClient.from_entry(entry)
    convs = [([{"role": "system", "content": system}] if system else [])
             + [{"role": "user", "content": user_message(r["instruction"], r.get("input", "") or "")}]
             for r in records]
    params: dict[str, Any] = {"max_tokens": int(g["max_new_tokens"])}
    params["temperature"] = float(g["temperature"]) if g["do_sample"] else 0.0
    t0 = time.perf_counter()
    texts = client.chat_many(convs, desc="api answers", **params)
    per_item = (time.perf_counter() - t0) / max(1, len(records))
    outs = [{"text": t.strip(), "n_tokens": len(t.split()), "seconds": round(per_item, 4)} for t in texts]
    log.info("api answers: %s", client.stats.as_dict())
    return answer_rows(records, outs)


def _eval_records(eval_file: str | os.PathLike, limit: int) -> list[dict]:
    """The evaluation items to answer (format ``instruct_items``), the first ``limit`` (0: all)."""
    records = read_records(eval_file, "instruct_items")
    return records[:limit] if limit else records


def run_job(eval_file: str | os.PathLike, out_file: str | os.PathLike, *, model_dir: str | os.PathLike,
            adapter_dir: str | os.PathLike | None = None, gen: Mapping[str, Any] | None = None,
            prompt: Mapping[str, Any] | None = None, limit: int = 0, device: str | None = None,
            gpus_per_job: int = 0) -> int:
    """Answer the records of ``eval_file`` (the first ``limit``; 0: all) with the local model in
    ``model_dir`` (plus ``adapter_dir``) on at most one claimed GPU, and write ``out_file`` (JSONL).
    Returns the number of rows written."""
    from ..gpu import claim_gpus

    records = _eval_records(eval_file, limit)
    with claim_gpus(min(1, gpus_per_job)):
        rows = answer_records(model_dir, records, gen, prompt=prompt, adapter_dir=adapter_dir, device=device)
    return write_jsonl(out_file, rows)


def run_api_job(eval_file: str | os.PathLike, out_file: str | os.PathLike, *, api_entry: Mapping[str, Any],
                gen: Mapping[str, Any] | None = None, system: str | None = None, limit: int = 0) -> int:
    """Answer the records of ``eval_file`` (the first ``limit``; 0: all) through the API model
    ``api_entry`` and write ``out_file`` (JSONL). Returns the number of rows written."""
    rows = api_answer_records(api_entry, _eval_records(eval_file, limit), gen, system=system)
    return write_jsonl(out_file, rows)
