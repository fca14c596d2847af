"""Config hardening: file/line of YAML errors, key paths of undefined or unusable model and judge
names, unloadable model sources and split fractions, all refused when the config is loaded
(``validate_config`` and the Snakefile's ``snakemake -n``), with one message and no traceback."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, TINY, run_snakemake

from tinysec.config import ConfigError, load_config_file, validate_config
from tinysec.ner.corpus import split_samples

SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"
API_MODEL = {"source": "api:loopback", "api": {"base_url": "http://127.0.0.1:9/v1", "model": "x"}}


def tiny() -> dict:
    return yaml.safe_load(TINY.read_text())


def problems_of(config: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        validate_config(config, SCHEMA, source="config t.yaml")
    assert str(exc.value).startswith("invalid config t.yaml")
    return exc.value.problems


def add_api(c: dict) -> None:
    c["models"]["remote"] = copy.deepcopy(API_MODEL)


UNDEFINED = [
    (lambda c: c["instruct"]["models"].extend(["tiny-llama-ref", "ghost"]), "instruct.models[2]"),
    (lambda c: c["instruct"]["references"].append("ghost"), "instruct.references[1]"),
    (lambda c: c["cti"]["models"].append("ghost"), "cti.models[1]"),
    (lambda c: c["cti"]["zero_shot"].insert(0, "ghost"), "cti.zero_shot[0]"),
    (lambda c: c.update(embedder="ghost"), "embedder"),
    (lambda c: c["ner"].update(encoder="ghost"), "ner.encoder"),
    (lambda c: c["ner"].update(encoder_variants=["tiny-bert", "ghost"]), "ner.encoder_variants[1]"),
    (lambda c: c["ner_data"]["rephrase"].update(model="ghost"), "ner_data.rephrase.model"),
    (lambda c: c["ner_data"]["paraphrase"].update(model="ghost"), "ner_data.paraphrase.model"),
    (lambda c: c["judge"]["judges"].update(big={"kind": "hf", "model": "ghost"}), "judge.judges.big.model"),
]


@pytest.mark.parametrize("mutate, where", UNDEFINED)
def test_undefined_model_names_its_key_path(mutate, where):
    config = tiny()
    mutate(config)
    assert f"{where}: model 'ghost' is not defined under models:" in problems_of(config)


def test_undefined_judge_and_family_name_their_key_paths():
    config = tiny()
    config["judge"]["judge"] = "oracle"
    config["ner_data"]["perturb"]["adv_families"] = ["char", "typo"]
    problems = problems_of(config)
    assert "judge.judge: judge 'oracle' is not defined under judge.judges:" in problems
    assert ("ner_data.perturb.adv_families[1]: family 'typo' is not defined under ner_data.perturb.families:"
            in problems)


UNUSABLE = [
    (lambda c: c["instruct"]["models"].append("remote"), "instruct.models[1]: model 'remote' is an API model"),
    (lambda c: c["cti"]["models"].append("remote"), "cti.models[1]: model 'remote' is an API model"),
    (lambda c: c["ner"].update(encoder="remote"), "ner.encoder: model 'remote' is an API model"),
    (lambda c: c.update(embedder="remote"), "embedder: model 'remote' is an API model"),
    (lambda c: c["ner"].update(encoder="tiny-llama"), "ner.encoder: model 'tiny-llama' is not an encoder"),
    (lambda c: c["judge"]["judges"].update(j={"kind": "api", "model": "tiny-llama"}),
     "judge.judges.j.model: an api judge needs an api: model"),
    (lambda c: c["judge"]["judges"].update(j={"kind": "hf", "model": "remote"}),
     "judge.judges.j.model: model 'remote' is an API model"),
]


@pytest.mark.parametrize("mutate, expected", UNUSABLE)
def test_model_that_cannot_serve_its_role_is_refused(mutate, expected):
    config = tiny()
    add_api(config)
    mutate(config)
    assert any(p.startswith(expected) for p in problems_of(config)), problems_of(config)


def test_api_models_may_answer_and_judge():
    config = tiny()
    add_api(config)
    config["instruct"]["references"].append("remote")
    config["cti"]["zero_shot"].append("remote")
    config["judge"]["judges"]["remote"] = {"kind": "api", "model": "remote"}
    validate_config(config, SCHEMA)


SOURCES = [
    ("gguf:tinysec_no_such_package:model.gguf", "package 'tinysec_no_such_package' is not installed"),
    ("pkg:tinysec_no_such_package", "package 'tinysec_no_such_package' is not installed"),
    ("does/not/exist", "'does/not/exist' is not a folder"),
]


@pytest.mark.parametrize("source, reason", SOURCES)
def test_unloadable_source_of_a_used_model_is_refused(source, reason):
    config = tiny()
    config["models"]["tiny-llama-ref"]["source"] = source
    (problem,) = problems_of(config)
    assert problem.startswith(f"models.tiny-llama-ref.source: '{source}' cannot be loaded "
                              "(used by instruct.references[0])")
    assert reason in problem


def test_gguf_packages_of_job_environments_are_not_resolved_here():
    """Under --sdm conda the gguf: packages are installed in the jobs' environment only."""
    config = tiny()
    config["models"]["tiny-llama-ref"]["source"] = "gguf:tinysec_no_such_package:model.gguf"
    validate_config(copy.deepcopy(config), SCHEMA, resolve_gguf=False)
    config["models"]["tiny-llama-ref"]["source"] = "pkg:tinysec_no_such_package"  # resolved by the DAG itself
    assert "package 'tinysec_no_such_package' is not installed" in " ".join(problems_of(config))


def test_unused_model_is_not_resolved():
    config = tiny()
    config["models"]["spare"] = {"source": "gguf:tinysec_no_such_package:model.gguf"}
    validate_config(config, SCHEMA)


@pytest.mark.parametrize("section, value, expected", [
    ("cti", [0.7, 0.1, 0.1], "cti.split: fractions must add up to 1, got 0.7 + 0.1 + 0.1 = 0.9"),
    ("ner_data", {"train": 0.8, "val": 0.2, "test": 0.2},
     "ner_data.split: fractions must add up to 1, got 0.8 + 0.2 + 0.2 = 1.2"),
])
def test_split_fractions_must_add_up_to_one(section, value, expected):
    config = tiny()
    config[section]["split"] = value
    assert expected in problems_of(config)


def test_split_samples_never_rescales():
    samples = [{"id": i, "source": "dns"} for i in range(10)]
    with pytest.raises(ValueError, match="must add up to 1"):
        split_samples(samples, {"train": 4, "val": 0.5, "test": 0.5})
    assert [len(v) for v in split_samples(samples, {"train": 0.6, "val": 0.2, "test": 0.2}).values()] == [6, 2, 2]


def test_yaml_files_name_file_and_line(tmp_path):
    bad = tmp_path / "syntax.yaml"
    bad.write_text("run_name: x\nmodels:\n  a: {source: 'random:llama'\n  b: 2\n")
    with pytest.raises(ConfigError) as exc:
        load_config_file(bad)
    assert f"{bad}:4:" in str(exc.value) and "YAML syntax error" in str(exc.value)
    assert "started at line 3" in str(exc.value)
    for text, expected in (("", ":1: the file is empty"), ("# only a comment\n", ":1: the file is empty"),
                           ("- a\n- b\n", ":1: expected a mapping of config keys at the top level, got a list")):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=f"{bad}{expected}"):
            load_config_file(bad)


def test_config_checks_do_not_import_torch():
    code = ("import sys, yaml; from tinysec.config import validate_config; "
            f"validate_config(yaml.safe_load(open({str(TINY)!r})), {str(SCHEMA)!r}); "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def assert_clean(out: str) -> None:
    """One ConfigError message, no Python traceback or frame lines."""
    assert "ConfigError: invalid config" in out, out[-3000:]
    assert "Traceback" not in out and 'File "' not in out and "InputFunctionException" not in out, out[-3000:]


@pytest.mark.parametrize("mutate, expected", [
    (UNDEFINED[0][0], "instruct.models[2]: model 'ghost' is not defined under models:"),
    (lambda c: c["models"]["tiny-llama-ref"].update(source="gguf:tinysec_no_such_package:m.gguf"),
     "models.tiny-llama-ref.source: 'gguf:tinysec_no_such_package:m.gguf' cannot be loaded"),
    (lambda c: (add_api(c), c["instruct"]["models"].append("remote")),
     "instruct.models[1]: model 'remote' is an API model"),
])
def test_snakemake_dry_run_stops_with_the_key_path(tmp_path, mutate, expected):
    config = tiny()
    mutate(config)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(config))
    proc = run_snakemake(tmp_path, "-n", configfile=cfg, check=False, timeout=300)
    assert proc.returncode == 1
    assert_clean(proc.stdout)
    assert f"invalid config {cfg}" in proc.stdout and expected in proc.stdout, proc.stdout[-3000:]


@pytest.mark.parametrize("text, expected", [
    ("models:\n  a: [1,\n  b: 2\n", "config/config.yaml:4:1: YAML syntax error: expected ',' or ']'"),
    ("", "config/config.yaml:1: the file is empty"),
])
def test_snakemake_names_file_and_line_of_a_broken_default_config(tmp_path, text, expected):
    """Without --configfile the Snakefile reads config/config.yaml of the working directory."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(text)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                           "--cores", "1", "-n"], cwd=tmp_path, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 1
    assert_clean(proc.stdout)
    assert expected in proc.stdout, proc.stdout[-3000:]


def test_check_command_names_file_and_line(tmp_path):
    """``python -m tinysec.config`` checks files that ``snakemake --configfile`` would refuse
    without naming the line (snakemake parses --configfile itself, before the Snakefile runs)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  a: [1,\n  b: 2\n")
    def run(*files):
        return subprocess.run([sys.executable, "-m", "tinysec.config", *map(str, files)],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
    proc = run(bad)
    assert proc.returncode == 1 and f"{bad}:4:1: YAML syntax error" in proc.stderr
    assert "Traceback" not in proc.stderr
    override = tmp_path / "override.yaml"
    override.write_text("instruct: {models: [tiny-llama, ghost]}\n")
    proc = run(TINY, override)
    assert proc.returncode == 1, proc.stdout
    assert "instruct.models[1]: model 'ghost' is not defined under models:" in proc.stderr
    proc = run(TINY)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
