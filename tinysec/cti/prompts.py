"""CTI examples as instruction records ``{id, instruction, input, output}`` for the shared
training and generation code (:mod:`tinysec.models.train`, :mod:`tinysec.models.generate`).

The input is the CTI sentence; the output is tactic names (tactic task) or technique ids
(technique task), comma-separated. Zero-shot prompts also list the labels to choose from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .labels import Catalogue
from .outputs import LabelMapper

FIELD = {"tactic": "tactics", "technique": "techniques"}

INSTRUCTIONS = {
    "tactic": ("Name the MITRE ATT&CK tactics that this threat-intelligence sentence describes. "
               "Reply with the tactic names only, separated by commas."),
    "technique": ("Name the MITRE ATT&CK techniques that this threat-intelligence sentence describes. "
                  "Reply with the technique ids only (for example T1059), separated by commas."),
}


def label_field(task: str) -> str:
    """Record field holding the gold labels of ``task``."""
    try:
        return FIELD[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; use 'tactic' or 'technique'") from None


def zero_shot_choices(task: str, catalogue: Catalogue, valid: Sequence[str], train: Sequence[dict],
                      limit: int | None) -> list[str]:
    """Labels listed in a zero-shot prompt: all valid ones, or the ``limit`` most frequent in ``train``."""
    if not limit or limit >= len(valid):
        return list(valid)
    freq = Counter(lab for r in train for lab in r[label_field(task)])
    ranked = sorted(valid, key=lambda lab: (-freq[lab], lab))
    return sorted(ranked[:limit], key=list(valid).index)


def instruction(task: str, catalogue: Catalogue, choices: Sequence[str] | None = None) -> str:
    """The instruction text; with ``choices`` it lists the labels to choose from."""
    text = INSTRUCTIONS[task]
    if choices:
        if task == "tactic":
            listed = ", ".join(catalogue.name(lab) for lab in choices)
        else:
            listed = "; ".join(f"{lab} {catalogue.name(lab)}" for lab in choices)
        text += f" Choose from: {listed}."
    return text


def to_records(rows: Sequence[dict], task: str, mapper: LabelMapper, choices: Sequence[str] | None = None) -> list[dict]:
    """Instruction records of ``rows`` (the gold answer in ``output``)."""
    instr = instruction(task, mapper.catalogue, choices)
    field = label_field(task)
    return [{"id": r["id"], "instruction": instr, "input": r["text"], "output": mapper.format_answer(r[field]),
             "kind": f"cti-{task}"} for r in rows]
