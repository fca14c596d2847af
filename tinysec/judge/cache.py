"""Content-addressed cache of judgments (SQLite, safe for parallel Snakemake jobs).

A key hashes everything that decides a verdict: the judge's identity (kind, model, settings),
the rendered prompt (so the template, instruction, input and both answers in their order).
A rerun, or a newly added model, only sends the pairs whose key is not stored yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def content_key(*parts: Any) -> str:
    """SHA-256 of the JSON encoding of ``parts``."""
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JudgmentCache:
    """``key -> JSON value`` store in one SQLite file; ``path=None`` keeps it in memory."""

    def __init__(self, path: str | os.PathLike | None):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path) if path is not None else ":memory:"
        self._db = sqlite3.connect(self.path, timeout=120)
        self._db.execute("PRAGMA journal_mode=WAL" if path is not None else "PRAGMA journal_mode=MEMORY")
        self._db.execute("CREATE TABLE IF NOT EXISTS judgments (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.commit()

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(dict.fromkeys(keys))
        out: dict[str, Any] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = self._db.execute(
                f"SELECT key, value FROM judgments WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            out.update((k, json.loads(v)) for k, v in rows)
        return out

    def put_many(self, items: dict[str, Any]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO judgments (key, value) VALUES (?, ?)",
                                 [(k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()])

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM judgments").fetchone()[0]

    def close(self) -> None:
        self._db.close()
