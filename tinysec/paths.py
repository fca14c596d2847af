"""Where the repository's shipped files live, independent of the Snakemake working directory."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESOURCES = REPO / "resources"
CONFIG = REPO / "config"


def resource(*parts: str) -> Path:
    """Path of a shipped file under ``resources/``."""
    return RESOURCES.joinpath(*parts)
