"""Instruction data: Alpaca and HackMentor readers, bad rows, cleaning, ATT&CK builder, downloads."""

from __future__ import annotations

import hashlib
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tinysec.data.attack import attack_objects, build_attack_dataset, clean_description, load_attack
from tinysec.data.build import build_instruct_data
from tinysec.data.clean import dedupe, rouge_filter
from tinysec.data.readers import read_instructions
from tinysec.download import ChecksumError, fetch, fetch_entry
from tinysec.io import InputError

ALPACA = [
    {"instruction": "Explain SQL injection.", "input": "", "output": "Untrusted input changes a query."},
    {"instruction": "Classify the port.", "input": "22/tcp open", "output": "SSH."},
]
SEEDS = [
    {"instruction": "Define salting.", "instances": [{"input": "", "output": "Adding random data to a password."}]},
    {"instruction": "Compare two ciphers.", "instances": [{"input": "AES", "output": "Symmetric."},
                                                          {"input": "RSA", "output": "Asymmetric."}]},
]


def _write_json(path, rows):
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_alpaca_json_and_jsonl_are_read_and_named(tmp_path, caplog):
    caplog.set_level("INFO")
    items, rep = read_instructions(_write_json(tmp_path / "a.json", ALPACA))
    assert rep.format == "alpaca" and rep.container == "json" and rep.items == 2
    assert items[1] == {"id": "a-2", "instruction": "Classify the port.", "input": "22/tcp open", "output": "SSH."}
    items2, rep2 = read_instructions(_write_jsonl(tmp_path / "b.jsonl", ALPACA))
    assert rep2.format == "alpaca" and rep2.container == "jsonl"
    assert [i["output"] for i in items2] == [i["output"] for i in items]
    assert "a.json: alpaca format (JSON)" in caplog.text and "b.jsonl: alpaca format (JSONL)" in caplog.text


def test_hackmentor_format_gives_one_item_per_instance(tmp_path):
    items, rep = read_instructions(_write_json(tmp_path / "seeds.json", SEEDS))
    assert rep.format == "hackmentor" and rep.rows == 2 and rep.items == 3
    assert [i["id"] for i in items] == ["seeds-1", "seeds-2.1", "seeds-2.2"]
    assert items[2]["input"] == "RSA" and items[2]["instruction"] == "Compare two ciphers."


def test_real_hackmentor_seed_file_has_145_items(hackmentor_seed_file):
    items, rep = read_instructions(hackmentor_seed_file)
    assert rep.format == "hackmentor"
    assert rep.rows == 144 and len(items) == 145 and rep.skipped == []
    assert all(i["instruction"].strip() and i["output"].strip() for i in items)


@pytest.mark.parametrize("row, field, message", [
    ({"instruction": "x", "output": "y"}, "input", "missing field"),
    ({"instruction": "x", "input": "", "output": "  "}, "output", "empty value"),
    ({"input": "", "output": "y"}, "instruction", "missing field"),
])
def test_bad_alpaca_row_names_file_row_and_field(tmp_path, row, field, message):
    path = _write_jsonl(tmp_path / "bad.jsonl", [ALPACA[0], ALPACA[1], row])
    with pytest.raises(InputError) as err:
        read_instructions(path)
    assert err.value.row == 3 and err.value.field == field
    assert str(path) in str(err.value) and "row 3" in str(err.value) and message in str(err.value)


def test_bad_hackmentor_instance_names_the_instance(tmp_path):
    rows = [SEEDS[0], {"instruction": "q", "instances": [{"input": "", "output": "ok"}, {"input": ""}]}]
    with pytest.raises(InputError) as err:
        read_instructions(_write_json(tmp_path / "s.json", rows))
    assert err.value.row == 2 and err.value.field == "instances[1].output"


def test_invalid_utf8_is_reported_per_row_and_skipped_when_not_strict(tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = json.dumps(ALPACA[0]).encode()
    bad = b'{"instruction": "caf\xe9 attack", "input": "", "output": "x"}'
    path.write_bytes(good + b"\n" + bad + b"\n" + json.dumps(ALPACA[1]).encode() + b"\n")
    with pytest.raises(InputError) as err:
        read_instructions(path)
    assert err.value.row == 2 and err.value.field == "instruction" and "UTF-8" in str(err.value)
    items, rep = read_instructions(path, strict=False)
    assert [i["id"] for i in items] == ["mixed-1", "mixed-3"]
    assert rep.as_dict()["skipped"] == 1 and rep.skipped[0]["field"] == "instruction"


def test_dedupe_and_rouge_filter_count_removals():
    train = [{"instruction": "Explain how phishing emails steal credentials", "input": "", "output": "a"},
             {"instruction": "Explain how phishing emails steal credentials", "input": "", "output": "a"},
             {"instruction": "List the ports used by SMB", "input": "", "output": "b"},
             {"instruction": "Explain how phishing emails steal passwords", "input": "", "output": "c"}]
    kept, dups = dedupe(train)
    assert dups == 1 and len(kept) == 3
    filtered, removed = rouge_filter(kept, ["Explain how phishing emails steal credentials from users"], 0.6)
    assert removed == 2 and [t["output"] for t in filtered] == ["b"]
    # a threshold above every score keeps everything
    assert rouge_filter(kept, ["Explain how phishing emails steal credentials from users"], 0.99)[1] == 0


def test_clean_description_strips_links_citations_and_truncation():
    text = ("[Empire](https://attack.mitre.org/software/S0363) is a framework.(Citation: Vendor 2020) "
            "It runs PowerShell agents. It also does mor...")
    assert clean_description(text) == "Empire is a framework. It runs PowerShell agents."
    assert clean_description("Only a fragment without an end...") is None


def test_attack_dataset_is_disjoint_by_object_and_varied():
    kb = load_attack()
    objects = attack_objects(kb)
    kinds = {o.kind for o in objects}
    assert {"technique", "subtechnique", "tactic", "mitigation", "software", "group", "campaign"} <= kinds
    assert any("technique.detection" in o.facts for o in objects)
    train, evl = build_attack_dataset(300, 145, seed=3, kb=kb)
    assert len(evl) == 145 and len(train) == 300
    assert not {e["object"] for e in evl} & {t["object"] for t in train}
    assert len({e["kind"].split(".")[0] for e in evl}) >= 6
    for item in train + evl:
        assert "(Citation:" not in item["output"] and "](http" not in item["output"] and not item["output"].endswith("...")
    # several phrasings per fact kind actually used
    phr = {t["instruction"].split(" ")[0] for t in train if t["kind"] == "software.describe"}
    assert len(phr) >= 2
    assert build_attack_dataset(300, 145, seed=3, kb=kb) == (train, evl)  # seeded


def test_build_from_files_counts_skips_duplicates_and_rouge(tmp_path):
    train = ALPACA + [ALPACA[0], {"instruction": "Define salting please.", "input": "", "output": "dup-ish"},
                      {"instruction": "x", "input": "", "output": ""}]
    t = _write_jsonl(tmp_path / "train.jsonl", train)
    e = _write_json(tmp_path / "seeds.json", SEEDS)
    cfg = {"source": "files", "strict": False, "format": "auto", "train_size": 0, "eval_size": 0, "rouge_threshold": 0.6}
    tr, ev, q = build_instruct_data(cfg, [str(t)], [str(e)], ["hm-train"], ["hm-seed"])
    assert len(ev) == 3 and q["eval_items"] == 3
    assert q["skipped_rows"] == 1 and q["duplicates_removed"]["train"] == 1 and q["rouge_l_removed"] == 1
    assert [r["instruction"] for r in tr] == ["Explain SQL injection.", "Classify the port."]
    assert set(tr[0]) == {"id", "instruction", "input", "output", "kind"}
    with pytest.raises(InputError):
        build_instruct_data({**cfg, "strict": True}, [str(t)], [str(e)], ["hm-train"], ["hm-seed"])


@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_download_checks_sha256(http_dir, tmp_path):
    root, base = http_dir
    _write_json(root / "seeds.json", SEEDS)
    digest = hashlib.sha256((root / "seeds.json").read_bytes()).hexdigest()
    out = fetch(f"{base}/seeds.json", tmp_path / "dl" / "seeds.json", digest)
    assert read_instructions(out)[1].items == 3
    with pytest.raises(ChecksumError):
        fetch(f"{base}/seeds.json", tmp_path / "dl" / "bad.json", "0" * 64)
    assert not (tmp_path / "dl" / "bad.json").exists()
    # offline: a path entry is copied in place, a missing one says what to do
    fetch_entry({"name": "s", "path": str(root / "seeds.json")}, tmp_path / "dl" / "copy.json")
    assert (tmp_path / "dl" / "copy.json").read_bytes() == (root / "seeds.json").read_bytes()
    with pytest.raises(FileNotFoundError, match="url and sha256"):
        fetch_entry({"name": "s", "path": str(tmp_path / "missing.json")}, tmp_path / "dl" / "x.json")
