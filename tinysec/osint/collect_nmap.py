"""Nmap collector: the nmap binary, run without a shell, on authorized targets, with
allowlisted options and XML on stdout parsed by :mod:`tinysec.osint.nmap_xml`.

Target and option rules live in :mod:`tinysec.osint.targets`. A hostname target is resolved
first; nmap then scans the resolved address that was checked against the allowlist."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess

from .nmap_xml import parse_nmap_xml
from .record import make_record
from .targets import check_authorized, check_options, is_cidr, is_ip, resolve_authorized

log = logging.getLogger(__name__)


class NmapError(RuntimeError):
    """nmap could not run or returned an error."""


def nmap_version(binary: str = "nmap") -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False)
    match = re.search(r"Nmap version (\S+)", out.stdout)
    return match.group(1) if match else "unknown"


#: Output formats nmap writes to stdout: XML (``-oX -``) or normal text (``-oN -``).
OUTPUT_FLAGS = {"xml": "-oX", "normal": "-oN"}


def nmap_command(target: str, options: list[str], binary: str = "nmap", output: str = "xml") -> list[str]:
    """The argument list; ``--`` ends options so the target is never read as one."""
    return [binary, *options, OUTPUT_FLAGS[output], "-", "--", target]


def scan_address(target: str, options: list[str], authorized: list[str], min_prefix: dict | None = None) -> str:
    """Check ``target`` and ``options``; return what nmap is given (a hostname's checked address)."""
    check_authorized(target, authorized, min_prefix)
    if is_ip(target) or is_cidr(target):
        return target
    address = resolve_authorized(target, authorized, ipv6="-6" in options)
    log.info("%s resolves to %s, inside osint.nmap.authorized_targets", target, address)
    return address


def run_nmap(target: str, options: list[str], allowed_options: list[str], authorized: list[str],
             binary: str = "nmap", timeout_s: float = 600.0, min_prefix: dict | None = None,
             output: str = "xml") -> tuple[str, str]:
    """Check ``target`` and ``options``, scan, and return ``(stdout, nmap executable)``; ``output``
    picks what nmap writes on stdout (``xml`` or ``normal``)."""
    check_options(options, allowed_options)
    address = scan_address(target, options, authorized, min_prefix)
    exe = shutil.which(binary)
    if exe is None:
        raise NmapError(f"nmap binary {binary!r} not found on PATH (apt-get install nmap)")
    cmd = nmap_command(address, options, exe, output)
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
    return proc.stdout, exe


def collect_nmap(target: str, options: list[str], allowed_options: list[str], authorized: list[str],
                 binary: str = "nmap", timeout_s: float = 600.0, min_prefix: dict | None = None) -> dict:
    """Scan an authorized target and return its record."""
    stdout, exe = run_nmap(target, options, allowed_options, authorized, binary, timeout_s, min_prefix)
    parsed = parse_nmap_xml(stdout, source=f"nmap output for {target}")
    return make_record("nmap", target, stdout, parsed,
                       tool_version=parsed["scanner_version"] or nmap_version(exe))
