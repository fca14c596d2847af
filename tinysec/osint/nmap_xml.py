"""Parse nmap's XML output (``-oX``) with defusedxml: hosts, ports, services, OS matches, CPEs."""

from __future__ import annotations

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring


class NmapXMLError(ValueError):
    """nmap output that is not a complete, safe nmaprun document, or holds a bad number."""


def _text_or_none(value: str | None) -> str | None:
    return value if value else None


def _int(el, attr: str, default: str, lo: int, hi: int, where: str) -> int:
    """Attribute ``attr`` of ``el`` (``default`` when absent) as a whole number in ``lo..hi``;
    anything else, an empty value included, raises :class:`NmapXMLError` naming ``where`` and the field."""
    raw = el.get(attr, default)
    text = raw.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 9) or not lo <= int(text) <= hi:
        shown = repr(raw) if len(raw) <= 40 else f"{raw[:40]!r}... ({len(raw)} characters)"
        raise NmapXMLError(f"{where}: field {attr}={shown} is not a whole number in {lo}..{hi}")
    return int(text)


def _port(el, where: str) -> dict:
    state = el.find("state")
    svc = el.find("service")
    get = (lambda k: _text_or_none(svc.get(k))) if svc is not None else (lambda k: None)
    return {
        "protocol": el.get("protocol", "tcp"),
        "port": _int(el, "portid", "0", 0, 65535, where),
        "state": state.get("state", "unknown") if state is not None else "unknown",
        "service": get("name"), "product": get("product"), "version": get("version"),
        "extrainfo": get("extrainfo"),
        "cpe": [c.text for c in svc.findall("cpe") if c.text] if svc is not None else [],
    }


def _osmatch(m, where: str) -> dict:
    return {"name": m.get("name", ""), "accuracy": _int(m, "accuracy", "0", 0, 100, where),
            "cpe": [c.text for c in m.findall("osclass/cpe") if c.text]}


def _host(el, where: str) -> dict:
    status = el.find("status")
    return {
        "status": status.get("state", "unknown") if status is not None else "unknown",
        "addresses": [{"addr": a.get("addr", ""), "addrtype": a.get("addrtype", "")}
                      for a in el.findall("address")],
        "hostnames": [{"name": h.get("name", ""), "type": h.get("type", "")}
                      for h in el.findall("hostnames/hostname")],
        "ports": [_port(p, f"{where}, <port> {i + 1}") for i, p in enumerate(el.findall("ports/port"))],
        "os": [_osmatch(m, f"{where}, <osmatch> {i + 1}") for i, m in enumerate(el.findall("os/osmatch"))],
    }


def parse_nmap_xml(xml_text: str, source: str = "nmap XML") -> dict:
    """The parsed form of an nmap XML document (see :mod:`tinysec.osint.record`).

    Entity declarations (XML bombs), external references, truncated documents and numeric
    fields that are not numbers in range (``portid``, ``accuracy``) raise :class:`NmapXMLError`,
    whose message starts with ``source`` (the file or scan the XML came from).
    """
    if not xml_text.strip():
        raise NmapXMLError(f"{source}: nmap produced no XML output")
    try:
        root = fromstring(xml_text.encode("utf-8"), forbid_dtd=False, forbid_entities=True,
                          forbid_external=True)
    except DefusedXmlException as exc:
        raise NmapXMLError(f"{source}: unsafe nmap XML refused ({type(exc).__name__}: {exc})") from None
    except ParseError as exc:
        raise NmapXMLError(f"{source}: malformed or truncated nmap XML: {exc}") from None
    if root.tag != "nmaprun":
        raise NmapXMLError(f"{source}: expected an <nmaprun> document, got <{root.tag}>")
    if root.find("runstats/finished") is None:
        raise NmapXMLError(f"{source}: nmap XML has no <runstats><finished>: the scan did not complete")
    return {
        "args": root.get("args", ""),
        "scanner_version": root.get("version"),
        "hosts": [_host(h, f"{source}, <host> {i + 1}") for i, h in enumerate(root.findall("host"))],
    }
