"""The local judges on tiny random-weight models built in the test: the hf judge (prompt, generate,
re-ask, invalid) and the reference judge (similarity to the reference, margin ties)."""

from __future__ import annotations

import pytest

from tinysec.judge.judges import HFJudge, ReferenceJudge, make_judge
from tinysec.judge.prompt import PairTask, PromptTemplate
from tinysec.models.tiny import build_random_model

TASKS = [PairTask("Explain phishing", "", "Phishing is a social engineering attack.", "No idea.", "ref"),
         PairTask("Explain XSS", "<script>", "Cross-site scripting.", "XSS injects scripts.", "ref")]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return build_random_model("llama", tmp_path_factory.mktemp("m") / "llama", hidden=32, layers=2, heads=2)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return build_random_model("bert", tmp_path_factory.mktemp("m") / "bert", hidden=32, layers=2, heads=2)


def test_hf_judge_reasks_then_records_invalid(tiny_llama):
    judge = HFJudge("tiny", tiny_llama, PromptTemplate(), max_reasks=1, max_tokens=6, batch_size=2)
    out = judge.judge(TASKS)
    assert len(out) == 2
    for j in out:
        assert j.verdict in {"A", "B", "tie", "invalid"} and isinstance(j.raw, str) and not j.error
        # a random model answers gibberish: re-asked once, then recorded as invalid (never a tie)
        assert (j.verdict == "invalid") == (j.asks == 2)
    assert judge.identity()["kind"] == "hf" and judge.key(TASKS[0]) != judge.key(TASKS[1])


def test_reference_judge_margin(tiny_bert):
    same = PairTask("q", "", "identical answer", "identical answer", "a reference answer")
    diff = PairTask("q", "", "a reference answer", "zebra quantum", "a reference answer")
    strict = ReferenceJudge(tiny_bert, "tiny-bert", margin=0.0)
    v_same, v_diff = strict.judge([same, diff])
    assert v_same.verdict == "tie"                       # equal similarity is always a tie
    assert v_diff.verdict == "A"                          # the reference itself scores 1.0
    assert ReferenceJudge(tiny_bert, "tiny-bert", margin=2.0).judge([diff])[0].verdict == "tie"
    assert strict.key(diff) != ReferenceJudge(tiny_bert, "tiny-bert", margin=0.5).key(diff)


def test_make_judge_errors_are_clear():
    with pytest.raises(ValueError, match="unknown judge kind"):
        make_judge({"kind": "oracle"}, {})
    with pytest.raises(ValueError, match="'api' block"):
        make_judge({"kind": "api", "model": "phi-2"}, {"phi-2": {"source": "hf:microsoft/phi-2"}})
