"""Prompt formatting shared by training and generation, so both see exactly the same text.

A record is a dict with ``instruction``, ``input`` (may be empty) and, for training, ``output``.

- Models whose tokenizer has a chat template use it (``chat_template: auto``): the instruction and
  the input become one user message, the output the assistant message.
- Base models without one (or ``chat_template: alpaca`` in the model entry) use a configurable
  text template, Alpaca style by default (:data:`ALPACA`).

:meth:`PromptFormat.encode` returns token ids and labels where every prompt token is masked with
``-100``, so the loss is computed on answer tokens only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

IGNORE_INDEX = -100

ALPACA: dict[str, str] = {
    "with_input": (
        "Below is an instruction that describes a task, paired with an input that provides further "
        "context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"),
    "no_input": (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"),
}


def user_message(instruction: str, input: str = "") -> str:
    """The user turn of a chat: the instruction, then the input (when any) after a blank line."""
    instruction, input = instruction.strip(), (input or "").strip()
    return f"{instruction}\n\n{input}" if input else instruction


@dataclass
class PromptFormat:
    """Renders records into prompt text and training examples for one tokenizer."""

    tokenizer: Any
    use_chat: bool
    template: Mapping[str, str] = field(default_factory=lambda: dict(ALPACA))
    system: str | None = None

    # ------------------------------------------------------------------ text
    def _messages(self, instruction: str, input: str) -> list[dict]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": user_message(instruction, input)}]

    def prompt(self, instruction: str, input: str = "") -> str:
        """Prompt text up to where the answer starts."""
        if self.use_chat:
            return self.tokenizer.apply_chat_template(self._messages(instruction, input), tokenize=False,
                                                      add_generation_prompt=True)
        key = "with_input" if (input or "").strip() else "no_input"
        return self.template[key].format(instruction=instruction.strip(), input=(input or "").strip())

    def answer_text(self, instruction: str, input: str, output: str) -> str:
        """Text that follows the prompt in a training example: the output and its end marker."""
        if self.use_chat:
            prompt = self.prompt(instruction, input)
            msgs = self._messages(instruction, input) + [{"role": "assistant", "content": output.strip()}]
            full = self.tokenizer.apply_chat_template(msgs, tokenize=False)
            if not full.startswith(prompt):
                raise ValueError("the chat template renders the assistant turn with a different prefix "
                                 "than the generation prompt; set chat_template: alpaca for this model")
            return full[len(prompt):]
        return output.strip() + (self.tokenizer.eos_token or "")

    # ------------------------------------------------------------------ tokens
    def prompt_ids(self, instruction: str, input: str = "") -> list[int]:
        """Token ids of the prompt, exactly as generation feeds them."""
        text = self.prompt(instruction, input)
        # chat templates write their own BOS; plain templates get the tokenizer's special tokens
        ids = self.tokenizer(text, add_special_tokens=not self.use_chat)["input_ids"]
        return list(ids)

    def encode(self, record: Mapping[str, Any], cutoff: int) -> dict[str, list[int]] | None:
        """``{input_ids, labels}`` of one training record, at most ``cutoff`` tokens.

        Prompt tokens get label ``-100``. Long examples are cut at ``cutoff`` from the right; an
        example whose answer would be cut away entirely returns ``None``.
        """
        instruction, input = record["instruction"], record.get("input", "") or ""
        p = self.prompt_ids(instruction, input)
        a = list(self.tokenizer(self.answer_text(instruction, input, record["output"]),
                                add_special_tokens=False)["input_ids"])
        ids = (p + a)[:cutoff]
        if len(ids) <= len(p):
            return None
        labels = [IGNORE_INDEX] * len(p) + ids[len(p):]
        return {"input_ids": ids, "labels": labels}


def prompt_format(tokenizer: Any, chat_template: str = "auto", template: Mapping[str, str] | None = None,
                  system: str | None = None) -> PromptFormat:
    """Choose how a model is prompted.

    ``chat_template``: ``auto`` (the tokenizer's chat template when it has one, else the text
    template), ``chat`` (require the tokenizer's template) or ``alpaca``/``template`` (always the
    text template). ``template`` has keys ``with_input`` and ``no_input`` with ``{instruction}`` and
    ``{input}`` placeholders (default :data:`ALPACA`).
    """
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if chat_template == "auto":
        use_chat = has_chat
    elif chat_template == "chat":
        if not has_chat:
            raise ValueError("chat_template: chat was asked for but the tokenizer has no chat template")
        use_chat = True
    elif chat_template in ("alpaca", "template"):
        use_chat = False
    else:
        raise ValueError(f"unknown chat_template {chat_template!r}; use auto, chat or alpaca")
    tpl = dict(template) if template else dict(ALPACA)
    for key in ("with_input", "no_input"):
        if key not in tpl:
            raise ValueError(f"prompt template lacks the '{key}' entry")
    return PromptFormat(tokenizer=tokenizer, use_chat=use_chat, template=tpl, system=system)
