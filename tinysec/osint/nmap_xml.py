"""Parse nmap's XML output (``-oX``) with defusedxml: hosts, ports, services, OS matches, CPEs."""

from __future__ import annotations

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring


class NmapXMLError(ValueError):
    """nmap output that is not a complete, safe nmaprun document."""


def _text_or_none(value: str | None) -> str | None:
    return value if value else None


def _port(el) -> dict:
    state = el.find("state")
    svc = el.find("service")
    get = (lambda k: _text_or_none(svc.get(k))) if svc is not None else (lambda k: None)
    return {
        "protocol": el.get("protocol", "tcp"),
        "port": int(el.get("portid", "0")),
        "state": state.get("state", "unknown") if state is not None else "unknown",
        "service": get("name"), "product": get("product"), "version": get("version"),
        "extrainfo": get("extrainfo"),
        "cpe": [c.text for c in svc.findall("cpe") if c.text] if svc is not None else [],
    }


def _host(el) -> dict:
    status = el.find("status")
    return {
        "status": status.get("state", "unknown") if status is not None else "unknown",
        "addresses": [{"addr": a.get("addr", ""), "addrtype": a.get("addrtype", "")}
                      for a in el.findall("address")],
        "hostnames": [{"name": h.get("name", ""), "type": h.get("type", "")}
                      for h in el.findall("hostnames/hostname")],
        "ports": [_port(p) for p in el.findall("ports/port")],
        "os": [{"name": m.get("name", ""), "accuracy": int(m.get("accuracy", "0") or 0),
                "cpe": [c.text for c in m.findall("osclass/cpe") if c.text]}
               for m in el.findall("os/osmatch")],
    }


def parse_nmap_xml(xml_text: str) -> dict:
    """The parsed form of an nmap XML document (see :mod:`tinysec.osint.record`).

    Entity declarations (XML bombs), external references and truncated documents raise
    :class:`NmapXMLError`.
    """
    if not xml_text.strip():
        raise NmapXMLError("nmap produced no XML output")
    try:
        root = fromstring(xml_text.encode("utf-8"), forbid_dtd=False, forbid_entities=True,
                          forbid_external=True)
    except DefusedXmlException as exc:
        raise NmapXMLError(f"unsafe nmap XML refused ({type(exc).__name__}: {exc})") from None
    except ParseError as exc:
        raise NmapXMLError(f"malformed or truncated nmap XML: {exc}") from None
    if root.tag != "nmaprun":
        raise NmapXMLError(f"expected an <nmaprun> document, got <{root.tag}>")
    if root.find("runstats/finished") is None:
        raise NmapXMLError("nmap XML has no <runstats><finished>: the scan did not complete")
    return {
        "args": root.get("args", ""),
        "scanner_version": root.get("version"),
        "hosts": [_host(h) for h in root.findall("host")],
    }
