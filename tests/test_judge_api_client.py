"""The shared OpenAI-compatible client against a real loopback server."""

from __future__ import annotations

import logging

import pytest
from openai_server import OpenAIServer

from tinysec.models.api import ApiError, ChatClient

KEY = "sk-test-SECRET-123"


def client_for(srv: OpenAIServer, **kw) -> ChatClient:
    kw = {"timeout": 0.5, "max_retries": 3, "backoff": 0.01, "backoff_max": 0.05, **kw}
    return ChatClient(srv.base_url, "judge-model", key_env="TEST_KEY", env={"TEST_KEY": KEY}, **kw)


def test_retries_on_429_5xx_timeout_and_bad_json(caplog):
    with OpenAIServer(responder=lambda b: "hello " + b["messages"][-1]["content"],
                      script=["429", "503", "hang", "bad_json"], key=KEY, hang_seconds=1.5) as srv:
        client = client_for(srv, max_retries=4)
        with caplog.at_level(logging.WARNING):
            assert client.chat([{"role": "user", "content": "x"}], temperature=0) == "hello x"
    assert srv.calls == 5
    assert client.stats.retries == 4 and client.stats.failures == 0
    assert srv.requests[-1]["model"] == "judge-model" and srv.requests[-1]["temperature"] == 0
    assert KEY not in caplog.text


def test_gives_up_after_max_retries_without_leaking_key():
    with OpenAIServer(script=["500"] * 10, key=KEY) as srv:
        client = client_for(srv, max_retries=2)
        with pytest.raises(ApiError) as err:
            client.chat([{"role": "user", "content": "x"}])
    assert srv.calls == 3 and err.value.status == 500
    assert KEY not in str(err.value) and KEY not in repr(client)


def test_client_errors_are_not_retried():
    with OpenAIServer(key="another-key") as srv:
        client = client_for(srv)
        with pytest.raises(ApiError, match="HTTP 401"):
            client.chat([{"role": "user", "content": "x"}])
    assert srv.calls == 1


def test_chat_many_keeps_order_and_bounds_concurrency():
    import threading
    import time

    active, peak, lock = [0], [0], threading.Lock()

    def slow(body):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return body["messages"][0]["content"].upper()

    with OpenAIServer(responder=slow, key=KEY) as srv:
        client = client_for(srv, concurrency=3)
        out = client.chat_many([[{"role": "user", "content": f"q{i}"}] for i in range(12)])
    assert out == [f"Q{i}" for i in range(12)]
    assert 1 < peak[0] <= 3


def test_missing_key_names_the_variable():
    with pytest.raises(ValueError, match="NO_SUCH_KEY_VAR"):
        ChatClient("http://127.0.0.1:9/v1", "m", key_env="NO_SUCH_KEY_VAR", env={})


def test_from_entry_reads_api_block():
    entry = {"source": "api:x", "api": {"base_url": "http://127.0.0.1:9/v1/", "model": "m",
                                        "key_env": "K", "timeout": 7}}
    client = ChatClient.from_entry(entry, env={"K": "v"})
    assert client.url == "http://127.0.0.1:9/v1/chat/completions" and client.timeout == 7
