"""Adaptive template selection: render an OSINT record as natural text with gold entity spans.

The record's structured ``parsed`` fields become *facts* (``dns_a``, ``service``, ...), each
with named slots; every fact is written with one of several templates of
``resources/ner_data/templates.yaml``, chosen with a generator seeded by (seed, record id), so
the corpus does not teach the tagger one surface form. A slot value is labelled when its
``(type, text)`` is one of the record's gold entities and its type is configured. A gold
entity that no fact covered is added in a closing ``mention`` sentence, so none is lost.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from ..io import InputError
from ..paths import resource
from .identify import classify_context
from .labels import check_spans
from .tokenize import word_spans
from .view import tagger_view

_SLOT = re.compile(r"\{(\w+)\}")

TYPE_LABELS = {"ORG": "organisation", "DOMAIN": "domain", "IP": "IP address", "SOFTWARE": "software",
               "SERVICE": "service", "VERSION": "version", "PORT": "port", "OS": "operating system",
               "STATE": "port state"}


@dataclass
class Slot:
    """A slot value: one string or a list of strings, with an entity type (None: never labelled)."""

    value: str | list[str]
    type: str | None = None


@dataclass
class Rendered:
    """A rendered record: ``text``, gold ``spans``, its ``context`` and the templates used."""

    text: str
    spans: list[dict]
    context: str
    templates: list[str] = field(default_factory=list)
    mentions: int = 0  # gold entities that needed the closing mention sentence
    format: str = "text"  # raw rendering: the input format the tagger view detected
    missing: int = 0  # raw rendering: gold entities with no whole-word occurrence in the view


@lru_cache(maxsize=8)
def load_templates(path: str | None = None) -> dict:
    """Templates file (default: the shipped ``resources/ner_data/templates.yaml``)."""
    p = Path(path) if path else resource("ner_data", "templates.yaml")
    data = yaml.safe_load(p.read_text("utf-8"))
    if not isinstance(data, dict) or not {"intro", "facts"} <= data.keys():
        raise InputError(p, "templates file needs 'intro' and 'facts' mappings")
    for kind, items in data["facts"].items():
        if not items or not all(isinstance(t, str) for t in items):
            raise InputError(p, "expected a non-empty list of template strings", field=f"facts.{kind}")
    return data


def record_rng(seed: int, record_id: str, salt: str = "") -> random.Random:
    """Deterministic generator for one record (stable across processes and Python versions)."""
    digest = hashlib.sha256(f"{seed}\x00{salt}\x00{record_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


# ---------------------------------------------------------------- facts per source
def _s(v) -> str:
    return "" if v is None else str(v).strip()


def _facts_dns(p: dict) -> Iterable[tuple[str, dict]]:
    domain = Slot(_s(p.get("domain")), "DOMAIN")
    for a in p.get("answers", []):
        rdtype, value = a.get("rdtype"), _s(a.get("value"))
        if rdtype in ("A", "AAAA"):
            yield "dns_a", {"domain": domain, "ip": Slot(value, "IP"), "ttl": Slot(_s(a.get("ttl")))}
        elif rdtype == "NS":
            yield "dns_ns", {"domain": domain, "ns": Slot(value.rstrip("."), "DOMAIN")}
        elif rdtype == "MX" and value:
            parts = value.split()
            slots = {"domain": domain, "mx": Slot(parts[-1].rstrip("."), "DOMAIN")}
            if len(parts) > 1:
                slots["priority"] = Slot(parts[0])
            yield "dns_mx", slots
        elif rdtype in ("CNAME", "PTR"):
            yield "dns_cname", {"domain": domain, "alias": Slot(value.rstrip("."), "DOMAIN")}
        elif rdtype == "SOA" and value:
            yield "dns_soa", {"domain": domain, "ns": Slot(value.split()[0].rstrip("."), "DOMAIN")}
        elif rdtype == "TXT":
            yield "dns_txt", {"domain": domain}
    for rdtype, status in (p.get("status") or {}).items():
        if status and status != "NOERROR":
            yield "dns_status", {"domain": domain, "rdtype": Slot(rdtype), "status": Slot(status)}


def _facts_whois(p: dict) -> Iterable[tuple[str, dict]]:
    domain = Slot(_s(p.get("domain")), "DOMAIN")
    if p.get("error"):
        yield "whois_error", {"domain": domain, "error": Slot(_s(p["error"]))}
    yield "whois_domain", {"domain": domain}
    yield "whois_registrar", {"domain": domain, "registrar": Slot(_s(p.get("registrar")), "ORG")}
    yield "whois_org", {"domain": domain, "org": Slot(_s(p.get("organization")), "ORG")}
    ns = [_s(n).rstrip(".") for n in p.get("name_servers", []) if _s(n)]
    yield "whois_ns", {"name_servers": Slot(ns, "DOMAIN")}
    created, expires = _s(p.get("creation_date"))[:10], _s(p.get("expiration_date"))[:10]
    yield ("whois_dates" if expires else "whois_created"), {"created": Slot(created), "expires": Slot(expires)}
    yield "whois_country", {"country": Slot(_s(p.get("country")))}


def _service_slots(ip: Slot, item: dict, service_key: str) -> dict:
    return {"ip": ip, "port": Slot(_s(item.get("port")), "PORT"),
            "transport": Slot(_s(item.get("transport") or item.get("protocol"))),
            "state": Slot(_s(item.get("state")), "STATE"),
            "service": Slot(_s(item.get(service_key)), "SERVICE"),
            "product": Slot(_s(item.get("product")), "SOFTWARE"),
            "version": Slot(_s(item.get("version")), "VERSION")}


def _facts_shodan(p: dict) -> Iterable[tuple[str, dict]]:
    if p.get("kind") == "search":
        yield "search", {"query": Slot(_s(p.get("query"))), "total": Slot(_s(p.get("total")))}
        for m in p.get("matches", []):
            ip = Slot(_s(m.get("ip")), "IP")
            yield "search_match", {"ip": ip, "org": Slot(_s(m.get("org")), "ORG")}
            yield "host_names", {"ip": ip, "hostnames": Slot(
                [_s(h) for h in m.get("hostnames", []) + m.get("domains", []) if _s(h)], "DOMAIN")}
            yield "host_os", {"ip": ip, "os": Slot(_s(m.get("os")), "OS")}
            yield "service", _service_slots(ip, m, "module")
        return
    ip = Slot(_s(p.get("ip")), "IP")
    yield "host_org", {"ip": ip, "org": Slot(_s(p.get("org")), "ORG")}
    yield "host_isp", {"isp": Slot(_s(p.get("isp")), "ORG")}
    names = list(dict.fromkeys(_s(h) for h in p.get("hostnames", []) + p.get("domains", []) if _s(h)))
    yield "host_names", {"ip": ip, "hostnames": Slot(names, "DOMAIN")}
    yield "host_os", {"ip": ip, "os": Slot(_s(p.get("os")), "OS")}
    for svc in p.get("services", []):
        yield "service", _service_slots(ip, svc, "module")
    vulns = [_s(v) for v in p.get("vulns", []) if _s(v)]
    yield "vulns", {"ip": ip, "cves": Slot(vulns)}


def _facts_nmap(p: dict) -> Iterable[tuple[str, dict]]:
    for host in p.get("hosts", []):
        addrs = [_s(a.get("addr")) for a in host.get("addresses", []) if a.get("addrtype") in ("ipv4", "ipv6")]
        ip = Slot(addrs[0] if addrs else "", "IP")
        yield "host_ip", {"ip": ip}
        for extra in addrs[1:]:
            yield "host_ip", {"ip": Slot(extra, "IP")}
        yield "host_status", {"ip": ip, "status": Slot(_s(host.get("status")))}
        yield "host_names", {"ip": ip, "hostnames": Slot(
            [_s(h.get("name")) for h in host.get("hostnames", []) if _s(h.get("name"))], "DOMAIN")}
        for port in host.get("ports", []):
            yield "service", _service_slots(ip, port, "service")
        for osm in host.get("os", [])[:1]:
            yield "host_os_guess", {"os": Slot(_s(osm.get("name")), "OS"),
                                    "accuracy": Slot(_s(osm.get("accuracy")))}


FACTS = {"dns": _facts_dns, "whois": _facts_whois, "shodan": _facts_shodan, "nmap": _facts_nmap}


# ---------------------------------------------------------------- rendering
def _available(slots: dict) -> set[str]:
    return {k for k, s in slots.items() if (s.value if isinstance(s.value, list) else s.value != "")}


def choose_template(options: list[str], slots: dict, rng: random.Random) -> str | None:
    """Among templates whose slots are all available, those using the most typed slots; one at random."""
    avail = _available(slots)
    fitting = []
    for t in options:
        names = set(_SLOT.findall(t))
        if names <= avail:
            typed = sum(1 for n in names if slots[n].type is not None)
            fitting.append((typed, len(names), t))
    if not fitting:
        return None
    best = max((f[0], f[1]) for f in fitting)
    return rng.choice([t for typed, n, t in fitting if (typed, n) == best])


class _Builder:
    def __init__(self, gold: set[tuple[str, str]], types: set[str], gold_by_text: dict[str, str]):
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[dict] = []
        self.gold, self.types, self.gold_by_text = gold, types, gold_by_text

    def _emit(self, text: str, etype: str | None) -> None:
        if etype is None and text in self.gold_by_text:
            etype = self.gold_by_text[text]
        if etype in self.types and (etype, text) in self.gold:
            self.spans.append({"start": self.length, "end": self.length + len(text), "type": etype, "text": text})
        self.parts.append(text)
        self.length += len(text)

    def _lit(self, text: str) -> None:
        if text.startswith(".") and self.parts and self.parts[-1].endswith("."):
            text = text[1:]  # "MarkMonitor Inc." ends the sentence itself
        self.parts.append(text)
        self.length += len(text)

    def sentence(self, template: str, slots: dict) -> None:
        if self.parts:
            self._lit(" ")
        pos = 0
        for m in _SLOT.finditer(template):
            self._lit(template[pos:m.start()])
            slot = slots[m.group(1)]
            values = slot.value if isinstance(slot.value, list) else [slot.value]
            for i, v in enumerate(values):
                if i:
                    self._lit(" and " if i == len(values) - 1 else ", ")
                self._emit(v, slot.type)
            pos = m.end()
        self._lit(template[pos:])

    @property
    def text(self) -> str:
        return "".join(self.parts)


def render_record(rec: dict, types: Iterable[str], seed: int = 0, templates: dict | None = None,
                  where: str = "<records>", row: int | None = None) -> Rendered:
    """Render one OSINT record; raises :class:`InputError` (naming the record) on a bad span."""
    templates = templates or load_templates()
    types = set(types)
    gold = {(e["type"], e["text"]) for e in rec.get("gold_entities", [])}
    by_text: dict[str, str] = {}
    for etype, text in sorted(gold):
        if etype in types:
            by_text.setdefault(text, etype)
    rng = record_rng(seed, rec["id"], "render")
    context = classify_context(rec)
    b = _Builder(gold, types, by_text)
    used = []
    target = rec.get("target", "")
    if target.startswith("search:"):
        target = target.split(":", 1)[1]
    intro = rng.choice(templates["intro"][context])
    b.sentence(intro, {"target": Slot(target)})
    used.append(f"intro.{context}")
    facts = FACTS[rec["source"]](rec.get("parsed") or {})
    for kind, slots in facts:
        options = templates["facts"].get(kind)
        if not options:
            continue
        chosen = choose_template(options, slots, rng)
        if chosen is None:
            continue
        b.sentence(chosen, slots)
        used.append(f"{kind}.{options.index(chosen)}")
    covered = {(s["type"], s["text"]) for s in b.spans}
    mentions = 0
    for ent in rec.get("gold_entities", []):
        key = (ent["type"], ent["text"])
        if ent["type"] in types and key not in covered:
            b.sentence(rng.choice(templates["facts"]["mention"]),
                       {"label": Slot(TYPE_LABELS.get(ent["type"], ent["type"].lower())),
                        "text": Slot(ent["text"], ent["type"])})
            covered.add(key)
            mentions += 1
    text = b.text
    try:
        check_spans(text, b.spans, where=where, row=row, types=types, words=word_spans(text))
    except InputError as exc:
        raise InputError(where, f"record {rec['id']!r}: {exc}", row=row, field="gold_entities") from None
    return Rendered(text, b.spans, context, used, mentions)


# ---------------------------------------------------------------- raw-text view
def project_spans(text: str, gold: Iterable[tuple[str, str]], types: Iterable[str]) -> list[dict]:
    """Spans of every occurrence of each gold ``(type, text)`` (configured types only) that starts
    and ends on word boundaries of ``text``; where occurrences overlap the longer one wins (then
    the earlier), so the spans never overlap."""
    ws = word_spans(text)
    starts, ends = {a for a, _ in ws}, {b for _, b in ws}
    types = set(types)
    found = []
    for etype, value in sorted(set(gold)):
        if etype not in types or not value:
            continue
        for m in re.finditer(re.escape(value), text):
            if m.start() in starts and m.end() in ends:
                found.append((m.start(), m.end(), etype))
    chosen: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    for a, b, etype in sorted(found, key=lambda f: (-(f[1] - f[0]), f[0], f[2])):
        if all(b <= x or a >= y for x, y in taken):
            chosen.append((a, b, etype))
            taken.append((a, b))
    return [{"start": a, "end": b, "type": t, "text": text[a:b]} for a, b, t in sorted(chosen)]


def render_raw(rec: dict, types: Iterable[str], where: str = "<records>", row: int | None = None) -> Rendered:
    """The raw rendering of one OSINT record: its tagger view with gold spans projected onto it.

    Raw text whose declared structure does not parse is shown as ``tinysec tag`` would show it
    (as plain text). A projected span that does not match the view raises :class:`InputError`."""
    types = list(types)
    fmt, view, _note = tagger_view(rec["raw"], f"{where}: record {rec['id']!r}")
    gold = [(e["type"], e["text"]) for e in rec.get("gold_entities", [])]
    spans = project_spans(view, gold, types)
    labelled = {(s["type"], s["text"]) for s in spans}
    missing = sum(1 for g in set(gold) if g[0] in types and g not in labelled)
    try:
        check_spans(view, spans, where=where, row=row, types=types, words=word_spans(view))
    except InputError as exc:
        raise InputError(where, f"record {rec['id']!r}: {exc}", row=row, field="gold_entities") from None
    return Rendered(view, spans, classify_context(rec), [f"raw.{fmt}"], 0, fmt, missing)
