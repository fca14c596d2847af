"""The three judges. Each turns a list of :class:`PairTask` into positional verdicts.

- :class:`ReferenceJudge` (offline default): cosine similarity of each answer to the item's
  reference answer with a sentence encoder; a difference below ``margin`` is a tie.
- :class:`ApiJudge`: an OpenAI-compatible chat-completions endpoint (``tinysec.models.api``).
- :class:`HFJudge`: a local causal LM.

The LLM judges share :class:`LLMJudge`: render the prompt, parse the reply, re-ask invalid
replies up to ``max_reasks`` times, then record ``invalid``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from ..schema import schema_defaults
from ..secrets import scrub
from .cache import content_key
from .prompt import PairTask, PromptTemplate
from .verdict import INVALID, TIE, A, B, parse_verdict

log = logging.getLogger(__name__)


@dataclass
class Judgment:
    """A positional verdict (``A``/``B``/``tie``/``invalid``), the judge's last raw reply, the
    number of asks, and ``error`` when the judge could not be reached (never cached)."""

    verdict: str
    raw: str = ""
    asks: int = 1
    error: bool = False

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "raw": self.raw, "asks": self.asks}


class Judge:
    kind = "?"

    def identity(self) -> dict:
        """Everything (besides the task) that decides a verdict; part of every cache key."""
        raise NotImplementedError

    def key(self, task: PairTask) -> str:
        raise NotImplementedError

    def judge(self, tasks: list[PairTask]) -> list[Judgment]:
        raise NotImplementedError


class ReferenceJudge(Judge):
    """Cosine similarity to the reference answer; ``|sim_A - sim_B| < margin`` is a tie."""

    kind = "reference"

    def __init__(self, embedder_path: str | os.PathLike, embedder_name: str, margin: float = 0.02,
                 device: str = "cpu"):
        self.path, self.name, self.margin, self.device = str(embedder_path), embedder_name, float(margin), device
        self._embedder = None

    def identity(self) -> dict:
        return {"kind": self.kind, "embedder": self.name, "margin": self.margin}

    def key(self, task: PairTask) -> str:
        return content_key(self.identity(), task.reference, task.first, task.second)

    def judge(self, tasks: list[PairTask]) -> list[Judgment]:
        if not tasks:
            return []
        if any(not t.reference.strip() for t in tasks):
            raise ValueError("the reference judge needs a non-empty reference answer for every item")
        if self._embedder is None:
            from ..models.embed import SentenceEmbedder

            self._embedder = SentenceEmbedder(self.path, device=self.device)
        import numpy as np
        from tqdm.auto import tqdm

        texts = sorted({t.reference for t in tasks} | {t.first for t in tasks} | {t.second for t in tasks})
        index = {t: i for i, t in enumerate(texts)}
        step = 256
        vec = np.concatenate([self._embedder.encode(texts[i:i + step])
                              for i in tqdm(range(0, len(texts), step), desc="judging (reference, embedding)")])
        out = []
        for t in tasks:
            ref = vec[index[t.reference]]
            sa, sb = float(vec[index[t.first]] @ ref), float(vec[index[t.second]] @ ref)
            verdict = TIE if sa == sb or abs(sa - sb) < self.margin else (A if sa > sb else B)
            out.append(Judgment(verdict, raw=f"sim_A={sa:.4f} sim_B={sb:.4f}"))
        return out


class LLMJudge(Judge):
    """Prompt, parse, re-ask: subclasses implement :meth:`complete` for a batch of conversations."""

    def __init__(self, template: PromptTemplate, max_reasks: int = 2):
        self.template, self.max_reasks = template, int(max_reasks)

    def key(self, task: PairTask) -> str:
        return content_key(self.identity(), self.template.reask, self.template.render(task))

    def complete(self, conversations: list[list[dict]]) -> list[str | Exception]:
        raise NotImplementedError

    def judge(self, tasks: list[PairTask]) -> list[Judgment]:
        convs = [[{"role": "user", "content": self.template.render(t)}] for t in tasks]
        results: list[Judgment | None] = [None] * len(tasks)
        pending = list(range(len(tasks)))
        for ask in range(1, self.max_reasks + 2):
            replies = self.complete([convs[i] for i in pending])
            retry = []
            for i, reply in zip(pending, replies):
                if isinstance(reply, Exception):
                    error = scrub(f"{type(reply).__name__}: {reply}")
                    log.error("judge call failed for task %d: %s", i, error)
                    results[i] = Judgment(INVALID, raw=f"error: {error}", asks=ask, error=True)
                    continue
                verdict = parse_verdict(reply)
                results[i] = Judgment(verdict, raw=reply, asks=ask)
                if verdict == INVALID and ask <= self.max_reasks:
                    convs[i] = convs[i] + [{"role": "assistant", "content": reply},
                                           {"role": "user", "content": self.template.reask}]
                    retry.append(i)
            if retry:
                log.info("re-asking %d of %d judgments with unparseable replies", len(retry), len(pending))
            pending = retry
            if not pending:
                break
        return results


class ApiJudge(LLMJudge):
    """An OpenAI-compatible endpoint; the key is read from the environment variable named in the
    model's ``api.key_env``."""

    kind = "api"

    def __init__(self, model_name: str, api: dict[str, Any], template: PromptTemplate, max_reasks: int = 2,
                 temperature: float = 0.0, max_tokens: int = 16, env=None):
        from ..models.api import ChatClient

        super().__init__(template, max_reasks)
        self.model_name, self.api = model_name, dict(api)
        self.params = {"temperature": float(temperature), "max_tokens": int(max_tokens)}
        self.client = ChatClient.from_entry(self.api, env=env)

    def identity(self) -> dict:
        return {"kind": self.kind, "base_url": self.api["base_url"], "model": self.api["model"], **self.params}

    def complete(self, conversations):
        return self.client.chat_many(conversations, desc="judging (api)", return_exceptions=True, **self.params)


class HFJudge(LLMJudge):
    """A local causal LM from a ``save_pretrained`` folder; greedy first ask, sampled re-asks."""

    kind = "hf"

    def __init__(self, model_name: str, path: str | os.PathLike, template: PromptTemplate, max_reasks: int = 2,
                 max_tokens: int = 16, batch_size: int = 8, device: str = "cpu", seed: int = 0):
        super().__init__(template, max_reasks)
        self.model_name, self.path, self.max_tokens = model_name, str(path), int(max_tokens)
        self.batch_size, self.device, self.seed = int(batch_size), device, seed
        self._model = self._tok = None
        self._calls = 0

    def identity(self) -> dict:
        return {"kind": self.kind, "model": self.model_name, "max_tokens": self.max_tokens, "seed": self.seed}

    def _load(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..models.sources import compute_dtype

        self._tok = AutoTokenizer.from_pretrained(self.path, padding_side="left")
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        self._model = AutoModelForCausalLM.from_pretrained(self.path, dtype=compute_dtype(self.device))
        self._model.to(self.device).eval()
        torch.manual_seed(self.seed)

    def _prompt(self, conv: list[dict]) -> str:
        if getattr(self._tok, "chat_template", None):
            return self._tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in conv) + "\n\nAssistant:"

    def complete(self, conversations):
        import torch
        from tqdm.auto import tqdm

        if self._model is None:
            self._load()
        sample = self._calls > 0  # re-asks are sampled, or a greedy judge would repeat itself
        self._calls += 1
        out: list[str | Exception] = []
        for i in tqdm(range(0, len(conversations), self.batch_size), desc="judging (hf)"):
            prompts = [self._prompt(c) for c in conversations[i:i + self.batch_size]]
            enc = self._tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            with torch.inference_mode():
                gen = self._model.generate(**enc, max_new_tokens=self.max_tokens, do_sample=sample,
                                           temperature=0.7 if sample else None, top_p=None, top_k=None,
                                           pad_token_id=self._tok.pad_token_id)
            out.extend(self._tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True))
        return out


def make_judge(spec: dict[str, Any], models: dict[str, dict], model_dir: str | os.PathLike | None = None,
               embedder: str | None = None, template: str | os.PathLike | None = None,
               reask: str | os.PathLike | None = None, env=None) -> Judge:
    """Build a judge from its config entry (``judge.judges.<name>``).

    ``model_dir`` is the weights folder of the judge's model (hf) or of the embedder (reference).
    Settings ``spec`` leaves out take the defaults of the ``judge.judges`` schema.
    """
    spec = {**schema_defaults("judge.schema.yaml", "judges", "*"), **spec}
    kind = spec.get("kind")
    if kind == "reference":
        if model_dir is None:
            raise ValueError("the reference judge needs the embedder's folder")
        return ReferenceJudge(model_dir, embedder or "?", margin=spec["margin"])
    prompt = PromptTemplate(*(p for p in (template, reask) if p is not None)) if template else PromptTemplate()
    if kind == "api":
        name = spec["model"]
        entry = models.get(name)
        if entry is None or "api" not in entry:
            raise ValueError(f"api judge model '{name}' must be a models entry with an 'api' block")
        return ApiJudge(name, entry["api"], prompt, max_reasks=spec["max_reasks"],
                        temperature=spec["temperature"], max_tokens=spec["max_tokens"], env=env)
    if kind == "hf":
        if model_dir is None:
            raise ValueError("the hf judge needs its model folder")
        return HFJudge(spec["model"], model_dir, prompt, max_reasks=spec["max_reasks"],
                       max_tokens=spec["max_tokens"], batch_size=spec["batch_size"])
    raise ValueError(f"unknown judge kind {kind!r} (expected reference, api or hf)")
