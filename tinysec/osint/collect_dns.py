"""DNS collector: dnspython queries for configured record types, rendered dig-style.

NXDOMAIN, empty answers and timeouts are recorded per record type instead of failing the rule.
"""

from __future__ import annotations

import logging

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.version

from ..secrets import scrub
from .record import make_record
from .targets import check_target

log = logging.getLogger(__name__)
TOOL_VERSION = dns.version.version


def default_nameserver() -> str:
    """First nameserver of the system resolver configuration."""
    servers = dns.resolver.get_default_resolver().nameservers
    if not servers:
        raise RuntimeError("no nameserver configured on this system; set osint.dns.nameserver")
    return str(servers[0])


def status_of(rdtype: str, response: dns.message.Message | None, error: str | None) -> str:
    """NOERROR, NXDOMAIN, NOANSWER, TIMEOUT, ... for one query."""
    if error:
        return error
    rcode = dns.rcode.to_text(response.rcode())
    if rcode != "NOERROR":
        return rcode
    wanted = dns.rdatatype.from_text(rdtype)
    has = any(rrset.rdtype in (wanted, dns.rdatatype.CNAME) for rrset in response.answer)
    return "NOERROR" if has else "NOANSWER"


def dig_text(qname: str, rdtype: str, response: dns.message.Message | None, status: str,
             server: str, port: int, elapsed_ms: int = 0) -> str:
    """A dig-style rendering of one query and its answer (or its failure)."""
    lines = [f"; <<>> dnspython {TOOL_VERSION} <<>> @{server} -p {port} {qname} {rdtype}"]
    if response is None:
        lines.append(";; connection timed out; no servers could be reached" if status == "TIMEOUT"
                     else f";; query failed: {status}")
        return "\n".join(lines) + "\n"
    flags = dns.flags.to_text(response.flags).lower()
    lines += [";; Got answer:",
              f";; ->>HEADER<<- opcode: QUERY, status: {dns.rcode.to_text(response.rcode())}, id: {response.id}",
              f";; flags: {flags}; QUERY: {len(response.question)}, ANSWER: {sum(len(r) for r in response.answer)}, "
              f"AUTHORITY: {sum(len(r) for r in response.authority)}, "
              f"ADDITIONAL: {sum(len(r) for r in response.additional)}", "",
              ";; QUESTION SECTION:"]
    lines += [f";{q.name}\t\t\tIN\t{dns.rdatatype.to_text(q.rdtype)}" for q in response.question]
    for title, section in (("ANSWER", response.answer), ("AUTHORITY", response.authority),
                           ("ADDITIONAL", response.additional)):
        if section:
            lines += ["", f";; {title} SECTION:"]
            for rrset in section:
                lines += [line.replace(" ", "\t", 4) for line in rrset.to_text().splitlines()]
    lines += ["", f";; Query time: {elapsed_ms} msec", f";; SERVER: {server}#{port}({server}) (UDP)", ""]
    return "\n".join(lines) + "\n"


def answers_of(response: dns.message.Message | None) -> list[dict]:
    """The answer section as ``[{name, ttl, rdclass, rdtype, value}]``."""
    if response is None:
        return []
    return [{"name": str(rrset.name), "ttl": int(rrset.ttl),
             "rdclass": dns.rdataclass.to_text(rrset.rdclass),
             "rdtype": dns.rdatatype.to_text(rrset.rdtype), "value": rdata.to_text()}
            for rrset in response.answer for rdata in rrset]


def build_record(domain: str, results: list[tuple[str, dns.message.Message | None, str | None, int]],
                 server: str, port: int, nameserver_label: str | None, tool_version: str = TOOL_VERSION,
                 **record_kwargs) -> dict:
    """Record from ``(rdtype, response, error, elapsed_ms)`` per record type."""
    raw_parts, answers, status = [], [], {}
    for rdtype, response, error, elapsed in results:
        status[rdtype] = status_of(rdtype, response, error)
        raw_parts.append(dig_text(domain, rdtype, response, status[rdtype], server, port, elapsed))
        answers += answers_of(response)
    parsed = {"domain": domain, "nameserver": nameserver_label, "answers": answers, "status": status}
    return make_record("dns", domain, "\n".join(raw_parts), parsed, tool_version=tool_version,
                       **record_kwargs)


def collect_dns(domain: str, record_types: list[str], nameserver: str | None = None, port: int = 53,
                timeout_s: float = 5.0) -> dict:
    """Query ``domain`` for each record type and return its record."""
    check_target(domain, allow_cidr=False)
    server = nameserver or default_nameserver()
    results = []
    for rdtype in record_types:
        query = dns.message.make_query(domain, rdtype)
        try:
            response, _tcp = dns.query.udp_with_fallback(query, server, timeout=timeout_s, port=port)
            error = None
        except dns.exception.Timeout:
            response, error = None, "TIMEOUT"
        except (OSError, dns.exception.DNSException) as exc:
            log.warning("%s %s: %s", domain, rdtype, scrub(str(exc)))
            response, error = None, f"ERROR: {type(exc).__name__}"
        elapsed = int(response.time * 1000) if response is not None and response.time else 0
        log.info("%s %s -> %s", domain, rdtype, status_of(rdtype, response, error))
        results.append((rdtype, response, error, elapsed))
    label = f"{server}:{port}" if nameserver else None
    return build_record(domain, results, server, port, label)
