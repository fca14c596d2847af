"""LLMs as NER systems (tinysec.ner.direct): JSON entity lists parsed, mapped to spans of the
input as the chain maps them, hallucinated strings and invalid answers dropped and counted, no
gold label in any prompt; scored by the NER tables; with a loopback OpenAI-compatible server and a
tiny random-weight LLM; the plan's direct rows."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from conftest import REPO, TINY
from openai_server import OpenAIServer

from tinysec import plan
from tinysec.config import validate_config
from tinysec.io import InputError, read_json, read_jsonl, write_jsonl
from tinysec.ner.chain import chain_llm
from tinysec.ner.direct import PROMPT_FILE, build_instruction, load_prompt, parse_entities, predict_direct
from tinysec.ner.tables import Method, caption, counts_table, prf_table

TYPES = ["ORG", "DOMAIN", "IP", "SOFTWARE", "SERVICE", "VERSION"]
SCAN = ("Nmap scan report for example.com (192.0.2.10)\nHost is up (0.21s latency).\n"
        "PORT STATE SERVICE VERSION\n22/tcp open ssh OpenSSH 8.4p1\n80/tcp open http nginx 1.18.0\n")
DIG = "example.org. 300 IN A 198.51.100.7\n"
WHOIS = "Domain Name: shop.test\nRegistrar: Gandi SAS\n"
# SCAN: three real entities, one hallucinated address, one entity of a type outside the label set
ANSWERS = {
    SCAN: json.dumps([{"type": "IP", "text": "192.0.2.10"}, {"type": "domain", "text": "example.com"},
                      {"type": "SOFTWARE", "text": "OpenSSH"}, {"type": "IP", "text": "10.66.66.66"},
                      {"type": "PERSON", "text": "Alice"}]),
    DIG: "Sure, the entities are below, I hope this helps.",            # no JSON: invalid
    WHOIS: 'Here:\n```json\n{"DOMAIN": ["shop.test"], "ORG": ["Gandi SAS"]}\n```',
}


def _span(text, sub, typ):
    a = text.index(sub)
    return {"start": a, "end": a + len(sub), "type": typ, "text": sub}


def _rows(gold_scan=None):
    return [
        {"id": "t-scan", "source": "nmap", "text": SCAN, "rendering": "raw",
         "spans": gold_scan or [_span(SCAN, "192.0.2.10", "IP"), _span(SCAN, "example.com", "DOMAIN"),
                                _span(SCAN, "nginx", "SOFTWARE")]},
        {"id": "t-dig", "source": "dns", "text": DIG, "rendering": "raw", "spans": [_span(DIG, "198.51.100.7", "IP")]},
        {"id": "t-whois", "source": "whois", "text": WHOIS, "rendering": "raw",
         "spans": [_span(WHOIS, "shop.test", "DOMAIN"), _span(WHOIS, "Gandi SAS", "ORG")]},
    ]


def _respond(body) -> str:
    """The scripted answer of the test input the request carries."""
    return next(a for t, a in ANSWERS.items() if t.strip() in body["messages"][-1]["content"])


def _entry(srv, key_env="TINYSEC_DIRECT_KEY"):
    return {"source": "api:loopback", "api": {"base_url": srv.base_url, "model": "m", "key_env": key_env,
                                              "concurrency": 1, "timeout": 5, "max_retries": 0}}


def _prompts(srv) -> list[str]:
    return [m["content"] for body in srv.requests for m in body["messages"]]


def test_parse_entities_shapes_invalid_and_unknown_types():
    ents, unknown = parse_entities('[{"type": "ip", "text": " 10.0.0.1 "}, {"label": "ORG", "entity": "ACME"},'
                                   ' ["DOMAIN", "a.test"], {"type": "CITY", "text": "Paris"}, {"type": "IP", "text": ""}]',
                                   TYPES)
    assert ents == [{"type": "IP", "text": "10.0.0.1"}, {"type": "ORG", "text": "ACME"},
                    {"type": "DOMAIN", "text": "a.test"}] and unknown == [{"type": "CITY", "text": "Paris"}]
    assert parse_entities('noise {"entities": [{"type": "IP", "text": "1.2.3.4"}]} tail', TYPES)[0] == \
        [{"type": "IP", "text": "1.2.3.4"}]
    assert parse_entities("[]", TYPES) == ([], [])
    # a list cut off by the token limit: its complete entity objects; never {"type", "text"} as two types
    cut = 'Output:\n[{"type": "IP", "text": "10.0.0.1"},\n{"type": "ORG", "text": "ACME"},\n{"type": "DOM'
    assert parse_entities(cut, TYPES) == ([{"type": "IP", "text": "10.0.0.1"}, {"type": "ORG", "text": "ACME"}], [])
    assert parse_entities('{"type": "SOFTWARE", "text": "nginx"}', TYPES) == ([{"type": "SOFTWARE", "text": "nginx"}], [])
    for bad in ("", "no entities here", "[1, 2, 3]", '{"IP": [{"x": 1}]}', '[{"type": "IP", "text": "1.2.3.4"'):
        assert parse_entities(bad, TYPES) == (None, []), bad


def test_prompt_file_names_every_type_and_a_broken_one_is_refused(tmp_path):
    instruction = build_instruction(load_prompt(), TYPES)
    assert "{types}" not in instruction and "ORG, DOMAIN, IP, SOFTWARE, SERVICE, VERSION" in instruction
    (tmp_path / "p.txt").write_text("List the entities.", encoding="utf-8")
    with pytest.raises(InputError, match=r"p\.txt.*\{types\}"):
        load_prompt(tmp_path / "p.txt")
    assert PROMPT_FILE.is_file()


def test_api_direct_rows_map_spans_drop_hallucinations_count_invalid(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSEC_DIRECT_KEY", "sk-direct-test")
    write_jsonl(tmp_path / "test.jsonl", _rows())
    out, st = tmp_path / "pred.jsonl", tmp_path / "stats.json"
    with OpenAIServer(responder=_respond, key="sk-direct-test") as srv:
        llm = chain_llm(_entry(srv), "loopback", None, tmp_path / "cache", 64, 0)
        stats = predict_direct(llm, TYPES, str(tmp_path / "test.jsonl"), str(out), str(st))
        assert srv.calls == 3 and not any("sk-direct-test" in p for p in _prompts(srv))
        # a rerun answers from the content-hash cache
        again = chain_llm(_entry(srv), "loopback", None, tmp_path / "cache", 64, 0)
        predict_direct(again, TYPES, str(tmp_path / "test.jsonl"), str(tmp_path / "p2.jsonl"), str(tmp_path / "s2.json"))
        assert srv.calls == 3 and (again.hits, again.misses) == (3, 0)
    assert read_json(st) == stats and stats == {
        "kind": "direct", "inputs": 3, "inputs_total": 3, "invalid_answers": 1, "entities": 5, "hallucinated": 1,
        "unknown_type": 1, "saw_gold_labels": False, "llm_calls": 3, "cache_hits": 0}
    pred = {r["id"]: r for r in read_jsonl(out)}
    scan = pred["t-scan"]
    assert [(SCAN[e["start"]:e["end"]], e["type"]) for e in scan["pred"]] == [
        ("example.com", "DOMAIN"), ("192.0.2.10", "IP"), ("OpenSSH", "SOFTWARE")]
    assert scan["hallucinated"] == [{"type": "IP", "text": "10.66.66.66"}]
    assert scan["unknown_type"] == [{"type": "PERSON", "text": "Alice"}] and not scan["invalid"]
    assert pred["t-dig"]["invalid"] and pred["t-dig"]["pred"] == [] and pred["t-dig"]["hallucinated"] == []
    assert [e["text"] for e in pred["t-whois"]["pred"]] == ["shop.test", "Gandi SAS"]
    assert read_jsonl(tmp_path / "p2.jsonl") == read_jsonl(out)
    # the NER tables score the direct row with the strict span metric: tp 4 (2 scan, 0 dig, 2 whois)
    meth = Method(encoder="", variant="direct", predictions=str(out), method="loopback", direct=True,
                  method_label="Loopback (direct)", llm="Loopback")
    row = prf_table([meth], 0.85).iloc[0]
    assert (row["method"], row["tp"], row["fp"], row["fn"]) == ("Loopback (direct)", 4, 1, 2)
    assert (row["invalid_answers"], row["hallucinated"], row["unknown_type"], row["inputs"]) == (1, 1, 1, 3)
    assert row["ece_raw"] == "" and row["temperature"] == ""


def test_prompts_never_depend_on_gold_labels(tmp_path, monkeypatch):
    """Two test files with the same texts and different gold labels send identical prompts."""
    monkeypatch.setenv("TINYSEC_DIRECT_KEY", "k")
    sent = []
    other = [_span(SCAN, "OpenSSH 8.4p1", "SOFTWARE"), _span(SCAN, "ssh", "SERVICE")]
    for k, rows in enumerate((_rows(), _rows(other))):
        write_jsonl(tmp_path / f"t{k}.jsonl", rows)
        with OpenAIServer(responder=_respond) as srv:
            llm = chain_llm(_entry(srv), "loopback", None, tmp_path / f"cache{k}", 64, 0)
            predict_direct(llm, TYPES, str(tmp_path / f"t{k}.jsonl"), str(tmp_path / f"p{k}.jsonl"),
                           str(tmp_path / f"s{k}.json"))
            sent.append(_prompts(srv))
    assert sent[0] == sent[1] and len(sent[0]) == 3
    gold = [f"{s['type']}: {s['text']}" for r in (_rows(), _rows(other)) for s in r[0]["spans"]]
    assert not any(w in p for p in sent[0] for w in [*gold, '"start"', "spans", "B-IP"])


def test_counts_delta_of_a_direct_row_is_against_the_baseline_on_its_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSEC_DIRECT_KEY", "k")
    rows = _rows()
    write_jsonl(tmp_path / "test.jsonl", rows)
    with OpenAIServer(responder=_respond) as srv:
        llm = chain_llm(_entry(srv), "loopback", None, tmp_path / "cache", 64, 0)
        predict_direct(llm, TYPES, str(tmp_path / "test.jsonl"), str(tmp_path / "direct.jsonl"),
                       str(tmp_path / "s.json"), max_rows=2, seed=0)
    direct_ids = {r["id"] for r in read_jsonl(tmp_path / "direct.jsonl")}
    assert len(direct_ids) == 2
    # a baseline that finds every gold entity of every input
    base = [{"testset": "clean", "family": "clean", "id": r["id"], "orig_id": r["id"], "source": r["source"],
             "text": r["text"], "gold": [{k: s[k] for k in ("start", "end", "type")} for s in r["spans"]],
             "pred": [{k: s[k] for k in ("start", "end", "type")} for s in r["spans"]], "rejected": []} for r in rows]
    write_jsonl(tmp_path / "base.jsonl", base)
    methods = [Method("tiny-bert", "baseline", str(tmp_path / "base.jsonl"), method="baseline"),
               Method("", "direct", str(tmp_path / "direct.jsonl"), method="loopback", direct=True,
                      method_label="Loopback (direct)", llm="Loopback")]
    df = counts_table(methods).set_index("method")
    for src, label in (("nmap", "Nmap"), ("dns", "DNS (dig)"), ("whois", "WHOIS")):
        sub = [r for r in rows if r["source"] == src and r["id"] in direct_ids]
        direct_tp = int(df.loc["Loopback (direct)", label])
        assert df.loc["Loopback (direct)", f"{label} delta"] == f"{direct_tp - sum(len(r['spans']) for r in sub):+d}"
    context = {"run_name": "t", "train": {"epochs": 1, "batch_size": 1, "max_length": 8, "lr": 1e-5, "head_lr": 1e-3,
                                          "warmup_ratio": 0.1},
               "robust": {"alpha": .5, "beta": .5, "consistency": 1, "grad_mask_quantile": .99,
                          "attention_dropout": .1, "hidden_dropout": .1},
               "families": [], "normalize": True, "threshold": .85, "low_confidence": "drop", "ablations": [],
               "chain": {}, "direct": {"test_rows": 2, "max_new_tokens": 64}}
    text = caption("counts", methods, context)
    assert "Loopback (direct): 2 of 3 inputs" in text and "ner.direct.test_rows = 2" in text


def test_random_local_llm_direct_rows(tmp_path):
    """A tiny random-weight LLM: whatever it writes, an answer without a JSON entity list is counted
    invalid, every kept entity is a span of its input, and kept + hallucinated come from the answer."""
    from tinysec.models.tiny import build_random_model

    llm_dir = build_random_model("llama", tmp_path / "llm", hidden=32, layers=1, heads=2, vocab=300)
    write_jsonl(tmp_path / "test.jsonl", _rows())
    llm = chain_llm({"source": "random:llama"}, "tiny-llama", str(llm_dir), tmp_path / "cache", 16, 0)
    stats = predict_direct(llm, TYPES, str(tmp_path / "test.jsonl"), str(tmp_path / "p.jsonl"), str(tmp_path / "s.json"))
    preds = read_jsonl(tmp_path / "p.jsonl")
    assert stats["inputs"] == 3 and stats["llm_calls"] == 3 and stats["cache_hits"] == 0
    assert stats["invalid_answers"] == sum(parse_entities(r["answer"], TYPES)[0] is None for r in preds)
    for r in preds:
        parsed = parse_entities(r["answer"], TYPES)[0] or []
        assert r["invalid"] == (parse_entities(r["answer"], TYPES)[0] is None)
        assert {e["text"] for e in r["pred"]} | {h["text"] for h in r["hallucinated"]} <= {p["text"] for p in parsed} | \
            {r["text"][e["start"]:e["end"]] for e in r["pred"]}
        assert all(r["text"][e["start"]:e["end"]] == e["text"] for e in r["pred"])
    again = chain_llm({"source": "random:llama"}, "tiny-llama", str(llm_dir), tmp_path / "cache", 16, 0)
    predict_direct(again, TYPES, str(tmp_path / "test.jsonl"), str(tmp_path / "p2.jsonl"), str(tmp_path / "s2.json"))
    assert again.misses == 0 and read_jsonl(tmp_path / "p2.jsonl") == preds


def _ner(mutate=None):
    raw = yaml.safe_load(TINY.read_text())
    if mutate:
        mutate(raw)
    cfg = validate_config(copy.deepcopy(raw), REPO / "config" / "schema" / "config.schema.yaml")
    models = plan.Models(cfg)
    return plan.Ner(cfg, models, plan.NerData(cfg, models))


def test_plan_direct_rows(monkeypatch):
    monkeypatch.delenv("TINYSEC_TINY_API_KEY", raising=False)
    rows = _ner().direct_rows()
    assert [(r["method"], r["method_label"], r["predictions"]) for r in rows] == [
        ("tiny-llama", "TinyLlama-random (direct)", "results/ner/pred/direct/tiny-llama.jsonl")]
    assert Method(**rows[0]).label == "TinyLlama-random (direct)"
    assert _ner().direct_inputs("tiny-llama") == {"test": "results/ner/data/test.raw.jsonl",
                                                  "llm": "resources/models/tiny-llama"}
    monkeypatch.setenv("TINYSEC_TINY_API_KEY", "k")
    assert [r["method"] for r in _ner().direct_rows()] == ["tiny-llama", "tiny-api"]
    assert "llm" not in _ner().direct_inputs("tiny-api")
    assert _ner(lambda c: c["ner"].setdefault("direct", {}).update(enabled=False)).direct_rows() == []


# ---------------------------------------------------------------- ner_example (Table 3)
REAL = ("Nmap scan report for 127.0.0.1\nHost is up (0.00010s latency).\nPORT     STATE SERVICE VERSION\n"
        "22/tcp   open  ssh     OpenSSH 8.9p1 Ubuntu 3ubuntu0.6 (Ubuntu Linux; protocol 2.0)\n"
        "80/tcp   open  http    nginx 1.24.0\n")
SEGMENTS = "Host 127.0.0.1 runs OpenSSH on port 22 and nginx on port 80; host 10.66.66.66 answers too."


@pytest.fixture(scope="module")
def ip_tagger(tmp_path_factory):
    """A tiny random BERT + CRF whose head tags every word B-IP: regex validation keeps exactly the
    valid IPv4 addresses of the text it is shown."""
    from tiny_taggers import save_ip_tagger

    return str(save_ip_tagger(tmp_path_factory.mktemp("example"), types=tuple(TYPES)))


def _real_records(path):
    from tinysec.osint.record import make_record

    rec = make_record("nmap", "127.0.0.1", REAL, {"args": "nmap -sV -n -Pn 127.0.0.1", "scanner_version": "7.94",
                                                  "hosts": []}, tool_version="7.94", record_id_="real-scan-nmap-text",
                      gold_entities=[{"type": "IP", "text": "127.0.0.1"}, {"type": "SOFTWARE", "text": "nginx"},
                                     {"type": "VERSION", "text": "1.24.0"}])
    write_jsonl(path, [rec])


def _method_preds(path, found: int):
    """A predictions file with 2 gold entities of which the method finds ``found``."""
    gold = [{"start": 0, "end": 3, "type": "IP"}, {"start": 4, "end": 7, "type": "IP"}]
    write_jsonl(path, [{"testset": "clean", "family": "clean", "id": "x", "source": "nmap", "text": "a.b c.d",
                        "gold": gold, "pred": gold[:found], "rejected": []}])


def test_example_real_nmap_input_baseline_and_best_method_side_by_side(ip_tagger, tmp_path, monkeypatch):
    from tinysec.ner.example import (
        best_method,
        example_caption,
        example_markdown,
        load_example,
        side_by_side,
        tag_example,
    )

    monkeypatch.setenv("TINYSEC_DIRECT_KEY", "k")
    _real_records(tmp_path / "records.jsonl")
    example = load_example("real", tmp_path / "records.jsonl", TYPES)
    assert example["text"] == REAL and example["id"] == "real-scan-nmap-text"
    assert [REAL[g["start"]:g["end"]] for g in example["gold"]] == ["127.0.0.1", "nginx", "1.24.0"]
    for name, found in (("baseline", 0), ("templates", 1), ("loopback", 2)):
        _method_preds(tmp_path / f"{name}.jsonl", found)
    with OpenAIServer(responder=lambda b: "NONE" if "leaves out" in b["messages"][-1]["content"] else SEGMENTS) as srv:
        rows = [{"method": n, "label": f"{n} [tiny]", "predictions": str(tmp_path / f"{n}.jsonl"), "model": ip_tagger,
                 "normalize": n != "baseline", "llm": "Loopback" if n == "loopback" else "none"}
                for n in ("baseline", "templates", "loopback")]
        base, best = best_method(rows)
        assert (base["method"], base["f1"], best["method"], best["f1"]) == ("baseline", 0.0, "loopback", 1.0)
        post = {"threshold": 0.0, "low_confidence": "flag"}
        llm = chain_llm(_entry(srv), "loopback", None, tmp_path / "cache", 64, 0)
        sides = [(base["label"], tag_example(REAL, base, post)),
                 (best["label"], tag_example(REAL, best, post, llm=llm, rounds=1))]
    assert [e["text"] for e in sides[0][1]["entities"]] == ["127.0.0.1"] and sides[0][1]["hallucinated"] == []
    assert [e["text"] for e in sides[1][1]["entities"]] == ["127.0.0.1"]
    assert sides[1][1]["hallucinated"] == [{"type": "IP", "text": "10.66.66.66"}]
    df, table = side_by_side(example, sides, TYPES)
    assert table[0] == "| type | gold | baseline [tiny] | loopback [tiny] |"
    ip_row = next(r for r in table if r.startswith("| IP |"))
    assert ip_row.startswith("| IP | `127.0.0.1` | `127.0.0.1` (") and ip_row.count("✓") == 2
    assert "| SOFTWARE | `nginx` | - | - |" in table and "| correct / found / gold | 3 | 1 / 1 / 3 | 1 / 1 / 3 |" in table
    assert table[-1] == "| dropped (not in the input) | - | - | IP: `10.66.66.66` |"
    assert list(df["column"]) == ["gold"] * 3 + ["baseline [tiny]", "loopback [tiny]"]
    assert list(df["correct"][3:]) == [True, True] and list(df["text"][:3]) == ["127.0.0.1", "nginx", "1.24.0"]
    md = example_markdown(example, table, example_caption(example, base, best, {"run_name": "t", "threshold": 0.85}))
    assert "Raw input (Nmap: real `nmap -sV` text output" in md and "```\n" + REAL.rstrip("\n") + "\n```" in md
    assert "Right: loopback [tiny], the best other method by that F1 (1.000; identification LLM: Loopback)" in md


def test_example_reads_a_collected_nmap_record(tmp_path):
    from tinysec.ner.example import load_example

    _real_records(tmp_path / "records.jsonl")
    (tmp_path / "target.json").write_text(json.dumps(read_jsonl(tmp_path / "records.jsonl")[0]), encoding="utf-8")
    ex = load_example("collected", tmp_path / "target.json", TYPES)
    assert ex["kind"] == "collected" and ex["text"] == REAL and len(ex["gold"]) == 3


def test_example_falls_back_to_the_raw_test_input_with_most_gold(tmp_path):
    from tinysec.ner.example import best_method, load_example
    from tinysec.ner.labels import spans_to_bio
    from tinysec.ner.tokenize import words

    write_jsonl(tmp_path / "test.jsonl", [{**r, "tokens": words(r["text"]), "tags": spans_to_bio(r["text"], r["spans"])}
                                          for r in _rows()])
    ex = load_example("test", tmp_path / "test.jsonl", TYPES, source="nmap")
    assert ex["id"] == "t-scan" and ex["kind"] == "test" and len(ex["gold"]) == 3
    assert load_example("test", tmp_path / "test.jsonl", TYPES, source="whois")["id"] == "t-whois"
    _method_preds(tmp_path / "b.jsonl", 1)
    with pytest.raises(ValueError, match="needs the baseline and one other method"):
        best_method([{"method": "baseline", "predictions": str(tmp_path / "b.jsonl")}])


def test_plan_example_input_and_methods(monkeypatch):
    monkeypatch.delenv("TINYSEC_TINY_API_KEY", raising=False)
    ner = _ner()
    kind = "real" if ner.real_scan_enabled() else "test"
    assert ner.example_input()["kind"] == kind
    assert _ner(lambda c: c["ner"]["real_scan"].update(enabled=False)).example_input() == {
        "kind": "test", "path": "results/ner/data/test.raw.jsonl"}
    rows = ner.example_methods()
    assert [(r["method"], r["normalize"], r["llm_dir"]) for r in rows] == [
        ("baseline", False, None), ("templates", True, None), ("tiny-llama", True, "resources/models/tiny-llama")]
    inputs = ner.example_inputs()
    assert inputs["llms"] == ["resources/models/tiny-llama"] and len(inputs["models"]) == 3
