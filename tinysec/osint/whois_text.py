"""Registry- and registrar-style WHOIS replies in the ICANN RDDS layout (for the synthetic
corpus and the loopback test server)."""

from __future__ import annotations

from dataclasses import dataclass, field

STATUSES = ("clientDeleteProhibited", "clientTransferProhibited", "clientUpdateProhibited",
            "serverDeleteProhibited", "serverTransferProhibited", "serverUpdateProhibited")


@dataclass
class Registration:
    domain: str
    registrar: str
    registrar_iana_id: str
    registrar_whois: str
    registrar_url: str
    created: str                     # ISO 8601, e.g. 2003-05-12T04:00:00Z
    updated: str
    expires: str
    name_servers: list[str]
    organization: str
    country: str
    state: str = "CA"
    statuses: list[str] = field(default_factory=lambda: ["clientTransferProhibited"])
    dnssec: str = "unsigned"
    abuse_email: str = ""
    registry_domain_id: str = "0000000_DOMAIN_COM-VRSN"
    last_update: str = "2025-01-01T00:00:00Z"


def _common(reg: Registration) -> list[str]:
    abuse = reg.abuse_email or f"abuse@{reg.registrar_whois.split('.', 1)[-1]}"
    return [
        f"Registry Domain ID: {reg.registry_domain_id}",
        f"Registrar WHOIS Server: {reg.registrar_whois}",
        f"Registrar URL: {reg.registrar_url}",
        f"Updated Date: {reg.updated}",
        f"Creation Date: {reg.created}",
    ], abuse


def registry_reply(reg: Registration) -> str:
    """What a thin/thick gTLD registry answers: the registrar, dates, status, name servers."""
    head, abuse = _common(reg)
    lines = [f"   Domain Name: {reg.domain.upper()}"] + [f"   {ln}" for ln in head] + [
        f"   Registry Expiry Date: {reg.expires}",
        f"   Registrar: {reg.registrar}",
        f"   Registrar IANA ID: {reg.registrar_iana_id}",
        f"   Registrar Abuse Contact Email: {abuse}",
        "   Registrar Abuse Contact Phone: +1.4805058800",
    ]
    lines += [f"   Domain Status: {s} https://icann.org/epp#{s}" for s in reg.statuses]
    lines += [f"   Name Server: {ns.upper()}" for ns in reg.name_servers]
    lines += [f"   DNSSEC: {reg.dnssec}",
              "   URL of the ICANN Whois Inaccuracy Complaint Form: https://www.icann.org/wicf/",
              f">>> Last update of whois database: {reg.last_update} <<<", "",
              "NOTICE: The expiration date displayed in this record is the date the registrar's",
              "sponsorship of the domain name registration in the registry is currently set to expire.", ""]
    return "\n".join(lines) + "\n"


def registrar_reply(reg: Registration) -> str:
    """What the registrar of record answers: the same facts plus the registrant contact."""
    head, abuse = _common(reg)
    lines = [f"Domain Name: {reg.domain}"] + head + [
        f"Registrar Registration Expiration Date: {reg.expires}",
        f"Registrar: {reg.registrar}",
        f"Registrar IANA ID: {reg.registrar_iana_id}",
        f"Registrar Abuse Contact Email: {abuse}",
        "Registrar Abuse Contact Phone: +1.4805058800",
    ]
    lines += [f"Domain Status: {s} https://icann.org/epp#{s}" for s in reg.statuses]
    lines += ["Registry Registrant ID: REDACTED FOR PRIVACY",
              "Registrant Name: REDACTED FOR PRIVACY",
              f"Registrant Organization: {reg.organization}",
              "Registrant Street: REDACTED FOR PRIVACY",
              f"Registrant State/Province: {reg.state}",
              f"Registrant Country: {reg.country}",
              f"Registrant Email: Please query the RDDS service of the Registrar of Record identified "
              f"in this output for information on how to contact the Registrant",
              "Admin Name: REDACTED FOR PRIVACY",
              "Tech Name: REDACTED FOR PRIVACY"]
    lines += [f"Name Server: {ns.lower()}" for ns in reg.name_servers]
    lines += [f"DNSSEC: {reg.dnssec}",
              "URL of the ICANN WHOIS Data Problem Reporting System: http://wdprs.internic.net/",
              f">>> Last update of WHOIS database: {reg.last_update} <<<", ""]
    return "\n".join(lines) + "\n"


def iana_reply(tld: str, registry_whois: str, registry: str) -> str:
    """IANA's answer for a TLD: the ``whois:`` line points at the registry's server."""
    return (f"% IANA WHOIS server\n% for more information on IANA, visit http://www.iana.org\n"
            f"% This query returned 1 object\n\ndomain:       {tld.upper()}\n\n"
            f"organisation: {registry}\n\nwhois:        {registry_whois}\n\nstatus:       ACTIVE\n"
            f"remarks:      Registration information: http://www.iana.org/domains/root/db/{tld}.html\n\n"
            f"source:       IANA\n")
