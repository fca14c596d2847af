"""Config pre-check: schema errors reported with the full key path (``judge.margin``).

``snakemake.utils.validate`` stays what validates the config and fills defaults; its message for
a misspelled key, however, names neither the section nor the key's path. :func:`check_config`
runs the same draft 2020-12 schema (with its ``$ref`` files) first and raises a
:class:`ConfigError` that lists every problem as ``<config file>: <dotted.key.path>: <what is
wrong>``, with a "did you mean" hint for misspelled keys.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Iterable

import yaml


class ConfigError(ValueError):
    """The configuration does not match its schema; the message names every offending key."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid {source} ({len(problems)} problem(s)):\n{lines}")


def _load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_validator(schema_path: str | os.PathLike):
    """A draft 2020-12 validator for ``schema_path`` that resolves relative ``$ref`` files."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schema_path = Path(schema_path).resolve()
    schema = _load_yaml(schema_path)
    schema["$id"] = schema_path.as_uri()

    def retrieve(uri: str) -> Resource:
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        return Resource.from_contents(_load_yaml(Path(url2pathname(urlparse(uri).path))))

    registry = Registry(retrieve=retrieve).with_resource(schema["$id"], Resource.from_contents(schema))
    return Draft202012Validator(schema, registry=registry)


def _dotted(path: Iterable[Any]) -> str:
    parts = []
    for p in path:
        parts.append(f"[{p}]" if isinstance(p, int) else str(p))
    return ".".join(parts).replace(".[", "[") or "<top level>"


def _allowed_keys(schema: dict) -> list[str]:
    return sorted((schema.get("properties") or {}).keys())


def describe_error(error) -> list[str]:
    """Human-readable lines for one ``jsonschema`` error, each starting with the key path."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _allowed_keys(error.schema)
        extra = [k for k in error.instance if k not in allowed]
        lines = []
        for key in extra:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            where = _dotted(path + [key])
            msg = f"{where}: unknown key"
            if hint:
                msg += f" (did you mean '{_dotted(path + [hint[0]])}'?)"
            elif allowed:
                msg += f" (allowed: {', '.join(allowed)})"
            lines.append(msg)
        if lines:
            return lines
    if error.validator == "required":
        return [f"{_dotted(path)}: {error.message}"]
    if error.validator == "type":
        return [f"{_dotted(path)}: expected {error.validator_value}, got {error.instance!r}"]
    return [f"{_dotted(path)}: {error.message}"]


def config_problems(config: dict, schema_path: str | os.PathLike) -> list[str]:
    """Every schema violation of ``config`` as ``dotted.path: message`` lines (empty when valid)."""
    validator = load_validator(schema_path)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    problems: list[str] = []
    for err in errors:
        # oneOf/anyOf: report the most specific sub-error instead of the whole alternative set.
        leaf = err
        if err.context:
            leaf = max(err.context, key=lambda e: len(e.absolute_path))
        problems.extend(describe_error(leaf))
    return problems


def check_config(config: dict, schema_path: str | os.PathLike, source: str = "config") -> None:
    """Raise :class:`ConfigError` naming every offending key when ``config`` breaks its schema."""
    problems = config_problems(config, schema_path)
    if problems:
        raise ConfigError(problems, source=source)


def section_schemas(schema_path: str | os.PathLike) -> dict[str, str]:
    """Top-level keys whose schema is a ``$ref`` to a file, mapped to that file (relative path).

    ``snakemake.utils.validate`` fills defaults only down to a ``$ref`` into a file with its own
    ``$schema`` (jsonschema switches to a plain validator there), so the Snakefile validates each
    of these sections again against its own file to fill the section's defaults.
    """
    schema = _load_yaml(Path(schema_path))
    return {key: sub["$ref"] for key, sub in (schema.get("properties") or {}).items()
            if isinstance(sub, dict) and isinstance(sub.get("$ref"), str) and "#" not in sub["$ref"]}


def validate_config(config: dict, schema_path: str | os.PathLike, source: str = "config") -> dict:
    """Check ``config`` (errors name each key's path), then validate it and fill its defaults.

    The validation and defaults come from ``snakemake.utils.validate``: once for the whole
    config, then once per ``$ref``'d section against the section's own schema (see
    :func:`section_schemas`). ``config`` is updated in place and returned.
    """
    from snakemake.utils import validate

    schema_path = Path(schema_path).resolve()
    check_config(config, schema_path, source=source)
    validate(config, str(schema_path))
    for section, ref in section_schemas(schema_path).items():
        validate(config[section], str(schema_path.parent / ref))
    return config
