"""Hand-built OSINT records (format of tinysec/osint/record.py) for the ner_data unit tests."""

from __future__ import annotations

import json

from tinysec.osint.record import make_record

NMAP_RAW = """<?xml version="1.0"?>
<nmaprun scanner="nmap" args="nmap -sV 192.168.0.10" version="7.94">
<host><status state="up"/><address addr="192.168.0.10" addrtype="ipv4"/>
<hostnames><hostname name="web.example.com" type="PTR"/></hostnames>
<ports><port protocol="tcp" portid="22"><state state="open"/><service name="ssh" product="OpenSSH" version="8.4p1"/></port>
<port protocol="tcp" portid="80"><state state="open"/><service name="http" product="nginx" version="1.18.0"/></port></ports>
<os><osmatch name="Linux 5.4" accuracy="96"/></os></host></nmaprun>"""


def nmap_record(n: int = 0) -> dict:
    parsed = {"args": "nmap -sV 192.168.0.10", "scanner_version": "7.94", "hosts": [{
        "status": "up", "addresses": [{"addr": "192.168.0.10", "addrtype": "ipv4"}],
        "hostnames": [{"name": "web.example.com", "type": "PTR"}],
        "ports": [{"protocol": "tcp", "port": 22, "state": "open", "service": "ssh", "product": "OpenSSH",
                   "version": "8.4p1", "extrainfo": None, "cpe": []},
                  {"protocol": "tcp", "port": 80, "state": "open", "service": "http", "product": "nginx",
                   "version": "1.18.0", "extrainfo": None, "cpe": []}],
        "os": [{"name": "Linux 5.4", "accuracy": 96, "cpe": []}]}]}
    return make_record("nmap", f"192.168.0.{10 + n}", NMAP_RAW, parsed, tool_version="synthetic", synthetic=True,
                       record_id_=f"syn-nmap-{n}")


def dns_record(n: int = 0, domain: str = "example.com") -> dict:
    raw = (f"; <<>> DiG <<>> {domain}\n;; ANSWER SECTION:\n{domain}. 300 IN A 93.184.216.34\n"
           f"{domain}. 300 IN NS ns1.example.net.\n{domain}. 300 IN MX 10 mail.{domain}.\n")
    parsed = {"domain": domain, "nameserver": None, "answers": [
        {"name": domain, "ttl": 300, "rdclass": "IN", "rdtype": "A", "value": "93.184.216.34"},
        {"name": domain, "ttl": 300, "rdclass": "IN", "rdtype": "NS", "value": "ns1.example.net."},
        {"name": domain, "ttl": 300, "rdclass": "IN", "rdtype": "MX", "value": f"10 mail.{domain}."}],
        "status": {"A": "NOERROR", "NS": "NOERROR", "MX": "NOERROR", "AAAA": "NOANSWER"}}
    return make_record("dns", domain, raw, parsed, tool_version="synthetic", synthetic=True,
                       record_id_=f"syn-dns-{n}")


def whois_record(n: int = 0, domain: str = "example.org") -> dict:
    raw = (f"Domain Name: {domain.upper()}\nDomain Name: {domain}\nRegistrar: MarkMonitor Inc.\n"
           "Registrant Organization: Example Holdings LLC\nName Server: ns1.example.org\n"
           "Name Server: ns2.example.org\nCreation Date: 1995-08-14T04:00:00Z\n")
    parsed = {"domain": domain, "registrar": "MarkMonitor Inc.", "organization": "Example Holdings LLC",
              "name_servers": ["ns1.example.org", "ns2.example.org"], "creation_date": "1995-08-14T04:00:00Z",
              "expiration_date": None, "updated_date": None, "country": "US", "emails": [], "error": None}
    return make_record("whois", domain, raw, parsed, tool_version="synthetic", synthetic=True,
                       record_id_=f"syn-whois-{n}")


def shodan_record(n: int = 0) -> dict:
    parsed = {"kind": "host", "ip": "203.0.113.7", "found": True, "org": "Acme Hosting", "isp": "Acme Networks",
              "asn": "AS64500", "os": "Ubuntu", "country": "DE", "hostnames": ["shop.acme.example"],
              "domains": ["acme.example"], "ports": [443], "vulns": ["CVE-2021-44228"],
              "services": [{"port": 443, "transport": "tcp", "module": "https", "product": "Apache httpd",
                            "version": "2.4.54", "cpe": [], "banner": "Server: Apache/2.4.54 (Ubuntu)"}]}
    raw = json.dumps({"ip_str": "203.0.113.7", "org": "Acme Hosting", "isp": "Acme Networks", "os": "Ubuntu",
                      "hostnames": ["shop.acme.example"], "domains": ["acme.example"], "vulns": ["CVE-2021-44228"],
                      "data": [{"port": 443, "transport": "tcp", "product": "Apache httpd", "version": "2.4.54",
                                "_shodan": {"module": "https"}}]}, indent=2)
    return make_record("shodan", "203.0.113.7", raw, parsed, tool_version="synthetic", synthetic=True,
                       record_id_=f"syn-shodan-{n}")


def sample_records(k: int = 10) -> list[dict]:
    """``4 * k`` records, ``k`` per source."""
    out = []
    for n in range(k):
        out += [nmap_record(n), dns_record(n, f"site{n}.example.com"), whois_record(n, f"org{n}.example.org"),
                shodan_record(n)]
    return out
