"""The config schemas are the one source of defaults: package code that runs outside the pipeline
(the ``tinysec`` command, partial settings in tests) reads them through
:func:`tinysec.schema.schema_defaults` and ends up with what the validated config holds."""

from __future__ import annotations

import pytest

from tinysec.config import validate_config
from tinysec.paths import CONFIG
from tinysec.schema import schema_defaults

SCHEMA = CONFIG / "schema" / "config.schema.yaml"


@pytest.fixture(scope="module")
def filled() -> dict:
    """The smallest config the schema accepts, validated: every other setting is a schema default."""
    config = {"models": {"minilm": {"source": "random:bert", "kind": "encoder"}}}
    return validate_config(config, SCHEMA, resolve_gguf=False)


def test_schema_defaults_reads_one_block_with_nested_defaults():
    train = schema_defaults("instruct.schema.yaml", "train")
    assert train["lr"] == 1e-4 and train["cutoff"] == 1024 and train["batching"] == "length"
    assert "full_lr" in train and train["full_lr"] is None
    cti = schema_defaults("cti.schema.yaml")
    assert cti["generation"] == {"max_new_tokens": 32, "batch_size": 16}  # an object default filled from its properties
    entry = schema_defaults("models.schema.yaml", "*")  # '*': one entry of a name -> entry mapping
    assert entry == {"kind": "causal", "family": "llama", "chat_template": "auto", "tokenizer_kwargs": {}}


def test_schema_defaults_returns_a_fresh_copy_and_names_unknown_settings():
    first = schema_defaults("osint.schema.yaml", "dns")
    first["record_types"].append("PTR")
    assert "PTR" not in schema_defaults("osint.schema.yaml", "dns")["record_types"]
    with pytest.raises(KeyError, match=r"config/schema/instruct.schema.yaml has no setting 'train.nope'"):
        schema_defaults("instruct.schema.yaml", "train", "nope")


def test_package_defaults_are_the_validated_configs(filled):
    from tinysec.cti.encoder import DEFAULTS as ENCODER
    from tinysec.cti.tfidf import DEFAULTS as TFIDF
    from tinysec.models.generate import GEN_DEFAULTS
    from tinysec.models.sources import model_entry
    from tinysec.models.train import default_hparams
    from tinysec.ner.labels import DEFAULT_TYPES
    from tinysec.ner.postprocess import DEFAULT_TYPE_PATTERNS, PostprocessSettings
    from tinysec.ner.settings import robust_defaults
    from tinysec.osint.collect import source_options

    hp = default_hparams()
    train = {k: v for k, v in filled["instruct"]["train"].items() if k != "full_lr"}
    assert {k: hp[k] for k in train} == train and hp["seed"] == filled["seed"]
    lora = {k: v for k, v in filled["instruct"]["lora"].items() if k != "target_modules"}
    assert hp["lora"] == lora
    assert {k: GEN_DEFAULTS[k] for k in filled["instruct"]["generation"]} == filled["instruct"]["generation"]
    assert TFIDF == {k: v for k, v in filled["cti"]["tfidf"].items() if k not in ("enabled", "full_train")}
    assert ENCODER == {k: v for k, v in filled["cti"]["encoder"].items() if k not in ("enabled", "model")}
    assert model_entry({"source": "random:bert", "kind": "encoder"}) == filled["models"]["minilm"]
    assert list(DEFAULT_TYPES) == filled["ner_data"]["entity_types"]
    assert DEFAULT_TYPE_PATTERNS == filled["ner"]["regex"]
    post = PostprocessSettings()
    assert (post.threshold, post.low_confidence) == (filled["ner"]["confidence_threshold"], filled["ner"]["low_confidence"])
    assert robust_defaults() == filled["ner"]["robust"]
    for source in ("dns", "whois", "shodan", "nmap"):
        assert source_options(source, {}) == filled["osint"][source]
    with pytest.raises(ValueError, match="unknown OSINT source 'ftp'"):
        source_options("ftp", {})
