"""Target and nmap option validation, and file names.

Every target is an IP, a CIDR or a hostname, never an option. Nmap targets must be covered by
``osint.nmap.authorized_targets``; an authorized CIDR may not be larger than
``osint.nmap.min_cidr_prefix`` allows, and ``0.0.0.0/0`` / ``::/0`` are refused outright. Nmap
options must be in ``osint.nmap.allowed_options``; options that enable NSE scripts, write output
or read files are refused whatever that list says. :func:`nmap_config_problems` applies all of
this when the config is loaded (``tinysec.config.validate_config``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)"
                       r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$")
_SLUG_BAD = re.compile(r"[^A-Za-z0-9._-]+")
SEARCH_PREFIX = "search:"
AUTH_KEY = "osint.nmap.authorized_targets"

# Shortest CIDR prefix accepted per IP version (the schema default of osint.nmap.min_cidr_prefix):
# a /24 (256 addresses) for IPv4 and the same number of addresses, a /120, for IPv6.
DEFAULT_MIN_PREFIX = {"ipv4": 24, "ipv6": 120}

# Long option names (with one or two dashes, or abbreviated) that read or write files, resume a
# scan or go interactive; nmap's -oX/-iL style options are also long options (``--oN=file``).
FORBIDDEN_LONG = ("resume", "datadir", "servicedb", "versiondb", "stylesheet", "excludefile",
                  "interactive", "append-output", "oA", "oN", "oX", "oG", "oM", "oS", "oH", "iL", "iR")
# Options that take a value, which must be attached (``-p22,80``, ``--top-ports=100``).
VALUED = ("-p", "--top-ports", "-T", "--max-retries", "--host-timeout")
# Short flags without a value: nmap reads ``-nA`` as ``-n -A``; any other letter ends the cluster.
_SHORT_FLAGS = frozenset("46AFfhInqRrV")


class TargetError(ValueError):
    """A target or nmap option that is malformed or not authorized."""


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


def check_scope(target: str, min_prefix: dict | None = None) -> str:
    """:func:`check_target`, then refuse a CIDR of every address or one larger than ``min_prefix``."""
    check_target(target)
    if not is_cidr(target):
        return target
    net = ipaddress.ip_network(target, strict=False)
    if net.prefixlen == 0:
        raise TargetError(f"{target!r} covers every address and is never allowed")
    key = f"ipv{net.version}"
    limit = {**DEFAULT_MIN_PREFIX, **(min_prefix or {})}[key]
    if net.prefixlen < limit:
        raise TargetError(f"CIDR {target!r} holds {net.num_addresses} addresses; the largest allowed is a "
                          f"/{limit} (osint.nmap.min_cidr_prefix.{key})")
    return target


def _host_key(name: str) -> str:
    return name.rstrip(".").lower()


def _covered(address: str, authorized: list[str]) -> bool:
    """Whether an IP or CIDR lies inside one of the IP/CIDR entries of ``authorized``."""
    net = ipaddress.ip_network(address, strict=False)
    for entry in authorized:
        if is_cidr(entry) or is_ip(entry):
            allowed = ipaddress.ip_network(entry, strict=False)
            if net.version == allowed.version and net.subnet_of(allowed):
                return True
    return False


def check_authorized(target: str, authorized: list[str], min_prefix: dict | None = None) -> str:
    """Refuse a target that is not in ``authorized`` (same hostname, or inside an authorized IP/CIDR).

    Every entry of ``authorized`` must itself pass :func:`check_scope`. A hostname is only checked
    by name here; :func:`resolve_authorized` checks the addresses it resolves to.
    """
    for entry in authorized:
        try:
            check_scope(entry, min_prefix)
        except TargetError as exc:
            raise TargetError(f"{AUTH_KEY} entry refused: {exc}") from None
    check_scope(target, min_prefix)
    if is_ip(target) or is_cidr(target):
        if _covered(target, authorized):
            return target
    elif _host_key(target) in {_host_key(e) for e in authorized if is_hostname(e)}:
        return target
    raise TargetError(f"target {target!r} is not in the authorized target list ({AUTH_KEY}); refusing to scan it")


def resolve_authorized(host: str, authorized: list[str], ipv6: bool = False) -> str:
    """The address to scan for ``host``: every address it resolves to must be inside an IP or CIDR
    of ``authorized``; returns the first one, so nmap scans exactly the address checked."""
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, None, family, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetError(f"hostname {host!r} does not resolve to an IPv{6 if ipv6 else 4} address "
                          f"({exc}); refusing to scan it") from None
    addresses = list(dict.fromkeys(info[4][0].split("%", 1)[0] for info in infos))
    if not addresses:
        raise TargetError(f"hostname {host!r} resolves to no address; refusing to scan it")
    outside = [a for a in addresses if not _covered(a, authorized)]
    if outside:
        raise TargetError(f"hostname {host!r} resolves to {', '.join(outside)}, which no IP or CIDR in "
                          f"{AUTH_KEY} covers; refusing to scan it (authorize the address as well as the name)")
    return addresses[0]


def enables_scripts(opt: str) -> bool:
    """Whether nmap would run NSE scripts for ``opt``: ``-A``, ``-sC``, a short-flag cluster holding
    either (``-nA``, ``-sVC``), or ``--script*``/``-script*`` and their abbreviations (``--scr``)."""
    name = opt.lstrip("-").split("=", 1)[0]
    if name.startswith("script") or (len(name) >= 2 and "script".startswith(name)):
        return True
    if opt.startswith("--"):
        return False
    for i, ch in enumerate(opt[1:], start=1):
        if ch == "A":
            return True
        if ch == "s":
            return "C" in opt[i + 1:]
        if ch not in _SHORT_FLAGS:
            return False
    return False


def _forbidden_file_option(opt: str) -> bool:
    """Output, input-list, resume, data-file and interactive options, in any dash form or abbreviation."""
    name = opt.lstrip("-").split("=", 1)[0]
    if not opt.startswith("--") and name[:1] in ("o", "i"):
        return True
    return any(name.startswith(f) or (len(name) >= 2 and f.startswith(name)) for f in FORBIDDEN_LONG)


def _matches_valued(opt: str, allowed: list[str]) -> bool:
    """``-p22,80`` matches an allowed ``-p``; ``--top-ports=100`` an allowed ``--top-ports``."""
    for base in allowed:
        if base in VALUED and opt.startswith(base):
            value = opt[len(base):].lstrip("=")
            if value and re.fullmatch(r"[0-9A-Za-z,\-:]+", value):
                return True
    return False


def option_problem(opt, allowed: list[str] | None = None) -> str | None:
    """Why nmap option ``opt`` is refused, or None. With ``allowed`` None only the rules that hold
    whatever the config says are applied (malformed, scripts, files); else it must be allowed too."""
    if (not isinstance(opt, str) or not opt.startswith("-") or opt.strip("-") == ""
            or any(c.isspace() for c in opt)):
        return f"{opt!r} is not a single nmap option (one '-' or '--' word with a name and no whitespace)"
    if enables_scripts(opt):
        return f"{opt!r} enables NSE scripts and is never allowed, whatever osint.nmap.allowed_options says"
    if _forbidden_file_option(opt):
        return f"{opt!r} is an output, input-file, resume or interactive option and is never allowed"
    if allowed is None:
        return None
    if opt in VALUED:
        return f"{opt!r} needs its value attached (e.g. '-p22,80', '--top-ports=100', '-T4')"
    if opt not in allowed and not _matches_valued(opt, allowed):
        return f"{opt!r} is not in osint.nmap.allowed_options"
    return None


def check_options(options: list[str], allowed: list[str]) -> list[str]:
    """Raise :class:`TargetError` for the first refused option (see :func:`option_problem`)."""
    for opt in allowed:
        problem = option_problem(opt)
        if problem:
            raise TargetError(f"osint.nmap.allowed_options: {problem}")
    for opt in options:
        problem = option_problem(opt, allowed)
        if problem:
            raise TargetError(f"nmap option {problem}")
    return options


def nmap_config_problems(config: dict) -> list[str]:
    """Every refused nmap option, authorized target and nmap target of a (defaults-filled) config,
    as ``key.path[i]: reason`` lines; no name is resolved (that happens before each scan)."""
    osint = config.get("osint") or {}
    nmap = osint.get("nmap") or {}
    min_prefix = nmap.get("min_cidr_prefix")
    allowed = list(nmap.get("allowed_options") or [])
    problems = [f"osint.nmap.allowed_options[{i}]: {p}" for i, opt in enumerate(allowed)
                if (p := option_problem(opt))]
    problems += [f"osint.nmap.options[{i}]: {p}" for i, opt in enumerate(nmap.get("options") or [])
                 if (p := option_problem(opt, allowed))]
    authorized = []
    for i, entry in enumerate(nmap.get("authorized_targets") or []):
        try:
            authorized.append(check_scope(entry, min_prefix))
        except TargetError as exc:
            problems.append(f"{AUTH_KEY}[{i}]: {exc}")
    for i, target in enumerate((osint.get("targets") or {}).get("nmap") or []):
        try:
            check_authorized(target, authorized, min_prefix)
        except TargetError as exc:
            problems.append(f"osint.targets.nmap[{i}]: {exc}")
    return problems


def slug(target: str) -> str:
    """File-name-safe name of a target (the ``{target}`` wildcard); unique per target."""
    clean = _SLUG_BAD.sub("_", target.replace(SEARCH_PREFIX, "search-", 1)).strip("_.") or "t"
    if clean == target:
        return clean
    digest = hashlib.sha1(target.encode("utf-8")).hexdigest()[:8]
    return f"{clean[:80]}-{digest}"
