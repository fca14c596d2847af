"""The one place that keeps API keys out of messages, logs, tracebacks and stored text.

Keys are read from the environment with :func:`secret_from_env` (or handed to :func:`register`
when a caller already holds one); :func:`register_env_secrets` registers every environment value
whose variable is named like a key, for code (the collect driver) whose tools inherit the
environment. Registering a key does two things for the whole process:

- :func:`scrub` replaces the key, its URL-encoded form and every fragment of it of
  ``MIN_FRAGMENT`` (8) or more characters with ``<redacted>``; it also blanks the value of any
  ``key=``/``api_key=``/``token=`` URL parameter and of ``Bearer`` credentials, registered or not;
- every log record created from then on has its message and traceback scrubbed (a log record
  factory), and uncaught exceptions (main thread and other threads) are printed scrubbed.

Collectors and API clients turn their errors into messages with :func:`scrub` or
:func:`scrub_exception`; nothing else needs to know which keys exist.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Mapping
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"
MIN_FRAGMENT = 8

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
_installed = False
_KEY_NAME = re.compile(r"(?i)(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD)$")
_URL_PARAM = re.compile(r"(?i)([?&;](?:key|api_key|apikey|access_token|token)=|\bBearer\s+)[^&\s'\"#<>()]+")


def register(secret: str) -> str:
    """Scrub ``secret`` (stripped) from every message of this process from now on; returns it."""
    secret = (secret or "").strip()
    if secret:
        with _LOCK:
            _SECRETS.update(v for v in {secret, quote(secret, safe=""), quote_plus(secret)} if v)
        _install_hooks()
    return secret


def secret_from_env(env_name: str, env: Mapping[str, str] | None = None) -> str:
    """The value of environment variable ``env_name``, registered for scrubbing ("" when unset)."""
    env = os.environ if env is None else env
    return register(env.get(env_name, "") if env_name else "")


def register_env_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """Register every environment value of MIN_FRAGMENT+ characters whose variable is named like a
    secret (``*_API_KEY``, ``*_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD``); returns the names."""
    env = os.environ if env is None else env
    names = sorted(n for n, v in env.items() if _KEY_NAME.search(n) and len(v.strip()) >= MIN_FRAGMENT)
    for name in names:
        register(env[name])
    return names


def _spans(text: str, secret: str) -> list[tuple[int, int]]:
    """Where ``secret`` (or, when long enough, any MIN_FRAGMENT-long piece of it) occurs. A secret
    shorter than MIN_FRAGMENT is matched only where it stands alone (not inside a longer word), so
    that a short test key such as ``k`` does not blank every letter ``k`` of a message."""
    if len(secret) < MIN_FRAGMENT:
        pattern = r"(?<![A-Za-z0-9])" + re.escape(secret) + r"(?![A-Za-z0-9])"
        return [m.span() for m in re.finditer(pattern, text)]
    width = MIN_FRAGMENT
    spans = []
    for piece in {secret[i:i + width] for i in range(len(secret) - width + 1)}:
        start = text.find(piece)
        while start >= 0:
            spans.append((start, start + width))
            start = text.find(piece, start + 1)
    return spans


def scrub(text: object) -> str:
    """``text`` (made a string) with registered keys, their fragments and URL key parameters
    replaced by ``<redacted>``."""
    text = text if isinstance(text, str) else str(text)
    text = _URL_PARAM.sub(lambda m: m.group(1) + REDACTED, text)
    with _LOCK:
        secrets = list(_SECRETS)
    spans = sorted(s for secret in secrets for s in _spans(text, secret))
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out += [text[pos:start], REDACTED]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _chain_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def scrub_exception(exc: BaseException) -> BaseException:
    """``exc`` itself when neither it nor its causes mention a key; otherwise an exception of the
    same type (``RuntimeError`` when that type can't be rebuilt from a message) whose message is
    scrubbed and which carries no cause. Use as ``raise scrub_exception(exc) from None``."""
    if scrub(_chain_text(exc)) == _chain_text(exc):
        return exc
    message = scrub(str(exc))
    try:
        clean = type(exc)(message)
        if str(clean) != message:
            raise TypeError
    except Exception:
        clean = RuntimeError(f"{type(exc).__name__}: {message}")
    clean.__cause__, clean.__suppress_context__ = None, True
    return clean


def _install_hooks() -> None:
    """Scrub log records and uncaught exceptions of this process (once)."""
    global _installed
    with _LOCK:
        if _installed:
            return
        _installed = True
    make_record = logging.getLogRecordFactory()

    def scrubbed_record(*args, **kwargs):
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it itself
            return record
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return record

    logging.setLogRecordFactory(scrubbed_record)

    def excepthook(exc_type, exc, tb):
        sys.stderr.write(scrub("".join(traceback.format_exception(exc_type, exc, tb))))

    def thread_excepthook(args):
        if args.exc_type is not SystemExit:
            sys.stderr.write(f"Exception in thread {getattr(args.thread, 'name', '?')}:\n")
            excepthook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook, threading.excepthook = excepthook, thread_excepthook
