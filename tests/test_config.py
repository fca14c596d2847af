"""Config validation: the three configs are valid, bad keys/types stop the run naming the key.

Dry runs of each config (offline) are in test_workflow_rules.py."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from conftest import REPO, run_snakemake

from tinysec.config import ConfigError, check_config, config_problems, validate_config
from tinysec.schema import load_validator

SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"
CONFIGS = {name: REPO / "config" / f"{name}.yaml" for name in ("config", "tiny", "paper")}


def load(name: str) -> dict:
    return yaml.safe_load(CONFIGS[name].read_text())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shipped_configs_are_valid_and_get_defaults(name):
    config = load(name)
    assert config_problems(config, SCHEMA) == []
    validate_config(config, SCHEMA)
    # defaults filled at the top level, inside $ref'd sections and inside each model entry
    assert {"run_name", "seed", "device", "embedder"} <= set(config)
    assert {"gpus_per_job", "threads", "mem_mb", "runtime", "gpu_model"} <= set(config["device"])
    for entry in config["models"].values():
        assert entry["kind"] in ("causal", "encoder") and "family" in entry
    sections = [k for k, sub in load_validator(SCHEMA).schema["properties"].items() if "$ref" in sub]
    assert sections and all(isinstance(config[section], dict) for section in sections)
    assert config["embedder"] in config["models"]


def test_defaults_fill_omitted_sections():
    # the default embedder and NER encoder (both 'minilm') must name a defined model
    config = {"models": {"m": {"source": "random:llama"}, "minilm": {"source": "random:bert", "kind": "encoder"}}}
    validate_config(config, SCHEMA)
    assert config["device"] == {"gpus_per_job": 1, "gpu_model": None, "threads": 2, "mem_mb": 8000,
                                "runtime": 240, "gpu_memory_fraction": None}
    assert config["models"]["m"]["kind"] == "causal"
    assert config["models"]["m"]["tokenizer_kwargs"] == {}
    assert config["seed"] == 0


def test_problems_name_full_key_paths():
    config = load("tiny")
    bad = copy.deepcopy(config)
    bad["device"]["threds"] = 2
    bad["device"]["gpus_per_job"] = "two"
    bad["models"]["tiny-llama"]["sorce"] = "random:llama"
    bad["modles"] = {}
    problems = config_problems(bad, SCHEMA)
    assert "device.threds: unknown key (did you mean 'device.threads'?)" in problems
    assert "device.gpus_per_job: expected integer, got 'two'" in problems
    assert any(p.startswith("models.tiny-llama.sorce: unknown key (did you mean 'models.tiny-llama.source'")
               for p in problems)
    assert any(p.startswith("modles: unknown key (did you mean 'models'") for p in problems)
    with pytest.raises(ConfigError) as exc:
        check_config(bad, SCHEMA, source="config x.yaml")
    assert "invalid config x.yaml (4 problem(s))" in str(exc.value)


BAD_CASES = [
    (lambda c: c["device"].update(threds=2), "device.threds: unknown key (did you mean 'device.threads'?)"),
    (lambda c: c["device"].update(threads="2"), "device.threads: expected integer, got '2'"),
    (lambda c: c["models"]["tiny-llama"].update(source="gguf:only-package"), "models.tiny-llama.source:"),
    (lambda c: c["models"]["tiny-bert"].update(kind="decoder"), "models.tiny-bert.kind:"),
    (lambda c: c.update(judge={"enabeld": True}), "judge.enabeld: unknown key (did you mean 'judge.enabled'?)"),
]


@pytest.mark.parametrize("mutate, expected", BAD_CASES)
def test_each_problem_names_its_key(mutate, expected):
    config = load("tiny")
    mutate(config)
    assert any(p.startswith(expected) for p in config_problems(config, SCHEMA))


@pytest.mark.parametrize("mutate, expected", [BAD_CASES[1], BAD_CASES[4]])
def test_snakemake_stops_naming_the_key(tmp_path, mutate, expected):
    config = load("tiny")
    mutate(config)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(config))
    proc = run_snakemake(tmp_path, "-n", configfile=cfg, check=False, timeout=300)
    assert proc.returncode != 0
    assert "ConfigError" in proc.stdout and f"invalid config {cfg}" in proc.stdout
    assert expected in proc.stdout, proc.stdout[-3000:]


def test_paper_config_names_the_studies_models_and_hyperparameters():
    config = load("paper")
    validate_config(config, SCHEMA)
    sources = {e["source"] for e in config["models"].values()}
    for hf_id in ("microsoft/phi-2", "microsoft/Phi-3-mini-4k-instruct", "microsoft/Phi-3-mini-128k-instruct",
                  "Qwen/Qwen1.5-1.8B-Chat", "Qwen/Qwen1.5-4B-Chat", "google/gemma-2b",
                  "Qwen/Qwen1.5-14B-Chat", "ehsanaghaei/SecureBERT"):
        assert f"hf:{hf_id}" in sources
    assert any("secgpt" in s.lower() for s in sources)
    apis = [e for e in config["models"].values() if e["source"].startswith("api:")]
    assert apis and all(re.fullmatch(r"[A-Z_][A-Z0-9_]*", e["api"]["key_env"]) for e in apis)
    assert any("deepseek" in e["api"]["base_url"] for e in apis)


def test_embedded_default_needs_no_hub():
    config = load("config")
    validate_config(config, SCHEMA)
    for name, entry in config["models"].items():
        if entry["source"].startswith("api:"):  # only a loopback server (the NER api: method, off without its key)
            assert re.match(r"https?://(127\.0\.0\.1|localhost)[:/]", entry["api"]["base_url"]), \
                f"{name} would need the network"
            continue
        assert not entry["source"].startswith("hf:"), f"{name} would need the network"


def test_conda_env_has_the_requirements_pins():
    pins = {line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")}
    env = yaml.safe_load((REPO / "envs" / "tinysec.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert set(pip) == pins
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", p) for p in pins), "unpinned requirement"
    post = (REPO / "envs" / "tinysec.post-deploy.sh").read_text()
    for line in (REPO / "requirements-models.txt").read_text().split():
        assert line in post
