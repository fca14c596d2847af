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
from collections.abc import Iterable
from typing import Any

from ..io import InputError, check_record, iter_jsonl_lines, read_json

SOURCES = ("dns", "whois", "shodan", "nmap")
ENTITY_TYPES = ("ORG", "DOMAIN", "IP", "SOFTWARE", "SERVICE", "VERSION")
OPTIONAL_ENTITY_TYPES = ("PORT", "OS", "STATE")
ALL_ENTITY_TYPES = ENTITY_TYPES + OPTIONAL_ENTITY_TYPES
TOOLS = {"dns": "dnspython", "whois": "python-whois", "shodan": "shodan", "nmap": "nmap"}


def utc_now() -> str:
    """Current UTC time as ISO 8601 with a ``Z`` suffix, second resolution."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def record_id(source: str, target: str) -> str:
    """Id of a collected record."""
    return f"{source}:{target}"


def validate_record(rec: Any, path: str | os.PathLike = "<record>", row: int | None = None) -> dict:
    """Check a record against format ``osint_record`` (``tinysec/schemas/osint_record.schema.yaml``:
    fields, types, parsed keys per source, gold entity types) and its ISO 8601 ``collected_at``;
    raise :class:`InputError` naming path, row and field."""
    check_record(rec, "osint_record", path, row)
    try:
        _dt.datetime.fromisoformat(rec["collected_at"].replace("Z", "+00:00"))
    except ValueError:
        raise InputError(path, f"not an ISO 8601 time: {rec['collected_at']!r}", row=row,
                         field="collected_at") from None
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
    for row, rec in iter_jsonl_lines(path):
        validate_record(rec, path, row)
        if rec["id"] in seen:
            raise InputError(path, f"duplicate id {rec['id']!r}", row=row, field="id")
        seen.add(rec["id"])
        yield rec


def load_records(path: str | os.PathLike) -> list[dict]:
    """All validated records of a records.jsonl file."""
    return list(iter_records(path))
