"""Nmap collector: the nmap binary, run without a shell, on authorized targets, with
allowlisted options and XML on stdout parsed by :mod:`tinysec.osint.nmap_xml`."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess

from .nmap_xml import parse_nmap_xml
from .record import make_record
from .targets import TargetError, check_authorized

log = logging.getLogger(__name__)

# Output, script, file-reading and interactive options are never allowed, whatever the config says.
FORBIDDEN_PREFIXES = ("-o", "-i", "--script", "--resume", "--datadir", "--servicedb",
                      "--versiondb", "--stylesheet", "--excludefile", "--interactive")


class NmapError(RuntimeError):
    """nmap could not run or returned an error."""


def check_options(options: list[str], allowed: list[str]) -> list[str]:
    """Each option must be in ``allowed`` (exactly, or ``-p``/``--top-ports`` with a value)."""
    for opt in options:
        if not isinstance(opt, str) or not opt.startswith("-") or any(c.isspace() for c in opt):
            raise TargetError(f"nmap option {opt!r} is malformed")
        if opt.startswith(FORBIDDEN_PREFIXES):
            raise TargetError(f"nmap option {opt!r} is never allowed (output/script/file option)")
        if opt not in allowed and not _matches_valued(opt, allowed):
            raise TargetError(f"nmap option {opt!r} is not in osint.nmap.allowed_options {allowed}")
    return options


def _matches_valued(opt: str, allowed: list[str]) -> bool:
    """``-p22,80`` matches an allowed ``-p``; ``--top-ports=100`` an allowed ``--top-ports``."""
    for base in allowed:
        if base in ("-p", "--top-ports", "-T", "--max-retries", "--host-timeout") and opt.startswith(base):
            value = opt[len(base):].lstrip("=")
            if value and re.fullmatch(r"[0-9A-Za-z,\-:]+", value):
                return True
    return False


def nmap_version(binary: str = "nmap") -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False)
    match = re.search(r"Nmap version (\S+)", out.stdout)
    return match.group(1) if match else "unknown"


def nmap_command(target: str, options: list[str], binary: str = "nmap") -> list[str]:
    """The argument list; ``--`` ends options so the target is never read as one."""
    return [binary, *options, "-oX", "-", "--", target]


def collect_nmap(target: str, options: list[str], allowed_options: list[str], authorized: list[str],
                 binary: str = "nmap", timeout_s: float = 600.0) -> dict:
    """Scan an authorized target and return its record."""
    check_authorized(target, authorized)
    check_options(options, allowed_options)
    exe = shutil.which(binary)
    if exe is None:
        raise NmapError(f"nmap binary {binary!r} not found on PATH (apt-get install nmap)")
    cmd = nmap_command(target, options, exe)
    log.info("running %s", cmd)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, shell=False,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise NmapError(f"nmap scan of {target} exceeded {timeout_s} s") from None
    if proc.stderr.strip():
        log.info("nmap stderr: %s", proc.stderr.strip()[:2000])
    if proc.returncode != 0:
        raise NmapError(f"nmap exited with {proc.returncode} scanning {target}: {proc.stderr.strip()[:500]}")
    parsed = parse_nmap_xml(proc.stdout)
    return make_record("nmap", target, proc.stdout, parsed,
                       tool_version=parsed["scanner_version"] or nmap_version(exe))
