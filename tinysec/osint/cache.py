"""A TTL cache of raw tool answers, keyed by source, target and the options that shape the answer."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..io import atomic_path

log = logging.getLogger(__name__)


class ResponseCache:
    """Stores one JSON document per (source, target, options); entries older than ``ttl_s`` are stale.

    ``ttl_s <= 0`` disables reading (every call queries again) but still writes.
    """

    def __init__(self, root: str | os.PathLike, ttl_s: float, clock: Callable[[], float] = time.time):
        self.root, self.ttl_s, self.clock = Path(root), float(ttl_s), clock

    def path(self, source: str, target: str, options: dict) -> Path:
        key = json.dumps({"source": source, "target": target, "options": options}, sort_keys=True)
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        return self.root / source / f"{digest}.json"

    def get(self, source: str, target: str, options: dict) -> Any | None:
        """The cached value, or None when absent or older than the TTL."""
        path = self.path(source, target, options)
        if self.ttl_s <= 0 or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            age = self.clock() - float(entry["stored_at"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable cache entry %s", path)
            return None
        if age > self.ttl_s:
            log.info("cache entry for %s %s is stale (%.0f s > TTL %.0f s)", source, target, age, self.ttl_s)
            return None
        log.info("cache hit for %s %s (age %.0f s)", source, target, age)
        return entry["value"]

    def put(self, source: str, target: str, options: dict, value: Any) -> None:
        path = self.path(source, target, options)
        with atomic_path(path) as fh:
            json.dump({"stored_at": self.clock(), "source": source, "target": target,
                       "value": value}, fh)

    def fetch(self, source: str, target: str, options: dict, query: Callable[[], Any]) -> tuple[Any, bool]:
        """Cached value if fresh, else ``query()`` stored; returns (value, from_cache)."""
        value = self.get(source, target, options)
        if value is not None:
            return value, True
        value = query()
        self.put(source, target, options, value)
        return value, False


