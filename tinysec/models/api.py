"""Shared client for OpenAI-compatible chat-completions endpoints (DeepSeek, vLLM, OpenAI, ...).

Used by the API judge, API reference opponents, the CTI API baseline and NER rephrasing::

    client = ChatClient.from_entry(config["models"]["deepseek"])   # or ChatClient(base_url=..., model=...)
    text = client.chat([{"role": "user", "content": "hi"}], temperature=0)
    texts = client.chat_many([[...], [...]], desc="judging")        # bounded concurrency + tqdm

- The key is read from the environment variable *named* in the config (``key_env``); it is only
  ever put in the ``Authorization`` header and is scrubbed from every error message.
- Every call has a timeout; 429, 5xx, timeouts and connection errors are retried with
  exponential backoff (tenacity), other errors fail at once.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import requests
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)

Messages = Sequence[Mapping[str, str]]


class ApiError(RuntimeError):
    """A chat-completions call failed; ``retryable`` tells whether a retry may help."""

    def __init__(self, message: str, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status, self.retryable = status, retryable


@dataclass
class ApiStats:
    """Counters of one client (thread-safe): requests sent, retries, failures."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        return {"requests": self.requests, "retries": self.retries, "failures": self.failures}


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.retryable


class ChatClient:
    """OpenAI-compatible ``POST {base_url}/chat/completions`` with retries and bounded concurrency.

    ``key_env`` names the environment variable holding the key; an empty name means the endpoint
    needs no key (a local server). ``timeout`` (seconds) applies to every call; ``max_retries``
    retries follow the first attempt, waiting ``backoff * 2**n`` seconds (at most ``backoff_max``).
    """

    def __init__(self, base_url: str, model: str, key_env: str | None = "OPENAI_API_KEY",
                 concurrency: int = 4, timeout: float = 60.0, max_retries: int = 5,
                 backoff: float = 1.0, backoff_max: float = 30.0,
                 env: Mapping[str, str] | None = None):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.key_env = model, key_env or ""
        self.concurrency, self.timeout = max(1, int(concurrency)), float(timeout)
        self.max_retries, self.backoff, self.backoff_max = int(max_retries), float(backoff), float(backoff_max)
        env = os.environ if env is None else env
        self._key = ""
        if self.key_env:
            self._key = env.get(self.key_env, "")
            if not self._key:
                raise ValueError(f"environment variable {self.key_env} (named by key_env) is not set; "
                                 f"it must hold the API key for {base_url}")
        self.stats = ApiStats()
        self._local = threading.local()

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any], **overrides: Any) -> "ChatClient":
        """Client for a config model entry (``{source: api:..., api: {...}}``) or its ``api`` block."""
        api = dict(entry.get("api", entry))
        if "base_url" not in api or "model" not in api:
            raise ValueError("an API model entry needs api.base_url and api.model")
        keys = ("base_url", "model", "key_env", "concurrency", "timeout", "max_retries", "backoff", "backoff_max")
        kwargs = {k: api[k] for k in keys if k in api}
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:  # never shows the key
        return f"ChatClient(url={self.url!r}, model={self.model!r}, key_env={self.key_env!r})"

    # ------------------------------------------------------------------ one call
    def _session(self) -> requests.Session:
        sess = getattr(self._local, "session", None)
        if sess is None:
            sess = self._local.session = requests.Session()
        return sess

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _post_once(self, payload: dict) -> str:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        self.stats.add("requests")
        try:
            resp = self._session().post(self.url, json=payload, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            raise ApiError(f"{self.url}: no answer within {self.timeout:g} s", retryable=True) from None
        except requests.ConnectionError as exc:
            raise ApiError(self._scrub(f"{self.url}: connection failed ({type(exc).__name__})"),
                           retryable=True) from None
        if resp.status_code != 200:
            retryable = resp.status_code == 429 or resp.status_code >= 500
            body = self._scrub(resp.text[:200].replace("\n", " "))
            raise ApiError(f"{self.url}: HTTP {resp.status_code}: {body}", status=resp.status_code,
                           retryable=retryable)
        try:
            data = resp.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            body = self._scrub(resp.text[:200].replace("\n", " "))
            raise ApiError(f"{self.url}: response is not a chat completion: {body}", status=200,
                           retryable=True) from None
        return content if isinstance(content, str) else ""

    def _log_retry(self, state) -> None:
        self.stats.add("retries")
        exc = state.outcome.exception() if state.outcome else None
        log.warning("retry %d/%d after %s", state.attempt_number, self.max_retries, exc)

    def chat(self, messages: Messages, **params: Any) -> str:
        """One completion (the assistant's text) for ``messages``; extra ``params`` go in the body
        (``temperature``, ``max_tokens``, ...). Raises :class:`ApiError` once retries are spent."""
        payload = {"model": self.model, "messages": [dict(m) for m in messages], **params}
        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_exponential(multiplier=self.backoff, max=self.backoff_max),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._post_once, payload)
        except ApiError:
            self.stats.add("failures")
            raise

    # ------------------------------------------------------------------ many calls
    def chat_many(self, batch: Sequence[Messages], desc: str = "api calls", return_exceptions: bool = False,
                  **params: Any) -> list[str | ApiError]:
        """Completions for many conversations, at most ``concurrency`` in flight, in input order.

        With ``return_exceptions`` a failed conversation yields its :class:`ApiError` instead of
        aborting the batch.
        """
        from tqdm.auto import tqdm

        results: list[Any] = [None] * len(batch)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self.chat, msgs, **params): i for i, msgs in enumerate(batch)}
            try:
                for fut in tqdm(as_completed(futures), total=len(futures), desc=desc):
                    i = futures[fut]
                    try:
                        results[i] = fut.result()
                    except ApiError as exc:
                        if not return_exceptions:
                            raise
                        results[i] = exc
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
        return results
