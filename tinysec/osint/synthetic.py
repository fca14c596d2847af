"""Offline sample corpus: seeded records in each tool's native raw syntax, in the record format.

Every record is labelled ``synthetic: true``. Raw texts are built the way the tools write them:

- dns: BIND 9.18 ``dig @resolver domain TYPE`` output per record type (header, flags, OPT
  pseudo-section, question/answer/authority sections, query time, server, date, message size),
  from dnspython messages;
- whois: gTLD thin and thick replies and ccTLD layouts (bracketed sections, indented blocks,
  key-colon blocks, localised labels) of :mod:`tinysec.osint.whois_text`;
- shodan: host JSON (``ip_str``, ``org``, ``isp``, ``asn``, ``hostnames``, ``domains``, ``ports``,
  location, ``data[]`` banners with ``http``/``ssl`` where relevant) and search JSON;
- nmap: a scan of one host, a hostname or a small CIDR block (``-sV``, ``-O``, ``-A``; open,
  closed and filtered ports, ``Not shown`` lines, service fingerprints, OS matches) written as
  nmap 7.94's XML (``-oX``) or its normal output (``-oN``).

``parsed`` comes from the *same* parsers the collectors use (the nmap XML of the scan, for either
written form), so it and the gold entities derived from it are what a collected record of that
text would carry.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import random
from collections.abc import Iterator
from xml.sax.saxutils import quoteattr

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
from tqdm import tqdm

from .collect_dns import answers_of, status_of
from .collect_shodan import parse_host, parse_search
from .collect_whois import parse_whois
from .nmap_xml import parse_nmap_xml
from .record import SOURCES, make_record
from .vocab import Vocabulary, load_vocabulary
from .whois_text import LAYOUTS, STATUSES, Registration

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
                    ["-sV", "--top-ports", "100"], ["-sT", "-sV", "-p", "1-1024"], ["-sV", "-n", "-Pn"],
                    ["-sV", "-Pn", "-n", "-T4"])
# Private and loopback targets: most nmap scans are of one's own machines and networks.
PRIVATE_PREFIXES = ("10.{a}.{b}", "172.{c}.{b}", "192.168.{d}")
BASE_TIME = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc)
DIG_VERSION = "9.18.28-0ubuntu0.22.04.1-Ubuntu"
# Share of each WHOIS layout: gTLD referral chains dominate, each ccTLD layout is well represented.
WHOIS_LAYOUT_WEIGHTS = {"gtld_thick": 0.34, "gtld_thin": 0.10, "lv": 0.08, "uk": 0.08, "de": 0.08,
                        "fr": 0.08, "jp": 0.08, "ru_tci": 0.08, "ru_local": 0.08}
HTTP_TITLES = ("Home", "Login", "Welcome", "Dashboard", "404 Not Found", "Index of /", "It works!",
               "Sign in", "Under construction", "403 Forbidden")
CITIES = {"US": "Ashburn", "DE": "Frankfurt am Main", "NL": "Amsterdam", "FR": "Paris", "GB": "London",
          "SG": "Singapore", "JP": "Tokyo", "CA": "Toronto", "CN": "Beijing", "BR": "Sao Paulo"}


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

    def private_prefix(self) -> str:
        """The first three octets of a private (RFC 1918) /24."""
        r = self.rng
        return r.choice(PRIVATE_PREFIXES).format(a=r.randrange(256), b=r.randrange(256), c=r.randrange(16, 32),
                                                 d=r.choice((0, 1, 2, 10, 50, 100, r.randrange(256))))

    def ipv6(self) -> str:
        r = self.rng
        prefix = r.choice(("2a01:4f8", "2606:4700", "2600:1f18", "2a03:b0c0", "2001:41d0", "2604:a880"))
        return f"{prefix}:{r.randrange(1, 0xffff):x}:{r.randrange(1, 0xffff):x}::{r.randrange(1, 0xfff):x}"

    def domain(self, tld: str | None = None) -> str:
        r = self.rng
        words = self.vocab.words
        name = r.choice(words) if r.random() < 0.5 else f"{r.choice(words)}-{r.choice(words)}"
        if r.random() < 0.3:
            name += str(r.randrange(2, 99))
        return f"{name}.{tld or r.choice(self.vocab.tlds)['tld']}"

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
        """``dig @resolver domain TYPE`` for each configured type, as BIND 9.18's dig prints it."""
        r, domain = self.rng, self.domain()
        server = r.choice(RESOLVERS)
        nxdomain = r.random() < 0.06
        ns_hosts = [self.fill(r.choice(NS_PATTERNS), n=str(i), domain=domain, k=str(r.randrange(1, 2000)),
                              m=f"{r.randrange(1, 64):02d}", w=r.choice(self.vocab.words))
                    for i in (1, 2)]
        moment = self.time()
        parts, answers, status = [], [], {}
        for rdtype in self.record_types:
            response = self._dns_response(domain, rdtype, ns_hosts, nxdomain)
            status[rdtype] = status_of(rdtype, response, None)
            answers += answers_of(response)
            moment += _dt.timedelta(milliseconds=r.randrange(30, 900))
            parts.append(dig_output(domain, rdtype, response, server, r.randrange(4, 120), moment))
        parsed = {"domain": domain, "nameserver": f"{server}:53", "answers": answers, "status": status}
        return make_record("dns", domain, "".join(parts), parsed, tool_version="synthetic", tool="dig",
                           synthetic=True, collected_at=self.iso(moment), record_id_=f"syn-dns-{n:06d}")

    def _dns_response(self, domain: str, rdtype: str, ns_hosts: list[str], nxdomain: bool) -> dns.message.Message:
        r = self.rng
        query = dns.message.make_query(domain, rdtype, use_edns=0, payload=1232, id=r.randrange(65536))
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        response.use_edns(0, 0, r.choice((512, 1232, 4096)))
        ttl = r.choice((60, 300, 3600, 86400))
        if nxdomain:
            response.set_rcode(dns.rcode.NXDOMAIN)
            tld = domain.rsplit(".", 1)[-1]
            response.authority.append(dns.rrset.from_text(
                tld + ".", 900, "IN", "SOA", f"a.nic.{tld}. hostmaster.nic.{tld}. {r.randrange(10**9, 2 * 10**9)} "
                "1800 900 604800 86400"))
            return response
        values = self._dns_values(rdtype, domain, ns_hosts)
        if values:
            response.answer.append(dns.rrset.from_text(domain + ".", ttl, "IN", rdtype, *values))
        else:  # NOANSWER: the zone's SOA in the authority section
            response.authority.append(dns.rrset.from_text(
                domain + ".", 1800, "IN", "SOA", *self._dns_values("SOA", domain, ns_hosts)))
        return response

    def _dns_values(self, rdtype: str, domain: str, ns_hosts: list[str]) -> list[str]:
        r = self.rng
        if rdtype == "A":
            return [self.ip() for _ in range(r.choice((1, 1, 2, 3)))]
        if rdtype == "AAAA":
            return [self.ipv6()] if r.random() < 0.5 else []
        if rdtype == "MX":
            hosts = [f"mail.{domain}.", "aspmx.l.google.com.", f"{domain.replace('.', '-')}.mail.protection.outlook.com."]
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

    def whois_record(self, n: int, layout: str | None = None) -> dict:
        """A WHOIS reply in one of the registry layouts of :data:`~tinysec.osint.whois_text.LAYOUTS`."""
        name = layout or self.rng.choices(list(WHOIS_LAYOUT_WEIGHTS), list(WHOIS_LAYOUT_WEIGHTS.values()))[0]
        chosen = LAYOUTS[name]
        reg = self.registration(self.domain(self.rng.choice(chosen.tlds)) if chosen.tlds else None)
        raw = chosen.write(reg)
        return make_record("whois", reg.domain, raw, parse_whois(reg.domain, raw), tool_version="synthetic",
                           synthetic=True, collected_at=reg.last_update, record_id_=f"syn-whois-{n:06d}")

    # ------------------------------------------------------------------ shodan
    def _banner(self, ip: str, hostname: str, org: str, moment: str, place: dict, item: dict | None = None) -> dict:
        item, version = (item, self.rng.choice(item["versions"])) if item else self.product()
        port = self.rng.choice(item["ports"])
        cpe = self.fill(item["cpe"], version=version.split()[0] if version else "")
        data = self.fill(item["banner"], version=version, hostname=hostname, ip=ip)
        entry = {"port": port, "transport": "udp" if item["module"] in ("dns-udp", "snmp", "ntp") else "tcp",
                 "product": item["product"], "ip_str": ip, "org": org, "timestamp": moment,
                 "hostnames": [hostname], "cpe": [cpe], "location": place, "data": data,
                 "hash": self.rng.randrange(-2**31, 2**31),
                 "_shodan": {"module": item["module"], "crawler": f"{self.rng.getrandbits(80):020x}",
                             "id": f"{self.rng.getrandbits(64):016x}", "ptr": True, "options": {}}}
        if version:
            entry["version"] = version
        if item["module"] in ("http", "https", "elastic"):
            entry["http"] = self._http(data, hostname)
        if item["module"] == "https" or port in (443, 8443):
            entry["ssl"] = self._ssl(hostname, moment)
        return entry

    def _http(self, data: str, hostname: str) -> dict:
        server = next((ln[len("Server: "):] for ln in data.split("\r\n") if ln.startswith("Server: ")), None)
        status = int(data.split(" ", 2)[1]) if data.startswith("HTTP/") else 200
        return {"status": status, "server": server, "host": hostname, "title": self.rng.choice(HTTP_TITLES),
                "html_hash": self.rng.randrange(-2**31, 2**31), "location": "/", "redirects": [],
                "robots_hash": None, "securitytxt": None, "sitemap_hash": None, "components": {}}

    def _ssl(self, hostname: str, moment: str) -> dict:
        r = self.rng
        expires = (self.time() + _dt.timedelta(days=365)).strftime("%Y%m%d%H%M%SZ")
        return {"cert": {"subject": {"CN": hostname}, "issuer": {"C": "US", "CN": r.choice(("R10", "R11", "E5", "E6"))},
                         "expired": False, "expires": expires, "serial": r.getrandbits(120),
                         "sig_alg": "sha256WithRSAEncryption", "version": 2,
                         "fingerprint": {"sha1": f"{r.getrandbits(160):040x}", "sha256": f"{r.getrandbits(256):064x}"},
                         "pubkey": {"type": "rsa", "bits": 2048}},
                "cipher": {"version": "TLSv1/SSLv3", "bits": 256, "name": "TLS_AES_256_GCM_SHA384"},
                "versions": ["-SSLv2", "-SSLv3", "-TLSv1", "-TLSv1.1", "TLSv1.2", "TLSv1.3"],
                "jarm": f"{r.getrandbits(248):062x}", "chain": [], "alpn": ["h2", "http/1.1"]}

    def _place(self) -> dict:
        code, country, region = self.rng.choice(COUNTRIES)
        return {"city": CITIES.get(code, region), "region_code": region[:2].upper(), "country_code": code,
                "country_name": country, "area_code": None, "latitude": round(self.rng.uniform(-60, 60), 4),
                "longitude": round(self.rng.uniform(-150, 150), 4)}

    def shodan_record(self, n: int) -> dict:
        """A Shodan host answer (``api.host``) or, sometimes, a search answer, as the API's JSON."""
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
            place = self._place()
            banners = [self._banner(ip, hostname, org, moment, place) for _ in range(r.choice((1, 1, 2, 3, 4)))]
            isp, asn = r.choice((org, r.choice(self.vocab.organizations))), f"AS{r.randrange(1000, 65000)}"
            for b in banners:
                b.update(isp=isp, asn=asn, domains=[domain], os=os_row["shodan_name"] if os_row else None)
            data = {"ip_str": ip, "ip": _ip_int(ip), "org": org, "isp": isp, "asn": asn,
                    "os": os_row["shodan_name"] if os_row else None, "hostnames": [hostname], "domains": [domain],
                    "ports": sorted({b["port"] for b in banners}), "last_update": moment, "tags": [],
                    "data": banners, **{k: v for k, v in place.items()}}
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
            m = self._banner(ip, f"www.{domain}", org, moment, self._place(), item)
            m["domains"] = [domain]
            matches.append(m)
        data = {"matches": matches, "total": r.randrange(len(matches), 50000)}
        raw = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
        return make_record("shodan", f"search:{query}", raw, parse_search(query, data), tool_version="synthetic",
                           synthetic=True, collected_at=moment, record_id_=f"syn-shodan-{n:06d}")

    # ------------------------------------------------------------------ nmap
    def _scan_port(self, used: set[int]) -> dict | None:
        item, version = self.product()
        port = self.rng.choice(item["ports"])
        if port in used:
            return None
        used.add(port)
        extra = self.rng.choice(item["extrainfo"])
        ostype = "Windows" if "Microsoft" in item["product"] else (
            "Linux" if any(w in f"{extra} {version} {item['banner']}" for w in ("Ubuntu", "Debian", "Linux")) else None)
        cpes = [self.fill(item["cpe"], version=version.split()[0] if version else "")]
        if ostype:
            cpes.append("cpe:/o:microsoft:windows" if ostype == "Windows" else "cpe:/o:linux:linux_kernel")
        return {"protocol": "udp" if item["module"] in ("dns-udp", "snmp", "ntp") else "tcp", "port": port,
                "state": "open", "reason": "syn-ack", "service": item["service"], "product": item["product"],
                "version": version, "extrainfo": extra, "ostype": ostype, "cpe": cpes, "method": "probed"}

    def _scan_host(self, ip: str, names: list[tuple[str, str]], options: list[str]) -> dict:
        r = self.rng
        used: set[int] = set()
        ports = [p for p in (self._scan_port(used) for _ in range(r.choice((1, 2, 3, 4, 5)))) if p]
        for svc in r.sample(self.vocab.services, r.choice((0, 1, 2, 3))):
            if svc["port"] in used or svc["protocol"] != "tcp":
                continue
            used.add(svc["port"])
            state = r.choice(("closed", "filtered"))
            ports.append({"protocol": "tcp", "port": svc["port"], "state": state,
                          "reason": "reset" if state == "closed" else "no-response", "service": svc["service"],
                          "method": "table", "cpe": []})
        if r.random() < 0.12:  # an open port whose service nmap could not identify: a fingerprint
            svc = r.choice([s for s in self.vocab.services if s["protocol"] == "tcp" and s["port"] not in used])
            used.add(svc["port"])
            ports.append({"protocol": "tcp", "port": svc["port"], "state": "open", "reason": "syn-ack",
                          "service": svc["service"], "method": "table", "cpe": [],
                          "servicefp": service_fingerprint(svc["port"], r)})
        ports.sort(key=lambda p: (p["protocol"], p["port"]))
        shown_tcp = sum(1 for p in ports if p["protocol"] == "tcp")
        extra_state = r.choice(("closed", "closed", "filtered"))
        os_row = r.choice(self.vocab.operating_systems) if ("-O" in options or "-A" in options) else None
        return {"ip": ip, "names": names, "ports": ports, "latency": round(r.uniform(0.004, 0.3), 3),
                "extraports": (extra_state, 1000 - shown_tcp, "no-response" if extra_state == "filtered" else
                               "conn-refused" if "-sT" in options else "reset"),
                "status_reason": "localhost-response" if ip.startswith("127.") else
                ("arp-response" if ip.startswith(("10.", "192.168.")) else "echo-reply"),
                "os": os_row, "os_accuracy": r.randrange(85, 101), "distance": r.randrange(3, 25),
                "ttl": r.choice((48, 52, 56, 64, 116, 128))}

    def nmap_record(self, n: int, as_text: bool | None = None) -> dict:
        """One nmap scan (one host, a hostname target, or a small CIDR block) written as nmap's XML
        (``-oX -``) or its normal output (``-oN -``); ``parsed`` is read from the scan's XML."""
        r = self.rng
        as_text = r.random() < 0.5 if as_text is None else as_text
        options = r.choice(NMAP_OPTION_SETS)
        shape = r.choices(("ip", "name", "cidr", "local"), (0.34, 0.26, 0.18, 0.22))[0]
        domain = self.domain()
        if shape == "local":  # this machine or a LAN host: tiny latency, "localhost" for loopback
            ip = "127.0.0.1" if r.random() < 0.3 else f"{self.private_prefix()}.{r.randrange(2, 254)}"
            target = r.choice((ip, "localhost")) if ip == "127.0.0.1" else ip
            names = [("localhost", "user" if target == "localhost" else "PTR")] if ip == "127.0.0.1" else []
            hosts, total = [self._scan_host(ip, names, options)], 1
            hosts[0].update(latency=round(r.uniform(0.00002, 0.0009), 6), distance=0 if ip == "127.0.0.1" else 1)
        elif shape == "cidr":
            base = self.private_prefix() if r.random() < 0.4 else self.ip().rsplit(".", 1)[0]
            prefix = r.choice((28, 29, 30))
            size = 2 ** (32 - prefix)
            start = r.randrange(0, 256 - size + 1, size)
            target, total = f"{base}.{start}/{prefix}", size
            hosts = []
            usable = range(start + 1, start + size - 1)
            for last in sorted(r.sample(usable, min(len(usable), r.choice((1, 2, 3))))):
                ip = f"{base}.{last}"
                names = [(f"{r.choice(('static', 'host', 'srv'))}-{ip.replace('.', '-')}.{domain}", "PTR")] \
                    if r.random() < 0.6 else []
                hosts.append(self._scan_host(ip, names, options))
        else:
            ip = self.ip()
            ptr = f"{r.choice(('static', 'host', 'srv'))}-{ip.replace('.', '-')}.{domain}"
            target = f"www.{domain}" if shape == "name" else ip
            names = [(target, "user"), (ptr, "PTR")] if shape == "name" else [(ptr, "PTR")]
            hosts, total = [self._scan_host(ip, names, options)], 1
        if "-n" in options:  # no reverse DNS: only a host name the user typed is shown
            for h in hosts:
                h["names"] = [n for n in h["names"] if n[1] == "user"]
        options = options + self._port_list(options, hosts)
        scan = {"options": options, "target": target, "hosts": hosts, "total": total, "start": self.time(),
                "elapsed": round(r.uniform(2, 240), 2), "as_text": as_text,
                "as_file": as_text and r.random() < 0.5, "binary": r.choice(("nmap", "/usr/bin/nmap")),
                "end_of_options": r.random() < 0.35}
        xml = nmap_xml_output(scan)
        raw = nmap_normal_output(scan) if as_text else xml
        return make_record("nmap", target, raw, parse_nmap_xml(xml), tool_version="synthetic", synthetic=True,
                           collected_at=self.iso(scan["start"]), record_id_=f"syn-nmap-{n:06d}")

    def _port_list(self, options: list[str], hosts: list[dict]) -> list[str]:
        """Sometimes (when no other port choice is given) a ``-p`` list of the scanned ports, the
        way a user or tinysec's own collector names them: ``-p22,80`` or ``-p 22,80``."""
        r = self.rng
        if {"-p", "--top-ports", "-A"} & set(options) or r.random() >= 0.35:
            return []
        ports = sorted({p["port"] for h in hosts for p in h["ports"] if p["protocol"] == "tcp"})
        if not ports:
            return []
        if r.random() < 0.3:  # in the order the user typed them
            r.shuffle(ports)
        listed = ",".join(map(str, ports))
        return ["-p" + listed] if r.random() < 0.5 else ["-p", listed]

    def record(self, source: str, n: int) -> dict:
        return getattr(self, f"{source}_record")(n)


# ---------------------------------------------------------------------- tool text renderers
def _ip_int(ip: str) -> int:
    a, b, c, d = (int(x) for x in ip.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def _dig_rr_lines(section) -> list[str]:
    """Records as dig prints them: name, TTL, class, type and data separated by tabs."""
    out = []
    for rrset in section:
        for line in rrset.to_text().splitlines():
            name, ttl, rdclass, rdtype, data = line.split(" ", 4)
            tabs = "\t" * max(1, (24 - len(name) + 7) // 8)
            out.append(f"{name}{tabs}{ttl}\t{rdclass}\t{rdtype}\t{data}")
    return out


def dig_output(qname: str, rdtype: str, response: dns.message.Message, server: str, elapsed_ms: int,
               when: _dt.datetime) -> str:
    """``dig @server qname rdtype`` output as BIND 9.18 prints it (header, flags, OPT pseudo-section,
    question, answer, authority and additional sections, query time, server, date, message size)."""
    counts = [sum(len(r) for r in sec) for sec in (response.answer, response.authority, response.additional)]
    lines = ["", f"; <<>> DiG {DIG_VERSION} <<>> @{server} {qname} {rdtype}", ";; global options: +cmd",
             ";; Got answer:",
             f";; ->>HEADER<<- opcode: QUERY, status: {dns.rcode.to_text(response.rcode())}, id: {response.id}",
             f";; flags: {dns.flags.to_text(response.flags).lower()}; QUERY: 1, ANSWER: {counts[0]}, "
             f"AUTHORITY: {counts[1]}, ADDITIONAL: {counts[2] + (1 if response.edns >= 0 else 0)}", ""]
    if response.edns >= 0:
        lines += [";; OPT PSEUDOSECTION:", f"; EDNS: version: 0, flags:; udp: {response.payload}"]
    name = qname + "."
    lines += [";; QUESTION SECTION:", f";{name}" + "\t" * max(1, (32 - len(name) - 1 + 7) // 8) + f"IN\t{rdtype}"]
    for title, section in (("ANSWER", response.answer), ("AUTHORITY", response.authority),
                           ("ADDITIONAL", response.additional)):
        if section:
            lines += ["", f";; {title} SECTION:"] + _dig_rr_lines(section)
    lines += ["", f";; Query time: {elapsed_ms} msec", f";; SERVER: {server}#53({server}) (UDP)",
              f";; WHEN: {when.strftime('%a %b %d %H:%M:%S UTC %Y')}",
              f";; MSG SIZE  rcvd: {len(response.to_wire())}", "", ""]
    return "\n".join(lines)


def service_fingerprint(port: int, rng: random.Random) -> str:
    """An nmap service fingerprint (``SF-Port...``) for a service that answered with unknown data."""
    reply = rng.choice(("\\x01\\x02\\x03\\x04", "OK\\r\\n", "\\0\\0\\0\\x08\\x20\\0\\0\\0",
                        "HELLO\\x20v2\\r\\nREADY\\r\\n"))
    probe = rng.choice(("NULL", "GenericLines", "GetRequest", "HTTPOptions", "RTSPRequest"))
    stamp = f"{rng.getrandbits(32):08X}"
    return (f"SF-Port{port}-TCP:V=7.94SVN%I=7%D={rng.randrange(1, 13)}/{rng.randrange(1, 29)}%Time={stamp}"
            f"%P=x86_64-pc-linux-gnu%r({probe},{len(reply):X},\"{reply}\");")


def _service_attrs(p: dict) -> str:
    attrs = f'name={quoteattr(p["service"])}'
    for key in ("product", "version", "extrainfo", "ostype"):
        if p.get(key):
            attrs += f" {key}={quoteattr(p[key])}"
    if p.get("servicefp"):
        attrs += f" servicefp={quoteattr(p['servicefp'])}"
    return attrs + f' method="{p["method"]}" conf="{10 if p["method"] == "probed" else 3}"'


def _xml_host(h: dict, t0: int, elapsed: int) -> str:
    names = "".join(f'<hostname name={quoteattr(n)} type="{t}"/>\n' for n, t in h["names"])
    state, count, reason = h["extraports"]
    ports = "".join(
        f'<port protocol="{p["protocol"]}" portid="{p["port"]}"><state state="{p["state"]}" reason="{p["reason"]}" '
        f'reason_ttl="{h["ttl"]}"/><service {_service_attrs(p)}'
        + (">" + "".join(f"<cpe>{c}</cpe>" for c in p["cpe"]) + "</service>" if p["cpe"] else "/>")
        + "</port>\n" for p in h["ports"])
    os_xml = ""
    if h["os"]:
        row = h["os"]
        os_xml = (f'<os><osmatch name={quoteattr(row["nmap_name"])} accuracy="{h["os_accuracy"]}" line="{t0 % 90000}">\n'
                  f'<osclass type="general purpose" vendor={quoteattr(row["nmap_name"].split()[0])} '
                  f'accuracy="{h["os_accuracy"]}"><cpe>{row["cpe"]}</cpe></osclass>\n</osmatch>\n</os>\n'
                  f'<distance value="{h["distance"]}"/>\n')
    return (f'<host starttime="{t0}" endtime="{t0 + elapsed}"><status state="up" reason="{h["status_reason"]}" '
            f'reason_ttl="{0 if h["status_reason"] == "localhost-response" else h["ttl"]}"/>\n<address addr="{h["ip"]}" addrtype="ipv4"/>\n<hostnames>\n{names}</hostnames>\n'
            f'<ports><extraports state="{state}" count="{count}">\n<extrareasons reason="{reason}" count="{count}" '
            f'proto="tcp"/>\n</extraports>\n{ports}</ports>\n{os_xml}'
            f'<times srtt="{int(h["latency"] * 1e6)}" rttvar="{int(h["latency"] * 2e5)}" to="100000"/>\n</host>\n')


def _done_summary(scan: dict) -> str:
    up, total = len(scan["hosts"]), scan["total"]
    return (f"{total} IP address{'es' if total != 1 else ''} ({up} host{'s' if up != 1 else ''} up) "
            f"scanned in {scan['elapsed']:.2f} seconds")


def nmap_xml_output(scan: dict) -> str:
    """The scan as nmap 7.94 writes it with ``-oX``."""
    t0, elapsed = int(scan["start"].timestamp()), int(scan["elapsed"])
    args = _xml_args(_command(scan, "-oX", "scan.xml -oN -" if scan["as_text"] else "-"))
    end = _ctime(scan, elapsed)
    up = len(scan["hosts"])
    listed = _listed_ports(scan["options"])
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>\n<?xml-stylesheet '
            f'href="file:///usr/bin/../share/nmap/nmap.xsl" type="text/xsl"?>\n'
            f'<!-- Nmap 7.94SVN scan initiated {_ctime(scan, 0)} as: {args} -->\n'
            f'<nmaprun scanner="nmap" args="{args}" start="{t0}" startstr="{_ctime(scan, 0)}" version="7.94SVN" '
            f'xmloutputversion="1.05">\n'
            f'<scaninfo type="syn" protocol="tcp" numservices="{len(listed) if listed else 1000}" '
            f'services="{",".join(map(str, sorted(listed))) if listed else "1-1000"}"/>\n'
            f'<verbose level="0"/>\n<debugging level="0"/>\n'
            + "".join(_xml_host(h, t0, elapsed) for h in scan["hosts"])
            + f'<runstats><finished time="{t0 + elapsed}" timestr="{end}" summary="Nmap done at {end}; '
            f'{_done_summary(scan)}" elapsed="{scan["elapsed"]:.2f}" exit="success"/><hosts up="{up}" '
            f'down="{scan["total"] - up}" total="{scan["total"]}"/>\n</runstats>\n</nmaprun>\n')


def _xml_args(command: str) -> str:
    """A command line as nmap writes it into its XML (attribute and comment): XML-escaped, and
    each ``-`` that follows a ``-`` written ``&#45;``, since ``--`` may not occur in a comment."""
    text = command.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return text.replace("--", "-&#45;")


def _listed_ports(options: list[str]) -> list[int]:
    """The ports of a ``-p`` list among ``options`` (none for a range or no ``-p``)."""
    for k, opt in enumerate(options):
        value = opt[2:] if opt.startswith("-p") and opt != "-p" else options[k + 1] if opt == "-p" else ""
        if value and all(part.isdigit() for part in value.split(",")):
            return [int(part) for part in value.split(",")]
    return []


def _two_digits(seconds: float) -> str:
    """A latency the way nmap prints it: two significant digits, never in exponent form."""
    digits = max(0, 1 - math.floor(math.log10(seconds)))
    return f"{seconds:.{digits}f}"


def _version_column(p: dict) -> str:
    parts = [x for x in (p.get("product"), p.get("version")) if x]
    if p.get("extrainfo"):
        parts.append(f"({p['extrainfo']})")
    return " ".join(parts)


def _text_host(h: dict, as_name: bool) -> list[str]:
    names = [n for n, _ in h["names"]]
    title = f"{names[0]} ({h['ip']})" if names else h["ip"]
    lines = [f"Nmap scan report for {title}", f"Host is up ({_two_digits(h['latency'])}s latency)."]
    if as_name and len(names) > 1:
        lines.append(f"rDNS record for {h['ip']}: {names[1]}")
    state, count, reason = h["extraports"]
    lines.append(f"Not shown: {count} {state} tcp ports ({reason})")
    rows = [("PORT", "STATE", "SERVICE", "VERSION")] + [
        (f"{p['port']}/{p['protocol']}", p["state"], p["service"], _version_column(p)) for p in h["ports"]]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines += [" ".join(row[i].ljust(widths[i]) for i in range(3)) + " " + row[3] for row in rows]
    lines = [ln.rstrip() for ln in lines]
    fps = [p["servicefp"] for p in h["ports"] if p.get("servicefp")]
    if fps:
        lines.append(f"{len(fps)} service unrecognized despite returning data. If you know the service/version, "
                     "please submit the following fingerprint at https://nmap.org/cgi-bin/submit.cgi?new-service :")
        for fp in fps:
            head, _, body = fp.partition("%r(")
            lines += [head + "%r(", "SF:" + body]
    if h["os"]:
        row = h["os"]
        lines += ["Device type: general purpose", f"Running: {row['shodan_name']}", f"OS CPE: {row['cpe']}",
                  f"OS details: {row['nmap_name']}", f"Network Distance: {h['distance']} hop{'' if h['distance'] == 1 else 's'}"]
    ostypes = sorted({p["ostype"] for p in h["ports"] if p.get("ostype")})
    if ostypes:
        cpe = "cpe:/o:microsoft:windows" if ostypes[0] == "Windows" else "cpe:/o:linux:linux_kernel"
        lines.append(f"Service Info: OS: {ostypes[0]}; CPE: {cpe}")
    return lines


def nmap_normal_output(scan: dict) -> str:
    """The scan as nmap 7.94 prints it in normal output: on the terminal (``Starting Nmap`` ...
    ``Nmap done:``) or, when ``scan["as_file"]``, as ``-oN`` writes it (a ``# Nmap ... scan
    initiated ... as: <command line>`` comment first and a ``# Nmap done at`` comment last)."""
    lines = []
    if scan["as_file"]:
        lines.append(f"# Nmap 7.94SVN scan initiated {_ctime(scan, 0)} as: {_command(scan, '-oN', '-')}")
    else:
        lines.append(f"Starting Nmap 7.94SVN ( https://nmap.org ) at {scan['start'].strftime('%Y-%m-%d %H:%M UTC')}")
    as_name = not scan["target"][0].isdigit()
    for h in scan["hosts"]:
        lines += _text_host(h, as_name) + [""]
    detection = "OS and Service" if any(h["os"] for h in scan["hosts"]) else "Service"
    lines.append(f"{detection} detection performed. Please report any incorrect results at https://nmap.org/submit/ .")
    if scan["as_file"]:
        lines += [f"# Nmap done at {_ctime(scan, int(scan['elapsed']))} -- {_done_summary(scan)}", ""]
    else:
        lines += [f"Nmap done: {_done_summary(scan)}", ""]
    return "\n".join(lines)


def _ctime(scan: dict, offset: int) -> str:
    """The scan's start plus ``offset`` seconds, in nmap's ctime format (UTC)."""
    t = _dt.datetime.fromtimestamp(int(scan["start"].timestamp()) + offset, _dt.timezone.utc)
    return t.strftime("%a %b %d %H:%M:%S %Y")


def _command(scan: dict, flag: str, out: str) -> str:
    """The nmap command line of the scan, writing ``flag out``; ``--`` before the target when the
    scan ends its options the way tinysec's collector does."""
    end = ["--"] if scan.get("end_of_options") else []
    return " ".join([scan["binary"], *scan["options"], flag, out, *end, scan["target"]])


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
