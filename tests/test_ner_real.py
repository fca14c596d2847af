"""Real-scan evaluation: loopback services, the real nmap -sV, evaluation-only records, rule ner_real."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest
from conftest import run_snakemake

from tinysec.io import InputError
from tinysec.ner.corpus import build_samples
from tinysec.osint.real_scan import (
    NGINX_VERSION,
    REAL_SCAN_PREFIX,
    REDIS_VERSION,
    SSH_BANNER,
    gold_for,
    loopback_services,
    real_scan,
)

NMAP = shutil.which("nmap")
needs_nmap = pytest.mark.skipif(NMAP is None, reason="nmap is not installed")


def _talk(port: int, send: bytes = b"", read: int = 4096) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if send:
            sock.sendall(send)
        chunks = b""
        while len(chunks) < read:
            data = sock.recv(read)
            if not data:
                break
            chunks += data
            if send == b"" or chunks.endswith(b"</html>\n") or chunks.endswith(b"\r\n\r\n\r\n") or b"-ERR" in chunks:
                break
        return chunks


def test_loopback_services_answer_like_the_real_servers():
    with loopback_services() as services:
        port = {s.name: s.port for s in services}
        assert _talk(port["ssh"]).decode() == SSH_BANNER + "\r\n"
        http = _talk(port["http"], b"GET / HTTP/1.0\r\n\r\n").decode()
        assert http.startswith("HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\n") and "Welcome to nginx!" in http
        assert _talk(port["http"], b"garbage\r\n\r\n").decode().startswith("HTTP/1.1 400 Bad Request\r\n")
        info = _talk(port["redis"], b"*1\r\n$4\r\ninfo\r\n").decode()
        assert info.startswith("$") and f"\r\n# Server\r\nredis_version:{REDIS_VERSION}\r\n" in info
        assert _talk(port["redis"], b"GET / HTTP/1.0\r\n").decode() == "-ERR wrong number of arguments for 'get' command\r\n"
    with pytest.raises(OSError):  # stopped on exit
        socket.create_connection(("127.0.0.1", port["ssh"]), timeout=2)


def test_gold_keeps_only_whole_word_occurrences_and_prefers_nmap_names():
    with loopback_services() as services:
        raw = ("Nmap scan report for 127.0.0.1\n22/tcp open ssh OpenSSH 8.9p1 Ubuntu 3ubuntu0.6 (protocol 2.0)\n"
               "6379/tcp open redis Redis key-value store\ncpe:/a:igor_sysoev:nginx:1.24.0\n")
        gold = {(g["type"], g["text"]) for g in gold_for(raw, services)}
    assert gold == {("IP", "127.0.0.1"), ("SERVICE", "ssh"), ("SOFTWARE", "OpenSSH"),
                    ("VERSION", "8.9p1 Ubuntu 3ubuntu0.6"), ("SERVICE", "redis"),
                    ("SOFTWARE", "Redis key-value store")}  # nginx/1.24.0 only inside a CPE: not whole words


@needs_nmap
def test_real_nmap_identifies_every_service_and_records_are_refused_for_training():
    records = real_scan()
    assert [r["id"] for r in records] == [f"{REAL_SCAN_PREFIX}nmap-text", f"{REAL_SCAN_PREFIX}nmap-xml"]
    text, xml = (r["raw"] for r in records)
    assert "Nmap scan report for 127.0.0.1" in text and "OpenSSH 8.9p1 Ubuntu 3ubuntu0.6" in text
    assert f"nginx {NGINX_VERSION}" in text and "Redis key-value store" in text
    assert 'product="OpenSSH" version="8.9p1 Ubuntu 3ubuntu0.6"' in xml and f'version="{NGINX_VERSION}"' in xml
    for rec in records:
        gold = {(g["type"], g["text"]) for g in rec["gold_entities"]}
        assert {("IP", "127.0.0.1"), ("SERVICE", "ssh"), ("SERVICE", "http"), ("SERVICE", "redis"),
                ("SOFTWARE", "OpenSSH"), ("SOFTWARE", "nginx"), ("SOFTWARE", "Redis key-value store"),
                ("VERSION", "8.9p1 Ubuntu 3ubuntu0.6"), ("VERSION", NGINX_VERSION)} <= gold
        assert rec["synthetic"] is False and rec["parsed"]["hosts"][0]["addresses"][0]["addr"] == "127.0.0.1"
        with pytest.raises(InputError, match="real-scan evaluation record"):
            build_samples([rec], ["IP", "SOFTWARE", "SERVICE", "VERSION"])


def _ner_real_rows(workdir: Path) -> list[dict]:
    with open(workdir / "results" / "tables" / "ner_real.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@needs_nmap
def test_rule_ner_real_builds_the_table_on_the_tiny_config(tmp_path):
    run_snakemake(tmp_path, "results/tables/ner_real.md")
    rows = _ner_real_rows(tmp_path)
    assert [r["output"] for r in rows] == ["nmap -sV text (-oN)", "nmap -sV XML (-oX)", "both outputs"] * 2
    assert "baseline" in rows[0]["method"] and "robust" in rows[3]["method"]
    for r in rows:
        assert int(r["gold"]) >= 9 and int(r["tp"]) + int(r["fn"]) == int(r["gold"])
        for key in ("precision_IP", "recall_SOFTWARE", "precision_ALL", "recall_ALL_with_flagged"):
            assert 0.0 <= float(r[key]) <= 1.0
    md = (tmp_path / "results" / "tables" / "ner_real.md").read_text()
    assert "evaluation only, never training" in md and "127.0.0.1" in md
    log = (tmp_path / "logs" / "ner_real_scan" / "ner_real_scan.log").read_text()
    assert "SOFTWARE OpenSSH" in log
    # the training corpus never saw the real-scan records
    train = (tmp_path / "results" / "ner" / "data" / "train.jsonl").read_text()
    assert REAL_SCAN_PREFIX not in train


def test_without_nmap_on_path_ner_real_is_not_scheduled(tmp_path):
    bare = tmp_path / "bin"  # every program of PATH (and the venv's) but nmap
    bare.mkdir()
    for folder in [str(Path(sys.executable).parent), *os.environ.get("PATH", "").split(os.pathsep)]:
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            if entry.name != "nmap" and not (bare / entry.name).exists():
                (bare / entry.name).symlink_to(entry.path)
    env = {"PATH": str(bare)}
    assert shutil.which("nmap", path=str(bare)) is None
    proc = run_snakemake(tmp_path, "-n", env=env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "rule ner_real" not in proc.stdout and "rule ner_real_scan" not in proc.stdout
    assert "rule ner_prf:" in proc.stdout  # the rest of the NER section still runs
    if NMAP:
        with_nmap = run_snakemake(tmp_path, "-n", check=False)
        assert with_nmap.returncode == 0 and "rule ner_real:" in with_nmap.stdout
