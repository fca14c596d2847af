"""LLM rephrasing with the reflection loop, and the paraphrase filter, with stand-in rewriters."""

from __future__ import annotations

import numpy as np
import pytest
from ner_data_records import dns_record, shodan_record, whois_record
from openai_server import OpenAIServer

from tinysec.ner.corpus import build_samples
from tinysec.ner.labels import DEFAULT_TYPES, spans_to_bio
from tinysec.ner.rephrase import (
    find_obfuscated,
    locate_entities,
    make_rewriter,
    paraphrase_perturb,
    paraphrase_rows,
    reflect_rephrase,
)


@pytest.fixture(scope="module")
def samples():
    return build_samples([dns_record(), whois_record(), shodan_record()], DEFAULT_TYPES, seed=0)


def _entities(sample):
    return sorted({(s["type"], s["text"]) for s in sample["spans"]})


def _faithful(sample):
    """A rewrite that keeps every entity: a plain list sentence."""
    return "In short, the record names " + ", ".join(t for _, t in _entities(sample)) + "."


class DroppingRewriter:
    """Stand-in LLM: drops the first entity for the first ``drops`` tries of each sample."""

    def __init__(self, samples, drops):
        self.by_id = {s["id"]: s for s in samples}
        self.drops, self.seen, self.calls = drops, {}, []

    def __call__(self, reqs):
        self.calls.append([r["id"] for r in reqs])
        out = []
        for r in reqs:
            s = self.by_id[r["id"]]
            n = self.seen[r["id"]] = self.seen.get(r["id"], 0) + 1
            text = _faithful(s)
            if n <= self.drops:
                text = text.replace(_entities(s)[0][1], "something")
            out.append(text)
        return out


def test_reflection_loop_regenerates_until_every_entity_is_kept(samples):
    rw = DroppingRewriter(samples, drops=1)
    res = reflect_rephrase(samples, rw, max_tries=3)
    assert res.fallbacks == 0 and res.rewritten == len(samples) and res.retries == len(samples)
    assert len(rw.calls) == 2
    for new, old in zip(res.samples, samples):
        assert new["rephrased"] and new["text"].startswith("In short")
        assert {(s["type"], s["text"]) for s in new["spans"]} == set(_entities(old))
        assert new["tags"] == spans_to_bio(new["text"], new["spans"])
        for sp in new["spans"]:
            assert new["text"][sp["start"]:sp["end"]] == sp["text"]


def test_reflection_loop_falls_back_to_the_template_and_counts(samples):
    rw = DroppingRewriter(samples, drops=5)
    res = reflect_rephrase(samples, rw, max_tries=3)
    assert res.fallbacks == len(samples) and res.rewritten == 0
    assert len(rw.calls) == 3 and res.tries == [3] * len(samples)
    assert [s["text"] for s in res.samples] == [s["text"] for s in samples]
    assert not any(s["rephrased"] for s in res.samples)


def test_retry_prompt_names_the_missing_entity(samples):
    seen = []

    def rewriter(reqs):
        seen.extend(reqs)
        return ["nothing here." for _ in reqs]

    reflect_rephrase(samples[:1], rewriter, max_tries=2)
    assert "left out" not in seen[0]["instruction"]
    retry = seen[1]["instruction"].split("left out:")[1]
    assert all(t in retry for _, t in _entities(samples[0]))


def test_locate_entities_respects_word_boundaries():
    spans, missing = locate_entities("mail.example.com and example.com", [("DOMAIN", "example.com"),
                                                                          ("DOMAIN", "mail.example.com")])
    assert [(s["start"], s["text"]) for s in spans] == [(0, "mail.example.com"), (21, "example.com")]
    assert not missing
    _, missing = locate_entities("nginx1", [("SOFTWARE", "nginx")])
    assert missing == [("SOFTWARE", "nginx")]


def test_find_obfuscated_maps_back_to_the_paraphrase():
    text = "The site g00gle.c0m runs Ubüntu and ng\u200binx."
    spans, missing = find_obfuscated(text, [("DOMAIN", "google.com"), ("OS", "Ubuntu"), ("SOFTWARE", "nginx")])
    assert not missing
    assert [s["text"] for s in spans] == ["g00gle.c0m", "Ubüntu", "ng\u200binx"]


def test_paraphrase_filter_keeps_only_similar_complete_paraphrases(samples):
    s = samples[0]
    ents = [t for _, t in _entities(s)]
    obfuscated = "Paraphrased: " + s["text"].replace("e", "\u0435")  # Cyrillic homoglyphs
    candidates = {
        "ok": obfuscated,
        "missing": "Paraphrased: " + s["text"].replace(ents[0], "a host"),
        "truncated": "Paraphrased: " + s["text"][: len(s["text"]) // 3],
        "dissimilar": obfuscated.replace("Paraphrased", "Unrelated"),
    }
    rows = [dict(s, id=f"{s['id']}-{k}") for k in candidates]

    def rewriter(reqs):
        return [candidates[r["id"].rsplit("-", 1)[1]] for r in reqs]

    def similarity(a, b):
        return np.array([0.5 if t.startswith("Unrelated") else 0.9 for t in b])

    kept, stats = paraphrase_perturb(rows, rewriter, similarity, threshold=0.82, min_length_ratio=0.6)
    assert [k["orig_id"] for k in kept] == [f"{s['id']}-ok"]
    assert stats.as_dict() == {"requested": 4, "kept": 1, "low_similarity": 1, "missing_entity": 1,
                               "truncated": 1, "mean_similarity": pytest.approx(0.8)}
    row = kept[0]
    assert row["family"] == "paraphrase" and len(row["word_map"]) == len(row["tokens"]) == len(row["tags"])
    assert {sp["type"] for sp in row["spans"]} == {t for t, _ in _entities(s)}
    for _tok, tag, src in zip(row["tokens"], row["tags"], row["word_map"]):
        assert (src >= 0) == (tag != "O")
        if src >= 0:
            assert s["tags"][src] != "O"


def test_api_rewriter_over_a_loopback_server(samples):
    s = samples[0]
    with OpenAIServer(responder=lambda body: _faithful(s), key="sk-test") as srv:
        entry = {"source": "api:local", "api": {"base_url": srv.base_url, "model": "m", "key_env": "NER_TEST_KEY"}}
        import os
        os.environ["NER_TEST_KEY"] = "sk-test"
        try:
            res = reflect_rephrase([s], make_rewriter(entry, None, max_new_tokens=32), max_tries=2)
        finally:
            del os.environ["NER_TEST_KEY"]
        assert srv.calls == 1
        assert s["text"] in srv.requests[0]["messages"][-1]["content"]
    assert res.rewritten == 1 and res.samples[0]["text"] == _faithful(s)


def test_paraphrase_rows_with_a_tiny_local_model_and_encoder(tmp_path, samples):
    """Real wiring: tiny random llama rewrites (gibberish, so nothing passes), tiny bert embeds."""
    from tinysec.models.tiny import build_random_model

    llm = build_random_model("llama", tmp_path / "llm", hidden=32, layers=1, heads=2)
    enc = build_random_model("bert", tmp_path / "enc", hidden=32, layers=1, heads=2)
    cfg = {"threshold": 0.82, "min_length_ratio": 0.6, "max_new_tokens": 8, "max_samples": 0}
    kept, stats = paraphrase_rows(samples[:2], cfg,
                                  {"source": "random:llama"}, str(llm), str(enc))
    assert stats["requested"] == 2 and stats["kept"] == len(kept)
    assert stats["kept"] + stats["low_similarity"] + stats["missing_entity"] + stats["truncated"] == 2
    assert stats["mean_similarity"] is not None and -1.0 <= stats["mean_similarity"] <= 1.0
