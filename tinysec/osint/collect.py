"""Run one collector on one target, through the TTL cache and the shared rate limiter.

Every error a collector raises leaves through :func:`tinysec.secrets.scrub_exception`: an error
whose message or causes mention an API key is replaced by a scrubbed one without causes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..secrets import register_env_secrets, scrub_exception
from .cache import ResponseCache
from .ratelimit import RateLimiter
from .record import SOURCES, validate_record

log = logging.getLogger(__name__)


def _query(source: str, target: str, options: dict, limiter: RateLimiter) -> dict:
    if source == "dns":
        from .collect_dns import collect_dns

        limiter.wait()
        return collect_dns(target, options.get("record_types", ["A"]), options.get("nameserver"),
                           int(options.get("port", 53)), float(options.get("timeout_s", 5)))
    if source == "whois":
        from .collect_whois import collect_whois

        limiter.wait()
        return collect_whois(target, options.get("redirects") or {}, bool(options.get("only_mapped")),
                             float(options.get("timeout_s", 10)))
    if source == "shodan":
        from .collect_shodan import ShodanSession, api_key, collect_shodan

        session = ShodanSession(api_key(options.get("key_env", "SHODAN_API_KEY")),
                                base_url=options.get("base_url"), limiter=limiter,
                                max_retries=int(options.get("max_retries", 5)),
                                backoff_s=float(options.get("backoff_s", 1.0)),
                                timeout_s=float(options.get("timeout_s", 30)))
        return collect_shodan(target, session, int(options.get("max_results", 100)))
    if source == "nmap":
        from .collect_nmap import collect_nmap

        limiter.wait()
        return collect_nmap(target, list(options.get("options", [])), list(options.get("allowed_options", [])),
                            list(options.get("authorized_targets", [])), options.get("binary", "nmap"),
                            float(options.get("timeout_s", 600)), options.get("min_cidr_prefix"))
    raise ValueError(f"unknown OSINT source {source!r} (expected one of {SOURCES})")


def _scrubbed_query(source: str, target: str, options: dict, limiter: RateLimiter) -> dict:
    try:
        return _query(source, target, options, limiter)
    except Exception as exc:
        clean = scrub_exception(exc)
        if clean is exc:
            raise
        raise clean from None


def collect(source: str, target: str, options: dict, cache_dir: str | os.PathLike,
            ttl_s: float) -> tuple[dict, bool]:
    """The record of ``target``, from the cache when younger than ``ttl_s``; returns (record, cached)."""
    register_env_secrets()  # the tools inherit the environment: keys in their output are scrubbed
    cache = ResponseCache(Path(cache_dir), ttl_s)
    limiter = RateLimiter(Path(cache_dir) / f"{source}.ratelimit", float(options.get("min_interval_s", 0)))
    record, cached = cache.fetch(source, target, options,
                                 lambda: _scrubbed_query(source, target, options, limiter))
    return validate_record(record, f"{source} answer for {target}"), cached
