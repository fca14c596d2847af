"""Readers for instruction files: Alpaca (JSON array or JSONL) and HackMentor's seed format.

- Alpaca rows: ``{"instruction", "input", "output"}``.
- HackMentor seed rows: ``{"instruction", "instances": [{"input", "output"}, ...]}``; every
  instance is one item, so HackMentor's 144 seeds give 145 items.

:func:`read_instructions` detects the format from the first row and says which it found. A bad row
(missing field, empty output, text that is not valid UTF-8) raises :class:`tinysec.io.InputError`
naming the file, the row (1-based: array position or JSONL line) and the field; with
``strict=False`` the row is skipped and the skip recorded in the returned :class:`ReadReport`.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io import InputError

log = logging.getLogger(__name__)

FORMATS = ("alpaca", "hackmentor")


@dataclass
class ReadReport:
    """What reading one file found: its format, row and item counts, skipped rows by reason."""

    path: str
    format: str
    container: str
    rows: int = 0
    items: int = 0
    skipped: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        reasons = Counter(s["reason"] for s in self.skipped)
        return {"path": self.path, "format": self.format, "container": self.container, "rows": self.rows,
                "items": self.items, "skipped": len(self.skipped), "skipped_by_reason": dict(reasons),
                "skipped_rows": self.skipped[:50]}


def _raw_rows(path: Path) -> tuple[str, Iterator[tuple[int, Any]]]:
    """('json'|'jsonl', iterator of (row number, parsed row)). Bad UTF-8 is kept as lone surrogates
    so that it can be reported per row and field."""
    data = path.read_bytes()
    if not data.strip():
        raise InputError(path, "file is empty")
    text = data.decode("utf-8", errors="surrogateescape")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"invalid JSON: {exc.msg} at column {exc.colno}", row=exc.lineno) from None
        return "json", iter(enumerate(rows, start=1))

    def lines() -> Iterator[tuple[int, Any]]:
        for lineno, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(path, f"invalid JSON: {exc.msg} at column {exc.colno}", row=lineno) from None

    return "jsonl", lines()


def detect_format(row: Any) -> str:
    """'hackmentor' when the row has ``instances``, 'alpaca' when it has ``output``."""
    if isinstance(row, dict):
        if "instances" in row:
            return "hackmentor"
        if "output" in row or "instruction" in row:
            return "alpaca"
    raise ValueError("cannot tell the format: expected an object with 'instruction' and "
                     "'output' (Alpaca) or 'instances' (HackMentor seeds)")


def _text(path: Path, row: int, obj: dict, key: str, *, field_name: str | None = None,
          allow_empty: bool = True) -> str:
    name = field_name or key
    if key not in obj:
        raise InputError(path, "missing field", row=row, field=name)
    value = obj[key]
    if not isinstance(value, str):
        raise InputError(path, f"expected text, got {type(value).__name__}", row=row, field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(path, "not valid UTF-8", row=row, field=name) from None
    if not allow_empty and not value.strip():
        raise InputError(path, "empty value", row=row, field=name)
    return value


def _items_of_row(path: Path, fmt: str, row: int, obj: Any, prefix: str) -> list[dict]:
    if not isinstance(obj, dict):
        raise InputError(path, f"expected a JSON object, got {type(obj).__name__}", row=row)
    instruction = _text(path, row, obj, "instruction", allow_empty=False)
    if fmt == "alpaca":
        return [{"id": f"{prefix}-{row}", "instruction": instruction,
                 "input": _text(path, row, obj, "input"),
                 "output": _text(path, row, obj, "output", allow_empty=False)}]
    instances = obj.get("instances")
    if "instances" not in obj:
        raise InputError(path, "missing field", row=row, field="instances")
    if not isinstance(instances, list) or not instances:
        raise InputError(path, "expected a non-empty list", row=row, field="instances")
    items = []
    for k, inst in enumerate(instances):
        where = f"instances[{k}]"
        if not isinstance(inst, dict):
            raise InputError(path, "expected an object", row=row, field=where)
        items.append({"id": f"{prefix}-{row}" + (f".{k + 1}" if len(instances) > 1 else ""),
                      "instruction": instruction,
                      "input": _text(path, row, inst, "input", field_name=f"{where}.input"),
                      "output": _text(path, row, inst, "output", field_name=f"{where}.output", allow_empty=False)})
    return items


def read_instructions(path: str | os.PathLike, strict: bool = True, prefix: str | None = None,
                      fmt: str = "auto") -> tuple[list[dict], ReadReport]:
    """Read an instruction file into items ``{id, instruction, input, output}``.

    ``fmt`` is 'auto' (detect from the first row), 'alpaca' or 'hackmentor'. ``prefix`` starts
    every item id (default: the file's stem). Returns the items and a :class:`ReadReport`.
    """
    path = Path(path)
    container, rows = _raw_rows(path)
    prefix = prefix or path.stem
    items: list[dict] = []
    report: ReadReport | None = None
    for row, obj in rows:
        if report is None:
            if fmt == "auto":
                try:
                    fmt = detect_format(obj)
                except ValueError as exc:
                    raise InputError(path, str(exc), row=row) from None
            elif fmt not in FORMATS:
                raise ValueError(f"unknown instruction format {fmt!r}; use auto, alpaca or hackmentor")
            report = ReadReport(str(path), fmt, container)
            log.info("%s: %s format (%s)", path, fmt, container.upper())
        report.rows += 1
        try:
            new = _items_of_row(path, fmt, row, obj, prefix)
        except InputError as exc:
            if strict:
                raise
            report.skipped.append({"row": exc.row, "field": exc.field, "reason": str(exc).split(": ", 1)[-1]})
            log.warning("skipped: %s", exc)
            continue
        items.extend(new)
    if report is None:
        raise InputError(path, "no rows")
    report.items = len(items)
    return items, report
