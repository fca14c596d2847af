"""A loopback OpenAI-compatible server for tests (``POST /v1/chat/completions`` on 127.0.0.1).

    # in a test (tests/ is on sys.path): from openai_server import OpenAIServer
    with OpenAIServer(responder=lambda body: "A", script=["429", "hang", "text:garbage"], key="sk-test") as srv:
        client = ChatClient(srv.base_url, "m", key_env="MY_KEY", env={"MY_KEY": "sk-test"})

Each request first consumes the next ``script`` step (when any are left), then falls back to
``responder(body) -> str`` (the assistant's text). Steps:

- ``"429"`` / ``"500"`` / any status code string: that HTTP status with a JSON error body
- ``"hang"``: sleep ``hang_seconds`` before answering normally (to trip client timeouts)
- ``"bad_json"``: HTTP 200 with a body that is not JSON
- ``"text:<content>"``: a valid completion whose content is ``<content>``
- a callable ``step(body) -> str``: a valid completion with its return value

Requests with a wrong ``Authorization: Bearer`` (when ``key`` is set) get 401. Every request body
is kept in ``srv.requests``; ``srv.calls`` counts them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class OpenAIServer:
    def __init__(self, responder: Callable[[dict], str] | None = None, script: Iterable[Any] = (),
                 key: str | None = None, hang_seconds: float = 3.0):
        self.responder = responder or (lambda body: "ok")
        self.script = deque(script)
        self.key, self.hang_seconds = key, hang_seconds
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def push(self, *steps: Any) -> None:
        """Queue more script steps."""
        with self._lock:
            self.script.extend(steps)

    # ------------------------------------------------------------------ request handling
    def _next_step(self) -> Any:
        with self._lock:
            return self.script.popleft() if self.script else None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            return self._send(handler, 404, {"error": {"message": "not found"}})
        length = int(handler.headers.get("Content-Length") or 0)
        try:
            body = json.loads(handler.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            return self._send(handler, 400, {"error": {"message": "body is not JSON"}})
        with self._lock:
            self.requests.append(body)
        if self.key is not None and handler.headers.get("Authorization") != f"Bearer {self.key}":
            return self._send(handler, 401, {"error": {"message": "invalid key"}})
        step = self._next_step()
        if isinstance(step, str) and step.isdigit():
            return self._send(handler, int(step), {"error": {"message": f"scripted {step}"}})
        if step == "hang":
            time.sleep(self.hang_seconds)
            step = None
        if step == "bad_json":
            return self._send_raw(handler, 200, b"<html>upstream hiccup</html>", "text/html")
        if isinstance(step, str) and step.startswith("text:"):
            content = step[len("text:"):]
        elif callable(step):
            content = step(body)
        else:
            content = self.responder(body)
        self._send(handler, 200, {
            "id": f"chatcmpl-{self.calls}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        })

    def _send(self, handler, status: int, obj: dict) -> None:
        self._send_raw(handler, status, json.dumps(obj).encode(), "application/json")

    def _send_raw(self, handler, status: int, data: bytes, ctype: str) -> None:
        with self._lock:
            self.statuses.append(status)
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before the answer came

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> OpenAIServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                server._handle(self)

            def log_message(self, *args):  # keep test output quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
