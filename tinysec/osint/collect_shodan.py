"""Shodan collector: host lookups and searches through the official ``shodan`` client.

The API key comes from an environment variable and is never logged or stored: every error is
re-raised with its message scrubbed by :mod:`tinysec.secrets` and without its chained causes
(the client's connection errors name the request URL, key included). 401 stops with a clear
message, 404 is recorded as "no information", 429 backs off and retries (tenacity), any other
error is a :class:`ShodanError`; every request waits for the shared rate limiter.
"""

from __future__ import annotations

import json
import logging
import os
from importlib.metadata import version

import shodan
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from ..secrets import register, scrub, secret_from_env
from .ratelimit import RateLimiter
from .record import make_record
from .targets import SEARCH_PREFIX, check_target, is_ip

log = logging.getLogger(__name__)
TOOL_VERSION = version("shodan")


class ShodanError(RuntimeError):
    """An API error (message scrubbed); ``status`` is the HTTP status when one came back."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ShodanKeyError(ShodanError):
    """Missing or rejected API key."""


class ShodanRateLimited(ShodanError):
    """HTTP 429 from the API (retried with backoff)."""


def api_key(env_name: str) -> str:
    """The key in environment variable ``env_name`` (registered for scrubbing)."""
    key = secret_from_env(env_name)
    if not key:
        raise ShodanKeyError(f"Shodan API key missing: set the environment variable {env_name}")
    return key


class ShodanSession:
    """A shodan.Shodan client with status tracking, the shared rate limiter and retries."""

    def __init__(self, key: str, base_url: str | None = None, limiter: RateLimiter | None = None,
                 max_retries: int = 5, backoff_s: float = 1.0, timeout_s: float = 30.0):
        self.api = shodan.Shodan(register(key))
        if base_url:
            self.api.base_url = base_url.rstrip("/")
        self.api.api_rate_limit = 0  # pacing is done by the shared limiter below
        self.limiter = limiter or RateLimiter(os.devnull, 0)
        self.max_retries, self.backoff_s, self.timeout_s = max_retries, backoff_s, timeout_s
        self.last_status: int | None = None
        self.api._session.hooks["response"].append(self._remember_status)
        self.api._session.request = self._with_timeout(self.api._session.request)

    def _with_timeout(self, request):
        def call(*args, **kwargs):
            kwargs.setdefault("timeout", self.timeout_s)
            return request(*args, **kwargs)
        return call

    def _remember_status(self, response, *args, **kwargs):
        self.last_status = response.status_code
        return response

    @staticmethod
    def scrub(text: str) -> str:
        """``text`` with the API key (and its fragments) replaced."""
        return scrub(text)

    def _once(self, call, *args, **kwargs):
        self.limiter.wait()
        self.last_status = None
        try:
            return call(*args, **kwargs)
        except shodan.APIError as exc:
            message, status = scrub(str(exc)), self.last_status
        except Exception as exc:  # anything the client did not wrap: scrubbed, never chained
            message, status = scrub(f"{type(exc).__name__}: {exc}"), self.last_status
        if status == 429 or "rate limit" in message.lower():
            log.warning("shodan: rate limited (429), backing off")
            raise ShodanRateLimited(message, 429) from None
        if status == 401 or "invalid api key" in message.lower():
            raise ShodanKeyError(f"Shodan rejected the API key (401): {message}", 401) from None
        raise ShodanError(message, status) from None

    def request(self, call, *args, **kwargs):
        """Run one client call with rate limiting and 429 retries."""
        retrying = Retrying(retry=retry_if_exception_type(ShodanRateLimited),
                            stop=stop_after_attempt(self.max_retries),
                            wait=wait_exponential(multiplier=self.backoff_s, max=60), reraise=True)
        return retrying(self._once, call, *args, **kwargs)


def _str(value) -> str | None:
    return str(value) if value not in (None, "") else None


def _module(item: dict) -> str | None:
    return _str((item.get("_shodan") or {}).get("module"))


def _cpes(item: dict) -> list[str]:
    return [str(c) for c in (item.get("cpe") or item.get("cpe23") or [])]


def parse_host(ip: str, data: dict | None) -> dict:
    """Parsed form of a host answer (``data`` None: no information, HTTP 404)."""
    data = data or {}
    vulns = data.get("vulns") or []
    return {
        "kind": "host", "ip": ip, "found": bool(data),
        "org": _str(data.get("org")), "isp": _str(data.get("isp")), "asn": _str(data.get("asn")),
        "os": _str(data.get("os")), "country": _str(data.get("country_name")),
        "hostnames": [str(h) for h in data.get("hostnames") or []],
        "domains": [str(d) for d in data.get("domains") or []],
        "ports": sorted(int(p) for p in data.get("ports") or []),
        "vulns": sorted(vulns) if isinstance(vulns, (list, dict)) else [],
        "services": [{"port": int(item.get("port", 0)), "transport": str(item.get("transport", "tcp")),
                      "module": _module(item), "product": _str(item.get("product")),
                      "version": _str(item.get("version")), "cpe": _cpes(item),
                      "banner": str(item.get("data", ""))}
                     for item in data.get("data") or []],
    }


def parse_search(query: str, data: dict) -> dict:
    """Parsed form of a search answer."""
    return {
        "kind": "search", "query": query, "total": int(data.get("total", 0)),
        "matches": [{"ip": str(m.get("ip_str", "")), "port": int(m.get("port", 0)),
                     "transport": str(m.get("transport", "tcp")), "org": _str(m.get("org")),
                     "product": _str(m.get("product")), "version": _str(m.get("version")),
                     "hostnames": [str(h) for h in m.get("hostnames") or []],
                     "domains": [str(d) for d in m.get("domains") or []],
                     "os": _str(m.get("os")), "banner": str(m.get("data", ""))}
                    for m in data.get("matches") or []],
    }


def _failed(what: str, exc: ShodanError) -> str:
    status = f"HTTP {exc.status}" if exc.status else "no HTTP status"
    return scrub(f"Shodan {what} failed ({status}): {exc}")


def collect_shodan(target: str, session: ShodanSession, max_results: int = 100) -> dict:
    """Host lookup for an IP target, or a search for ``search:<query>``; returns its record."""
    if target.startswith(SEARCH_PREFIX):
        query = target[len(SEARCH_PREFIX):].strip()
        if not query:
            raise ValueError("empty Shodan search query")
        try:
            data = session.request(session.api.search, query, limit=max_results)
        except ShodanError as exc:
            raise type(exc)(_failed(f"search {query!r}", exc), exc.status) from None
        parsed = parse_search(query, data)
        log.info("shodan search %r: %d of %d matches", query, len(parsed["matches"]), parsed["total"])
    else:
        check_target(target, allow_cidr=False)
        if not is_ip(target):
            raise ValueError(f"Shodan host lookups take an IP address, got {target!r}")
        try:
            data = session.request(session.api.host, target)
        except ShodanError as exc:
            if exc.status != 404 and "no information" not in str(exc).lower():
                raise type(exc)(_failed(f"host {target}", exc), exc.status) from None
            log.info("shodan host %s: no information (404)", target)
            data = None
        parsed = parse_host(target, data)
    raw = json.dumps(data if data is not None else {"error": "No information available for that IP."},
                     indent=2, ensure_ascii=False, sort_keys=True)
    return make_record("shodan", target, scrub(raw), parsed, tool_version=TOOL_VERSION)
