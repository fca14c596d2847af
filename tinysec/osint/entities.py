"""Gold entities of a record, derived from its structured ``parsed`` form.

The structured fields are the ground truth: an entity is kept only when its text occurs
verbatim in the record's raw text, so the NER corpus can locate it.
"""

from __future__ import annotations

from typing import Iterator

Entity = tuple[str, str]


def _dns(parsed: dict) -> Iterator[Entity]:
    yield "DOMAIN", parsed.get("domain") or ""
    for ans in parsed.get("answers", []):
        value, rdtype = ans.get("value") or "", ans.get("rdtype")
        if rdtype in ("A", "AAAA"):
            yield "IP", value
        elif rdtype in ("NS", "CNAME", "PTR"):
            yield "DOMAIN", value.rstrip(".")
        elif rdtype == "MX":
            yield "DOMAIN", value.split()[-1].rstrip(".") if value else ""
        elif rdtype == "SOA" and value:
            yield "DOMAIN", value.split()[0].rstrip(".")


def _whois(parsed: dict) -> Iterator[Entity]:
    yield "DOMAIN", parsed.get("domain") or ""
    yield "ORG", parsed.get("registrar") or ""
    yield "ORG", parsed.get("organization") or ""
    for ns in parsed.get("name_servers", []):
        yield "DOMAIN", ns.rstrip(".")


def _service(item: dict, service_key: str) -> Iterator[Entity]:
    yield "SERVICE", item.get(service_key) or ""
    yield "SOFTWARE", item.get("product") or ""
    yield "VERSION", item.get("version") or ""


def _shodan(parsed: dict) -> Iterator[Entity]:
    if parsed.get("kind") == "host":
        yield "IP", parsed.get("ip") or ""
        yield "ORG", parsed.get("org") or ""
        yield "ORG", parsed.get("isp") or ""
        yield "OS", parsed.get("os") or ""
        for name in parsed.get("hostnames", []) + parsed.get("domains", []):
            yield "DOMAIN", name
        for svc in parsed.get("services", []):
            yield "PORT", str(svc.get("port", ""))
            yield from _service(svc, "module")
    else:
        for m in parsed.get("matches", []):
            yield "IP", m.get("ip") or ""
            yield "ORG", m.get("org") or ""
            yield "OS", m.get("os") or ""
            yield "PORT", str(m.get("port", ""))
            for name in m.get("hostnames", []) + m.get("domains", []):
                yield "DOMAIN", name
            yield "SOFTWARE", m.get("product") or ""
            yield "VERSION", m.get("version") or ""


def _nmap(parsed: dict) -> Iterator[Entity]:
    for host in parsed.get("hosts", []):
        for addr in host.get("addresses", []):
            if addr.get("addrtype") in ("ipv4", "ipv6"):
                yield "IP", addr.get("addr") or ""
        for hn in host.get("hostnames", []):
            yield "DOMAIN", hn.get("name") or ""
        for port in host.get("ports", []):
            yield "PORT", str(port.get("port", ""))
            yield "STATE", port.get("state") or ""
            yield from _service(port, "service")
        for osm in host.get("os", []):
            yield "OS", osm.get("name") or ""


DERIVERS = {"dns": _dns, "whois": _whois, "shodan": _shodan, "nmap": _nmap}


def gold_entities(source: str, parsed: dict, raw: str) -> list[dict]:
    """``[{type, text}]`` from ``parsed``, deduplicated, kept only if ``text`` is in ``raw``,
    sorted by first occurrence in ``raw``."""
    found: dict[Entity, int] = {}
    for etype, text in DERIVERS[source](parsed):
        text = text.strip()
        if not text or (etype, text) in found:
            continue
        pos = raw.find(text)
        if pos >= 0:
            found[(etype, text)] = pos
    return [{"type": t, "text": s} for (t, s), _ in sorted(found.items(), key=lambda kv: kv[1])]
