"""`tinysec tag` defaults: the default run's robust model, calibrated confidences in JSON, line windows."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from tiny_taggers import save_ip_tagger

import tinysec.paths
from tinysec.cli import main
from tinysec.ner import cli as tag_cli
from tinysec.ner.calibration import CALIBRATION_FILE

SCAN = """Nmap scan report for 127.0.0.1
Host is up (0.000086s latency).

PORT      STATE SERVICE VERSION
22/tcp    open  ssh     OpenSSH 8.9p1 Ubuntu 3ubuntu0.6 (Ubuntu Linux; protocol 2.0)
"""


@pytest.fixture(scope="module")
def ip_tagger(tmp_path_factory):
    """Every word tagged B-IP with near-certain marginals (regex validation keeps only IPs), T = 4."""
    tagger = save_ip_tagger(tmp_path_factory.mktemp("tagdefault"), bias=8.0, max_length=512)
    (tagger / CALIBRATION_FILE).write_text(json.dumps({"temperature": 4.0}))
    return tagger


def test_default_model_is_the_default_runs_robust_tagger():
    cfg = yaml.safe_load((tinysec.paths.CONFIG / "config.yaml").read_text())
    assert tag_cli.DEFAULT_MODEL == f"results/ner/models/{cfg['ner']['encoder']}/robust"


def test_missing_default_model_names_the_snakemake_target(tmp_path, monkeypatch, capsys):
    (tmp_path / "scan.txt").write_text(SCAN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tinysec.paths, "REPO", tmp_path)
    assert main(["tag", "scan.txt"]) == 2
    err = capsys.readouterr().err
    assert f"no trained tagger at {tag_cli.DEFAULT_MODEL}" in err
    assert f"`snakemake --cores all {tag_cli.DEFAULT_MODEL}`" in err and str(tmp_path) in err


def test_default_model_is_found_in_the_repository(ip_tagger, tmp_path, monkeypatch, capsys):
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    shutil.copytree(ip_tagger, repo / tag_cli.DEFAULT_MODEL)
    elsewhere.mkdir()
    (elsewhere / "scan.txt").write_text(SCAN)
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(tinysec.paths, "REPO", repo)
    assert main(["tag", "scan.txt", "--format", "json", "--threshold", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["text"] for e in doc["entities"]] == ["127.0.0.1"]


def test_json_has_detected_format_temperature_and_calibrated_confidences(ip_tagger, tmp_path, capsys):
    (tmp_path / "scan.txt").write_text(SCAN)
    assert main(["tag", str(tmp_path / "scan.txt"), "--model", str(ip_tagger), "--format", "json",
                 "--threshold", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "nmap_text" and doc["format_source"] == "detected" and doc["temperature"] == 4.0
    (ent,) = doc["entities"]
    assert ent["text"] == "127.0.0.1" and ent["confidence_raw"] > 0.99
    assert 0 < ent["confidence"] < ent["confidence_raw"]  # T = 4 softens the marginals
    assert main(["tag", str(tmp_path / "scan.txt"), "--model", str(ip_tagger), "--format", "json",
                 "--format-in", "nmap_text", "--threshold", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["format_source"] == "forced"


def test_long_input_is_tagged_in_line_windows(ip_tagger, tmp_path, capsys):
    # 150 lines of 4 words: one 512-token pass would cut off the tail; 120-word windows cover it all
    lines = [f"host 10.0.{i // 200}.{i % 200 + 1} is up" for i in range(150)]
    (tmp_path / "hosts.txt").write_text("\n".join(lines) + "\n")
    assert main(["tag", str(tmp_path / "hosts.txt"), "--model", str(ip_tagger), "--format", "json",
                 "--threshold", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["text"] for e in doc["entities"]] == [line.split()[1] for line in lines]
