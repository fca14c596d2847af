"""The shipped vocabularies of the synthetic corpus (``resources/osint/``), loaded and checked."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..io import InputError, read_text
from ..paths import resource

PRODUCT_FIELDS = ("service", "module", "ports", "product", "versions", "extrainfo", "cpe", "banner")


@dataclass(frozen=True)
class Vocabulary:
    products: list[dict]
    services: list[dict]
    organizations: list[str]
    registrars: list[dict]
    tlds: list[dict]
    operating_systems: list[dict]
    words: list[str]


def _lines(path: Path) -> list[str]:
    return [ln.strip() for ln in read_text(path).splitlines() if ln.strip() and not ln.startswith("#")]


def _tsv(path: Path, fields: tuple[str, ...]) -> list[dict]:
    rows = list(csv.DictReader(_lines(path), delimiter="\t"))
    if not rows:
        raise InputError(path, "no rows")
    for i, row in enumerate(rows, start=2):
        for field in fields:
            if not (row.get(field) or "").strip():
                raise InputError(path, "missing value", row=i, field=field)
    return rows


def _products(path: Path) -> list[dict]:
    items = yaml.safe_load(read_text(path))
    if not isinstance(items, list) or not items:
        raise InputError(path, "expected a non-empty list of products")
    for i, item in enumerate(items, start=1):
        for field in PRODUCT_FIELDS:
            if field not in item:
                raise InputError(path, "missing field", row=i, field=field)
        if not item["versions"] or not item["ports"]:
            raise InputError(path, "needs at least one version and one port", row=i, field="versions")
    return items


@functools.lru_cache(maxsize=4)
def load_vocabulary(root: str | None = None) -> Vocabulary:
    """All vocabularies from ``root`` (default: the shipped ``resources/osint``)."""
    base = Path(root) if root else resource("osint")
    services = _tsv(base / "nmap_services.tsv", ("port", "protocol", "service"))
    for row in services:
        row["port"] = int(row["port"])
    return Vocabulary(
        products=_products(base / "products.yaml"),
        services=services,
        organizations=_lines(base / "organizations.txt"),
        registrars=_tsv(base / "registrars.tsv", ("name", "iana_id", "whois_server", "url")),
        tlds=_tsv(base / "tlds.tsv", ("tld", "registry_whois")),
        operating_systems=_tsv(base / "operating_systems.tsv", ("nmap_name", "shodan_name", "cpe")),
        words=_lines(base / "domain_words.txt"),
    )
