"""The project's one downloader: a URL checked against its sha256 (retries with backoff), or a local
path (offline). Used for the instruct data entries and for a CTI STIX bundle given by URL.

A data entry is ``{name, url, sha256}`` or ``{name, path}``. :func:`fetch_entry` puts the file at
``dest`` either way, so later steps never care where it came from.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from .io import atomic_path

log = logging.getLogger(__name__)


class ChecksumError(ValueError):
    """A downloaded file does not have the configured sha256."""


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@retry(retry=retry_if_exception_type((OSError,)), stop=stop_after_attempt(4),
       wait=wait_exponential(multiplier=1, max=20), reraise=True)
def _download(url: str, dest: Path, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_path(dest, "wb") as out:
        shutil.copyfileobj(resp, out)


def fetch(url: str, dest: str | os.PathLike, sha256: str | None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (retries with backoff) and check its sha256.

    A mismatch deletes the file and raises :class:`ChecksumError`. ``sha256=None`` is allowed but
    logged as unverified, with the hash actually received.
    """
    dest = Path(dest)
    log.info("downloading %s -> %s", url, dest)
    _download(url, dest, timeout)
    got = sha256_of(dest)
    if sha256 is None:
        log.warning("%s has no sha256 in the config; received sha256 %s (unverified)", url, got)
    elif got.lower() != sha256.lower():
        dest.unlink(missing_ok=True)
        raise ChecksumError(f"{url}: sha256 is {got}, the config expects {sha256}")
    return dest


def fetch_entry(entry: Mapping[str, Any], dest: str | os.PathLike) -> Path:
    """Put the file of a data entry at ``dest``: download ``url`` or copy the local ``path``."""
    dest = Path(dest)
    if entry.get("url"):
        return fetch(entry["url"], dest, entry.get("sha256"))
    path = entry.get("path")
    if not path:
        raise ValueError(f"data entry '{entry.get('name')}' needs a url (with sha256) or a path")
    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(f"data entry '{entry.get('name')}': {src} does not exist; put the file "
                                f"there or give the entry a url and sha256")
    if entry.get("sha256") and sha256_of(src) != entry["sha256"].lower():
        raise ChecksumError(f"{src}: sha256 differs from the one configured for '{entry.get('name')}'")
    with atomic_path(dest, "wb") as out, open(src, "rb") as fh:
        shutil.copyfileobj(fh, out)
    return dest
