"""Secrets sweep: with distinctive fake keys in the environment, drive every error path of every
OSINT collector (Shodan search and host, WHOIS, DNS, nmap, through the collect driver) and of
the API client (directly, through the judge and through API answers) against real servers on
127.0.0.1, plus a real snakemake run of ``osint_collect`` that fails on a Shodan 500 whose body
echoes the key. Then neither key nor any 8-character piece of it may appear in exceptions,
tracebacks, log records, captured stdout/stderr, or any file of the run (logs/, .snakemake/log).

Also: the API timeout is a wall-clock deadline (a server dripping its answer fails at it).
"""

from __future__ import annotations

import json
import logging
import secrets as stdlib_secrets
import socket
import stat
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from conftest import TINY, run_snakemake
from openai_server import OpenAIServer
from test_osint_collectors import DNSResponder, WhoisServer, loopback_only  # noqa: F401 (autouse fixture)

from tinysec.judge.judges import make_judge
from tinysec.judge.prompt import PairTask
from tinysec.models.api import ApiError, ChatClient
from tinysec.models.generate import api_answer_records
from tinysec.osint.collect import collect
from tinysec.osint.targets import slug
from tinysec.secrets import MIN_FRAGMENT, REDACTED, scrub

LOOPBACK = "127.0.0.1"
# random per run, from an alphabet where an 8-character piece never turns up by chance
SHODAN_KEY = "shk_" + stdlib_secrets.token_urlsafe(24)
API_KEY = "sk-" + stdlib_secrets.token_urlsafe(24)
KEY_ENVS = {"SHODAN_API_KEY": SHODAN_KEY, "OPENAI_API_KEY": API_KEY, "DEEPSEEK_API_KEY": API_KEY,
            "TINYSEC_SWEEP_API_KEY": API_KEY}


def leaks(text: str) -> list[str]:
    """Every piece (MIN_FRAGMENT characters or more) of either key found in ``text``."""
    return sorted({key[i:i + MIN_FRAGMENT] for key in (SHODAN_KEY, API_KEY)
                   for i in range(len(key) - MIN_FRAGMENT + 1)} & _pieces(text))


def _pieces(text: str) -> set[str]:
    return {text[i:i + MIN_FRAGMENT] for i in range(len(text) - MIN_FRAGMENT + 1)} if text else set()


def tree_leaks(root: Path) -> dict[str, list[str]]:
    """Files under ``root`` (hidden ones included) that hold a piece of a key."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file():
            hits = leaks(path.read_bytes().decode("utf-8", "replace"))
            if hits:
                found[str(path)] = hits
    return found


def error_text(exc: BaseException) -> str:
    """What a user could see of ``exc``: str, repr and the traceback Python would print."""
    return f"{exc}\n{exc!r}\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


@pytest.fixture
def sweep(monkeypatch, tmp_path, caplog, capfd):
    """Keys in the environment; afterwards: no piece of a key in logs, output or tmp_path."""
    for name, value in KEY_ENVS.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    yield seen
    out, err = capfd.readouterr()
    assert leaks(caplog.text) == [] and leaks(out) == [] and leaks(err) == []
    assert all(leaks(text) == [] for text in seen), [leaks(t) for t in seen]
    assert tree_leaks(tmp_path) == {}


def closed_port() -> int:
    sock = socket.socket()
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_scrub_removes_key_fragments_and_url_keys():
    from tinysec.secrets import register

    key = register("zz_" + stdlib_secrets.token_urlsafe(20))
    text = f"a {key} b {key[4:13]} c {key[:7]} d ?key=unregistered&x=1 Bearer tok.en"
    clean = scrub(text)
    assert key not in clean and key[4:13] not in clean and f"c {key[:7]} d" in clean  # 7 chars: kept
    assert "?key=<redacted>&x=1" in clean and "Bearer <redacted>" in clean
    assert clean.count(REDACTED) == 4


# ---------------------------------------------------------------- Shodan: a hostile local API
class ShodanErrors(BaseHTTPRequestHandler):
    """Each host IP / search query triggers one error; bodies echo the key the client sent."""

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        url = urlparse(self.path)
        args = parse_qs(url.query)
        sent = (args.get("key") or [""])[0]
        what = args["query"][0] if url.path.endswith("/search") else url.path.rsplit("/", 1)[-1]
        error = lambda status, text: self._send(status, json.dumps({"error": text}).encode())  # noqa: E731
        if what in ("192.0.2.1", "boom"):
            return error(500, f"internal error while serving key={sent} (request {self.path})")
        if what in ("192.0.2.2", "denied"):
            return error(401, f"Invalid API key: {sent}")
        if what in ("192.0.2.6", "throttled"):
            return error(429, f"Rate limit reached for {sent}")
        if what == "192.0.2.3":
            return error(403, "forbidden")
        if what == "192.0.2.4":
            return error(502, "bad gateway")
        if what == "192.0.2.5":
            return self._send(200, f"<html>upstream said key={sent}</html>".encode(), "text/html")
        if what == "192.0.2.7":
            time.sleep(2)
        return error(404, "No information available for that IP.")


@pytest.fixture(scope="module")
def shodan_errors():
    server = ThreadingHTTPServer((LOOPBACK, 0), ShodanErrors)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{LOOPBACK}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


SHODAN_CASES = [  # target, base_url ("" = the error server), expected words in the error
    ("search:boom", "", ["Shodan search 'boom' failed (HTTP 500)", "key=<redacted>"]),
    ("192.0.2.1", "", ["Shodan host 192.0.2.1 failed (HTTP 500)", "key=<redacted>"]),
    ("search:denied", "", ["rejected the API key (401)", REDACTED]),
    ("192.0.2.2", "", ["rejected the API key (401)", REDACTED]),
    ("search:throttled", "", ["HTTP 429", "Rate limit"]),
    ("192.0.2.6", "", ["HTTP 429", "Rate limit"]),
    ("192.0.2.3", "", ["HTTP 403", "Access denied"]),
    ("192.0.2.4", "", ["HTTP 502", "Bad Gateway"]),
    ("192.0.2.5", "", ["HTTP 200", "Unable to parse JSON"]),
    ("192.0.2.7", "", ["Unable to connect"]),  # read timeout: the client's cause names the URL
    ("192.0.2.8", "closed", ["Unable to connect"]),  # connection refused
    ("search:anything", "closed", ["Unable to connect"]),
]


@pytest.mark.parametrize("target,base,expected", SHODAN_CASES)
def test_shodan_errors_never_carry_the_key(sweep, tmp_path, shodan_errors, target, base, expected):
    base_url = f"http://{LOOPBACK}:{closed_port()}" if base == "closed" else shodan_errors
    options = {"base_url": base_url, "max_retries": 2, "backoff_s": 0, "timeout_s": 0.5, "min_interval_s": 0}
    with pytest.raises(RuntimeError) as err:
        collect("shodan", target, options, tmp_path / "cache", 0)
    text = error_text(err.value)
    sweep.append(text)
    for word in expected:
        assert word in str(err.value), (word, str(err.value))


def test_shodan_missing_key_names_the_variable(sweep, tmp_path, shodan_errors):
    with pytest.raises(RuntimeError, match="set the environment variable TINYSEC_NO_SUCH_KEY") as err:
        collect("shodan", "192.0.2.1", {"base_url": shodan_errors, "key_env": "TINYSEC_NO_SUCH_KEY"},
                tmp_path / "cache", 0)
    sweep.append(error_text(err.value))


# ---------------------------------------------------------------- WHOIS and DNS failures
class SilentTCP:
    """Accepts connections and never answers (a WHOIS server that hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def test_whois_failures_are_recorded_without_the_key(sweep, tmp_path):
    silent, garbage = SilentTCP(), WhoisServer({})  # garbage: 'No match' for every query
    cases = {"refused": f"{LOOPBACK}:{closed_port()}", "hangs": f"{LOOPBACK}:{silent.port}",
             "no-match": f"{LOOPBACK}:{garbage.port}"}
    try:
        for name, address in cases.items():
            options = {"redirects": {"whois.iana.org": address}, "only_mapped": True, "timeout_s": 1,
                       "min_interval_s": 0}
            rec, _ = collect("whois", f"{name}.example.com", options, tmp_path / "cache", 0)
            sweep.append(json.dumps(rec))
            assert rec["parsed"]["registrar"] is None
            if name != "no-match":
                assert rec["parsed"]["error"], name
        options = {"redirects": {}, "only_mapped": True, "timeout_s": 1, "min_interval_s": 0}
        rec, _ = collect("whois", "unmapped.example.com", options, tmp_path / "cache", 0)
        assert "not in osint.whois.redirects" in rec["parsed"]["error"]
    finally:
        silent.close()
        garbage.shutdown()
        garbage.server_close()


def test_dns_failures_are_recorded_without_the_key(sweep, tmp_path):
    responder, silent = DNSResponder(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind((LOOPBACK, 0))
    garbage = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # answers with a cut-off header
    garbage.bind((LOOPBACK, 0))

    def answer_garbage():
        while True:
            try:
                wire, addr = garbage.recvfrom(4096)
                garbage.sendto(wire[:2] + b"\x81\x80junk", addr)
            except OSError:
                return

    threading.Thread(target=answer_garbage, daemon=True).start()
    try:
        for name, port, status in (("missing.tinysec.test", responder.port, "NXDOMAIN"),
                                   ("host.silent.test", silent.getsockname()[1], "TIMEOUT"),
                                   ("tinysec.test", garbage.getsockname()[1], "ERROR: ShortHeader"),
                                   ("tinysec.test", 0, "ERROR: OSError")):  # port 0: sendto fails
            options = {"record_types": ["A"], "nameserver": LOOPBACK, "port": port, "timeout_s": 0.3}
            rec, _ = collect("dns", name, options, tmp_path / "cache", 0)
            sweep.append(json.dumps(rec))
            assert rec["parsed"]["status"]["A"] == status, rec["parsed"]["status"]
    finally:
        responder.close()
        silent.close()
        garbage.close()


# ---------------------------------------------------------------- nmap failures
def fake_nmap(folder: Path, name: str, body: str) -> str:
    script = folder / name
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_nmap_failures_never_carry_the_key(sweep, tmp_path):
    echoing = fake_nmap(tmp_path, "echo-env", 'echo "nmap: bad luck with SHODAN_API_KEY=$SHODAN_API_KEY '
                                              'and $OPENAI_API_KEY" >&2\nexit 3\n')
    half_xml = fake_nmap(tmp_path, "half-xml", 'echo "<nmaprun args=\\"$SHODAN_API_KEY\\"><host>"\n')
    cases = [  # options, authorized, binary, expected words
        ([], [LOOPBACK], echoing, ["exited with 3", "SHODAN_API_KEY=<redacted>"]),
        ([], ["192.0.2.0/24"], echoing, ["authorized"]),
        (["--script=http-title"], [LOOPBACK], echoing, ["script"]),
        ([], [LOOPBACK], "no-such-nmap-binary", ["not found"]),
        ([], [LOOPBACK], half_xml, ["truncated"]),
    ]
    for options, authorized, binary, expected in cases:
        conf = {"options": options, "allowed_options": options, "authorized_targets": authorized,
                "binary": binary, "timeout_s": 20}
        with pytest.raises(Exception) as err:
            collect("nmap", LOOPBACK, conf, tmp_path / "cache", 0)
        sweep.append(error_text(err.value))
        for word in expected:
            assert word in str(err.value), (word, str(err.value))


# ---------------------------------------------------------------- API client, judge, API answers
class EchoAPI(BaseHTTPRequestHandler):
    """``POST /<mode>/chat/completions``: error bodies echo the key the client sent."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        mode = self.path.strip("/").split("/")[0]
        if mode == "drip":
            return self._drip(self.server.drip_body)
        if mode == "drip-head":
            return self._drip(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"x" * 40 + b"\r\n", raw=True)
        bodies = {
            "across200": (500, "x" * 195 + key + " and more"),  # the key straddles character 200
            "fragment": (400, "y" * 190 + key[3:15] + " " + key[-9:]),
            "header": (401, f"bad credentials: Bearer {key}"),
            "notchat": (200, json.dumps({"echo": key, "choices": []})),
        }
        status, text = bodies[mode]
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drip(self, data: bytes, raw: bool = False):
        i = 0
        try:
            if not raw:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.flush()
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(self.server.drip_delay)
            self.server.drips.append(("complete", len(data)))
        except OSError:
            self.server.drips.append(("aborted", i))


@pytest.fixture(scope="module")
def echo_api():
    server = ThreadingHTTPServer((LOOPBACK, 0), EchoAPI)
    server.daemon_threads, server.drips, server.drip_delay = True, [], 0.3
    server.drip_body = json.dumps({"choices": [{"message": {"content": "ok"}}]}).encode()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = lambda mode: f"http://{LOOPBACK}:{server.server_address[1]}/{mode}"
    yield server
    server.shutdown()
    server.server_close()


def client(base_url: str, **kw) -> ChatClient:
    kw = {"timeout": 5, "max_retries": 1, "backoff": 0.01, "backoff_max": 0.02, **kw}
    return ChatClient(base_url, "m", key_env="TINYSEC_SWEEP_API_KEY", **kw)


API_CASES = [  # mode, expected words
    ("across200", ["HTTP 500", "x" * 195 + REDACTED]),
    ("fragment", ["HTTP 400", REDACTED]),
    ("header", ["HTTP 401", "Bearer <redacted>"]),
    ("notchat", ["not a chat completion", REDACTED]),
]


@pytest.mark.parametrize("mode,expected", API_CASES)
def test_api_error_bodies_are_scrubbed_then_cut(sweep, echo_api, mode, expected):
    with pytest.raises(ApiError) as err:
        client(echo_api.url(mode)).chat([{"role": "user", "content": "hi"}])
    sweep.append(error_text(err.value))
    for word in expected:
        assert word in str(err.value), (word, str(err.value))
    assert len(str(err.value).split(": ", 2)[-1]) <= 200 + len(REDACTED)


def test_api_transport_errors_never_carry_the_key(sweep):
    with OpenAIServer(script=["429", "503", "hang", "bad_json"] * 3, key=API_KEY, hang_seconds=1) as srv:
        for _ in range(4):
            with pytest.raises(ApiError) as err:
                client(srv.base_url, timeout=0.4, max_retries=0).chat([{"role": "user", "content": "q"}])
            sweep.append(error_text(err.value))
    with OpenAIServer(key="a-different-key") as srv:  # the server refuses our key: HTTP 401
        with pytest.raises(ApiError, match="HTTP 401") as err:
            client(srv.base_url).chat([{"role": "user", "content": "q"}])
        sweep.append(error_text(err.value))
    with pytest.raises(ApiError, match="connection failed") as err:
        client(f"http://{LOOPBACK}:{closed_port()}/v1", max_retries=0).chat([{"role": "user", "content": "q"}])
    sweep.append(error_text(err.value))


def test_judge_and_api_answers_errors_never_carry_the_key(sweep, echo_api):
    entry = {"source": "api:sweep", "api": {"base_url": echo_api.url("across200"), "model": "m",
                                            "key_env": "DEEPSEEK_API_KEY", "max_retries": 0}}
    judge = make_judge({"kind": "api", "model": "sweep-judge", "max_reasks": 0}, {"sweep-judge": entry})
    [judgment] = judge.judge([PairTask("instruction", "", "answer one", "answer two")])
    assert judgment.error and "HTTP 500" in judgment.raw and REDACTED in judgment.raw
    sweep.append(json.dumps(judgment.to_json()))
    with pytest.raises(ApiError, match="HTTP 500") as err:
        api_answer_records(entry, [{"instruction": "say hi", "input": ""}])
    sweep.append(error_text(err.value))


# ---------------------------------------------------------------- the timeout is a deadline
def test_api_timeout_is_a_wall_clock_deadline(echo_api, monkeypatch):
    monkeypatch.setenv("TINYSEC_SWEEP_API_KEY", API_KEY)
    slow = client(echo_api.url("drip"), timeout=1, max_retries=0)
    assert len(echo_api.drip_body) >= 40  # 0.3 s a byte: more than 12 s to send in full
    start = time.monotonic()
    with pytest.raises(ApiError, match="no complete answer within 1 s"):
        slow.chat([{"role": "user", "content": "q"}])
    assert time.monotonic() - start < 2.5
    deadline = time.monotonic() + 5  # the half-read answer's socket was shut: the server saw it
    while not echo_api.drips and time.monotonic() < deadline:
        time.sleep(0.05)
    assert echo_api.drips and echo_api.drips[0][0] == "aborted", echo_api.drips
    start = time.monotonic()  # a dripped status line and headers: the same deadline
    with pytest.raises(ApiError, match="no complete answer within 1 s"):
        client(echo_api.url("drip-head"), timeout=1, max_retries=0).chat([{"role": "user", "content": "q"}])
    assert time.monotonic() - start < 2.5
    echo_api.drip_delay = 0.01  # a dripped answer that ends before the deadline counts
    try:
        patient = client(echo_api.url("drip"), timeout=5, max_retries=0)
        assert patient.chat([{"role": "user", "content": "q"}]) == "ok"
    finally:
        echo_api.drip_delay = 0.3


# ---------------------------------------------------------------- a real snakemake run
def test_snakemake_collect_failure_leaks_no_key(tmp_path, shodan_errors):
    conf = yaml.safe_load(TINY.read_text())
    targets = ["search:boom", "192.0.2.1", "192.0.2.2"]
    conf["osint"] = {"collect": True, "cache_ttl_s": 0, "synthetic": {"n_records": 0},
                     "targets": {"dns": [], "whois": [], "shodan": targets, "nmap": []},
                     "shodan": {"base_url": shodan_errors, "min_interval_s": 0, "backoff_s": 0,
                                "max_retries": 1, "timeout_s": 5}}
    configfile = tmp_path / "sweep.yaml"
    configfile.write_text(yaml.safe_dump(conf))
    workdir = tmp_path / "run"
    workdir.mkdir()
    outputs = [f"results/osint/raw/shodan/{slug(t)}.json" for t in targets]
    proc = run_snakemake(workdir, *outputs, "--keep-going", configfile=configfile, check=False, env=KEY_ENVS)
    assert proc.returncode != 0, proc.stdout[-3000:]
    logs = {t: (workdir / "logs" / "osint_collect" / "shodan" / f"{slug(t)}.log").read_text() for t in targets}
    assert "Shodan search 'boom' failed (HTTP 500)" in logs["search:boom"], logs["search:boom"]
    assert "key=<redacted>" in logs["search:boom"] and "key=<redacted>" in logs["192.0.2.1"]
    assert "rejected the API key (401)" in logs["192.0.2.2"]
    assert "Shodan search 'boom' failed" in proc.stdout
    assert list((workdir / ".snakemake" / "log").glob("*.log")), "snakemake wrote no log"
    assert leaks(proc.stdout) == []
    assert tree_leaks(workdir) == {}
