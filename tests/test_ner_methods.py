"""The NER method axis: the plan of ner.methods (torch-free), config-load checks of method names,
the per-method corpora (baseline = raw rows only) and the raw test inputs every method tags."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO, TINY

from tinysec import plan
from tinysec.config import ConfigError, validate_config
from tinysec.io import InputError, read_json, read_jsonl, write_jsonl
from tinysec.ner.methods import method_corpus_job, raw_testset_job

SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"


def _ner(mutate=None, env=None, monkeypatch=None):
    raw = yaml.safe_load(TINY.read_text())
    if mutate:
        mutate(raw)
    cfg = validate_config(copy.deepcopy(raw), SCHEMA)
    models = plan.Models(cfg)
    return plan.Ner(cfg, models, plan.NerData(cfg, models))


def test_methods_plan_skips_keyless_api_methods(monkeypatch):
    monkeypatch.delenv("TINYSEC_TINY_API_KEY", raising=False)
    ner = _ner()
    assert ner.methods() == ["baseline", "templates", "tiny-llama"]
    assert ner.corpus_methods() == ["baseline", "tiny-llama"] and ner.llm_methods() == ["tiny-llama"]
    assert ner.caption_context()["skipped_methods"] == ["tiny-api"]
    monkeypatch.setenv("TINYSEC_TINY_API_KEY", "k")
    assert _ner().methods()[-1] == "tiny-api"
    monkeypatch.delenv("TINYSEC_TINY_API_KEY")
    always = _ner(lambda c: c["ner"].update(skip_keyless_api_methods=False))
    assert "tiny-api" in always.methods()


def test_method_models_inputs_and_rows():
    ner = _ner()
    assert ner.method_model("baseline", "tiny-bert") == "results/ner/models/tiny-bert/baseline"
    assert ner.method_model("templates", "tiny-bert") == "results/ner/models/tiny-bert/robust"
    assert ner.method_model("tiny-llama", "tiny-bert") == "results/ner/models/tiny-bert/llm/tiny-llama/robust"
    # the study's baseline trains on the raw rows only and tags without the normaliser
    assert ner.train_inputs("tiny-bert", "baseline")["train"] == "results/ner/data/baseline/train.jsonl"
    assert "adv" not in ner.train_inputs("tiny-bert", "baseline")
    assert not ner.method_normalize("baseline") and ner.method_normalize("tiny-llama")
    assert ner.method_train_inputs("tiny-llama", "tiny-bert")["adv"] == "results/ner/data/tiny-llama/train.adv.jsonl"
    assert ner.method_predict_inputs("tiny-llama", "tiny-bert")["llm"] == "resources/models/tiny-llama"
    assert "llm" not in ner.method_predict_inputs("templates", "tiny-bert")
    rows = ner.method_rows()
    assert [(r["method"], r["variant"], r["llm"]) for r in rows] == [
        ("baseline", "baseline", "none"), ("templates", "robust", "none"), ("tiny-llama", "robust", "TinyLlama-random")]
    assert all(r["predictions"] == f"results/ner/pred/methods/{r['method']}/tiny-bert.jsonl" for r in rows)


@pytest.mark.parametrize("methods, message", [
    (["baseline", "gpt-9"], "ner.methods[1]: model 'gpt-9' is not defined under models:"),
    (["baseline", "tiny-bert"], "ner.methods[1]: model 'tiny-bert' is an encoder"),
    (["baseline", "baseline"], "ner.methods"),
    ([], "ner.methods"),
])
def test_bad_method_names_fail_at_config_load(methods, message):
    with pytest.raises(ConfigError) as exc:
        _ner(lambda c: c["ner"].update(methods=methods))
    assert message in str(exc.value)


def test_paper_config_names_the_three_study_llms():
    cfg = validate_config(yaml.safe_load((REPO / "config" / "paper.yaml").read_text()), SCHEMA, resolve_gguf=False)
    models = plan.Models(cfg)
    ner = plan.Ner(cfg, models, plan.NerData(cfg, models))
    assert ner.llm_methods() == ["claude-3.5-sonnet", "llama3-8b-instruct", "mixtral-8x7b-instruct"]
    assert models.is_api("claude-3.5-sonnet")
    assert models.entry("llama3-8b-instruct")["source"] == "hf:meta-llama/Meta-Llama-3-8B-Instruct"
    assert models.entry("mixtral-8x7b-instruct")["source"] == "hf:mistralai/Mixtral-8x7B-Instruct-v0.1"


def _row(i, rendering, source="nmap"):
    text = f"host 10.0.0.{i} up"
    return {"id": f"r{i}" + ("~raw" if rendering == "raw" else ""), "record": f"r{i}", "rendering": rendering,
            "source": source, "text": text, "tokens": text.split(), "tags": ["O", "B-IP", "O"],
            "spans": [{"start": 5, "end": 5 + len(f"10.0.0.{i}"), "type": "IP", "text": f"10.0.0.{i}"}]}


def test_baseline_corpus_keeps_raw_rows_and_llm_corpus_rephrases(tmp_path):
    rows = [_row(i, r) for i in range(4) for r in ("template", "raw")]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "val.jsonl", rows[:2])
    out = {k: str(tmp_path / "b" / f"{k}.json{'l' if k != 'stats' else ''}") for k in ("train", "val", "stats")}
    stats = method_corpus_job("baseline", str(tmp_path / "train.jsonl"), str(tmp_path / "val.jsonl"), out)
    assert {r["rendering"] for r in read_jsonl(out["train"])} == {"raw"} and stats["train"] == 4 and stats["val"] == 1
    seen = []

    def llm(reqs):
        seen.extend(reqs)
        return [f"The address {r['instruction'].split('written: ')[1].rstrip('.')} answers." for r in reqs]

    out2 = {k: v.replace("/b/", "/l/") for k, v in out.items()}
    stats = method_corpus_job("llm", str(tmp_path / "train.jsonl"), str(tmp_path / "val.jsonl"), out2,
                              rephrase_rows=2, llm=llm)
    train = read_jsonl(out2["train"])
    assert stats["rephrase"] == {"attempted": 2, "rewritten": 2, "fallbacks": 0, "retries": 0} and len(seen) == 2
    assert [r["text"] for r in train[:3]] == ["The address 10.0.0.0 answers.", "host 10.0.0.0 up",
                                              "The address 10.0.0.1 answers."]
    assert train[0]["spans"][0]["start"] == 12 and read_json(out2["stats"])["kind"] == "llm"


def test_raw_testset_is_the_raw_rows_sampled_and_refuses_none(tmp_path):
    rows = [_row(i, r, src) for i, src in enumerate(["nmap", "dns", "whois", "shodan"]) for r in ("template", "raw")]
    write_jsonl(tmp_path / "test.jsonl", rows)
    assert raw_testset_job(str(tmp_path / "test.jsonl"), str(tmp_path / "raw.jsonl"), 3, 0) == 3
    got = read_jsonl(tmp_path / "raw.jsonl")
    assert {r["rendering"] for r in got} == {"raw"} and len({r["source"] for r in got}) == 3
    write_jsonl(tmp_path / "t2.jsonl", [_row(0, "template")])
    with pytest.raises(InputError, match="no raw-rendering test rows"):
        raw_testset_job(str(tmp_path / "t2.jsonl"), str(tmp_path / "raw2.jsonl"), None, 0)
