"""The tag-time chain of LLM methods (tinysec.ner.chain): omission check against the input,
mapping back, hallucinations dropped and counted, the LLM cache, no gold labels in any prompt,
with a loopback OpenAI-compatible server and a tiny random-weight LLM.

The tagger is a tiny random BERT whose head tags *every* word ``B-IP`` with near-certain
marginals, so regex validation alone decides what it keeps: exactly the valid IP addresses of the
text it is shown. That makes the entities of the LLM's segments, and so the hallucinations, exact.
"""

from __future__ import annotations

import json
import re

import pytest
from openai_server import OpenAIServer
from tiny_taggers import save_ip_tagger

from tinysec.cli import main
from tinysec.io import read_jsonl, write_jsonl
from tinysec.models.tiny import build_random_model
from tinysec.ner.chain import LLMCache, chain_llm, identify_and_extract, map_back, omissions, tag_with_chain
from tinysec.ner.methods import predict_method
from tinysec.ner.postprocess import PostprocessSettings, Tagger

SCAN = ("Nmap scan report for example.com (192.0.2.10)\nHost is up (0.21s latency).\n"
        "PORT STATE SERVICE VERSION\n22/tcp open ssh OpenSSH 8.4p1\n80/tcp open http nginx 1.18.0\n")
GOOD = "The host example.com at 192.0.2.10 runs OpenSSH 8.4p1 on port 22 and nginx 1.18.0 on port 80."
FABRICATED = GOOD + " A second host 10.66.66.66 answers too."
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])")


@pytest.fixture(scope="module")
def ip_tagger(tmp_path_factory):
    return save_ip_tagger(tmp_path_factory.mktemp("chain"))


def _tagger(folder):
    return Tagger(folder, PostprocessSettings(0.0, "flag"), normalize=True)


def _api_entry(srv, key_env="TINYSEC_CHAIN_KEY"):
    return {"source": "api:loopback", "api": {"base_url": srv.base_url, "model": "m", "key_env": key_env,
                                              "concurrency": 1, "timeout": 5, "max_retries": 0}}


def _is_reflection(body) -> bool:
    return "leaves out" in body["messages"][-1]["content"]


def _prompts(srv) -> list[str]:
    return [m["content"] for body in srv.requests for m in body["messages"]]


def test_map_back_keeps_input_spans_and_counts_hallucinations():
    ents = [{"type": "IP", "text": "192.0.2.10", "confidence": 0.9}, {"type": "DOMAIN", "text": "evil.test"},
            {"type": "IP", "text": "192.0.2.1"}]  # a prefix of an input address is not an occurrence
    kept, hall = map_back(SCAN, ents)
    assert kept == [{"start": SCAN.index("192.0.2.10"), "end": SCAN.index("192.0.2.10") + 10, "type": "IP",
                     "text": "192.0.2.10", "confidence": 0.9}]
    assert hall == [{"type": "DOMAIN", "text": "evil.test"}, {"type": "IP", "text": "192.0.2.1"}]
    obf = SCAN.replace("example.com", "exa\u200bmple.com")  # zero-width space: the normaliser strips it
    kept, hall = map_back(obf, [{"type": "DOMAIN", "text": "example.com"}])
    assert hall == [] and [obf[e["start"]:e["end"]] for e in kept] == ["exa\u200bmple.com"]


def test_omission_check_counts_only_items_of_the_input_missing_from_the_segments():
    segments = "The host 192.0.2.10 runs OpenSSH 8.4p1."
    answer = "nginx 1.18.0\n192.0.2.10\n10.9.9.9\n- host example.com\n- 80/tcp\n- port 443"
    assert omissions(SCAN, segments, answer) == ["nginx", "1.18.0", "example.com", "80/tcp"]
    assert omissions(SCAN, segments, "NONE") == [] and omissions(SCAN, segments, "") == []


def test_reflection_regenerates_with_the_omissions_named():
    calls = []

    def llm(reqs):
        calls.append(reqs)
        out = []
        for r in reqs:
            if "leaves out" in r["instruction"]:
                out.append("NONE" if "nginx" in r["instruction"] else "nginx 1.18.0")
            else:
                out.append(GOOD if "left out" in r["instruction"] else "The host 192.0.2.10 runs OpenSSH 8.4p1.")
        return out

    seg = identify_and_extract([SCAN], llm, rounds=2)[0]
    assert seg.context == "host" and seg.text == GOOD
    assert seg.rounds == 2 and seg.regenerated == 1 and seg.omissions == [] and not seg.fallback
    assert "left out: nginx; 1.18.0" in calls[2][0]["instruction"]
    assert all(r["input"] == SCAN for batch in calls for r in batch)  # every check sees the original input


def test_cache_answers_repeated_calls_from_disk(tmp_path):
    n = []

    def llm(reqs):
        n.append(len(reqs))
        return [f"answer {r['input']}" for r in reqs]

    a = LLMCache(llm, tmp_path, {"name": "m"})
    reqs = [{"id": "1", "instruction": "i", "input": "x"}, {"id": "2", "instruction": "i", "input": "y"}]
    assert a(reqs) == ["answer x", "answer y"] and (a.hits, a.misses) == (0, 2)
    b = LLMCache(llm, tmp_path, {"name": "m"})
    assert b(reqs) == ["answer x", "answer y"] and (b.hits, b.misses) == (2, 0) and n == [2]
    c = LLMCache(llm, tmp_path, {"name": "other"})  # another model: its own entries
    c(reqs[:1])
    assert n == [2, 1] and len(list(tmp_path.rglob("*.json"))) == 3


def test_api_chain_drops_and_counts_hallucinated_entities(ip_tagger, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSEC_CHAIN_KEY", "sk-chain-test")
    with OpenAIServer(responder=lambda b: "NONE" if _is_reflection(b) else FABRICATED, key="sk-chain-test") as srv:
        llm = chain_llm(_api_entry(srv), "loopback", None, tmp_path / "cache", 64, 0)
        res = tag_with_chain([SCAN], _tagger(ip_tagger), llm, rounds=1)[0]
        calls = srv.calls
    assert res["segments"] == FABRICATED and res["rounds"] == 1
    assert [(e["text"], SCAN[e["start"]:e["end"]]) for e in res["entities"]] == [("192.0.2.10", "192.0.2.10")]
    assert res["hallucinated"] == [{"type": "IP", "text": "10.66.66.66"}]
    assert calls == 2 and not any("sk-chain-test" in p for p in _prompts(srv))


def test_prompts_never_depend_on_gold_labels(ip_tagger, tmp_path, monkeypatch):
    """Two test files with the same texts and different gold labels send identical prompts."""
    monkeypatch.setenv("TINYSEC_CHAIN_KEY", "k")
    rows = [{"id": "a", "source": "nmap", "text": SCAN,
             "spans": [{"start": SCAN.index("192.0.2.10"), "end": SCAN.index("192.0.2.10") + 10, "type": "IP",
                        "text": "192.0.2.10"}]}]
    other = [{**rows[0], "spans": [{"start": 21, "end": 32, "type": "DOMAIN", "text": "example.com"}]}]
    sent = []
    for k, test in enumerate((rows, other)):
        write_jsonl(tmp_path / f"t{k}.jsonl", test)
        with OpenAIServer(responder=lambda b: "NONE" if _is_reflection(b) else FABRICATED) as srv:
            llm = chain_llm(_api_entry(srv), "loopback", None, tmp_path / f"cache{k}", 64, 0)
            stats = predict_method("llm", _tagger(ip_tagger), str(tmp_path / f"t{k}.jsonl"),
                                   str(tmp_path / f"p{k}.jsonl"), str(tmp_path / f"s{k}.json"), llm=llm, rounds=1)
            sent.append(_prompts(srv))
        assert stats["hallucinated"] == 1 and stats["saw_gold_labels"] is False and stats["llm_calls"] == 2
    assert sent[0] == sent[1]
    assert not any(f"{t}: " in p for p in sent[0] for t in ("IP", "DOMAIN", "B-IP"))
    pred = read_jsonl(tmp_path / "p0.jsonl")[0]
    assert pred["hallucinated"] == [{"type": "IP", "text": "10.66.66.66"}] and pred["gold"][0]["type"] == "IP"


def test_random_llm_chain_and_cached_rerun(ip_tagger, tmp_path):
    """A tiny random-weight LLM: whatever it writes, kept entities are spans of the input, kept +
    hallucinated = the tagger's entities on the segments, an empty answer is a counted fallback
    (the input itself is tagged), and a rerun answers from the cache."""
    llm_dir = build_random_model("llama", tmp_path / "llm", hidden=32, layers=1, heads=2, vocab=300)
    texts = [SCAN, "Traffic from 10.1.2.3 to example.org was blocked.\n"]
    tagger = _tagger(ip_tagger)
    entry = {"source": "random:llama"}
    first = chain_llm(entry, "tiny-llama", str(llm_dir), tmp_path / "cache", 8, 0)
    out = tag_with_chain(texts, tagger, first, rounds=1)
    direct = tagger.tag([r["segments"] for r in out])
    for text, r, d in zip(texts, out, direct):
        assert r["fallback"] == (r["segments"] == text) and r["context"] in ("host", "dns", "banner")
        for e in r["entities"]:
            assert text[e["start"]:e["end"]] == e["text"] and _IPV4.fullmatch(e["text"])
        found = {e["text"] for e in d["entities"]}
        assert {h["text"] for h in r["hallucinated"]} == {t for t in found if t not in text}
        assert {e["text"] for e in r["entities"]} == {t for t in found if t in text}
    assert first.misses >= 2 and first.hits == 0
    again = chain_llm(entry, "tiny-llama", str(llm_dir), tmp_path / "cache", 8, 0)
    assert tag_with_chain(texts, tagger, again, rounds=1) == out and again.misses == 0 and again.hits == first.misses


def test_tag_cli_method_runs_the_chain(ip_tagger, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYSEC_TINY_API_KEY", "k")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scan.txt").write_text(SCAN, encoding="utf-8")
    with OpenAIServer(responder=lambda b: "NONE" if _is_reflection(b) else FABRICATED) as srv:
        import yaml
        from conftest import REPO

        cfg = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
        cfg["models"]["tiny-api"]["api"]["base_url"] = srv.base_url
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
        rc = main(["tag", "--method", "tiny-api", "--configfile", "c.yaml", "--model", str(ip_tagger),
                   "--threshold", "0", "--flag-low-confidence", "--format", "json", "scan.txt"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and [e["text"] for e in doc["entities"]] == ["192.0.2.10"]
    assert doc["hallucinated"] == [{"type": "IP", "text": "10.66.66.66"}]
    assert list((tmp_path / "results" / "cache" / "ner_llm").rglob("*.json"))
    rc = main(["tag", "--method", "nope", "--configfile", "c.yaml", "scan.txt"])
    assert rc == 2 and "not one of ner.methods" in capsys.readouterr().err
