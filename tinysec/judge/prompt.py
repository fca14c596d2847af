"""The LLM judges' prompt: a user-replaceable template (``$record`` is the dictionary of the study's
Appendix A as JSON; ``$instruction``, ``$input``, ``$output_a``, ``$output_b`` are also available)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from string import Template

from ..io import InputError, read_text
from ..paths import resource

DEFAULT_TEMPLATE = resource("judge", "pairwise_prompt.txt")
DEFAULT_REASK = resource("judge", "reask_prompt.txt")


@dataclass(frozen=True)
class PairTask:
    """One judgment: an instruction (with optional input), the answer shown as A, the answer shown
    as B, and the item's reference answer (used by the reference judge only)."""

    instruction: str
    input: str
    first: str
    second: str
    reference: str = ""


class PromptTemplate:
    """A judge prompt read from a template file, plus the re-ask message for invalid replies."""

    def __init__(self, path: str | os.PathLike = DEFAULT_TEMPLATE, reask_path: str | os.PathLike = DEFAULT_REASK):
        self.path = str(path)
        self.text = read_text(path)
        self.reask = read_text(reask_path).strip()
        try:
            Template(self.text).substitute(record="", instruction="", input="", output_a="", output_b="")
        except (KeyError, ValueError) as exc:
            raise InputError(path, f"bad template placeholder {exc}; use $record, $instruction, $input, "
                                   f"$output_a, $output_b (write $$ for a dollar sign)") from None
        if "$record" not in self.text and "$output_a" not in self.text:
            raise InputError(path, "template shows neither $record nor $output_a/$output_b to the judge")

    def render(self, task: PairTask) -> str:
        record = {"instruction": task.instruction, "input": task.input,
                  "model-A-output": task.first, "model-B-output": task.second}
        return Template(self.text).substitute(
            record=json.dumps(record, ensure_ascii=False, indent=1), instruction=task.instruction,
            input=task.input, output_a=task.first, output_b=task.second)
