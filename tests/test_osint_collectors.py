"""OSINT collectors against real servers on 127.0.0.1 started by the tests: a dnspython UDP
responder, a WHOIS referral chain (IANA, registry, registrar), a stand-in for Shodan's HTTP API,
and a real ``nmap -sV`` scan of a local listener. Nothing here may leave the machine."""

from __future__ import annotations

import json
import shutil
import socket
import socketserver
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import dns.message
import dns.rcode
import dns.rrset
import pytest
import yaml
from conftest import TINY, run_snakemake

from tinysec.osint.cache import ResponseCache
from tinysec.osint.collect import collect
from tinysec.osint.collect_dns import collect_dns
from tinysec.osint.collect_nmap import NmapError, collect_nmap
from tinysec.osint.collect_shodan import ShodanKeyError, ShodanSession, collect_shodan
from tinysec.osint.collect_whois import collect_whois
from tinysec.osint.nmap_xml import NmapXMLError
from tinysec.osint.record import load_record, load_records, validate_record
from tinysec.osint.targets import TargetError, slug
from tinysec.osint.whois_text import Registration, iana_reply, registrar_reply, registry_reply

LOOPBACK = "127.0.0.1"
SHODAN_KEY = "tinysec-test-key-7f3a9c1e5b"


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Refuse any in-process TCP/UDP connection that is not to 127.0.0.1."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in (LOOPBACK, "::1", "localhost"):
            raise ConnectionRefusedError(f"test guard: connection to {address!r} refused (loopback only)")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


# ---------------------------------------------------------------- DNS: UDP responder
ZONE = {
    ("tinysec.test.", "A"): (300, ["192.0.2.10", "192.0.2.11"]),
    ("tinysec.test.", "AAAA"): (300, ["2001:db8::10"]),
    ("tinysec.test.", "MX"): (3600, ["10 mail.tinysec.test."]),
    ("tinysec.test.", "NS"): (86400, ["ns1.tinysec.test.", "ns2.tinysec.test."]),
    ("tinysec.test.", "TXT"): (300, ['"v=spf1 mx -all"']),
    ("tinysec.test.", "SOA"): (3600, ["ns1.tinysec.test. hostmaster.tinysec.test. 2024010101 7200 3600 1209600 3600"]),
    ("www.tinysec.test.", "CNAME"): (300, ["tinysec.test."]),
}


class DNSResponder:
    """UDP DNS server built with dnspython serving ZONE; names under silent.test. never answer."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))  # bound before the thread starts: no race with the first query
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                wire, addr = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            query = dns.message.from_wire(wire)
            q = query.question[0]
            name, rdtype = str(q.name), dns.rdatatype.to_text(q.rdtype)
            self.queries.append((name, rdtype))
            if name.endswith("silent.test."):
                continue
            response = dns.message.make_response(query)
            if not any(n == name for n, _ in ZONE):
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif (name, rdtype) in ZONE:
                ttl, values = ZONE[(name, rdtype)]
                response.answer.append(dns.rrset.from_text(name, ttl, "IN", rdtype, *values))
            self.sock.sendto(response.to_wire(), addr)

    def close(self):
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture(scope="module")
def dns_server():
    server = DNSResponder()
    yield server
    server.close()


def test_dns_collects_every_record_type_dig_style(dns_server):
    rec = collect_dns("tinysec.test", ["A", "AAAA", "MX", "NS", "TXT", "SOA", "CNAME"], LOOPBACK, dns_server.port, 2)
    validate_record(rec)
    p = rec["parsed"]
    assert p["nameserver"] == f"{LOOPBACK}:{dns_server.port}"
    assert p["status"] == {"A": "NOERROR", "AAAA": "NOERROR", "MX": "NOERROR", "NS": "NOERROR",
                           "TXT": "NOERROR", "SOA": "NOERROR", "CNAME": "NOANSWER"}
    a_values = sorted(a["value"] for a in p["answers"] if a["rdtype"] == "A")
    assert a_values == ["192.0.2.10", "192.0.2.11"]
    assert ";; ANSWER SECTION:" in rec["raw"] and "status: NOERROR" in rec["raw"]
    assert "tinysec.test.\t300\tIN\tA\t192.0.2.10" in rec["raw"]
    ents = {(e["type"], e["text"]) for e in rec["gold_entities"]}
    assert {("IP", "192.0.2.10"), ("IP", "2001:db8::10"), ("DOMAIN", "mail.tinysec.test"),
            ("DOMAIN", "ns1.tinysec.test")} <= ents


def test_dns_nxdomain_noanswer_and_timeout_are_recorded(dns_server):
    rec = collect_dns("missing.tinysec.test", ["A", "MX"], LOOPBACK, dns_server.port, 2)
    assert rec["parsed"]["status"] == {"A": "NXDOMAIN", "MX": "NXDOMAIN"}
    assert "status: NXDOMAIN" in rec["raw"]
    rec = collect_dns("www.tinysec.test", ["A"], LOOPBACK, dns_server.port, 2)
    assert rec["parsed"]["status"] == {"A": "NOANSWER"}
    rec = collect_dns("host.silent.test", ["A"], LOOPBACK, dns_server.port, 0.3)
    assert rec["parsed"]["status"] == {"A": "TIMEOUT"}
    assert rec["parsed"]["answers"] == [] and "timed out" in rec["raw"]


def test_cache_reuses_answers_within_ttl(dns_server, tmp_path):
    options = {"record_types": ["A"], "nameserver": LOOPBACK, "port": dns_server.port, "timeout_s": 2}
    before = len(dns_server.queries)
    first, cached1 = collect("dns", "tinysec.test", options, tmp_path, ttl_s=3600)
    second, cached2 = collect("dns", "tinysec.test", options, tmp_path, ttl_s=3600)
    assert (cached1, cached2) == (False, True)
    assert len(dns_server.queries) == before + 1
    assert second == first
    # other options are another cache entry; TTL 0 always queries again
    collect("dns", "tinysec.test", {**options, "record_types": ["A", "MX"]}, tmp_path, ttl_s=3600)
    assert len(dns_server.queries) == before + 3
    _, cached3 = collect("dns", "tinysec.test", options, tmp_path, ttl_s=0)
    assert cached3 is False and len(dns_server.queries) == before + 4


def test_cache_entry_goes_stale_after_ttl(tmp_path):
    now = [1000.0]
    cache = ResponseCache(tmp_path, ttl_s=60, clock=lambda: now[0])
    calls = []
    value, hit = cache.fetch("dns", "a.test", {}, lambda: calls.append(1) or {"n": len(calls)})
    assert (value, hit) == ({"n": 1}, False)
    now[0] += 59
    assert cache.fetch("dns", "a.test", {}, lambda: {"n": 99}) == ({"n": 1}, True)
    now[0] += 2
    assert cache.fetch("dns", "a.test", {}, lambda: {"n": 2}) == ({"n": 2}, False)


# ---------------------------------------------------------------- WHOIS: referral chain
WHOIS_DOMAIN = "tinysec-example.com"
REGISTRATION = Registration(
    domain=WHOIS_DOMAIN, registrar="MarkMonitor Inc.", registrar_iana_id="292",
    registrar_whois="whois.markmonitor.com", registrar_url="http://www.markmonitor.com",
    created="1997-09-15T04:00:00Z", updated="2019-09-09T15:39:04Z", expires="2028-09-14T04:00:00Z",
    name_servers=["ns1.tinysec-example.com", "ns2.tinysec-example.com"], organization="Tinysec Test Org LLC",
    country="US", statuses=["clientDeleteProhibited", "clientTransferProhibited"])


class WhoisServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, replies: dict[str, str]):
        self.replies, self.queries = replies, []
        super().__init__((LOOPBACK, 0), WhoisHandler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class WhoisHandler(socketserver.StreamRequestHandler):
    def handle(self):
        query = self.rfile.readline().decode("utf-8").strip()
        self.server.queries.append(query)
        reply = self.server.replies.get(query.lower(), f'No match for "{query.upper()}".\n')
        self.wfile.write(reply.encode("utf-8"))


@pytest.fixture(scope="module")
def whois_servers():
    servers = {
        "whois.iana.org": WhoisServer({"com": iana_reply("com", "whois.verisign-grs.com",
                                                         "VeriSign Global Registry Services")}),
        "whois.verisign-grs.com": WhoisServer({WHOIS_DOMAIN: registry_reply(REGISTRATION)}),
        "whois.markmonitor.com": WhoisServer({WHOIS_DOMAIN: registrar_reply(REGISTRATION)}),
    }
    yield servers
    for s in servers.values():
        s.shutdown()
        s.server_close()


def redirects(servers, skip=()):
    return {host: f"{LOOPBACK}:{s.port}" for host, s in servers.items() if host not in skip}


def test_whois_follows_referrals_and_parses_fields(whois_servers):
    rec = collect_whois(WHOIS_DOMAIN, redirects(whois_servers), only_mapped=True, timeout_s=5)
    assert [s.queries[-1] for s in whois_servers.values()] == ["com", WHOIS_DOMAIN, WHOIS_DOMAIN]
    p = rec["parsed"]
    assert p["registrar"] == "MarkMonitor Inc."
    assert p["organization"] == "Tinysec Test Org LLC"
    assert [ns.lower() for ns in p["name_servers"]] == ["ns1.tinysec-example.com", "ns2.tinysec-example.com"]
    assert p["creation_date"].startswith("1997-09-15") and p["expiration_date"].startswith("2028-09-14")
    assert p["updated_date"].startswith("2019-09-09")
    assert p["country"] == "US" and "abuse@markmonitor.com" in p["emails"]
    # raw keeps both replies exactly as the servers sent them
    assert registry_reply(REGISTRATION) in rec["raw"] and registrar_reply(REGISTRATION) in rec["raw"]
    assert {"type": "ORG", "text": "Tinysec Test Org LLC"} in rec["gold_entities"]


def test_whois_refuses_unmapped_host(whois_servers):
    before = len(whois_servers["whois.verisign-grs.com"].queries)
    rec = collect_whois(WHOIS_DOMAIN, redirects(whois_servers, skip=("whois.markmonitor.com",)),
                        only_mapped=True, timeout_s=5)
    assert "not in osint.whois.redirects" in rec["parsed"]["error"]
    assert rec["parsed"]["registrar"] is None
    assert len(whois_servers["whois.verisign-grs.com"].queries) == before + 1


# ---------------------------------------------------------------- Shodan: local HTTP API
SHODAN_HOST = {
    "ip_str": "192.0.2.50", "org": "Tinysec Hosting B.V.", "isp": "Tinysec Hosting B.V.", "asn": "AS64500",
    "os": "Linux 3.x", "country_name": "Netherlands", "hostnames": ["web.tinysec.test"],
    "domains": ["tinysec.test"], "ports": [22, 443], "vulns": ["CVE-2023-38408"],
    "data": [
        {"port": 22, "transport": "tcp", "product": "OpenSSH", "version": "8.9p1",
         "cpe": ["cpe:/a:openbsd:openssh:8.9p1"], "data": "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n",
         "_shodan": {"module": "ssh"}},
        {"port": 443, "transport": "tcp", "product": "nginx", "version": "1.18.0",
         "data": "HTTP/1.1 200 OK\r\nServer: nginx/1.18.0\r\n", "_shodan": {"module": "https"}},
    ],
}
SHODAN_SEARCH = {"total": 1234, "matches": [
    {"ip_str": "192.0.2.60", "port": 80, "transport": "tcp", "org": "Example Cloud Inc.", "product": "nginx",
     "version": "1.24.0", "hostnames": ["a.tinysec.test"], "domains": ["tinysec.test"],
     "data": "HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\n"}]}


class ShodanHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the key out of stderr
        pass

    def _send(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        args = parse_qs(url.query)
        server = self.server
        server.requests.append(url.path)
        if args.get("key") != [SHODAN_KEY]:
            return self._send(401, {"error": "Invalid API key"})
        if url.path == "/shodan/host/search":
            return self._send(200, SHODAN_SEARCH)
        ip = url.path.rsplit("/", 1)[-1]
        if ip == "192.0.2.77" and server.throttle_left > 0:
            server.throttle_left -= 1
            return self._send(429, {"error": "Rate limit reached"})
        if ip in ("192.0.2.50", "192.0.2.77"):
            return self._send(200, {**SHODAN_HOST, "ip_str": ip})
        return self._send(404, {"error": "No information available for that IP."})


@pytest.fixture(scope="module")
def shodan_server():
    server = ThreadingHTTPServer((LOOPBACK, 0), ShodanHandler)
    server.requests, server.throttle_left = [], 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.base_url = f"http://{LOOPBACK}:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def session(server, key=SHODAN_KEY):
    return ShodanSession(key, base_url=server.base_url, max_retries=3, backoff_s=0)


def test_shodan_host_and_search(shodan_server):
    rec = collect_shodan("192.0.2.50", session(shodan_server))
    p = rec["parsed"]
    assert p["found"] and p["org"] == "Tinysec Hosting B.V." and p["ports"] == [22, 443]
    assert [(s["port"], s["module"], s["product"], s["version"]) for s in p["services"]] == [
        (22, "ssh", "OpenSSH", "8.9p1"), (443, "https", "nginx", "1.18.0")]
    assert json.loads(rec["raw"])["data"][0]["data"].startswith("SSH-2.0-OpenSSH_8.9p1")
    ents = {(e["type"], e["text"]) for e in rec["gold_entities"]}
    assert {("IP", "192.0.2.50"), ("SOFTWARE", "OpenSSH"), ("VERSION", "8.9p1"), ("SERVICE", "ssh")} <= ents
    rec = collect_shodan("search:product:nginx", session(shodan_server))
    assert rec["parsed"]["kind"] == "search" and rec["parsed"]["total"] == 1234
    assert rec["parsed"]["matches"][0]["ip"] == "192.0.2.60"
    assert SHODAN_KEY not in rec["raw"]


def test_shodan_404_is_recorded_and_401_is_a_clear_error(shodan_server):
    rec = collect_shodan("192.0.2.99", session(shodan_server))
    assert rec["parsed"]["found"] is False and rec["parsed"]["services"] == []
    assert "No information" in rec["raw"]
    with pytest.raises(ShodanKeyError, match="rejected the API key") as err:
        collect_shodan("192.0.2.50", session(shodan_server, key="wrong-key-123"))
    assert "wrong-key-123" not in str(err.value)


def test_shodan_429_backs_off_and_retries(shodan_server):
    shodan_server.throttle_left = 2
    before = len(shodan_server.requests)
    rec = collect_shodan("192.0.2.77", session(shodan_server))
    assert rec["parsed"]["found"] and len(shodan_server.requests) == before + 3


def test_shodan_limiter_spaces_requests(shodan_server, tmp_path):
    import time

    from tinysec.osint.ratelimit import RateLimiter

    s = ShodanSession(SHODAN_KEY, base_url=shodan_server.base_url, limiter=RateLimiter(tmp_path / "rl", 0.3))
    start = time.monotonic()
    for _ in range(3):
        collect_shodan("192.0.2.50", s)
    assert time.monotonic() - start >= 0.6


# ---------------------------------------------------------------- nmap
def test_nmap_refuses_unauthorized_and_option_like_targets(tmp_path):
    smuggled_existed = Path("/tmp/x").exists()
    with pytest.raises(TargetError, match="not in the authorized target list"):
        collect_nmap("192.0.2.1", ["-sV"], ["-sV"], [LOOPBACK])
    for bad in ("-oN/tmp/x", "127.0.0.1 -oN/tmp/x", "exa mple.com", "http://x", "1.2.3.4/99"):
        with pytest.raises(TargetError):
            collect_nmap(bad, ["-sV"], ["-sV"], [bad, LOOPBACK])
    with pytest.raises(TargetError, match="never allowed"):
        collect_nmap(LOOPBACK, ["-oN/tmp/x"], ["-oN/tmp/x"], [LOOPBACK])
    with pytest.raises(TargetError, match="allowed_options"):
        collect_nmap(LOOPBACK, ["-sC"], ["-sV"], [LOOPBACK])
    assert Path("/tmp/x").exists() == smuggled_existed  # nothing ran with -oN/tmp/x


def fake_nmap(tmp_path: Path, xml: str) -> str:
    out = tmp_path / "payload.xml"
    out.write_text(xml)
    script = tmp_path / "fake-nmap"
    script.write_text(f"#!/bin/sh\ncat '{out}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


BOMB = """<?xml version="1.0"?>
<!DOCTYPE nmaprun [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<nmaprun args="&c;"><runstats><finished/></runstats></nmaprun>
"""


def test_nmap_rejects_xml_bomb_and_truncated_output(tmp_path):
    with pytest.raises(NmapXMLError, match="unsafe"):
        collect_nmap(LOOPBACK, [], [], [LOOPBACK], binary=fake_nmap(tmp_path, BOMB))
    truncated = '<?xml version="1.0"?><nmaprun args="nmap"><host><status state="up"/>'
    with pytest.raises(NmapXMLError, match="truncated"):
        collect_nmap(LOOPBACK, [], [], [LOOPBACK], binary=fake_nmap(tmp_path, truncated))
    with pytest.raises(NmapError, match="not found"):
        collect_nmap(LOOPBACK, [], [], [LOOPBACK], binary="no-such-nmap-binary")


needs_nmap = pytest.mark.skipif(shutil.which("nmap") is None,
                                reason="nmap is not installed (.ci/run installs it with apt-get install nmap)")


@needs_nmap
def test_nmap_service_scan_of_local_listener(ssh_listener):
    rec = collect_nmap(LOOPBACK, ["-sV", "-Pn", f"-p{ssh_listener}"], ["-sV", "-Pn", "-p"], ["127.0.0.0/24"],
                       timeout_s=120)
    host = rec["parsed"]["hosts"][0]
    assert {"addr": LOOPBACK, "addrtype": "ipv4"} in host["addresses"]
    port = host["ports"][0]
    assert (port["port"], port["state"], port["service"], port["product"]) == (ssh_listener, "open", "ssh", "OpenSSH")
    assert port["version"].startswith("8.9p1") and any("openssh" in c for c in port["cpe"])
    assert rec["raw"].lstrip().startswith("<?xml") and "-oX -" in rec["parsed"]["args"]
    assert {"type": "SOFTWARE", "text": "OpenSSH"} in rec["gold_entities"]


# ---------------------------------------------------------------- tiny snakemake run with collect: true
def test_tiny_snakemake_collects_from_loopback_servers(tmp_path, dns_server, whois_servers, shodan_server,
                                                        ssh_listener):
    conf = yaml.safe_load(TINY.read_text())
    has_nmap = shutil.which("nmap") is not None
    conf["osint"] = {
        "collect": True,
        "cache_ttl_s": 3600,
        "targets": {"dns": ["tinysec.test"], "whois": [WHOIS_DOMAIN],
                    "shodan": ["192.0.2.50", "192.0.2.99", "search:product:nginx"],
                    "nmap": [LOOPBACK] if has_nmap else []},
        "dns": {"nameserver": LOOPBACK, "port": dns_server.port, "timeout_s": 2},
        "whois": {"redirects": redirects(whois_servers), "only_mapped": True, "min_interval_s": 0},
        "shodan": {"base_url": shodan_server.base_url, "min_interval_s": 0, "backoff_s": 0},
        "nmap": {"options": ["-sV", "-Pn", f"-p{ssh_listener}"], "authorized_targets": [LOOPBACK]},
        "synthetic": {"n_records": 8},
    }
    configfile = tmp_path / "collect.yaml"
    configfile.write_text(yaml.safe_dump(conf))
    workdir = tmp_path / "run"
    workdir.mkdir()
    targets = ("results/osint/records.jsonl", "results/tables/osint_corpus.md")
    run_snakemake(workdir, *targets, configfile=configfile, env={"SHODAN_API_KEY": SHODAN_KEY})

    raw = workdir / "results" / "osint" / "raw"
    expected = {("dns", "tinysec.test"), ("whois", WHOIS_DOMAIN), ("shodan", "192.0.2.50"),
                ("shodan", "192.0.2.99"), ("shodan", "search:product:nginx")}
    if has_nmap:
        expected.add(("nmap", LOOPBACK))
    for source, target in expected:
        rec = load_record(raw / source / f"{slug(target)}.json")
        assert (rec["source"], rec["target"], rec["synthetic"]) == (source, target, False)
    records = load_records(workdir / "results" / "osint" / "records.jsonl")
    assert sum(not r["synthetic"] for r in records) == len(expected)
    assert sum(r["synthetic"] for r in records) == 8
    table = (workdir / "results" / "tables" / "osint_corpus.md").read_text()
    assert "8 of " in table and "SYNTHETIC" in table

    # the key never lands in results/ or logs/ (nor benchmarks/)
    for folder in ("results", "logs", "benchmarks"):
        for path in (workdir / folder).rglob("*"):
            if path.is_file():
                assert SHODAN_KEY.encode() not in path.read_bytes(), path

    # a rerun with unchanged targets and options does nothing; a changed option list reruns that collector
    again = run_snakemake(workdir, *targets, "-n", configfile=configfile, env={"SHODAN_API_KEY": SHODAN_KEY})
    assert "Nothing to be done" in again.stdout
    conf["osint"]["dns"]["record_types"] = ["A", "MX"]
    configfile.write_text(yaml.safe_dump(conf))
    changed = run_snakemake(workdir, *targets, "-n", configfile=configfile, env={"SHODAN_API_KEY": SHODAN_KEY})
    assert changed.stdout.count("rule osint_collect:") == 1
    assert "output: results/osint/raw/dns/tinysec.test.json" in changed.stdout
