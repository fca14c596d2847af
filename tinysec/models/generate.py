"""Answer generation for instruction records: batched local models and OpenAI-compatible APIs.

Public API (also used by the CTI section):

- :func:`load_for_generation` loads a base model, optionally with a PEFT adapter on top.
- :func:`generate_batched` generates for many prompts: prompts sorted by length, left padding,
  KV cache, greedy by default (seeded sampling otherwise), ``max_new_tokens`` capped.
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
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..io import read_jsonl, write_jsonl
from .prompts import prompt_format, user_message

log = logging.getLogger(__name__)

#: Defaults of the generation dict.
GEN_DEFAULTS: dict[str, Any] = {
    "max_new_tokens": 128,
    "batch_size": 16,
    "do_sample": False,
    "temperature": 0.7,
    "top_p": 0.9,
    "repetition_penalty": 1.0,
    "seed": 0,
    "stop": [],            # extra stop strings: the answer is cut at the first one
}


def merge_gen(gen: Mapping[str, Any] | None) -> dict[str, Any]:
    """:data:`GEN_DEFAULTS` overlaid with ``gen``."""
    return {**GEN_DEFAULTS, **(gen or {})}


def load_for_generation(model_dir: str | os.PathLike, adapter_dir: str | os.PathLike | None = None,
                        device: str | None = None):
    """``(model, tokenizer)`` in eval mode; ``adapter_dir`` adds a PEFT adapter (merged for speed).

    A fine-tuned full model is just another ``model_dir``. The tokenizer comes from the adapter
    folder when it has one (training saves it there), else from ``model_dir``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .sources import compute_dtype, default_device

    device = device or default_device()
    tok_dir = adapter_dir if adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").is_file() else model_dir
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=compute_dtype(device))
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    model.to(device).eval()
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


def generate_batched(model, tokenizer, prompt_ids: Sequence[Sequence[int]], gen: Mapping[str, Any] | None = None,
                     progress: bool = True) -> list[dict[str, Any]]:
    """Generate a continuation for every tokenised prompt, in input order.

    Prompts are sorted by length (longest first, so memory trouble shows at once) and run in
    batches of ``gen['batch_size']`` with left padding and the KV cache. Each result is
    ``{text, n_tokens, token_ids, seconds}``: ``n_tokens`` counts generated tokens up to and including the
    stop token, ``token_ids`` are those tokens, ``seconds`` is the batch's wall time shared out by
    generated tokens.
    """
    import torch
    from tqdm.auto import tqdm

    g = merge_gen(gen)
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stop_ids = _stop_ids(model, tokenizer)
    order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))
    results: list[dict[str, Any] | None] = [None] * len(prompt_ids)
    kwargs = dict(max_new_tokens=int(g["max_new_tokens"]), do_sample=bool(g["do_sample"]), use_cache=True,
                  pad_token_id=pad_id, eos_token_id=stop_ids or None,
                  repetition_penalty=float(g["repetition_penalty"]))
    if g["do_sample"]:
        kwargs.update(temperature=float(g["temperature"]), top_p=float(g["top_p"]))
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    torch.manual_seed(int(g["seed"]))
    bs = max(1, int(g["batch_size"]))
    bar = tqdm(total=len(order), desc="generating", disable=not progress, mininterval=5)
    for start in range(0, len(order), bs):
        idx = order[start:start + bs]
        width = max(len(prompt_ids[i]) for i in idx)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            p = list(prompt_ids[i])
            ids[row, width - len(p):] = torch.tensor(p)
            mask[row, width - len(p):] = 1
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
        secs = time.perf_counter() - t0
        new = out[:, width:].tolist()
        counts = []
        for row in new:
            n = len(row)
            for j, t in enumerate(row):
                if t in stop_ids:
                    n = j + 1
                    break
            counts.append(n)
        total = max(1, sum(counts))
        for row, i in enumerate(idx):
            toks = [t for t in new[row][:counts[row]] if t not in stop_ids and t != pad_id]
            text = tokenizer.decode(toks, skip_special_tokens=True)
            for s in g["stop"]:
                if s and s in text:
                    text = text[:text.index(s)]
            results[i] = {"text": text.strip(), "n_tokens": counts[row], "token_ids": new[row][:counts[row]],
                          "seconds": round(secs * counts[row] / total, 4)}
        bar.update(len(idx))
    bar.close()
    return results  # type: ignore[return-value]


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
    records = read_jsonl(eval_file)
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
