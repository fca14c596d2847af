"""Continuous-batching generation (tinysec.models.generate) against plain one-at-a-time
``model.generate`` on a tiny random-weight Llama: token-identical greedy outputs, with prompts of
different lengths, rows stopping early at EOS and rows refilled while others still decode."""

from __future__ import annotations

import pytest
import torch

from tinysec.models import generate
from tinysec.models.tiny import build_random_model

WORDS = ("phishing attachment powershell credential lateral movement exfiltration registry nginx port "
         "domain injection remote services encrypted channel").split()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple:
    torch.set_num_threads(1)
    path = build_random_model("llama", tmp_path_factory.mktemp("gen") / "llama", hidden=64, layers=2, heads=4)
    model, tok = generate.load_for_generation(path, device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():  # a random tied-embedding model only repeats the last token; spread it
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model, tok


def _prompts(tok, n: int) -> list[list[int]]:
    """``n`` prompts of clearly different lengths (3 to ~40 tokens)."""
    out = []
    for i in range(n):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(1 + (i * 5) % 17)]
        out.append(tok(" ".join(words))["input_ids"])
    return out


def _one_at_a_time(model, tok, prompts, max_new: int) -> list[list[int]]:
    """Plain HF greedy ``generate``, one prompt per call, cut after the first stop token."""
    stop = generate._stop_ids(model, tok)
    outs = []
    with torch.inference_mode():
        for p in prompts:
            ids = torch.tensor([p])
            new = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new,
                                 do_sample=False, eos_token_id=stop, pad_token_id=tok.pad_token_id,
                                 temperature=None, top_p=None, top_k=None)[0, len(p):].tolist()
            cut = next((j + 1 for j, t in enumerate(new) if t in stop), len(new))
            outs.append(new[:cut])
    return outs


def test_greedy_matches_one_at_a_time_with_refills_and_early_eos(tiny):
    model, tok = tiny
    prompts = _prompts(tok, 11)
    assert len({len(p) for p in prompts}) >= 6
    max_new = 12
    plain = _one_at_a_time(model, tok, prompts, max_new)
    # make a token that some (not all) rows emit mid-answer an extra EOS, so rows end at different steps
    counts: dict[int, int] = {}
    for row in plain:
        for t in set(row[1:-2]):
            counts[t] = counts.get(t, 0) + 1
    eos = min(counts, key=lambda t: (abs(counts[t] - len(plain) / 3), t))
    old = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = [old, eos]
    try:
        plain = _one_at_a_time(model, tok, prompts, max_new)
        ours = generate.generate_batched(model, tok, prompts, {"max_new_tokens": max_new, "batch_size": 4},
                                         progress=False)
    finally:
        model.generation_config.eos_token_id = old
    assert [o["token_ids"] for o in ours] == plain
    lengths = [o["n_tokens"] for o in ours]
    assert min(lengths) < max_new and max(lengths) == max_new  # some rows ended early, some ran to the cap
    assert all(o["token_ids"][-1] in (old, eos) for o in ours if o["n_tokens"] < max_new)
    texts = [tok.decode([t for t in o["token_ids"] if t not in (old, eos)], skip_special_tokens=True).strip()
             for o in ours]
    assert [o["text"] for o in ours] == texts


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_batch_size_does_not_change_greedy_tokens(tiny, batch_size):
    model, tok = tiny
    prompts = _prompts(tok, 7)
    plain = _one_at_a_time(model, tok, prompts, 9)
    ours = generate.generate_batched(model, tok, prompts, {"max_new_tokens": 9, "batch_size": batch_size},
                                     progress=False)
    assert [o["token_ids"] for o in ours] == plain
    assert len({tuple(t) for t in plain}) > 1


def test_seeded_sampling_is_reproducible_and_seed_dependent(tiny):
    model, tok = tiny
    prompts = _prompts(tok, 5)
    gen = {"max_new_tokens": 10, "batch_size": 2, "do_sample": True, "temperature": 1.5, "top_p": 0.95,
           "repetition_penalty": 1.2}
    a = generate.generate_batched(model, tok, prompts, {**gen, "seed": 1}, progress=False)
    b = generate.generate_batched(model, tok, prompts, {**gen, "seed": 1}, progress=False)
    c = generate.generate_batched(model, tok, prompts, {**gen, "seed": 2}, progress=False)
    assert [x["token_ids"] for x in a] == [x["token_ids"] for x in b]
    assert [x["token_ids"] for x in a] != [x["token_ids"] for x in c]


def test_bad_generation_settings_are_named(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate.generate_batched(model, tok, [[5, 6]], {"max_new_tokens": 0}, progress=False)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        generate.generate_batched(model, tok, [[5, 6], []], {"max_new_tokens": 2}, progress=False)


def test_sliding_window_model_matches_one_at_a_time(tiny):
    """Gemma-3 layout (sliding-window layers, one KV head): prompts longer than the window, left padded."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    _, tok = tiny
    torch.manual_seed(1)
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                           num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=6,
                           layer_types=["sliding_attention"] * 3 + ["full_attention"], attn_implementation="sdpa",
                           eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id)
    model = Gemma3ForCausalLM(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    model.generation_config.eos_token_id, model.generation_config.pad_token_id = tok.eos_token_id, tok.pad_token_id
    prompts = _prompts(tok, 7)
    assert max(map(len, prompts)) > 3 * cfg.sliding_window
    plain = _one_at_a_time(model, tok, prompts, 12)
    ours = generate.generate_batched(model, tok, prompts, {"max_new_tokens": 12, "batch_size": 3}, progress=False)
    assert [o["token_ids"] for o in ours] == plain
