"""Battles of pairs of models: judge every item in order A/B (a shown first) and, when asked,
also B/A; combine, cache.

Rows of ``results/battles/{judge}/{a}__vs__{b}.jsonl``::

    {id, instruction, input, model_a, model_b, answer_a, answer_b,
     verdict_ab, verdict_ba, verdict, raw_ab, raw_ba}

``verdict_ab`` is the verdict with a shown first, ``verdict_ba`` with b shown first, both in model
terms (``model_a`` / ``model_b`` / ``tie`` / ``invalid``); ``verdict`` combines them. When only
order ``ab`` is judged, ``verdict_ba`` and ``raw_ba`` are null and ``verdict`` is ``verdict_ab``.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence

from ..io import InputError, iter_records
from .cache import JudgmentCache
from .judges import Judge, Judgment
from .prompt import PairTask
from .verdict import INVALID, MODEL_A, MODEL_B, TIE, combine, to_models

log = logging.getLogger(__name__)
#: Both judging orders: a shown first (``ab``), then b shown first (``ba``).
ORDERS = ("ab", "ba")


def read_answers(path: str | os.PathLike) -> dict[str, str]:
    """``id -> answer`` of an answers file (format ``answers``: ``{id, instruction, input, answer, ...}``)."""
    out: dict[str, str] = {}
    for row_no, row in iter_records(path, "answers"):
        rid = str(row["id"])
        if rid in out:
            raise InputError(path, f"duplicate id {row['id']!r}", row=row_no, field="id")
        out[rid] = row["answer"]
    return out


def read_items(path: str | os.PathLike, need_reference: bool = False) -> list[dict]:
    """Evaluation items ``{id, instruction, input, output}`` (format ``instruct_items``; ``output``
    is the reference answer, which must be non-empty when ``need_reference``)."""
    items = []
    for row_no, row in iter_records(path, "instruct_items"):
        output = row.get("output") or ""
        if need_reference and not output.strip():
            raise InputError(path, "the reference judge needs a non-empty reference answer", row=row_no,
                             field="output")
        items.append({"id": str(row["id"]), "instruction": row["instruction"],
                      "input": row.get("input") or "", "output": output})
    return items


def judge_pairs(items: list[dict], answers: dict[str, dict[str, str]], pairs: list[tuple[str, str]],
                judge: Judge, cache: JudgmentCache, orders: Sequence[str] = ORDERS
                ) -> tuple[dict[tuple[str, str], list[dict]], dict[str, int]]:
    """Battle rows of every pair ``(a, b)`` over the items both models answered, and counts
    ``{judgments, cached, judged, errors}``. ``orders``: ``['ab']`` or ``['ab', 'ba']``.

    All judgments missing from ``cache`` go to the judge in one batch (one model load, one pool of
    API calls); new ones are stored, except failed calls."""
    orders = check_orders(orders)
    plan, tasks, keys = [], [], []
    for a, b in pairs:
        ans_a, ans_b = answers[a], answers[b]
        shared = [it for it in items if it["id"] in ans_a and it["id"] in ans_b]
        if len(shared) < len(items):
            log.warning("%s vs %s: %d of %d items lack an answer from one side and are skipped",
                        a, b, len(items) - len(shared), len(items))
        for it in shared:
            plan.append((a, b, it, len(tasks)))
            shown = {"ab": (ans_a[it["id"]], ans_b[it["id"]]), "ba": (ans_b[it["id"]], ans_a[it["id"]])}
            for first, second in (shown[o] for o in orders):
                task = PairTask(it["instruction"], it["input"], first, second, it["output"])
                tasks.append(task)
                keys.append(judge.key(task))
    known = cache.get_many(keys)
    todo = [i for i, k in enumerate(keys) if k not in known]
    log.info("%d pairs, %d judgments: %d cached, %d to judge", len(pairs), len(keys), len(keys) - len(todo), len(todo))
    fresh = judge.judge([tasks[i] for i in todo]) if todo else []
    verdicts: dict[int, Judgment] = {i: Judgment(**known[k]) for i, k in enumerate(keys) if k in known}
    verdicts.update(zip(todo, fresh))
    cache.put_many({keys[i]: j.to_json() for i, j in zip(todo, fresh) if not j.error})
    out: dict[tuple[str, str], list[dict]] = {pair: [] for pair in pairs}
    for a, b, it, t in plan:
        ab = verdicts[t]
        ba = verdicts[t + 1] if len(orders) == 2 else None
        v_ab = to_models(ab.verdict, a_first=True)
        v_ba = to_models(ba.verdict, a_first=False) if ba else None
        out[(a, b)].append({"id": it["id"], "instruction": it["instruction"], "input": it["input"],
                            "model_a": a, "model_b": b, "answer_a": answers[a][it["id"]],
                            "answer_b": answers[b][it["id"]], "verdict_ab": v_ab, "verdict_ba": v_ba,
                            "verdict": combine(v_ab, v_ba) if ba else v_ab, "raw_ab": ab.raw,
                            "raw_ba": ba.raw if ba else None})
    stats = {"judgments": len(keys), "cached": len(keys) - len(todo), "judged": len(todo),
             "errors": sum(j.error for j in fresh)}
    return out, stats


def check_orders(orders: Sequence[str]) -> list[str]:
    """``orders`` as a list, which must be ``['ab']`` or ``['ab', 'ba']`` (ValueError otherwise)."""
    orders = list(orders)
    if orders not in (["ab"], ["ab", "ba"]):
        raise ValueError(f"judge orders must be [ab] or [ab, ba], got {orders}")
    return orders


def summarize(rows: list[dict]) -> dict:
    """Counts of one pair's (or a judge's) battles: outcomes, invalid, position flips.

    ``two_orders`` = battles judged in both orders; ``flip_rate`` = share of those with both
    verdicts valid whose two verdicts differ; ``opposite_rate`` = share whose two verdicts name
    opposite winners. Both rates are None when no battle was judged in both orders."""
    c = Counter(r["verdict"] for r in rows)
    two = [r for r in rows if r.get("verdict_ba") is not None]
    both = [r for r in two if INVALID not in (r["verdict_ab"], r["verdict_ba"])]
    flips = sum(r["verdict_ab"] != r["verdict_ba"] for r in both)
    opposite = sum({r["verdict_ab"], r["verdict_ba"]} == {MODEL_A, MODEL_B} for r in both)
    return {"battles": len(rows), "valid": len(rows) - c[INVALID], "invalid": c[INVALID],
            "wins_a": c[MODEL_A], "wins_b": c[MODEL_B], "ties": c[TIE],
            "two_orders": len(two), "both_valid": len(both), "flips": flips,
            "flip_rate": flips / len(both) if both else (0.0 if two else None),
            "opposite_rate": opposite / len(both) if both else (0.0 if two else None),
            "invalid_orders": sum((r["verdict_ab"] == INVALID) + (r.get("verdict_ba") == INVALID) for r in rows)}


def single_order(rows: list[dict]) -> list[dict]:
    """The rows with ``verdict`` replaced by the A/B-order verdict (the study's counting: one
    verdict per item, model a shown first)."""
    return [{**r, "verdict": r["verdict_ab"]} for r in rows]


def to_fastchat(rows: list[dict], judge: str) -> list[dict]:
    """Valid battles in the FastChat/HackMentor shape (``model_a``, ``model_b``, ``win``), with the
    item id, judge and answer lengths (words) as extra fields."""
    return [{"model_a": r["model_a"], "model_b": r["model_b"], "win": r["verdict"], "question_id": r["id"],
             "judge": judge, "answer_words_a": len(r["answer_a"].split()),
             "answer_words_b": len(r["answer_b"].split())}
            for r in rows if r["verdict"] != INVALID]
