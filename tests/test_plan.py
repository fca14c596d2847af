"""The workflow's plan (tinysec.plan) on validated configs, and a dry run that never imports torch."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from conftest import REPO, TINY, run_snakemake

from tinysec import plan
from tinysec.config import validate_config
from tinysec.ner.settings import VARIANTS, variant_settings

SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"


def validated(raw: dict) -> dict:
    return validate_config(copy.deepcopy(raw), SCHEMA)


@pytest.fixture(scope="module")
def tiny_raw() -> dict:
    return yaml.safe_load(TINY.read_text())


@pytest.fixture()
def sections(tiny_raw):
    def build(mutate=None):
        raw = copy.deepcopy(tiny_raw)
        if mutate:
            mutate(raw)
        cfg = validated(raw)
        models = plan.Models(cfg)
        instruct = plan.Instruct(cfg, models)
        corpus = plan.NerData(cfg, models)
        return {"config": cfg, "models": models, "instruct": instruct, "judge": plan.Judge(cfg, models, instruct),
                "cti": plan.Cti(cfg, models), "osint": plan.Osint(cfg), "ner_data": corpus,
                "ner": plan.Ner(cfg, models, corpus)}
    return build


def test_one_of_matches_exactly_one_name():
    rx = re.compile(plan.one_of(["a.b", "c-d"]))
    assert rx.fullmatch("a.b") and rx.fullmatch("c-d")
    assert not rx.fullmatch("axb") and not rx.fullmatch("a.b.c")
    assert not re.compile(plan.one_of([])).fullmatch("")
    assert re.compile(plan.one_of([""])).fullmatch("") and re.compile(plan.one_of(["", "_x"])).fullmatch("_x")


def test_instruct_contestants_and_weights(sections):
    s = sections()["instruct"]
    assert s.finetuned() == ["tiny-llama-lora", "tiny-llama-full"]
    assert s.contestants() == ["tiny-llama", "tiny-llama-lora", "tiny-llama-full", "tiny-llama-ref"]
    assert s.local_answerers() == ["tiny-llama", "tiny-llama-ref"] and s.api_answerers() == []
    assert s.weights("tiny-llama") == {"model": "resources/models/tiny-llama"}
    assert s.weights("tiny-llama", "lora") == {"model": "resources/models/tiny-llama",
                                                "adapter": "results/finetune/tiny-llama-lora/adapter"}
    assert s.weights("tiny-llama", "full") == {"model": "results/finetune/tiny-llama-full/model"}


def test_instruct_hparams_merge_full_lr_and_lora_targets(sections):
    s = sections(lambda c: c["instruct"]["train"].update(lr=1e-3, full_lr=2e-5))
    lora, full = s["instruct"].hparams("tiny-llama", "lora"), s["instruct"].hparams("tiny-llama", "full")
    assert lora["lr"] == 1e-3 and full["lr"] == 2e-5 and "full_lr" not in lora
    assert lora["method"] == "lora" and full["method"] == "full" and lora["seed"] == full["seed"] == 0
    assert lora["lora"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert full["lora"]["target_modules"] == []
    # schema defaults are filled in: an unset value comes from instruct.schema.yaml
    assert lora["max_grad_norm"] == 1.0 and lora["lora"]["r"] == 8
    custom = sections(lambda c: c["instruct"].setdefault("lora", {}).update(target_modules={"llama": ["q_proj"]}))
    assert custom["instruct"].hparams("tiny-llama", "lora")["lora"]["target_modules"] == ["q_proj"]


def test_judge_pairs_once_each_references_first(sections):
    s = sections()["judge"]
    pairs = s.pairs()
    assert pairs[:2] == [("tiny-llama-lora", "tiny-llama-ref"), ("tiny-llama-full", "tiny-llama-ref")]
    assert len(pairs) == 6 and len({frozenset(p) for p in pairs}) == 6  # 4 contestants, each pair once
    assert s.answerers() == ["tiny-llama-lora", "tiny-llama-ref", "tiny-llama-full", "tiny-llama"]
    def refs_only(c):
        c["judge"]["pairs"].update(tournament=False)
        c["judge"]["pools"] = {"all": {}}
    only_refs = sections(refs_only)["judge"]
    assert only_refs.pairs() == pairs[:2]
    # a pool with a member list gets its round robin judged even without the tournament
    def with_pool(c):
        refs_only(c)
        c["judge"]["pools"]["mine"] = {"members": ["tiny-llama", "tiny-llama-lora", "tiny-llama-full"]}
    pooled = sections(with_pool)["judge"]
    assert pooled.pairs() == pairs[:2] + [("tiny-llama", "tiny-llama-lora"), ("tiny-llama", "tiny-llama-full"),
                                          ("tiny-llama-lora", "tiny-llama-full")]
    assert pooled.pool_members("all") == ["tiny-llama-lora", "tiny-llama-ref", "tiny-llama-full", "tiny-llama"]
    assert pooled.pool_members("mine") == ["tiny-llama", "tiny-llama-lora", "tiny-llama-full"]
    assert list(s.vs_pairs("tiny-llama-ref")) == ["tiny-llama-lora", "tiny-llama-full"]
    with pytest.raises(ValueError, match="judge 'nope' is not defined"):
        s.spec("nope")


def test_cti_contestants_and_hparams(sections):
    s = sections()["cti"]
    assert s.llm_contestants() == ["tiny-llama-lora", "tiny-llama"]
    assert s.tfidf_rows() == ["tfidf-lr"]  # tiny: no full-train row
    assert s.contestants()[:3] == ["tiny-llama-lora", "tiny-llama", "tfidf-lr"]
    assert s.base_model("tiny-llama-lora") == "tiny-llama" and s.finetune_label("tiny-llama") == "TinyLlama-random + LoRA"
    hp = s.hparams("tiny-llama")
    assert hp["method"] == "lora" and hp["lora"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert "enabled" not in s.tfidf_settings() and s.tfidf_settings()["class_weight"] == "balanced"
    full = sections(lambda c: c["cti"].setdefault("tfidf", {}).update(full_train=True))["cti"]
    assert full.tfidf_rows() == ["tfidf-lr", "tfidf-lr-full"]
    off = sections(lambda c: c["cti"].setdefault("tfidf", {}).update(enabled=False, full_train=True))["cti"]
    assert off.tfidf_rows() == [] and not {"tfidf-lr", "tfidf-lr-full"} & set(off.contestants())


def test_osint_targets_only_when_collecting(sections):
    def collect(c):
        c["osint"].update(collect=True, targets={"dns": ["example.org"], "whois": ["example.org"]})
    s = sections(collect)["osint"]
    assert s.collected_records() == ["results/osint/raw/dns/example.org.json", "results/osint/raw/whois/example.org.json"]
    assert s.target("dns", "example.org") == "example.org"
    assert sections()["osint"].collected_records() == []
    assert sections()["osint"].synthetic_seed() == 0


def test_ner_methods_testsets_and_variant_settings(sections):
    built = sections()
    ner, cfg = built["ner"], built["config"]
    families = list(cfg["ner_data"]["perturb"]["families"])
    assert list(ner.testsets()) == ["clean", *families]
    assert [m["variant"] for m in ner.prf_methods()] == ["baseline", "robust"]
    assert ner.main_methods(["robust"])[0]["predictions"] == f"results/ner/pred/{cfg['ner']['encoder']}/robust.jsonl"
    assert ner.ablation_variants() == ["robust", *cfg["ner"]["ablations"]]
    assert ner.train_inputs("tiny-bert", "baseline").keys() == {"encoder", "train", "val"}
    assert "adv" in ner.train_inputs("tiny-bert", "robust")
    robust = ner.train_settings("robust")
    assert robust["consistency"] == cfg["ner"]["robust"]["consistency"] and robust["adv_samples"]
    # an omitted robust block takes ner.schema.yaml's defaults, the same the validated config gets
    defaults = validated({"models": {"minilm": {"source": "random:bert", "kind": "encoder"}}})["ner"]
    omitted = variant_settings("robust", {"train": {}})
    tuned = {k: v for k, v in defaults["robust"].items() if k != "dropout_sweep"}  # a sweep is not a setting
    assert {k: omitted[k] for k in tuned} == tuned
    assert ner.dropout_sweep("robust") == cfg["ner"]["robust"]["dropout_sweep"] and ner.dropout_sweep("baseline") == []
    assert set(VARIANTS) == {"baseline", "robust", *defaults["ablations"]}


def test_dry_run_of_the_default_config_does_not_import_torch(tmp_path):
    """Building the DAG imports no deep-learning stack: every import is logged (-X importtime)."""
    proc = run_snakemake(tmp_path, "-n", "--quiet", configfile=REPO / "config" / "config.yaml",
                         env={"PYTHONPROFILEIMPORTTIME": "1"}, timeout=600)
    imported = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", proc.stdout, re.M))
    assert "tinysec.plan" in imported and "snakemake.workflow" in imported  # the log is complete
    heavy = sorted(m for m in imported if m.split(".")[0] in ("torch", "transformers", "peft", "accelerate"))
    assert not heavy, f"the dry run imported {heavy[:10]}"


def test_llm_methods_without_own_tagger_use_the_templates_tagger(sections):
    own = sections()["ner"]
    llm = own.llm_methods()[0]
    assert llm in own.corpus_methods() and "/llm/" in own.method_model(llm, "tiny-bert")

    def shared(c):
        c["ner"].setdefault("chain", {})["own_tagger"] = False
    ner = sections(shared)["ner"]
    assert ner.corpus_methods() == ["baseline"]
    assert ner.method_model(llm, "tiny-bert") == ner.method_model("templates", "tiny-bert")


def test_ablation_train_overrides_only_the_ablations(sections):
    def smaller(c):
        c["ner"]["ablation_train"] = {"max_train_rows": 7, "epochs": 1}
    ner, cfg = sections(smaller)["ner"], sections(smaller)["config"]
    for variant in cfg["ner"]["ablations"]:
        assert (ner.train_settings(variant)["max_train_rows"], ner.train_settings(variant)["epochs"]) == (7, 1)
    for variant in ("baseline", "robust"):
        assert ner.train_settings(variant)["max_train_rows"] == cfg["ner"]["train"].get("max_train_rows")
