"""WHOIS collector: python-whois's client and parser, with an optional host redirect map.

python-whois always dials port 43 and follows referrals (IANA, registry, registrar). The
redirect map (``{"whois.iana.org": "127.0.0.1:4343", ...}``) sends those connections elsewhere,
and ``only_mapped`` refuses any host not in the map, so tests can never reach the internet.
"""

from __future__ import annotations

import datetime as _dt
import logging
import socket
from importlib.metadata import version
from typing import Any

from whois import WhoisEntry
from whois.whois import NICClient

from ..secrets import scrub
from .record import make_record
from .targets import check_target
from .whois_text import overlay_parsed

log = logging.getLogger(__name__)
TOOL_VERSION = version("python-whois")


def parse_hostport(text: str, default_port: int = 43) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    return host, int(port) if port else default_port


class _RedirectedSocket:
    """A socket whose ``connect`` goes through the redirect map and whose timeout never exceeds
    ``max_timeout`` (python-whois sets a fixed 10 s on its IANA lookup)."""

    def __init__(self, redirects: dict[str, str], only_mapped: bool, max_timeout: float | None = None):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._redirects, self._only_mapped, self._max_timeout = redirects, only_mapped, max_timeout

    def settimeout(self, value: float | None) -> None:
        if self._max_timeout is not None:
            value = self._max_timeout if value is None else min(value, self._max_timeout)
        self._sock.settimeout(value)

    def connect(self, address: tuple[str, int]) -> None:
        host, port = address
        if host in self._redirects:
            target = parse_hostport(self._redirects[host], port)
            log.info("whois: %s:%s redirected to %s:%s", host, port, *target)
        elif self._only_mapped:
            raise ConnectionRefusedError(f"whois host {host!r} is not in osint.whois.redirects "
                                         "and only_mapped is set")
        else:
            target = (host, port)
        self._sock.connect(target)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class RedirectingNICClient(NICClient):
    """python-whois's NICClient with connections routed through a host redirect map."""

    def __init__(self, redirects: dict[str, str] | None = None, only_mapped: bool = False,
                 max_timeout: float | None = None):
        super().__init__()
        self.redirects, self.only_mapped, self.max_timeout = dict(redirects or {}), only_mapped, max_timeout

    def get_socket(self):
        return _RedirectedSocket(self.redirects, self.only_mapped, self.max_timeout)


def _iso(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    return str(value) if value else None


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value).strip() if value else None


def _as_list(value: Any) -> list[str]:
    if not value:
        return []
    items = value if isinstance(value, list) else [value]
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(str(item).strip(), None)
    return list(seen)


def parse_whois(domain: str, text: str) -> dict:
    """The parsed form of a WHOIS reply (see :mod:`tinysec.osint.record`): python-whois's reading,
    corrected by the layout reader of :mod:`tinysec.osint.whois_text` (ccTLD layouts, localised labels)."""
    error = None
    try:
        entry = WhoisEntry.load(domain, text)
    except Exception as exc:  # python-whois raises its own errors for "no match" replies
        entry, error = {}, scrub(f"{type(exc).__name__}: {exc}")
    name_servers = _as_list(entry.get("name_servers"))
    # registries mix upper/lower case for the same server: keep the first spelling
    lowered: dict[str, str] = {}
    for ns in name_servers:
        lowered.setdefault(ns.lower().rstrip("."), ns)
    return overlay_parsed({
        "domain": domain,
        "registrar": _first(entry.get("registrar")),
        "organization": _first(entry.get("org")),
        "name_servers": list(lowered.values()),
        "creation_date": _iso(entry.get("creation_date")),
        "expiration_date": _iso(entry.get("expiration_date")),
        "updated_date": _iso(entry.get("updated_date")),
        "country": _first(entry.get("country")),
        "emails": _as_list(entry.get("emails")),
        "error": error,
    }, text)


def collect_whois(domain: str, redirects: dict[str, str] | None = None, only_mapped: bool = False,
                  timeout_s: float = 10.0) -> dict:
    """Look ``domain`` up through the referral chain and return its record."""
    check_target(domain, allow_cidr=False)
    client = RedirectingNICClient(redirects, only_mapped, max_timeout=timeout_s)
    query = domain.encode("idna").decode("ascii")
    try:
        text = client.whois_lookup(None, query, 0, quiet=True, ignore_socket_errors=False,
                                   timeout=int(max(1, timeout_s)))
    except OSError as exc:
        error = scrub(f"{type(exc).__name__}: {exc}")
        log.warning("whois %s failed: %s", domain, error)
        text = f"% whois query failed: {error}\n"
        parsed = parse_whois(domain, "")
        parsed["error"] = error
        return make_record("whois", domain, text, parsed, tool_version=TOOL_VERSION)
    log.info("whois %s: %d characters", domain, len(text))
    return make_record("whois", domain, text, parse_whois(domain, text), tool_version=TOOL_VERSION)
