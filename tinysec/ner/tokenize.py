"""Word tokenizer for security text: keeps IPs, domains, URLs' hosts, ``nginx/1.18.0`` and
``OpenSSH_8.4p1`` as single words.

A word is a run of word characters (letters, digits, ``_``, combining marks, invisible format
characters such as zero-width spaces) joined by single inner connectors ``. / - : @ + ~ %`` (or ``::`` as in IPv6)
that are followed by another word character; every other non-space character is a word of
its own. So ``example.com.`` -> ``example.com`` ``.``; ``(Ubuntu)`` -> ``(`` ``Ubuntu`` ``)``;
``[go0ogle.com](https://...)`` -> ``[`` ``go0ogle.com`` ``]`` ``(`` ...
"""

from __future__ import annotations

import re

_W = r"[^\W]|[\u0300-\u036f\u00ad\u200b-\u200d\u2060\ufeff]"
_WORD = re.compile(rf"(?:{_W})+(?:(?:::?|[./\-@+~%])(?:{_W})+)*|[^\s\u200b-\u200d\u2060\ufeff\u00ad]")


def word_spans(text: str) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` character spans of the words of ``text``, in order."""
    return [m.span() for m in _WORD.finditer(text)]


def words(text: str) -> list[str]:
    """The words of ``text`` (see :func:`word_spans`)."""
    return [text[a:b] for a, b in word_spans(text)]
