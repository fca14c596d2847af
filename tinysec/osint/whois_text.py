"""WHOIS replies in the layouts of gTLD and ccTLD registries (for the synthetic corpus and the
loopback test server), and a layout-tolerant reader of such replies.

Writers: the ICANN RDDS layout of a gTLD registry (thin: registrar, dates, status, name servers)
and of the registrar of record (thick: Registrant/Admin/Tech contacts); and ccTLD layouts with
bracketed sections (``[Holder]``), bracketed keys (``[ドメイン名]``), indented blocks
(``Registrant:`` then an indented value), lower-case key-colon blocks, and localised labels
(German, French, Russian, Japanese). :data:`LAYOUTS` lists them with the TLDs they serve and
their families (:data:`FAMILIES`).

Reader: :func:`read_reply` turns any of these layouts into ``(section, key, value)`` entries and
maps known labels (English and localised) to registrar, registrant organisation, name servers,
dates and country; :func:`overlay_parsed` corrects python-whois's reading with it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
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


def _common(reg: Registration) -> tuple[list[str], str]:
    abuse = reg.abuse_email or f"abuse@{reg.registrar_whois.split('.', 1)[-1]}"
    return [
        f"Registry Domain ID: {reg.registry_domain_id}",
        f"Registrar WHOIS Server: {reg.registrar_whois}",
        f"Registrar URL: {reg.registrar_url}",
        f"Updated Date: {reg.updated}",
        f"Creation Date: {reg.created}",
    ], abuse


def registry_reply(reg: Registration) -> str:
    """What a thin gTLD registry (Verisign style) answers: the registrar, dates, status, name servers."""
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


def _contact(role: str, reg: Registration, with_org: bool) -> list[str]:
    redacted = "REDACTED FOR PRIVACY"
    lines = [f"Registry {role} ID: {redacted}", f"{role} Name: {redacted}"]
    if with_org:
        lines.append(f"{role} Organization: {reg.organization}")
    lines += [f"{role} Street: {redacted}", f"{role} City: {redacted}",
              f"{role} State/Province: {reg.state}", f"{role} Postal Code: {redacted}",
              f"{role} Country: {reg.country}", f"{role} Phone: {redacted}",
              f"{role} Email: Please query the RDDS service of the Registrar of Record identified "
              f"in this output for information on how to contact the {role}"]
    return lines


def registrar_reply(reg: Registration) -> str:
    """What the registrar of record answers (thick): the same facts plus Registrant/Admin/Tech contacts."""
    head, abuse = _common(reg)
    lines = [f"Domain Name: {reg.domain}"] + head + [
        f"Registrar Registration Expiration Date: {reg.expires}",
        f"Registrar: {reg.registrar}",
        f"Registrar IANA ID: {reg.registrar_iana_id}",
        f"Registrar Abuse Contact Email: {abuse}",
        "Registrar Abuse Contact Phone: +1.4805058800",
    ]
    lines += [f"Domain Status: {s} https://icann.org/epp#{s}" for s in reg.statuses]
    lines += _contact("Registrant", reg, True) + _contact("Admin", reg, False) + _contact("Tech", reg, False)
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


# ---------------------------------------------------------------- ccTLD layouts
def _day(iso: str, sep: str = "-") -> str:
    return iso[:10].replace("-", sep)


def _uk_date(iso: str) -> str:
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return f"{iso[8:10]}-{months[int(iso[5:7]) - 1]}-{iso[:4]}"


def lv_reply(reg: Registration) -> str:
    """Bracketed sections, as the .lv registry answers: ``[Domain]``, ``[Holder]``, ``[Registrar]``."""
    visit = f"    Visit: https://www.nic.lv/whois/contact/{reg.domain}:holder to contact."
    lines = ["% Timestamp: " + reg.last_update, "% For more information please visit https://www.nic.lv/whois",
             "", "[Domain]", f"Domain: {reg.domain}", "Status: active", "", "[Holder]",
             "    Type: Legal person", f"    Country: {reg.country}", f"    Name: {reg.organization}",
             "    Address: REDACTED", visit, "", "[Tech]", "    Type: Natural person",
             visit.replace(":holder", ":tech"), "", "[Registrar]", "    Type: Legal person",
             f"    Name: {reg.registrar}", "    Address: REDACTED", f"    Visit: {reg.registrar_url}", "",
             "[Nservers]"]
    lines += [f"    Nserver: {ns}" for ns in reg.name_servers]
    lines += ["", "[Whois]", f"    Updated: {reg.updated}", "", "% Disclaimer: REDACTED", ""]
    return "\n".join(lines)


def uk_reply(reg: Registration) -> str:
    """Indented blocks, as Nominet (.uk) answers: a label line, then the value indented below it."""
    ind, ind2 = "    ", "        "
    lines = ["", f"{ind}Domain name:", f"{ind2}{reg.domain}", "", f"{ind}Registrant:", f"{ind2}{reg.organization}",
             "", f"{ind}Registrant type:", f"{ind2}UK Limited Company", "", f"{ind}Registrant's address:",
             f"{ind2}The registrant is a non-trading individual who has opted to have their", f"{ind2}address omitted "
             "from the WHOIS service.", "", f"{ind}Data validation:",
             f"{ind2}Nominet was able to match the registrant's name and address against a 3rd party data source "
             f"on {_uk_date(reg.created)}", "", f"{ind}Registrar:", f"{ind2}{reg.registrar} [Tag = REGTAG]",
             f"{ind2}URL: {reg.registrar_url}", "", f"{ind}Relevant dates:",
             f"{ind2}Registered on: {_uk_date(reg.created)}", f"{ind2}Expiry date:  {_uk_date(reg.expires)}",
             f"{ind2}Last updated:  {_uk_date(reg.updated)}", "", f"{ind}Registration status:",
             f"{ind2}Registered until expiry date.", "", f"{ind}Name servers:"]
    lines += [f"{ind2}{ns}" for ns in reg.name_servers]
    lines += ["", f"{ind}WHOIS lookup made at {reg.last_update[11:19]} {_uk_date(reg.last_update)}", "",
              "-- ", "This WHOIS information is provided for free by Nominet UK the central registry",
              "for .uk domain names.", ""]
    return "\n".join(lines)


def de_reply(reg: Registration) -> str:
    """German labels in key-colon lines, as a German registrar's WHOIS answers (``Inhaber:``)."""
    lines = ["% Die Nutzung dieser Daten ist nur fuer technische und administrative Zwecke erlaubt.", "",
             f"Domain: {reg.domain}", "Status: connect"]
    lines += [f"Nameserver: {ns}" for ns in reg.name_servers]
    lines += [f"Angelegt am: {_day(reg.created)}", f"Zuletzt geändert: {reg.updated}", "",
              f"Inhaber: {reg.organization}", f"Inhaber-Land: {reg.country}", "",
              f"Registrierungsstelle: {reg.registrar}", f"Webseite: {reg.registrar_url}", ""]
    return "\n".join(lines)


def fr_reply(reg: Registration) -> str:
    """French labels with the French space before the colon (``Titulaire : ...``)."""
    lines = ["%% Ceci est le service whois du bureau d'enregistrement.", "",
             f"Nom de domaine : {reg.domain}", "Statut : ACTIVE", f"Titulaire : {reg.organization}",
             f"Pays : {reg.country}", f"Bureau d'enregistrement : {reg.registrar}"]
    lines += [f"Serveur de noms : {ns}" for ns in reg.name_servers]
    lines += [f"Date de création : {reg.created}", f"Date d'expiration : {reg.expires}",
              f"Dernière modification : {reg.updated}", ""]
    return "\n".join(lines)


def jp_reply(reg: Registration) -> str:
    """Bracketed Japanese keys in a fixed column, as JPRS (.jp) answers (``[ドメイン名]``)."""
    def row(key: str, value: str) -> str:  # padded to a column by display width (CJK characters are 2 wide)
        label = f"[{key}]"
        width = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in label)
        return label + " " * max(1, 30 - width) + value

    lines = ["[ JPRS database provides information on network administration. ]", "",
             "Domain Information: [ドメイン情報]", row("ドメイン名", reg.domain), row("登録者名", reg.organization),
             row("Registrant", reg.organization)]
    lines += [row("ネームサーバ", ns) for ns in reg.name_servers]
    lines += [row("登録年月日", _day(reg.created, "/")), row("有効期限", _day(reg.expires, "/")),
              row("状態", "Active"), row("最終更新", f"{_day(reg.updated, '/')} {reg.updated[11:19]} (JST)"), ""]
    return "\n".join(lines)


def ru_tci_reply(reg: Registration) -> str:
    """Lower-case key-colon block aligned in a column, as the .ru registry (TCI) answers."""
    def row(key: str, value: str) -> str:
        return f"{key}:".ljust(15) + value

    lines = ["% TCI Whois Service. Terms of use:", "% https://tcinet.ru/documents/whois_ru_rf.pdf", "",
             row("domain", reg.domain.upper())]
    lines += [row("nserver", ns + ".") for ns in reg.name_servers]
    lines += [row("state", "REGISTERED, DELEGATED, VERIFIED"), row("org", reg.organization),
              row("registrar", reg.registrar), row("admin-contact", reg.registrar_url),
              row("created", reg.created), row("paid-till", reg.expires), row("source", "TCI"), "",
              f"Last updated on {reg.last_update}", ""]
    return "\n".join(lines)


def ru_local_reply(reg: Registration) -> str:
    """Russian labels (``Администратор:``), as a Russian registrar's WHOIS answers."""
    lines = ["% Сервис WHOIS регистратора", "", f"Домен: {reg.domain}"]
    lines += [f"Сервер DNS: {ns}." for ns in reg.name_servers]
    lines += ["Статус: зарегистрирован, делегирован", f"Администратор: {reg.organization}",
              f"Регистратор: {reg.registrar}", f"Дата регистрации: {reg.created}",
              f"Оплачен до: {reg.expires}", ""]
    return "\n".join(lines)


def thin_reply(reg: Registration) -> str:
    """A thin gTLD answer alone: the registry's reply (the registrar did not answer)."""
    return registry_reply(reg)


def thick_reply(reg: Registration) -> str:
    """A gTLD referral chain: the registry's thin reply, then the registrar's thick one."""
    return registry_reply(reg) + registrar_reply(reg)


FAMILIES = ("thin", "thick", "bracketed", "key_colon", "indented", "localised")


@dataclass(frozen=True)
class Layout:
    """One registry layout: its writer, the TLDs it serves (None: the vocabulary's gTLDs), its families."""

    write: Callable[[Registration], str]
    tlds: tuple[str, ...] | None
    families: tuple[str, ...]
    shows_registrar: bool = True


LAYOUTS = {
    "gtld_thin": Layout(thin_reply, None, ("thin", "key_colon")),
    "gtld_thick": Layout(thick_reply, None, ("thin", "thick", "key_colon")),
    "lv": Layout(lv_reply, ("lv",), ("bracketed", "key_colon")),
    "uk": Layout(uk_reply, ("co.uk", "org.uk", "uk"), ("indented",)),
    "de": Layout(de_reply, ("de",), ("key_colon", "localised")),
    "fr": Layout(fr_reply, ("fr",), ("key_colon", "localised")),
    "jp": Layout(jp_reply, ("jp", "co.jp"), ("bracketed", "localised"), shows_registrar=False),
    "ru_tci": Layout(ru_tci_reply, ("ru",), ("key_colon",)),
    "ru_local": Layout(ru_local_reply, ("ru", "su"), ("key_colon", "localised")),
}


# ---------------------------------------------------------------- reader
_SECTION = re.compile(r"^\[(\S[^\]]{0,38})\]\s*$")
_BRACKET_KEY = re.compile(r"^\[([^\]]+)\]\s+(\S.*?)\s*$")
_KEY_COLON = re.compile(r"^(\s*)([^\s:%#>\[\]][^:%#>\[\]]{0,58}?)\s*:(?:\s+(.*?))?\s*$")
_UK_TAG = re.compile(r"\s*\[Tag = [^\]]*\]$")

REGISTRAR_KEYS = {"registrar", "sponsoring registrar", "registrar name", "registrierungsstelle",
                  "bureau d'enregistrement", "регистратор", "指定事業者"}
ORG_KEYS = {"registrant organization", "registrant", "org", "inhaber", "titulaire", "администратор",
            "登録者名", "registrant organisation", "holder"}
NS_KEYS = {"name server", "name servers", "nserver", "nameserver", "nameservers", "serveur de noms",
           "сервер dns", "ネームサーバ", "name server(s)"}
CREATED_KEYS = {"creation date", "created", "registered on", "angelegt am", "date de création",
                "дата регистрации", "登録年月日"}
EXPIRES_KEYS = {"registry expiry date", "registrar registration expiration date", "expiry date", "paid-till",
                "date d'expiration", "оплачен до", "有効期限"}
UPDATED_KEYS = {"updated date", "last updated", "updated", "changed", "zuletzt geändert",
                "dernière modification", "最終更新"}
COUNTRY_KEYS = {"registrant country", "country", "inhaber-land", "pays", "страна"}
SECTION_KEYS = {("registrar", "name"): "registrar", ("holder", "name"): "organization",
                ("registrant", "name"): "organization", ("nservers", "nserver"): "name_servers"}


def entries(text: str) -> list[tuple[str, str, str]]:
    """``(section, key, value)`` of every labelled line, keys lower-cased: ``[Section]`` headers and
    indented blocks (a ``Label:`` line without value) open a section; a plain indented line below a
    block header is that block's value (key = the block's label)."""
    out, section, block_indent = [], "", None
    for line in text.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if block_indent is not None and indent <= block_indent:
            section, block_indent = "", None
        stripped = line.strip()
        if m := _SECTION.match(stripped):
            section, block_indent = m.group(1).strip().lower(), None
        elif m := _BRACKET_KEY.match(stripped):
            out.append((section, m.group(1).strip().lower(), m.group(2)))
        elif m := _KEY_COLON.match(line):
            key, value = " ".join(m.group(2).lower().split()), m.group(3) or ""
            if value:
                out.append((section, key, value))
            elif indent < 8:
                section, block_indent = key, indent
        elif block_indent is not None:
            out.append((section, section, stripped))
    return out


def _field(section: str, key: str) -> str | None:
    if (section, key) in SECTION_KEYS:
        return SECTION_KEYS[(section, key)]
    for keys, name in ((REGISTRAR_KEYS, "registrar"), (ORG_KEYS, "organization"), (NS_KEYS, "name_servers"),
                       (CREATED_KEYS, "creation_date"), (EXPIRES_KEYS, "expiration_date"),
                       (UPDATED_KEYS, "updated_date"), (COUNTRY_KEYS, "country")):
        if key in keys and section in ("", key, "whois", "domain", "relevant dates", "holder", "registrant"):
            return name
    return None


def read_reply(text: str) -> dict:
    """Registrar, registrant organisation, name servers (first spelling of each, trailing dot
    dropped), dates and country of a WHOIS reply in any layout of :data:`LAYOUTS`; each value is
    text of the reply (a missing one is None or [])."""
    found: dict = {"registrar": None, "organization": None, "name_servers": [], "creation_date": None,
                   "expiration_date": None, "updated_date": None, "country": None}
    seen_ns: set[str] = set()
    for section, key, value in entries(text):
        name = _field(section, key)
        if name == "name_servers":
            ns = value.split()[0].rstrip(".")
            if ns.lower() not in seen_ns:
                seen_ns.add(ns.lower())
                found["name_servers"].append(ns)
        elif name == "registrar" and found["registrar"] is None:
            found["registrar"] = _UK_TAG.sub("", value)
        elif name and found[name] is None and "REDACTED" not in value:
            found[name] = value
    return found


READ_WINS = ("registrar", "organization", "name_servers", "country")


def overlay_parsed(parsed: dict, text: str) -> dict:
    """``parsed`` (python-whois's reading of ``text``) corrected by :func:`read_reply`: registrar,
    organisation, name servers and country read by label win where found (python-whois keeps
    Nominet's ``[Tag = ...]`` in the registrar and takes the domain for a name server); dates
    that python-whois left empty are filled in."""
    read = read_reply(text)
    out = dict(parsed)
    for key, value in read.items():
        if value and (key in READ_WINS or not out.get(key)):
            out[key] = value
    return out
