"""Shared client for OpenAI-compatible chat-completions endpoints (DeepSeek, vLLM, OpenAI, ...).

Used by the API judge, API reference opponents, the CTI API baseline and NER rephrasing::

    client = ChatClient.from_entry(config["models"]["deepseek"])   # or ChatClient(base_url=..., model=...)
    text = client.chat([{"role": "user", "content": "hi"}], temperature=0)
    texts = client.chat_many([[...], [...]], desc="judging")        # bounded concurrency + tqdm

- The key is read from the environment variable *named* in the config (``key_env``); it is only
  ever put in the ``Authorization`` header. Every error message is scrubbed by
  :mod:`tinysec.secrets` (the key and any 8+ character piece of it) before it is cut to length.
- ``timeout`` is a wall-clock deadline for each HTTP attempt, from sending the request to the
  last byte of the answer: a server that answers slowly, a byte at a time, fails at the deadline.
- 429, 5xx, timeouts and connection errors are retried with exponential backoff (tenacity),
  other errors fail at once.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import requests
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from ..secrets import REDACTED, scrub, secret_from_env

log = logging.getLogger(__name__)

Messages = Sequence[Mapping[str, str]]
EXCERPT_CHARS = 200  # characters of an error body kept in a message (after scrubbing)


class ApiError(RuntimeError):
    """A chat-completions call failed (message scrubbed); ``retryable`` tells whether a retry may help."""

    def __init__(self, message: str, status: int | None = None, retryable: bool = False):
        super().__init__(scrub(message))
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


def _excerpt(text: str) -> str:
    """``text`` on one line, scrubbed, then cut to EXCERPT_CHARS (a ``<redacted>`` mark cut at the
    end is kept whole)."""
    clean = scrub(text.replace("\n", " "))
    mark = clean.rfind(REDACTED, max(0, EXCERPT_CHARS - len(REDACTED) + 1), EXCERPT_CHARS + len(REDACTED))
    return clean[:mark + len(REDACTED)] if 0 <= mark < EXCERPT_CHARS else clean[:EXCERPT_CHARS]


def _abort(resp: requests.Response | None) -> None:
    """Shut the socket of a response still being read (best effort), which ends the read."""
    conn = getattr(getattr(resp, "raw", None), "connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class ChatClient:
    """OpenAI-compatible ``POST {base_url}/chat/completions`` with retries and bounded concurrency.

    ``key_env`` names the environment variable holding the key; an empty name means the endpoint
    needs no key (a local server). ``timeout`` (seconds) is the wall-clock deadline of every HTTP
    attempt, answer body included; ``max_retries`` retries follow the first attempt, waiting
    ``backoff * 2**n`` seconds (at most ``backoff_max``).
    """

    def __init__(self, base_url: str, model: str, key_env: str | None = "OPENAI_API_KEY",
                 concurrency: int = 4, timeout: float = 60.0, max_retries: int = 5,
                 backoff: float = 1.0, backoff_max: float = 30.0,
                 env: Mapping[str, str] | None = None):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.key_env = model, key_env or ""
        self.concurrency, self.timeout = max(1, int(concurrency)), float(timeout)
        self.max_retries, self.backoff, self.backoff_max = int(max_retries), float(backoff), float(backoff_max)
        self._key = secret_from_env(self.key_env, env)
        if self.key_env and not self._key:
            raise ValueError(f"environment variable {self.key_env} (named by key_env) is not set; "
                             f"it must hold the API key for {base_url}")
        self.stats = ApiStats()
        self._local = threading.local()

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any], **overrides: Any) -> ChatClient:
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

    def _exchange(self, payload: dict, headers: dict) -> tuple[int, str]:
        """POST ``payload``; (status, body text) read in full within ``timeout`` wall-clock seconds.

        The request runs in a helper thread; at the deadline the caller gives up (ApiError), shuts
        the socket when the answer has started, and drops this thread's session.
        """
        session, done, box = self._session(), threading.Event(), {}

        def work() -> None:
            try:
                box["resp"] = session.post(self.url, json=payload, headers=headers, timeout=self.timeout,
                                           stream=True)
                box["result"] = (box["resp"].status_code, box["resp"].text)
            except Exception as exc:  # handed to the caller below
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="api-call", daemon=True).start()
        if not done.wait(self.timeout):
            self._local.session = None
            _abort(box.get("resp"))
            raise ApiError(f"{self.url}: no complete answer within {self.timeout:g} s", retryable=True)
        if "error" in box:
            raise self._request_error(box["error"])
        return box["result"]

    def _request_error(self, exc: Exception) -> ApiError:
        """The ApiError (message scrubbed) for an exception raised while sending or reading."""
        if isinstance(exc, requests.Timeout):
            return ApiError(f"{self.url}: no answer within {self.timeout:g} s", retryable=True)
        retryable = isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                                     requests.exceptions.ContentDecodingError))
        what = "connection failed" if isinstance(exc, requests.ConnectionError) else "request failed"
        return ApiError(f"{self.url}: {what} ({type(exc).__name__}: {_excerpt(str(exc))})", retryable=retryable)

    def _post_once(self, payload: dict) -> str:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        self.stats.add("requests")
        status, text = self._exchange(payload, headers)
        if status != 200:
            raise ApiError(f"{self.url}: HTTP {status}: {_excerpt(text)}", status=status,
                           retryable=status == 429 or status >= 500)
        try:
            content = json.loads(text)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ApiError(f"{self.url}: response is not a chat completion: {_excerpt(text)}", status=200,
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
