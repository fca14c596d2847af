"""Target validation and file names: every target is an IP, a CIDR or a hostname, never an option."""

from __future__ import annotations

import hashlib
import ipaddress
import re

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)"
                       r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$")
_SLUG_BAD = re.compile(r"[^A-Za-z0-9._-]+")
SEARCH_PREFIX = "search:"


class TargetError(ValueError):
    """A target that is malformed or not authorized."""


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def is_cidr(text: str) -> bool:
    if "/" not in text:
        return False
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        return False


def is_hostname(text: str) -> bool:
    return bool(_HOSTNAME.match(text)) and not text.replace(".", "").isdigit()


def check_target(target: str, allow_cidr: bool = True) -> str:
    """Return ``target`` if it is an IP, a CIDR (when allowed) or a hostname; raise otherwise.

    A leading ``-`` or any whitespace is refused first, so a target can never act as an option.
    """
    if not isinstance(target, str) or not target:
        raise TargetError(f"target must be a non-empty string, got {target!r}")
    if target.startswith("-"):
        raise TargetError(f"target {target!r} starts with '-' (it would be read as an option)")
    if any(ch.isspace() for ch in target):
        raise TargetError(f"target {target!r} contains whitespace")
    if is_ip(target) or (allow_cidr and is_cidr(target)) or is_hostname(target):
        return target
    kinds = "an IP address, a CIDR or a hostname" if allow_cidr else "an IP address or a hostname"
    raise TargetError(f"target {target!r} is not {kinds}")


def check_authorized(target: str, authorized: list[str]) -> str:
    """Refuse a target that is not in ``authorized`` (exact, or inside an authorized CIDR)."""
    check_target(target)
    if target in authorized:
        return target
    if is_ip(target) or is_cidr(target):
        net = ipaddress.ip_network(target, strict=False)
        for entry in authorized:
            if is_cidr(entry) or is_ip(entry):
                allowed = ipaddress.ip_network(entry, strict=False)
                if net.version == allowed.version and net.subnet_of(allowed):
                    return target
    raise TargetError(f"target {target!r} is not in the authorized target list "
                      f"(osint.nmap.authorized_targets); refusing to scan it")


def slug(target: str) -> str:
    """File-name-safe name of a target (the ``{target}`` wildcard); unique per target."""
    clean = _SLUG_BAD.sub("_", target.replace(SEARCH_PREFIX, "search-", 1)).strip("_.") or "t"
    if clean == target:
        return clean
    digest = hashlib.sha1(target.encode("utf-8")).hexdigest()[:8]
    return f"{clean[:80]}-{digest}"
