"""A rate limiter shared by every process of a run (a lock file holds the last request time)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path


class RateLimiter:
    """At most one request per ``interval_s`` seconds across processes using the same ``path``."""

    def __init__(self, path: str | os.PathLike, interval_s: float):
        self.path, self.interval_s = Path(path), float(interval_s)

    def wait(self) -> float:
        """Block until a request may go out; returns the seconds waited."""
        if self.interval_s <= 0:
            return 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                text = fh.read().strip()
                last = float(text) if text else 0.0
                waited = max(0.0, last + self.interval_s - time.time())
                if waited:
                    time.sleep(waited)
                fh.seek(0)
                fh.truncate()
                fh.write(repr(time.time()))
                fh.flush()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return waited
