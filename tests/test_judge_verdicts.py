"""Verdict parsing and combination, the prompt template, the judgment cache, the battle builder."""

from __future__ import annotations

import pytest

from tinysec.io import InputError
from tinysec.judge.battle import judge_pairs, read_answers, summarize, to_fastchat
from tinysec.judge.cache import JudgmentCache
from tinysec.judge.judges import Judge, Judgment
from tinysec.judge.prompt import PairTask, PromptTemplate
from tinysec.judge.verdict import combine, parse_verdict, to_models


@pytest.mark.parametrize("reply, verdict", [
    ("A is better", "A"), ("**B is better.**", "B"), ("Answer: Tie", "tie"), ("tie.", "tie"),
    ("a", "A"), (" B\n", "B"), ("I think model A is better than B.", "A"), ("model-B-output is better", "B"),
    ("A is better, or maybe a tie", "invalid"), ("A is not better", "invalid"), ("no idea", "invalid"),
    ("", "invalid"), (None, "invalid"), ("Both are bad", "invalid"),
])
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) == verdict


def test_orders_map_and_combine():
    assert to_models("A", a_first=True) == "model_a" and to_models("A", a_first=False) == "model_b"
    assert to_models("tie", a_first=False) == "tie"
    assert combine("model_a", "model_a") == "model_a"
    assert combine("model_a", "model_b") == "tie"        # opposite verdicts: position bias
    assert combine("model_b", "tie") == "tie"
    assert combine("invalid", "model_a") == "invalid"    # never silently a tie


def test_template_renders_record_and_rejects_bad_placeholders(tmp_path):
    t = PromptTemplate()
    text = t.render(PairTask("Explain XSS", "", "first answer {x}", "second $answer"))
    assert '"model-A-output": "first answer {x}"' in text and '"model-B-output": "second $answer"' in text
    assert "A is better, B is better, tie" in text
    bad = tmp_path / "bad.txt"
    bad.write_text("Judge $record and $nonsense")
    with pytest.raises(InputError, match="nonsense"):
        PromptTemplate(bad)


def test_cache_roundtrip(tmp_path):
    c = JudgmentCache(tmp_path / "c.sqlite")
    c.put_many({"k1": {"verdict": "A", "raw": "A is better", "asks": 1}})
    c.close()
    c = JudgmentCache(tmp_path / "c.sqlite")
    assert c.get_many(["k1", "k2"]) == {"k1": {"verdict": "A", "raw": "A is better", "asks": 1}} and len(c) == 1


class LongerWins(Judge):
    """Prefers the longer answer; counts what it was asked (position-biased on equal length)."""

    kind = "test"

    def __init__(self):
        self.asked = 0

    def identity(self):
        return {"kind": self.kind}

    def key(self, task):
        from tinysec.judge.cache import content_key

        return content_key(self.identity(), task.first, task.second)

    def judge(self, tasks):
        self.asked += len(tasks)
        out = []
        for t in tasks:
            if "???" in t.first + t.second:
                out.append(Judgment("invalid", raw="hmm"))
            elif len(t.first) == len(t.second):
                out.append(Judgment("A", raw="A is better"))   # always the one shown first
            else:
                out.append(Judgment("A" if len(t.first) > len(t.second) else "B"))
        return out


def test_judge_pairs_both_orders_flip_and_cache(tmp_path):
    items = [{"id": str(i), "instruction": f"q{i}", "input": "", "output": "ref"} for i in range(4)]
    answers = {"x": {"0": "long answer", "1": "same", "2": "???", "3": "a"},
               "y": {"0": "short", "1": "SAME", "2": "fine", "3": "b is longer"},
               "z": {"0": "zz", "1": "zzzz", "3": "z"}}
    judge, cache = LongerWins(), JudgmentCache(tmp_path / "c.sqlite")
    battles, stats = judge_pairs(items, answers, [("x", "y")], judge, cache)
    rows = battles[("x", "y")]
    assert [r["verdict"] for r in rows] == ["model_a", "tie", "invalid", "model_b"]
    assert rows[1]["verdict_ab"] == "model_a" and rows[1]["verdict_ba"] == "model_b"  # flipped with position
    s = summarize(rows)
    assert s["invalid"] == 1 and s["flips"] == 1 and s["flip_rate"] == pytest.approx(1 / 3)
    assert [b["win"] for b in to_fastchat(rows, "t")] == ["model_a", "tie", "model_b"]
    assert stats == {"judgments": 8, "cached": 0, "judged": 8, "errors": 0} and judge.asked == 8
    # rerun + one added model: only the new pair's judgments reach the judge (z lacks item 2)
    battles, stats = judge_pairs(items, answers, [("x", "y"), ("x", "z")], judge, cache)
    assert stats["cached"] == 8 and stats["judged"] == 6 and judge.asked == 14
    assert [r["id"] for r in battles[("x", "z")]] == ["0", "1", "3"]


def test_read_answers_errors_name_row_and_field(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text('{"id": "1", "answer": "ok"}\n{"id": "2", "answer": 5}\n')
    with pytest.raises(InputError, match=r"row 2, field 'answer'"):
        read_answers(p)


def test_reference_judge_items_need_a_reference(tmp_path):
    from tinysec.judge.battle import read_items

    p = tmp_path / "eval.jsonl"
    p.write_text('{"id": "a", "instruction": "q", "input": "", "output": "ref"}\n'
                 '{"id": "b", "instruction": "q2", "input": "", "output": " "}\n')
    assert len(read_items(p)) == 2
    with pytest.raises(InputError, match=r"eval.jsonl, row 2, field 'output'"):
        read_items(p, need_reference=True)
