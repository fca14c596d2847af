"""Mapping free-form model answers onto the valid label set, tolerant of case and format.

An answer is cut into fragments at commas, semicolons, '|' and line breaks. Technique ids
(``T1059.001``, ``t1059``) and tactic ids (``TA0002``) are found anywhere; a fragment otherwise
matches a label by its name (``Defense Evasion``, ``defense-evasion``, ``Command and Scripting
Interpreter``), ignoring case, hyphens, underscores and punctuation. Tactic names are also found
inside longer fragments (``"The tactic is Execution."``). Fragments that match nothing are
returned as ``unmapped``; an answer with no label at all is an invalid output.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .labels import TACTIC_ID_RE, TECHNIQUE_RE, Catalogue

SEPARATORS_RE = re.compile(r"[,;|\n]+")
FILLER = {"", "none", "n a", "na", "null", "answer", "tactic", "tactics", "technique", "techniques", "and"}


def normalize(text: str) -> str:
    """Lower-case, hyphens/underscores to spaces, other punctuation dropped, spaces collapsed."""
    text = text.casefold().replace("-", " ").replace("_", " ")
    text = re.sub(r"[^\w\s.]", " ", text)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Mapped:
    labels: list[str]
    unmapped: list[str]

    @property
    def invalid(self) -> bool:
        return not self.labels


class LabelMapper:
    """Maps answers of one task onto its valid labels (see the module docstring)."""

    def __init__(self, task: str, catalogue: Catalogue, valid: list[str], to_parent: bool):
        self.task, self.catalogue, self.to_parent = task, catalogue, to_parent
        self.valid = list(valid)
        self._valid = set(valid)
        self._order = {lab: i for i, lab in enumerate(valid)}
        self.aliases: dict[str, str] = {}
        if task == "tactic":
            for t in catalogue.tactics:
                if t.id in self._valid:
                    for alias in (t.name, t.shortname, t.id):
                        self.aliases[normalize(alias)] = t.id
        else:
            names = Counter(normalize(catalogue.name(lab)) for lab in valid)
            for lab in valid:
                name = normalize(catalogue.name(lab))
                if name and names[name] == 1:  # ambiguous sub-technique names are left out
                    self.aliases[name] = lab
        self._contained = sorted(((a, lab) for a, lab in self.aliases.items() if task == "tactic"),
                                 key=lambda x: -len(x[0]))

    def _canonical_technique(self, tid: str) -> str | None:
        lab = self.catalogue.technique_label(tid, self.to_parent)
        return lab if lab in self._valid else None

    def map(self, answer: str | None) -> Mapped:
        """Labels named in ``answer`` (in label-set order) and the fragments that matched nothing."""
        found: set[str] = set()
        unmapped: list[str] = []
        for fragment in SEPARATORS_RE.split(answer or ""):
            hits: set[str] = set()
            rest = fragment
            id_re = TECHNIQUE_RE if self.task == "technique" else TACTIC_ID_RE
            for m in id_re.finditer(fragment):
                lab = self._canonical_technique(m.group()) if self.task == "technique" else m.group().upper()
                if lab in self._valid:
                    hits.add(lab)
                else:
                    unmapped.append(m.group())
                rest = rest.replace(m.group(), " ")
            key = normalize(rest)
            if key in self.aliases:
                hits.add(self.aliases[key])
            elif key not in FILLER:
                padded = f" {key} "
                contained = {lab for alias, lab in self._contained if f" {alias} " in padded}
                hits |= contained
                if not contained and not hits:
                    unmapped.append(fragment.strip())
            found |= hits
        return Mapped(sorted(found, key=self._order.__getitem__), unmapped)

    def format_answer(self, labels: list[str]) -> str:
        """The training answer for ``labels``: tactic names or technique ids, comma-separated."""
        ordered = sorted(labels, key=lambda lab: self._order.get(lab, len(self._order)))
        if self.task == "tactic":
            return ", ".join(self.catalogue.name(lab) for lab in ordered)
        return ", ".join(ordered)
