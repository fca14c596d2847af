"""Gold entities of a record, derived from its structured ``parsed`` form.

The structured fields are the ground truth: an entity is kept only when its text occurs
verbatim in the record's raw text as a whole word run (:func:`standalone_at`), so the NER
corpus can locate it in both the template rendering and the raw-text view.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

Entity = tuple[str, str]

# Characters that join two word runs into one word (the NER tokenizer's inner connectors).
CONNECTORS = "./-:@+~%"


def _wordchar(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or bool(unicodedata.combining(ch)) or ch in "\u00ad\u200b\u200c\u200d\u2060\ufeff"


def standalone_at(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is not glued to a neighbouring word: no word character right
    before or after it, and no connector (``. / - : @ + ~ %``) joining it to one (so ``example.com``
    inside ``www.example.com`` or ``8.4p1`` inside ``OpenSSH_8.4p1`` is not standalone)."""
    before = text[start - 1] if start > 0 else " "
    before2 = text[start - 2] if start > 1 else " "
    after = text[end] if end < len(text) else " "
    after2 = text[end + 1] if end + 1 < len(text) else " "
    if _wordchar(before) or (before in CONNECTORS and _wordchar(before2)):
        return False
    return not (_wordchar(after) or (after in CONNECTORS and _wordchar(after2)))


def standalone_find(text: str, needle: str) -> int:
    """Offset of the first standalone occurrence of ``needle`` in ``text`` (-1: none)."""
    for m in re.finditer(re.escape(needle), text):
        if standalone_at(text, m.start(), m.end()):
            return m.start()
    return -1


def _dns(parsed: dict) -> Iterator[Entity]:
    yield "DOMAIN", parsed.get("domain") or ""
    server = parsed.get("nameserver") or ""
    yield "IP", server.rsplit(":", 1)[0] if server.count(":") == 1 else server  # "ip:port" of the resolver
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
            name = hn.get("name") or ""
            if "." in name.strip("."):  # a single-label host name (localhost) is not a domain name
                yield "DOMAIN", name
        for port in host.get("ports", []):
            yield "PORT", str(port.get("port", ""))
            yield "STATE", port.get("state") or ""
            yield from _service(port, "service")
        for osm in host.get("os", []):
            yield "OS", osm.get("name") or ""


DERIVERS = {"dns": _dns, "whois": _whois, "shodan": _shodan, "nmap": _nmap}


def gold_entities(source: str, parsed: dict, raw: str) -> list[dict]:
    """``[{type, text}]`` from ``parsed``, deduplicated, kept only if ``text`` stands alone
    somewhere in ``raw``, sorted by first such occurrence."""
    found: dict[Entity, int] = {}
    for etype, text in DERIVERS[source](parsed):
        text = text.strip()
        if not text or (etype, text) in found:
            continue
        pos = standalone_find(raw, text)
        if pos >= 0:
            found[(etype, text)] = pos
    return [{"type": t, "text": s} for (t, s), _ in sorted(found.items(), key=lambda kv: kv[1])]
