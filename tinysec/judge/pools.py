"""Rating pools (``judge.pools``): named subsets of contestants rated on their own.

Each pool gets its own ratings table, win-rate figure and battle-count figures, built from the
primary judge's battles among its members only. Pool ``all`` keeps the historic file names (``results/tables/elo.md``...); any
other pool ``P`` adds the suffix ``_P``. A pool whose members include the primary judge's model
(or a fine-tune of it) is refused unless it sets ``allow_self_judging: true``.

Imports no torch: the Snakefile and :mod:`tinysec.config` use it while building the DAG.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Name of the pool whose files keep the names they had before pools existed.
ALL = "all"
#: What each rating column of the Elo table is, for captions (``judge.pools.<P>.rating``).
RATING_NAMES = {"elo": "online Elo, one pass in battle-file order (column elo)",
                "elo_median": "median Elo over shuffled battle orders (column elo_median)",
                "bt": "Bradley-Terry maximum likelihood (column bt)"}
#: Short names of the same, for figure titles.
RATING_LABELS = {"elo": "online Elo", "elo_median": "shuffled-order median Elo", "bt": "Bradley-Terry"}


def suffix(pool: str) -> str:
    """File-name suffix of ``pool``'s outputs: '' for ``all``, else ``_<pool>``."""
    return "" if pool == ALL else f"_{pool}"


def outputs(pool: str) -> dict[str, str]:
    """Every file one pool writes, by role."""
    s = suffix(pool)
    return {"csv": f"results/tables/elo{s}.csv", "md": f"results/tables/elo{s}.md",
            "win_rate": f"results/figures/win_rate_predicted{s}.png",
            "counts": f"results/figures/battle_counts{s}.png",
            "no_ties": f"results/figures/battle_counts_no_ties{s}.png",
            "ties": f"results/figures/battle_counts_ties{s}.png"}


def judge_contestants(judge_model: str | None, contestants: Iterable[str],
                      methods: Iterable[str]) -> list[str]:
    """Contestants that are the judge's model: the model itself and its fine-tunes ``<model>-<method>``."""
    if not judge_model:
        return []
    same = {judge_model, *(f"{judge_model}-{m}" for m in methods)}
    return [c for c in contestants if c in same]


def members(spec: Mapping[str, Any], everyone: list[str]) -> list[str]:
    """Members of one pool: ``everyone`` (the contestants in a judged pair) for 'all', else its list."""
    return list(everyone) if spec["members"] == ALL else list(spec["members"])


def round_robin(names: list[str]) -> list[tuple[str, str]]:
    """Every unordered pair of ``names``, in list order."""
    return [(x, y) for i, x in enumerate(names) for y in names[i + 1:]]


def pool_problems(pools: Mapping[str, Mapping[str, Any]], contestants: list[str], everyone: list[str],
                  judge_name: str, judge_model: str | None, methods: Iterable[str]) -> list[str]:
    """Why ``judge.pools`` cannot be built, one ``key.path: message`` line per problem.

    ``contestants``: every configured contestant; ``everyone``: those in a judged pair (pool
    'all'); ``judge_model``: the primary judge's model (None for the reference judge)."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for name, spec in pools.items():
        where = f"judge.pools.{name}"
        if spec["members"] != ALL:
            for i, m in enumerate(spec["members"]):
                if m not in contestants:
                    problems.append(f"{where}.members[{i}]: '{m}' is not a contestant (one of: "
                                    f"{', '.join(contestants)})")
        own = judge_contestants(judge_model, members(spec, everyone), methods)
        if own and not spec["allow_self_judging"]:
            problems.append(f"{where}: the judge '{judge_name}' (model '{judge_model}') would rate itself: "
                            f"{', '.join(own)} in this pool; remove it from the pool or set "
                            f"{where}.allow_self_judging: true")
        for path in outputs(name).values():
            if path in seen:
                problems.append(f"{where}: its output {path} is also an output of pool '{seen[path]}'; rename the pool")
            seen.setdefault(path, name)
    return problems



def in_pool(rows: Iterable[Mapping[str, Any]], members: Iterable[str]) -> list[dict]:
    """The battles (FastChat shape or battle rows) whose two models are both ``members``."""
    keep = set(members)
    return [dict(r) for r in rows if r["model_a"] in keep and r["model_b"] in keep]


def pool_judging(summary: Mapping[str, Any], members: Iterable[str]) -> dict:
    """Judging facts of a pool from a judge's ``summary.json``: orders, battles, invalid battles
    and the position-flip rate (None when no battle was judged in both orders), over the pairs
    whose two models are ``members``."""
    keep = set(members)
    stats = [s for key, s in summary["pairs"].items() if set(key.split("__vs__")) <= keep]
    both_valid = sum(s["both_valid"] for s in stats)
    return {"orders": list(summary["orders"]), "battles": sum(s["battles"] for s in stats),
            "invalid": sum(s["invalid"] for s in stats),
            "flip_rate": sum(s["flips"] for s in stats) / both_valid if both_valid else None}


def caption_facts(settings: Mapping[str, Any], judging: Mapping[str, Any]) -> str:
    """Sentences every caption of a pool states: its members, how it was judged, whether the
    judge rates itself in it."""
    two = judging["orders"] == ["ab", "ba"]
    flip = judging["flip_rate"]
    text = (f"Pool `{settings['pool']}`: {', '.join(settings['members'])}. "
            + (f"Each pair judged in both orders (disagreement = tie; position-flip rate "
               f"{'n/a' if flip is None else format(flip, '.1%')})" if two else
               "Each pair judged once, model a shown first (the study's counting)")
            + f"; {judging['invalid']} invalid battles excluded.")
    if settings["self_judged"]:
        text += (f" allow_self_judging: the judge's own model rates itself here "
                 f"({', '.join(settings['self_judged'])}).")
    return text
