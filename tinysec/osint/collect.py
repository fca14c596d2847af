"""Run one collector on one target, through the TTL cache and the shared rate limiter.

Every error a collector raises leaves through :func:`tinysec.secrets.scrub_exception`: an error
whose message or causes mention an API key is replaced by a scrubbed one without causes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..schema import schema_defaults
from ..secrets import register_env_secrets, scrub_exception
from .cache import ResponseCache
from .ratelimit import RateLimiter
from .record import SOURCES, validate_record

log = logging.getLogger(__name__)


def source_options(source: str, options: dict) -> dict:
    """``options`` over the defaults of the ``osint.<source>`` config schema (callers outside the
    pipeline may pass only some settings; the pipeline passes the validated section)."""
    if source not in SOURCES:
        raise ValueError(f"unknown OSINT source {source!r} (expected one of {SOURCES})")
    return {**schema_defaults("osint.schema.yaml", source), **options}


def _query(source: str, target: str, options: dict, limiter: RateLimiter) -> dict:
    """Ask collector ``source`` about ``target`` with the complete ``options`` (:func:`source_options`)."""
    if source == "dns":
        from .collect_dns import collect_dns

        limiter.wait()
        return collect_dns(target, options["record_types"], options["nameserver"],
                           int(options["port"]), float(options["timeout_s"]))
    if source == "whois":
        from .collect_whois import collect_whois

        limiter.wait()
        return collect_whois(target, options["redirects"], bool(options["only_mapped"]), float(options["timeout_s"]))
    if source == "shodan":
        from .collect_shodan import ShodanSession, api_key, collect_shodan

        session = ShodanSession(api_key(options["key_env"]), base_url=options["base_url"], limiter=limiter,
                                max_retries=int(options["max_retries"]), backoff_s=float(options["backoff_s"]),
                                timeout_s=float(options["timeout_s"]))
        return collect_shodan(target, session, int(options["max_results"]))
    from .collect_nmap import collect_nmap

    limiter.wait()
    return collect_nmap(target, list(options["options"]), list(options["allowed_options"]),
                        list(options["authorized_targets"]), options["binary"], float(options["timeout_s"]),
                        options["min_cidr_prefix"])


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
    """The record of ``target``, from the cache when younger than ``ttl_s``; returns (record, cached).

    ``options``: the ``osint.<source>`` settings; those it leaves out take the schema's defaults."""
    options = source_options(source, options)
    register_env_secrets()  # the tools inherit the environment: keys in their output are scrubbed
    cache = ResponseCache(Path(cache_dir), ttl_s)
    limiter = RateLimiter(Path(cache_dir) / f"{source}.ratelimit", float(options["min_interval_s"]))
    record, cached = cache.fetch(source, target, options,
                                 lambda: _scrubbed_query(source, target, options, limiter))
    return validate_record(record, f"{source} answer for {target}"), cached
