"""Offline sample corpus: seeded records in each tool's native raw syntax, in the record format.

Every record is labelled ``synthetic: true``. Raw texts are built the way the tools write them
(dnspython messages rendered dig-style, ICANN-layout WHOIS replies, Shodan host/search JSON with
banners, nmap XML) and then parsed by the *same* parsers the collectors use, so ``parsed`` and the
gold entities derived from it are exactly what a collected record of that text would carry.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import random
from typing import Iterator
from xml.sax.saxutils import quoteattr

import dns.message
import dns.rrset
from tqdm import tqdm

from .collect_dns import build_record as build_dns_record
from .collect_shodan import parse_host, parse_search
from .collect_whois import parse_whois
from .nmap_xml import parse_nmap_xml
from .record import SOURCES, make_record
from .vocab import Vocabulary, load_vocabulary
from .whois_text import STATUSES, Registration, registrar_reply, registry_reply

log = logging.getLogger(__name__)

PUBLIC_FIRST_OCTETS = (3, 5, 13, 18, 23, 31, 34, 35, 37, 45, 46, 51, 52, 54, 62, 64, 66, 69, 77, 78,
                       80, 81, 85, 88, 89, 91, 93, 95, 104, 107, 128, 134, 137, 139, 141, 142, 143,
                       144, 146, 151, 152, 157, 159, 161, 162, 164, 165, 167, 176, 178, 185, 188,
                       193, 194, 195, 198, 199, 203, 204, 206, 207, 209, 212, 213, 216, 217)
RESOLVERS = ("8.8.8.8", "1.1.1.1", "9.9.9.9", "208.67.222.222")
NS_PATTERNS = ("ns{n}.{domain}", "ns-{k}.awsdns-{m}.com", "{w}.ns.cloudflare.com",
               "dns{n}.registrar-servers.com", "ns{n}.digitalocean.com", "ns{n}.linode.com",
               "ns{n}.google.com", "dns{n}.p0{n}.nsone.net")
TXT_RECORDS = ('"v=spf1 include:_spf.google.com ~all"', '"v=spf1 mx -all"',
               '"v=spf1 include:spf.protection.outlook.com -all"', '"MS=ms{k}"',
               '"google-site-verification={token}"', '"v=DMARC1; p=reject; rua=mailto:dmarc@{domain}"')
COUNTRIES = (("US", "United States", "CA"), ("DE", "Germany", "Hessen"), ("NL", "Netherlands", "Noord-Holland"),
             ("FR", "France", "Ile-de-France"), ("GB", "United Kingdom", "London"), ("SG", "Singapore", "Singapore"),
             ("JP", "Japan", "Tokyo"), ("CA", "Canada", "ON"), ("CN", "China", "Beijing"), ("BR", "Brazil", "SP"))
NMAP_OPTION_SETS = (["-sV"], ["-sV", "-T4"], ["-sV", "-O"], ["-sS", "-sV", "-Pn"], ["-A", "-T4"],
                    ["-sV", "--top-ports", "100"], ["-sT", "-sV", "-p", "1-1024"])
BASE_TIME = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc)


class Generator:
    """Seeded generator of synthetic records for one source mix."""

    def __init__(self, seed: int = 0, vocab: Vocabulary | None = None,
                 record_types: tuple[str, ...] = ("A", "AAAA", "MX", "NS", "TXT", "SOA", "CNAME")):
        self.rng = random.Random(seed)
        self.vocab = vocab or load_vocabulary()
        self.record_types = record_types

    # ------------------------------------------------------------------ shared pieces
    def ip(self) -> str:
        r = self.rng
        return f"{r.choice(PUBLIC_FIRST_OCTETS)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def ipv6(self) -> str:
        r = self.rng
        prefix = r.choice(("2a01:4f8", "2606:4700", "2600:1f18", "2a03:b0c0", "2001:41d0", "2604:a880"))
        return f"{prefix}:{r.randrange(1, 0xffff):x}:{r.randrange(1, 0xffff):x}::{r.randrange(1, 0xfff):x}"

    def domain(self) -> str:
        r = self.rng
        words = self.vocab.words
        name = r.choice(words) if r.random() < 0.5 else f"{r.choice(words)}-{r.choice(words)}"
        if r.random() < 0.3:
            name += str(r.randrange(2, 99))
        return f"{name}.{r.choice(self.vocab.tlds)['tld']}"

    def time(self, days: int = 365) -> _dt.datetime:
        return BASE_TIME + _dt.timedelta(seconds=self.rng.randrange(days * 86400))

    @staticmethod
    def iso(moment: _dt.datetime) -> str:
        return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")

    def product(self) -> tuple[dict, str]:
        item = self.rng.choice(self.vocab.products)
        return item, self.rng.choice(item["versions"])

    @staticmethod
    def fill(template: str, **values: str) -> str:
        for key, value in values.items():
            template = template.replace("{" + key + "}", value)
        return template

    # ------------------------------------------------------------------ dns
    def dns_record(self, n: int) -> dict:
        r, domain = self.rng, self.domain()
        server = r.choice(RESOLVERS)
        nxdomain = r.random() < 0.06
        ns_hosts = [self.fill(r.choice(NS_PATTERNS), n=str(i), domain=domain, k=str(r.randrange(1, 2000)),
                              m=f"{r.randrange(1, 64):02d}", w=r.choice(self.vocab.words))
                    for i in (1, 2)]
        results = []
        for rdtype in self.record_types:
            query = dns.message.make_query(domain, rdtype)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.RA
            if nxdomain:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                values = self._dns_values(rdtype, domain, ns_hosts)
                if values:
                    ttl = r.choice((60, 300, 3600, 86400))
                    response.answer.append(dns.rrset.from_text(domain + ".", ttl, "IN", rdtype, *values))
            results.append((rdtype, response, None, r.randrange(4, 120)))
        return build_dns_record(domain, results, server, 53, None, tool_version="synthetic", synthetic=True,
                                collected_at=self.iso(self.time()), record_id_=f"syn-dns-{n:06d}")

    def _dns_values(self, rdtype: str, domain: str, ns_hosts: list[str]) -> list[str]:
        r = self.rng
        if rdtype == "A":
            return [self.ip() for _ in range(r.choice((1, 1, 2, 3)))]
        if rdtype == "AAAA":
            return [self.ipv6()] if r.random() < 0.5 else []
        if rdtype == "MX":
            hosts = [f"mail.{domain}.", f"aspmx.l.google.com.", f"{domain.replace('.', '-')}.mail.protection.outlook.com."]
            return [f"{10 * (i + 1)} {h}" for i, h in enumerate(r.sample(hosts, r.choice((1, 2))))]
        if rdtype == "NS":
            return [h + "." for h in ns_hosts]
        if rdtype == "TXT":
            return [self.fill(t, k=str(r.randrange(10**7, 10**8)), token=f"{r.getrandbits(64):016x}", domain=domain)
                    for t in r.sample(TXT_RECORDS, r.choice((1, 2)))]
        if rdtype == "SOA":
            return [f"{ns_hosts[0]}. hostmaster.{domain}. {r.randrange(2020010100, 2025010100)} 7200 3600 1209600 3600"]
        return []  # CNAME at a zone apex, and other types: no answer

    # ------------------------------------------------------------------ whois
    def registration(self, domain: str | None = None) -> Registration:
        r = self.rng
        domain = domain or self.domain()
        registrar = r.choice(self.vocab.registrars)
        created = BASE_TIME - _dt.timedelta(seconds=r.randrange(60 * 86400, 25 * 365 * 86400))
        country, _name, state = r.choice(COUNTRIES)
        return Registration(
            domain=domain, registrar=registrar["name"], registrar_iana_id=registrar["iana_id"],
            registrar_whois=registrar["whois_server"], registrar_url=registrar["url"],
            created=self.iso(created), updated=self.iso(created + (BASE_TIME - created) * r.random()),
            expires=self.iso(BASE_TIME + _dt.timedelta(days=r.randrange(30, 3650))),
            name_servers=[self.fill(p, n=str(i), domain=domain, k=str(r.randrange(1, 2000)),
                                    m=f"{r.randrange(1, 64):02d}", w=r.choice(self.vocab.words))
                          for i, p in enumerate(r.sample(NS_PATTERNS, 1) * 2, start=1)],
            organization=r.choice(self.vocab.organizations), country=country, state=state,
            statuses=sorted(r.sample(STATUSES, r.choice((1, 2, 3)))),
            dnssec=r.choice(("unsigned", "signedDelegation")),
            registry_domain_id=f"{r.randrange(10**6, 10**10)}_DOMAIN_{domain.rsplit('.', 1)[-1].upper()}-VRSN",
            last_update=self.iso(self.time()))

    def whois_record(self, n: int) -> dict:
        reg = self.registration()
        raw = registry_reply(reg) + registrar_reply(reg)
        return make_record("whois", reg.domain, raw, parse_whois(reg.domain, raw), tool_version="synthetic",
                           synthetic=True, collected_at=reg.last_update, record_id_=f"syn-whois-{n:06d}")

    # ------------------------------------------------------------------ shodan
    def _banner(self, ip: str, hostname: str, org: str, moment: str) -> dict:
        item, version = self.product()
        port = self.rng.choice(item["ports"])
        cpe = self.fill(item["cpe"], version=version.split()[0] if version else "")
        entry = {"port": port, "transport": "udp" if item["module"] in ("dns-udp", "snmp", "ntp") else "tcp",
                 "product": item["product"], "ip_str": ip, "org": org, "timestamp": moment,
                 "hostnames": [hostname], "cpe": [cpe],
                 "data": self.fill(item["banner"], version=version, hostname=hostname, ip=ip),
                 "_shodan": {"module": item["module"], "crawler": f"{self.rng.getrandbits(80):020x}",
                             "id": f"{self.rng.getrandbits(64):016x}"}}
        if version:
            entry["version"] = version
        return entry

    def shodan_record(self, n: int) -> dict:
        r = self.rng
        moment = self.iso(self.time())
        if r.random() < 0.15:
            return self._shodan_search(n, moment)
        ip = self.ip()
        if r.random() < 0.05:  # the API's 404: no information on this IP
            data = None
        else:
            domain, org = self.domain(), r.choice(self.vocab.organizations)
            hostname = f"{r.choice(('www', 'mail', 'vpn', 'api', 'host'))}.{domain}"
            os_row = r.choice(self.vocab.operating_systems) if r.random() < 0.4 else None
            country = r.choice(COUNTRIES)
            banners = [self._banner(ip, hostname, org, moment) for _ in range(r.choice((1, 1, 2, 3, 4)))]
            data = {"ip_str": ip, "org": org, "isp": r.choice((org, r.choice(self.vocab.organizations))),
                    "asn": f"AS{r.randrange(1000, 65000)}", "os": os_row["shodan_name"] if os_row else None,
                    "country_code": country[0], "country_name": country[1], "hostnames": [hostname],
                    "domains": [domain], "ports": sorted({b["port"] for b in banners}),
                    "last_update": moment, "data": banners}
        raw = json.dumps(data if data is not None else {"error": "No information available for that IP."},
                         indent=2, ensure_ascii=False, sort_keys=True)
        return make_record("shodan", ip, raw, parse_host(ip, data), tool_version="synthetic", synthetic=True,
                           collected_at=moment, record_id_=f"syn-shodan-{n:06d}")

    def _shodan_search(self, n: int, moment: str) -> dict:
        r = self.rng
        item, _ = self.product()
        query = f'product:"{item["product"]}"' + (f" country:{r.choice(COUNTRIES)[0]}" if r.random() < 0.5 else "")
        matches = []
        for _ in range(r.choice((1, 2, 3))):
            ip, domain = self.ip(), self.domain()
            org = r.choice(self.vocab.organizations)
            m = self._banner(ip, f"www.{domain}", org, moment)
            m.update(product=item["product"], domains=[domain])
            matches.append(m)
        data = {"matches": matches, "total": r.randrange(len(matches), 50000)}
        raw = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
        return make_record("shodan", f"search:{query}", raw, parse_search(query, data), tool_version="synthetic",
                           synthetic=True, collected_at=moment, record_id_=f"syn-shodan-{n:06d}")

    # ------------------------------------------------------------------ nmap
    def nmap_record(self, n: int) -> dict:
        r = self.rng
        use_name = r.random() < 0.4
        ip = self.ip()
        domain = self.domain()
        target = f"www.{domain}" if use_name else ip
        options = r.choice(NMAP_OPTION_SETS)
        start = self.time()
        args = " ".join(["nmap", *options, "-oX", "-", target])
        ports_xml = []
        used: set[int] = set()
        for _ in range(r.choice((1, 2, 3, 4, 5))):
            item, version = self.product()
            port = r.choice(item["ports"])
            if port in used:
                continue
            used.add(port)
            extra = r.choice(item["extrainfo"])
            attrs = f'name={quoteattr(item["service"])} product={quoteattr(item["product"])}'
            if version:
                attrs += f" version={quoteattr(version)}"
            if extra:
                attrs += f" extrainfo={quoteattr(extra)}"
            cpe = self.fill(item["cpe"], version=version.split()[0] if version else "")
            proto = "udp" if item["module"] in ("dns-udp", "snmp", "ntp") else "tcp"
            ports_xml.append(f'<port protocol="{proto}" portid="{port}"><state state="open" reason="syn-ack" '
                             f'reason_ttl="{r.choice((48, 52, 64, 128))}"/><service {attrs} method="probed" '
                             f'conf="10"><cpe>{cpe}</cpe></service></port>')
        for svc in r.sample(self.vocab.services, r.choice((0, 1, 2))):
            if svc["port"] in used or svc["protocol"] != "tcp":
                continue
            used.add(svc["port"])
            state = r.choice(("closed", "filtered"))
            ports_xml.append(f'<port protocol="tcp" portid="{svc["port"]}"><state state="{state}" reason="reset" '
                             f'reason_ttl="64"/><service name={quoteattr(svc["service"])} method="table" conf="3"/></port>')
        os_xml = ""
        if "-O" in options or "-A" in options:
            os_row = r.choice(self.vocab.operating_systems)
            os_xml = (f'<os><osmatch name={quoteattr(os_row["nmap_name"])} accuracy="{r.randrange(85, 101)}" line="1">'
                      f'<osclass type="general purpose" accuracy="95"><cpe>{os_row["cpe"]}</cpe></osclass></osmatch></os>')
        hostname = target if use_name else f"{r.choice(('static', 'host', 'srv'))}-{ip.replace('.', '-')}.{domain}"
        htype = "user" if use_name else "PTR"
        t0 = int(start.timestamp())
        elapsed = round(r.uniform(2, 90), 2)
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>\n'
               f'<nmaprun scanner="nmap" args={quoteattr(args)} start="{t0}" version="7.94" xmloutputversion="1.05">\n'
               f'<scaninfo type="syn" protocol="tcp" numservices="1000" services="1-1000"/>\n'
               f'<host starttime="{t0}" endtime="{t0 + int(elapsed)}"><status state="up" reason="echo-reply" reason_ttl="52"/>\n'
               f'<address addr="{ip}" addrtype="ipv4"/>\n<hostnames>\n<hostname name="{hostname}" type="{htype}"/>\n'
               f'</hostnames>\n<ports>{"".join(ports_xml)}\n</ports>\n{os_xml}\n</host>\n'
               f'<runstats><finished time="{t0 + int(elapsed)}" elapsed="{elapsed}" exit="success" '
               f'summary="Nmap done; 1 IP address (1 host up) scanned in {elapsed} seconds"/>'
               f'<hosts up="1" down="0" total="1"/>\n</runstats>\n</nmaprun>\n')
        return make_record("nmap", target, xml, parse_nmap_xml(xml), tool_version="synthetic", synthetic=True,
                           collected_at=self.iso(start), record_id_=f"syn-nmap-{n:06d}")

    def record(self, source: str, n: int) -> dict:
        return getattr(self, f"{source}_record")(n)


def source_counts(n_records: int, mix: dict[str, float]) -> dict[str, int]:
    """Split ``n_records`` over the sources in proportion to ``mix`` (largest remainder)."""
    weights = {s: float(mix.get(s, 0)) for s in SOURCES}
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("osint.synthetic.mix needs a positive weight for at least one source")
    exact = {s: n_records * w / total for s, w in weights.items()}
    counts = {s: int(v) for s, v in exact.items()}
    for s in sorted(exact, key=lambda s: exact[s] - counts[s], reverse=True)[: n_records - sum(counts.values())]:
        counts[s] += 1
    return counts


def generate(n_records: int, mix: dict[str, float], seed: int = 0,
             record_types: tuple[str, ...] = ("A", "AAAA", "MX", "NS", "TXT", "SOA", "CNAME")) -> Iterator[dict]:
    """Yield ``n_records`` synthetic records, sources interleaved in a seeded order."""
    counts = source_counts(n_records, mix)
    gen = Generator(seed, record_types=record_types)
    order = [s for s, c in counts.items() for _ in range(c)]
    random.Random(seed + 1).shuffle(order)
    seen = {s: 0 for s in SOURCES}
    for source in tqdm(order, desc="synthetic OSINT records", unit="rec", mininterval=2.0):
        seen[source] += 1
        yield gen.record(source, seen[source])
