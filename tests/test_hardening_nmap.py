"""Nmap hardening: options that run NSE scripts or touch files are refused whatever the allowlist
says, authorized CIDRs are capped, hostnames are resolved and their addresses checked before a
scan, bad option lists stop ``snakemake -n`` naming the key, and bad numbers in nmap XML give a
clear error. Nothing here leaves the machine: nmap is a recording stand-in or a real scan of a
loopback listener."""

from __future__ import annotations

import copy
import shutil
import socket
import stat
from pathlib import Path

import pytest
import yaml
from conftest import REPO, TINY, run_snakemake

from tinysec.config import ConfigError, validate_config
from tinysec.osint.collect import collect
from tinysec.osint.collect_nmap import collect_nmap, scan_address
from tinysec.osint.nmap_xml import NmapXMLError, parse_nmap_xml
from tinysec.osint.targets import (
    DEFAULT_MIN_PREFIX,
    TargetError,
    check_authorized,
    enables_scripts,
    nmap_config_problems,
    option_problem,
)

LOOPBACK = "127.0.0.1"
SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"
OSINT_SCHEMA = REPO / "config" / "schema" / "osint.schema.yaml"

XML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -sV -oX - 127.0.0.1" version="7.94">
<host><status state="up"/><address addr="127.0.0.1" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="{portid}"><state state="open"/><service name="ssh" product="OpenSSH"/></port></ports>
<os><osmatch name="Linux 5.4" accuracy="{accuracy}"/></os></host>
<runstats><finished time="1"/></runstats></nmaprun>
"""


def fake_nmap(tmp_path: Path, xml: str) -> tuple[str, Path]:
    """An executable that writes each argument it gets on one line of ``argv.txt``, then prints ``xml``."""
    payload = tmp_path / "payload.xml"
    payload.write_text(xml)
    argv = tmp_path / "argv.txt"
    script = tmp_path / "fake-nmap"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{argv}'\ncat '{payload}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), argv


@pytest.fixture
def stub_dns(monkeypatch):
    """Names under ``.test`` resolve to the addresses given in the returned dict; others as usual."""
    table: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, str) and host.endswith(".test"):
            if host not in table:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in table[host]]
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


# ---------------------------------------------------------------- options
SCRIPT_OPTIONS = ["-A", "-sC", "-sVC", "-sCV", "-sSC", "-nA", "-6A", "-nFA", "--script", "--script=vuln",
                  "--script=default,safe", "--script-args=user=x", "--script-args-file=/tmp/a",
                  "--script-updatedb", "--script-trace", "--script-help=all", "--script-timeout=5",
                  "-script=banner", "-script-updatedb", "--scr=banner", "-scrip"]
FILE_OPTIONS = ["-oX", "-oN/tmp/x", "-oA", "--oN=/tmp/x", "-iL", "--iL=targets.txt", "-iR", "--resume",
                "-resu", "--datadir=/tmp", "--servicedb=/tmp/s", "--versiondb=/tmp/v", "--stylesheet=x",
                "--excludefile=x", "--interactive", "--append-output"]


@pytest.mark.parametrize("opt", SCRIPT_OPTIONS)
def test_script_options_are_refused_even_when_allowlisted(tmp_path, opt):
    binary, argv = fake_nmap(tmp_path, XML.format(portid=22, accuracy=96))
    assert enables_scripts(opt)
    with pytest.raises(TargetError, match="enables NSE scripts and is never allowed"):
        collect_nmap(LOOPBACK, [opt], [opt], [LOOPBACK], binary=binary)
    assert not argv.exists()  # nmap never started


@pytest.mark.parametrize("opt", FILE_OPTIONS)
def test_file_options_are_refused_in_every_dash_form(tmp_path, opt):
    binary, argv = fake_nmap(tmp_path, XML.format(portid=22, accuracy=96))
    with pytest.raises(TargetError, match="never allowed"):
        collect_nmap(LOOPBACK, [opt], [opt], [LOOPBACK], binary=binary)
    assert not argv.exists()


@pytest.mark.parametrize("opt", ["-sV", "-sS", "-sT", "-sU", "-sn", "-Pn", "-O", "-n", "-T4", "-p22,80",
                                 "--top-ports=100", "--open", "--version-light", "-v", "-F", "-6"])
def test_ordinary_options_are_not_mistaken_for_scripts(opt):
    assert not enables_scripts(opt)
    assert option_problem(opt) is None


def test_schema_default_allowlist_has_no_script_option_and_cap_matches_code():
    nmap = yaml.safe_load(OSINT_SCHEMA.read_text())["properties"]["nmap"]["properties"]
    default_allowed = nmap["allowed_options"]["default"]
    assert "-A" not in default_allowed
    assert [o for o in default_allowed if option_problem(o)] == []
    assert nmap["min_cidr_prefix"]["default"] == DEFAULT_MIN_PREFIX == {"ipv4": 24, "ipv6": 120}


@pytest.mark.parametrize("opts, message", [
    (["-p"], "'-p' needs its value attached"),
    (["--", "-sV"], "'--' is not a single nmap option"),
    (["-sV -oN x"], "is not a single nmap option"),
    (["-sX"], "'-sX' is not in osint.nmap.allowed_options"),
])
def test_malformed_or_unlisted_options_are_refused(tmp_path, opts, message):
    binary, argv = fake_nmap(tmp_path, XML.format(portid=22, accuracy=96))
    with pytest.raises(TargetError, match=message):
        collect_nmap(LOOPBACK, opts, ["-sV", "-p"], [LOOPBACK], binary=binary)
    assert not argv.exists()


def test_nmap_gets_an_argument_list_without_a_shell(tmp_path):
    binary, argv = fake_nmap(tmp_path, XML.format(portid=22, accuracy=96))
    rec = collect_nmap(LOOPBACK, ["-sV", "-p22,80"], ["-sV", "-p"], ["127.0.0.0/24"], binary=binary)
    assert argv.read_text().splitlines() == ["-sV", "-p22,80", "-oX", "-", "--", LOOPBACK]
    assert rec["parsed"]["hosts"][0]["ports"][0]["port"] == 22


# ---------------------------------------------------------------- authorized CIDRs
@pytest.mark.parametrize("everything", ["0.0.0.0/0", "::/0"])
def test_all_addresses_are_refused_outright(everything):
    with pytest.raises(TargetError, match="covers every address and is never allowed"):
        check_authorized(LOOPBACK, [everything], {"ipv4": 1, "ipv6": 1})
    with pytest.raises(TargetError, match="covers every address"):
        check_authorized(everything, [everything])


def test_authorized_cidr_size_is_capped(tmp_path):
    binary, argv = fake_nmap(tmp_path, XML.format(portid=22, accuracy=96))
    with pytest.raises(TargetError, match=r"'127.0.0.0/16' holds 65536 addresses; the largest allowed is a /24 "
                                          r"\(osint.nmap.min_cidr_prefix.ipv4\)"):
        collect_nmap(LOOPBACK, [], [], ["127.0.0.0/16"], binary=binary)
    assert not argv.exists()
    with pytest.raises(TargetError, match=r"largest allowed is a /120 \(osint.nmap.min_cidr_prefix.ipv6\)"):
        check_authorized("::1", ["::/64"])
    assert check_authorized("::1", ["::/120"]) == "::1"
    # a larger cap, set in the config, is honoured
    collect_nmap(LOOPBACK, [], [], ["127.0.0.0/16"], binary=binary, min_prefix={"ipv4": 16})
    assert argv.read_text().splitlines()[-1] == LOOPBACK


def test_collect_passes_the_configured_cap(tmp_path):
    binary, argv = fake_nmap(tmp_path, XML.format(portid=22, accuracy=96))
    options = {"options": [], "allowed_options": [], "authorized_targets": ["127.0.0.0/20"], "binary": binary}
    with pytest.raises(TargetError, match="largest allowed is a /24"):
        collect("nmap", LOOPBACK, options, tmp_path / "cache", 0)
    record, cached = collect("nmap", LOOPBACK, {**options, "min_cidr_prefix": {"ipv4": 20, "ipv6": 120}},
                             tmp_path / "cache", 0)
    assert not cached and record["target"] == LOOPBACK and argv.exists()


# ---------------------------------------------------------------- hostnames
def test_localhost_resolves_inside_the_allowlist_and_nmap_scans_that_address(tmp_path):
    binary, argv = fake_nmap(tmp_path, XML.format(portid=22, accuracy=96))
    assert scan_address("localhost", [], ["localhost", "127.0.0.0/24"]) == LOOPBACK
    rec = collect_nmap("localhost", ["-sV"], ["-sV"], ["localhost", "127.0.0.1"], binary=binary)
    assert argv.read_text().splitlines()[-2:] == ["--", LOOPBACK]
    assert rec["target"] == "localhost"


def test_hostname_authorized_only_by_name_is_refused(tmp_path):
    binary, argv = fake_nmap(tmp_path, XML.format(portid=22, accuracy=96))
    with pytest.raises(TargetError, match=r"'localhost' resolves to 127\.0\.0\.1, which no IP or CIDR"):
        collect_nmap("localhost", [], [], ["localhost", "10.0.0.0/24"], binary=binary)
    assert not argv.exists()


def test_hostname_resolving_outside_the_allowlist_is_refused(tmp_path, stub_dns):
    binary, argv = fake_nmap(tmp_path, XML.format(portid=22, accuracy=96))
    stub_dns["scan.tinysec.test"] = ["127.0.0.5"]
    stub_dns["moved.tinysec.test"] = ["203.0.113.7"]
    stub_dns["split.tinysec.test"] = ["127.0.0.6", "198.51.100.9"]
    authorized = ["scan.tinysec.test", "moved.tinysec.test", "split.tinysec.test", "127.0.0.0/24"]
    assert scan_address("scan.tinysec.test", [], authorized) == "127.0.0.5"
    with pytest.raises(TargetError, match=r"'moved.tinysec.test' resolves to 203\.0\.113\.7, which no IP"):
        collect_nmap("moved.tinysec.test", [], [], authorized, binary=binary)
    with pytest.raises(TargetError, match=r"resolves to 198\.51\.100\.9, which no IP"):
        collect_nmap("split.tinysec.test", [], [], authorized, binary=binary)
    with pytest.raises(TargetError, match="'gone.tinysec.test' does not resolve"):
        collect_nmap("gone.tinysec.test", [], [], authorized + ["gone.tinysec.test"], binary=binary)
    with pytest.raises(TargetError, match="not in the authorized target list"):
        collect_nmap("other.tinysec.test", [], [], authorized, binary=binary)
    assert not argv.exists()


# ---------------------------------------------------------------- config load
def tiny_with_nmap(**nmap) -> dict:
    config = yaml.safe_load(TINY.read_text())
    config["osint"] = copy.deepcopy(config.get("osint") or {})
    config["osint"]["nmap"] = nmap
    return config


BAD_CONFIGS = [
    ({"options": ["-sV", "-A"]}, "osint.nmap.options[1]: '-A' enables NSE scripts and is never allowed"),
    ({"options": ["-sVC"], "allowed_options": ["-sVC"]},
     "osint.nmap.allowed_options[0]: '-sVC' enables NSE scripts and is never allowed"),
    ({"options": ["--script=vuln"]}, "osint.nmap.options[0]: '--script=vuln' enables NSE scripts"),
    ({"options": ["--oN=/tmp/x"]}, "osint.nmap.options[0]: '--oN=/tmp/x' is an output, input-file"),
    ({"options": ["-sX"]}, "osint.nmap.options[0]: '-sX' is not in osint.nmap.allowed_options"),
    ({"authorized_targets": ["0.0.0.0/0"]},
     "osint.nmap.authorized_targets[0]: '0.0.0.0/0' covers every address and is never allowed"),
    ({"authorized_targets": ["127.0.0.1", "10.0.0.0/16"]},
     "osint.nmap.authorized_targets[1]: CIDR '10.0.0.0/16' holds 65536 addresses"),
    ({"authorized_targets": ["127.0.0.1", "-oN/tmp/x"]},
     "osint.nmap.authorized_targets[1]: target '-oN/tmp/x' starts with '-'"),
]


@pytest.mark.parametrize("nmap, expected", BAD_CONFIGS)
def test_config_load_refuses_bad_nmap_settings_naming_the_key(nmap, expected):
    with pytest.raises(ConfigError) as exc:
        validate_config(tiny_with_nmap(**nmap), SCHEMA, source="config bad.yaml")
    assert expected in str(exc.value)


def test_config_load_checks_nmap_targets_against_the_allowlist():
    config = tiny_with_nmap(authorized_targets=["127.0.0.1"])
    config["osint"]["targets"] = {"nmap": ["127.0.0.1", "192.0.2.1"]}
    with pytest.raises(ConfigError) as exc:
        validate_config(config, SCHEMA)
    assert ("osint.targets.nmap[1]: target '192.0.2.1' is not in the authorized target list "
            "(osint.nmap.authorized_targets)") in str(exc.value)
    assert "osint.targets.nmap[0]" not in str(exc.value)


@pytest.mark.parametrize("name", ["config", "tiny", "paper"])
def test_shipped_configs_pass_the_nmap_checks(name):
    config = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    validate_config(config, SCHEMA)
    assert nmap_config_problems(config) == []


def test_snakemake_dry_run_stops_on_a_bad_option_list(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(tiny_with_nmap(options=["-sV", "-A"], authorized_targets=["0.0.0.0/0"])))
    proc = run_snakemake(tmp_path, "-n", configfile=cfg, check=False, timeout=300)
    assert proc.returncode != 0
    assert "osint.nmap.options[1]: '-A' enables NSE scripts and is never allowed" in proc.stdout, proc.stdout[-3000:]
    assert "osint.nmap.authorized_targets[0]: '0.0.0.0/0' covers every address" in proc.stdout
    assert "Traceback" not in proc.stdout


# ---------------------------------------------------------------- nmap XML numbers
@pytest.mark.parametrize("portid, accuracy, field", [
    ("abc", "96", "portid='abc'"), ("", "96", "portid=''"), ("-1", "96", "portid='-1'"),
    ("70000", "96", "portid='70000'"), ("1e3", "96", "portid='1e3'"), ("\u0663", "96", "portid='\u0663'"),
    ("9" * 5000, "96", "portid='999"), ("22", "high", "accuracy='high'"), ("22", "101", "accuracy='101'"),
])
def test_bad_numbers_in_nmap_xml_name_the_source_and_field(tmp_path, portid, accuracy, field):
    xml = XML.format(portid=portid, accuracy=accuracy)
    with pytest.raises(NmapXMLError) as exc:
        parse_nmap_xml(xml, source="scan.xml")
    assert str(exc.value).startswith("scan.xml, <host> 1, ") and field in str(exc.value)
    binary, _ = fake_nmap(tmp_path, xml)
    with pytest.raises(NmapXMLError, match=f"^nmap output for {LOOPBACK}, <host> 1, <(port|osmatch)> 1: field"):
        collect_nmap(LOOPBACK, [], [], [LOOPBACK], binary=binary)


def test_good_numbers_still_parse():
    parsed = parse_nmap_xml(XML.format(portid=" 443 ", accuracy="100"))
    host = parsed["hosts"][0]
    assert host["ports"][0]["port"] == 443 and host["os"][0]["accuracy"] == 100


# ---------------------------------------------------------------- a real scan still works
@pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is not installed (apt-get install nmap)")
def test_real_nmap_scan_of_a_loopback_listener_by_hostname(ssh_listener):
    rec = collect_nmap("localhost", ["-sV", "-Pn", f"-p{ssh_listener}"], ["-sV", "-Pn", "-p"],
                       ["localhost", "127.0.0.1"], timeout_s=120)
    assert rec["target"] == "localhost"
    assert rec["parsed"]["args"].endswith(f"-- {LOOPBACK}")
    port = rec["parsed"]["hosts"][0]["ports"][0]
    assert (port["port"], port["state"], port["service"], port["product"]) == (ssh_listener, "open", "ssh",
                                                                                "OpenSSH")
