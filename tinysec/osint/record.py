"""The OSINT record: one tool answer about one target, collected or synthetic.

Every collector (dns, whois, shodan, nmap) and the offline sample generator write this format.
Collected records go one per file to ``results/osint/raw/{source}/{target}.json`` (``{target}`` is
:func:`tinysec.osint.targets.slug` of the target: the target itself when it is file-name safe); all records,
collected or synthetic, go one per line to ``results/osint/records.jsonl`` (read by the NER corpus).

Record fields
-------------
``id``            str   unique in records.jsonl: ``"<source>:<target>"`` (collected) or
                        ``"syn-<source>-<n>"`` (synthetic)
``source``        str   one of ``dns``, ``whois``, ``shodan``, ``nmap``
``target``        str   what was asked: a domain (dns, whois), an IP or ``search:<query>`` (shodan),
                        an IP, CIDR or hostname (nmap)
``collected_at``  str   ISO 8601 UTC time of the query (``2025-01-31T12:00:00Z``)
``tool``          str   ``dnspython``, ``python-whois``, ``shodan``, ``nmap`` (synthetic records name
                        the tool whose output they imitate)
``tool_version``  str   version of that tool (``"synthetic"`` for generated records)
``synthetic``     bool  True for generated records, False for real answers
``raw``           str   the text exactly as the tool returned it: a dig-style rendering of the DNS
                        answers, the WHOIS reply, Shodan's JSON (``json.dumps(..., indent=2)``), nmap's XML
                        (synthetic nmap records: the XML or nmap's normal output of the scan, ``parsed``
                        always read from its XML)
``parsed``        dict  structured form, per source (below)
``gold_entities`` list  ``[{"type": T, "text": s}]``; T in ENTITY_TYPES (+ OPTIONAL_ENTITY_TYPES).
                        Derived from ``parsed`` by :func:`tinysec.osint.entities.gold_entities`, kept
                        only when ``text`` occurs verbatim in ``raw`` as whole words; deduplicated, in raw order.

``parsed`` per source (every key is always present; unknown values are None / [] )
---------------------------------------------------------------------------------
dns::

    {"domain": str, "nameserver": str | None,            # "ip:port" when set in the config
     "answers": [{"name": str, "ttl": int, "rdclass": "IN", "rdtype": "A", "value": str}],
     "status": {"A": "NOERROR" | "NXDOMAIN" | "NOANSWER" | "TIMEOUT" | "SERVFAIL" | ... | "ERROR: <exception>"}}

whois::

    {"domain": str, "registrar": str | None, "organization": str | None,
     "name_servers": [str], "creation_date": str | None, "expiration_date": str | None,
     "updated_date": str | None,                          # ISO 8601 dates
     "country": str | None, "emails": [str], "error": str | None}

shodan (host lookup, ``kind == "host"``; ``found`` False on 404)::

    {"kind": "host", "ip": str, "found": bool, "org": str | None, "isp": str | None,
     "asn": str | None, "os": str | None, "country": str | None,
     "hostnames": [str], "domains": [str], "ports": [int], "vulns": [str],
     "services": [{"port": int, "transport": str, "module": str | None, "product": str | None,
                   "version": str | None, "cpe": [str], "banner": str}]}

shodan (search, ``kind == "search"``)::

    {"kind": "search", "query": str, "total": int,
     "matches": [{"ip": str, "port": int, "transport": str, "org": str | None,
                  "product": str | None, "version": str | None, "hostnames": [str],
                  "domains": [str], "os": str | None, "banner": str}]}

nmap::

    {"args": str, "scanner_version": str | None,
     "hosts": [{"status": str, "addresses": [{"addr": str, "addrtype": str}],
                "hostnames": [{"name": str, "type": str}],
                "ports": [{"protocol": str, "port": int, "state": str, "service": str | None,
                           "product": str | None, "version": str | None, "extrainfo": str | None,
                           "cpe": [str]}],
                "os": [{"name": str, "accuracy": int, "cpe": [str]}]}]}
"""

from __future__ import annotations

import datetime as _dt
import os
from typing import Any, Iterable

from ..io import InputError, iter_jsonl, read_json

SOURCES = ("dns", "whois", "shodan", "nmap")
ENTITY_TYPES = ("ORG", "DOMAIN", "IP", "SOFTWARE", "SERVICE", "VERSION")
OPTIONAL_ENTITY_TYPES = ("PORT", "OS", "STATE")
ALL_ENTITY_TYPES = ENTITY_TYPES + OPTIONAL_ENTITY_TYPES
TOOLS = {"dns": "dnspython", "whois": "python-whois", "shodan": "shodan", "nmap": "nmap"}

FIELDS = {
    "id": str, "source": str, "target": str, "collected_at": str, "tool": str,
    "tool_version": str, "synthetic": bool, "raw": str, "parsed": dict, "gold_entities": list,
}

PARSED_KEYS = {
    "dns": ("domain", "nameserver", "answers", "status"),
    "whois": ("domain", "registrar", "organization", "name_servers", "creation_date",
              "expiration_date", "updated_date", "country", "emails", "error"),
    "shodan:host": ("kind", "ip", "found", "org", "isp", "asn", "os", "country", "hostnames",
                    "domains", "ports", "vulns", "services"),
    "shodan:search": ("kind", "query", "total", "matches"),
    "nmap": ("args", "scanner_version", "hosts"),
}


def utc_now() -> str:
    """Current UTC time as ISO 8601 with a ``Z`` suffix, second resolution."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def record_id(source: str, target: str) -> str:
    """Id of a collected record."""
    return f"{source}:{target}"


def parsed_schema_key(source: str, parsed: dict) -> str:
    """Key into PARSED_KEYS for a source's parsed form (shodan has two kinds)."""
    if source == "shodan":
        return f"shodan:{parsed.get('kind')}"
    return source


def validate_record(rec: Any, path: str | os.PathLike = "<record>", row: int | None = None) -> dict:
    """Check a record's fields and types; raise :class:`InputError` naming path, row and field."""
    if not isinstance(rec, dict):
        raise InputError(path, f"expected a JSON object, got {type(rec).__name__}", row=row)
    for name, typ in FIELDS.items():
        if name not in rec:
            raise InputError(path, "missing field", row=row, field=name)
        if not isinstance(rec[name], typ):
            raise InputError(path, f"expected {typ.__name__}, got {type(rec[name]).__name__}",
                             row=row, field=name)
    extra = sorted(set(rec) - set(FIELDS))
    if extra:
        raise InputError(path, f"unknown field(s) {extra}", row=row, field=extra[0])
    if rec["source"] not in SOURCES:
        raise InputError(path, f"unknown source {rec['source']!r} (expected one of {SOURCES})",
                         row=row, field="source")
    try:
        _dt.datetime.fromisoformat(rec["collected_at"].replace("Z", "+00:00"))
    except ValueError:
        raise InputError(path, f"not an ISO 8601 time: {rec['collected_at']!r}", row=row,
                         field="collected_at") from None
    key = parsed_schema_key(rec["source"], rec["parsed"])
    if key not in PARSED_KEYS:
        raise InputError(path, f"unknown shodan kind {rec['parsed'].get('kind')!r}", row=row,
                         field="parsed.kind")
    missing = [k for k in PARSED_KEYS[key] if k not in rec["parsed"]]
    if missing:
        raise InputError(path, f"parsed form of {key} lacks {missing}", row=row,
                         field=f"parsed.{missing[0]}")
    for i, ent in enumerate(rec["gold_entities"]):
        if not (isinstance(ent, dict) and isinstance(ent.get("type"), str)
                and isinstance(ent.get("text"), str) and ent["text"]):
            raise InputError(path, f"gold entity {i} must be {{type: str, text: non-empty str}}",
                             row=row, field="gold_entities")
        if ent["type"] not in ALL_ENTITY_TYPES:
            raise InputError(path, f"gold entity {i} has unknown type {ent['type']!r}", row=row,
                             field="gold_entities")
    return rec


def make_record(source: str, target: str, raw: str, parsed: dict, *, tool_version: str,
                gold_entities: list[dict] | None = None, synthetic: bool = False,
                collected_at: str | None = None, record_id_: str | None = None,
                tool: str | None = None) -> dict:
    """Build and validate a record; gold entities default to those derived from ``parsed``."""
    if gold_entities is None:
        from .entities import gold_entities as derive

        gold_entities = derive(source, parsed, raw)
    rec = {
        "id": record_id_ or record_id(source, target),
        "source": source,
        "target": target,
        "collected_at": collected_at or utc_now(),
        "tool": tool or TOOLS.get(source, source),
        "tool_version": str(tool_version),
        "synthetic": bool(synthetic),
        "raw": raw,
        "parsed": parsed,
        "gold_entities": gold_entities,
    }
    return validate_record(rec)


def load_record(path: str | os.PathLike) -> dict:
    """Read and validate one ``results/osint/raw/{source}/{target}.json`` file."""
    return validate_record(read_json(path), path)


def iter_records(path: str | os.PathLike) -> Iterable[dict]:
    """Yield validated records of a records.jsonl file; errors name the line and field."""
    seen: set[str] = set()
    for row, rec in enumerate(iter_jsonl(path), start=1):
        validate_record(rec, path, row)
        if rec["id"] in seen:
            raise InputError(path, f"duplicate id {rec['id']!r}", row=row, field="id")
        seen.add(rec["id"])
        yield rec


def load_records(path: str | os.PathLike) -> list[dict]:
    """All validated records of a records.jsonl file."""
    return list(iter_records(path))
