"""Real-scan evaluation records: services started on 127.0.0.1, scanned with the real ``nmap -sV``.

:func:`loopback_services` starts three services on free loopback ports, each answering the way
the real server does, so nmap's version detection identifies them:

- ``ssh``: sends the OpenSSH banner ``SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6`` on connect (nmap's
  NULL probe: ``ssh OpenSSH 8.9p1 Ubuntu 3ubuntu0.6``);
- ``http``: an HTTP/1.1 server whose replies carry ``Server: nginx/1.24.0`` (``http nginx 1.24.0``);
  leading empty lines are skipped as nginx does, other malformed requests get nginx's 400 page;
- ``redis``: a RESP/inline-command responder answering ``INFO`` with ``redis_version:7.2.4`` (nmap's
  ``redis-server`` probe: ``redis Redis key-value store 7.2.4``), ``GET`` and unknown commands
  with Redis 7's errors. It takes port 6379 when that is free: nmap sends its ``redis-server``
  probe early only on the ports it lists (elsewhere its ``GetRequest`` probe matches first and
  nmap prints no version).

:func:`scan_records` scans them through the project's nmap runner
(:func:`tinysec.osint.collect_nmap.run_nmap`, with its option and target checks; the target is
only ``127.0.0.1``) twice, normal text (``-oN -``) and XML (``-oX -``), and returns two OSINT
records (format of :mod:`tinysec.osint.record`). Their gold entities are what was started: the
IP, each service's name, software and version, kept only when they occur verbatim as whole words
in that output (nmap's names are preferred: ``Redis key-value store`` over ``Redis`` and
``8.9p1 Ubuntu 3ubuntu0.6`` over ``8.9p1``, as the synthetic corpus labels them).

These records are for evaluation only, never training: their ids start with
:data:`REAL_SCAN_PREFIX` and :func:`refuse_real_scan` (called by the NER corpus builder) refuses them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from ..io import InputError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
REAL_SCAN_PREFIX = "real-scan-"
SSH_BANNER = "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6"
NGINX_VERSION = "1.24.0"
REDIS_VERSION = "7.2.4"
REDIS_PORT = 6379
#: The nmap options of the real scan (also the allowed list its runner checks them against).
SCAN_OPTIONS = ("-sV", "-n", "-Pn")
IO_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Service:
    """One started service: nmap's service name, software and version forms (preferred first), port."""

    name: str
    software: tuple[str, ...]
    version: tuple[str, ...]
    port: int


def refuse_real_scan(rec: dict, where: str, row: int | None = None) -> None:
    """Raise :class:`InputError` for a real-scan record: they are evaluation data, never training data."""
    if str(rec.get("id", "")).startswith(REAL_SCAN_PREFIX):
        raise InputError(where, f"record {rec['id']!r} is a real-scan evaluation record; it must never be "
                                "used to build the training corpus", row=row, field="id")


# ---------------------------------------------------------------- the services
class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(socketserver.StreamRequestHandler):
    timeout = IO_TIMEOUT_S

    def handle(self) -> None:
        try:
            self.serve()
        except (OSError, ValueError) as exc:  # client went away, timeout, garbage: just close
            log.debug("%s connection ended: %s", type(self).__name__, exc)

    def serve(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class SSHHandler(_Handler):
    """OpenSSH's identification string on connect; then reads the client's until it closes."""

    def serve(self) -> None:
        self.wfile.write((SSH_BANNER + "\r\n").encode())
        self.rfile.readline(256)


NGINX_400 = ("<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request"
             "</h1></center>\r\n<hr><center>nginx/{v}</center>\r\n</body>\r\n</html>\r\n")
NGINX_INDEX = ("<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n"
               "<h1>Welcome to nginx!</h1>\n<p>If you see this page, the nginx web server is successfully "
               "installed and working.</p>\n</body>\n</html>\n")


class HTTPHandler(_Handler):
    """nginx-like replies: 200 and the welcome page for ``GET``/``HEAD``, 405 for other methods,
    400 for a request line that is not HTTP."""

    def serve(self) -> None:
        line = self.rfile.readline(8192)
        while line in (b"\r\n", b"\n"):  # nginx skips empty lines before the request line
            line = self.rfile.readline(8192)
        if not line:
            return
        parts = line.decode("latin-1").split()
        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
            pass
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            status, body = "400 Bad Request", NGINX_400.format(v=NGINX_VERSION)
        elif parts[0] in ("GET", "HEAD"):
            status, body = "200 OK", NGINX_INDEX
        else:
            status, body = "405 Not Allowed", NGINX_400.format(v=NGINX_VERSION).replace("400 Bad Request", "405 Not Allowed")
        date = _dt.datetime.now(_dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
        head = (f"HTTP/1.1 {status}\r\nServer: nginx/{NGINX_VERSION}\r\nDate: {date}\r\n"
                f"Content-Type: text/html\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        self.wfile.write(head.encode() + (b"" if parts[:1] == ["HEAD"] else body.encode()))


def redis_info(port: int) -> str:
    """The ``# Server`` section of Redis 7.2.4's ``INFO`` reply."""
    return ("# Server\r\n"
            f"redis_version:{REDIS_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\n"
            "redis_build_id:7b8617cd6e1a9d31\r\nredis_mode:standalone\r\nos:Linux 5.15.0-91-generic x86_64\r\n"
            "arch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\n"
            "gcc_version:11.4.0\r\nprocess_id:1\r\nrun_id:3b1a8d0c5e9f4a2b6c7d8e9f0a1b2c3d4e5f6a7b\r\n"
            f"tcp_port:{port}\r\nuptime_in_seconds:86400\r\nuptime_in_days:1\r\nhz:10\r\n"
            "executable:/usr/bin/redis-server\r\nconfig_file:/etc/redis/redis.conf\r\n\r\n")


class RedisHandler(_Handler):
    """Redis 7 replies to RESP arrays and inline commands: INFO, PING, GET, QUIT, unknown commands;
    like Redis, a ``POST`` or ``Host:`` command (HTTP sent to Redis) closes the connection."""

    def _command(self) -> list[str] | None:
        line = self.rfile.readline(65536)
        if not line:
            return None
        if line.startswith(b"*"):
            args = []
            for _ in range(int(line[1:].strip() or 0)):
                size = int(self.rfile.readline(64)[1:].strip())
                args.append(self.rfile.read(size + 2)[:size].decode("latin-1"))
            return args
        return line.decode("latin-1").split()

    def serve(self) -> None:
        while (args := self._command()) is not None:
            if not args:
                continue
            cmd = args[0].upper()
            if cmd in ("POST", "HOST:"):
                return
            if cmd == "INFO":
                info = redis_info(self.server.server_address[1])
                reply = f"${len(info)}\r\n{info}\r\n"
            elif cmd == "PING":
                reply = "+PONG\r\n"
            elif cmd == "QUIT":
                self.wfile.write(b"+OK\r\n")
                return
            elif cmd == "GET":
                reply = "$-1\r\n" if len(args) == 2 else "-ERR wrong number of arguments for 'get' command\r\n"
            else:
                shown = " ".join(f"'{a}'" for a in args[1:])
                reply = f"-ERR unknown command '{args[0]}', with args beginning with: {shown}\r\n"
            self.wfile.write(reply.encode("latin-1"))


def _start(handler, port: int = 0) -> _Server:
    server = _Server((LOOPBACK, port), handler)
    threading.Thread(target=server.serve_forever, name=f"real-scan-{handler.__name__}", daemon=True).start()
    return server


def _start_redis() -> _Server:
    try:
        return _start(RedisHandler, REDIS_PORT)
    except OSError:
        log.info("port %d is taken; Redis responder on a free port (nmap may print no Redis version)", REDIS_PORT)
        return _start(RedisHandler, 0)


@contextlib.contextmanager
def ssh_service() -> Iterator[int]:
    """Only the OpenSSH-banner service on 127.0.0.1; yields its port; stops it on exit."""
    server = _start(SSHHandler)
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def loopback_services() -> Iterator[list[Service]]:
    """Start the SSH, HTTP and Redis services on 127.0.0.1; yields them; stops them on exit."""
    servers = []
    try:
        servers.append(ssh := _start(SSHHandler))
        servers.append(http := _start(HTTPHandler))
        servers.append(redis := _start_redis())
        yield [Service("ssh", ("OpenSSH",), ("8.9p1 Ubuntu 3ubuntu0.6", "8.9p1"), ssh.server_address[1]),
               Service("http", ("nginx",), (NGINX_VERSION,), http.server_address[1]),
               Service("redis", ("Redis key-value store", "Redis"), (REDIS_VERSION,), redis.server_address[1])]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


# ---------------------------------------------------------------- scanning and records
def gold_for(raw: str, services: list[Service]) -> list[dict]:
    """Gold entities of one scan output: the IP and each service's name, software and version (the
    first form that occurs as a whole word in ``raw``), in order of first occurrence."""
    from .entities import standalone_find

    found: dict[tuple[str, str], int] = {}
    candidates = [("IP", (LOOPBACK,))] + [(t, forms) for s in services
                                          for t, forms in (("SERVICE", (s.name,)), ("SOFTWARE", s.software),
                                                           ("VERSION", s.version))]
    for etype, forms in candidates:
        for text in forms:
            pos = standalone_find(raw, text)
            if pos >= 0:
                found.setdefault((etype, text), pos)
                break
    return [{"type": t, "text": x} for (t, x), _ in sorted(found.items(), key=lambda kv: kv[1])]


def scan_records(services: list[Service], binary: str = "nmap", timeout_s: float = 300.0) -> list[dict]:
    """Scan ``services`` on 127.0.0.1 with ``nmap -sV`` (normal text, then XML) and return the two
    evaluation records."""
    from .collect_nmap import nmap_version, run_nmap
    from .nmap_xml import parse_nmap_xml
    from .record import make_record

    options = [*SCAN_OPTIONS, "-p" + ",".join(str(s.port) for s in services)]
    allowed = [*SCAN_OPTIONS, "-p"]
    text, exe = run_nmap(LOOPBACK, options, allowed, [LOOPBACK], binary, timeout_s, output="normal")
    xml, _ = run_nmap(LOOPBACK, options, allowed, [LOOPBACK], binary, timeout_s, output="xml")
    parsed = parse_nmap_xml(xml, source="nmap XML output of the real loopback scan")
    version = parsed["scanner_version"] or nmap_version(exe)
    return [make_record("nmap", LOOPBACK, raw, parsed, tool_version=version, gold_entities=gold_for(raw, services),
                        record_id_=f"{REAL_SCAN_PREFIX}nmap-{fmt}")
            for fmt, raw in (("text", text), ("xml", xml))]


def real_scan(binary: str = "nmap", timeout_s: float = 300.0) -> list[dict]:
    """Start the loopback services, scan them, stop them; the two records (text, XML)."""
    with loopback_services() as services:
        log.info("services on %s: %s", LOOPBACK, ", ".join(f"{s.name}:{s.port}" for s in services))
        return scan_records(services, binary, timeout_s)


__all__ = ["REAL_SCAN_PREFIX", "Service", "loopback_services", "gold_for", "scan_records", "real_scan",
           "refuse_real_scan"]
