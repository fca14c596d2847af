"""`tinysec tag` on sample files of each raw format, stdin, and malformed input.

The tagger here is a tiny random BERT whose head is set to tag *every* word ``B-IP`` with
near-certain CRF marginals, so the regex validation alone decides what survives: exactly the
valid IPv4/IPv6 addresses of the input. That makes the expected output exact for each format.
"""

from __future__ import annotations

import io
import json
import re
import sys

import pytest
from tiny_taggers import save_ip_tagger

from tinysec.cli import main

SAMPLES = {
    "scan.xml": ("nmap_xml", """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -sV 192.0.2.10" version="7.94">
<host><status state="up"/><address addr="192.0.2.10" addrtype="ipv4"/>
<hostnames><hostname name="example.com" type="user"/></hostnames>
<ports><port protocol="tcp" portid="22"><state state="open"/>
<service name="ssh" product="OpenSSH" version="8.4p1" extrainfo="Ubuntu 5"/></port></ports>
</host></nmaprun>
"""),
    "scan.txt": ("nmap_text", """Nmap scan report for example.com (192.0.2.10)
Host is up (0.21s latency).
PORT    STATE  SERVICE VERSION
22/tcp  open   ssh     OpenSSH 8.4p1 Ubuntu 5
80/tcp  open   http    nginx 1.18.0
"""),
    "dig.txt": ("dig", """; <<>> DiG 9.18.1 <<>> example.com A
;; QUESTION SECTION:
;example.com.			IN	A

;; ANSWER SECTION:
example.com.		300	IN	A	93.184.216.34
example.com.		300	IN	AAAA	2606:2800:220:1:248:1893:25c8:1946
"""),
    "whois.txt": ("whois", """Domain Name: EXAMPLE.COM
Registrar: Example Registrar, Inc.
Creation Date: 1995-08-14T04:00:00Z
NetRange: 93.184.216.0 - 93.184.216.255
Name Server: A.IANA-SERVERS.NET
"""),
    "host.json": ("shodan_json", json.dumps({
        "ip_str": "93.184.216.34", "port": 443, "org": "Example Corp", "hostnames": ["example.com"],
        "data": "HTTP/1.1 200 OK\r\nServer: nginx/1.18.0\r\nX-Origin: 10.9.8.7", "version": "1.18.0"}, indent=1)),
    "note.txt": ("text", "Traffic from 10.1.2.3 to example.org was blocked; retry seen at 10.0.\u200b0.7 later.\n"),
}
_IP = re.compile(r"(?<![\w.:])(?:\d{1,3}(?:\.\u200b?\d{1,3}){3}|[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){7})(?![\w.:])")


@pytest.fixture(scope="module")
def ip_tagger(tmp_path_factory):
    return save_ip_tagger(tmp_path_factory.mktemp("tagcli"))


@pytest.fixture()
def samples(tmp_path):
    for name, (_, text) in SAMPLES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def _expected(text):
    return [(m.start(), m.end()) for m in _IP.finditer(text)]


def test_tag_every_format_json(ip_tagger, samples, capsys):
    paths = [str(samples / name) for name in SAMPLES]
    assert main(["tag", *paths, "--model", str(ip_tagger), "--format", "json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert [d["format"] for d in docs] == [fmt for fmt, _ in SAMPLES.values()]
    for doc, (name, (_, raw)) in zip(docs, SAMPLES.items()):
        got = [(e["start"], e["end"]) for e in doc["entities"]]
        assert got == _expected(raw), name
        for e in doc["entities"]:
            assert e["type"] == "IP" and e["text"] == raw[e["start"]:e["end"]] and e["confidence"] > 0.99
    # the obfuscated address is found and reported at its original span, zero-width space included
    assert "10.0.\u200b0.7" in [e["text"] for e in docs[-1]["entities"]]
    assert len(docs[0]["entities"]) == 2  # XML: in the args attribute and the address element


def test_tag_stdin_table(ip_tagger, monkeypatch, capsys):
    raw = SAMPLES["dig.txt"][1]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw.encode())))
    assert main(["tag", "--model", str(ip_tagger)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# <stdin> (dig): 2 entities")
    start = raw.index("93.184.216.34")
    assert re.search(rf"IP\s+{start}-{start + 13}\s+[01]\.\d{{3}}\s+93\.184\.216\.34", out)


def test_table_marks_flagged_and_repeat_confirmed_entities(capsys):
    from tinysec.ner.cli import print_docs

    ent = {"start": 0, "end": 8, "type": "IP", "text": "10.0.0.5"}
    doc = {"input": "scan.txt", "format": "nmap_text",
           "entities": [{**ent, "confidence": 0.6, "flagged": False, "confirmed": "repeat"},
                        {**ent, "start": 20, "end": 28, "confidence": 0.97, "flagged": False},
                        {**ent, "start": 40, "end": 48, "type": "DOMAIN", "confidence": 0.5, "flagged": True}]}
    print_docs([doc], as_json=False, as_list=False)
    rows = capsys.readouterr().out.splitlines()[3:]
    assert [r.split()[2:] for r in rows] == [["0.600", "(repeat)", "10.0.0.5"], ["0.970", "10.0.0.5"],
                                            ["0.500", "!", "10.0.0.5"]]


@pytest.mark.parametrize("name,fmt,text,message", [
    ("bad.xml", "nmap_xml", '<?xml version="1.0"?>\n<nmaprun>\n<host>\n</nmaprun>\n', r"bad.xml, row 4: malformed XML"),
    ("bad.json", "shodan_json", '{"ip_str": "1.2.3.4",\n "port": }', r"bad.json, row 2: malformed JSON"),
    ("other.xml", "nmap_xml", '<?xml version="1.0"?><report><a>1</a></report>', "not an Nmap report"),
    ("empty.txt", "auto", "   \n", "empty.txt: file is empty"),
])
def test_malformed_input_is_a_clear_error(ip_tagger, tmp_path, capsys, name, fmt, text, message):
    """Malformed structured input is an error when --format-in forces the format (auto falls back to text)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert main(["tag", str(path), "--model", str(ip_tagger), "--format-in", fmt]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_missing_model_is_a_clear_error(samples, tmp_path, capsys):
    assert main(["tag", str(samples / "note.txt"), "--model", str(tmp_path / "none")]) == 2
    assert "no trained tagger at" in capsys.readouterr().err
