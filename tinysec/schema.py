"""JSON schema files (draft 2020-12, written in YAML): validators and the defaults they fill in.

The config schemas (``config/schema/*.schema.yaml``) are the one place where a setting's default is
written; :func:`schema_defaults` reads them for package code that also runs outside the pipeline
(the ``tinysec`` command, tests that pass only some settings). :func:`load_validator` builds the
validator of a config or data-file schema. Imports nothing else from ``tinysec`` but
:mod:`tinysec.paths`, so every sub-package may use it.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import yaml

from .paths import CONFIG

#: Folder of the config schemas.
CONFIG_SCHEMAS = CONFIG / "schema"


def load_yaml(path: str | os.PathLike) -> Any:
    """The YAML (or JSON) document in ``path``."""
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_validator(schema_path: str | os.PathLike):
    """A draft 2020-12 validator for ``schema_path`` that resolves relative ``$ref`` files."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schema_path = Path(schema_path).resolve()
    schema = load_yaml(schema_path)
    schema["$id"] = schema_path.as_uri()

    def retrieve(uri: str) -> Resource:
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        return Resource.from_contents(load_yaml(Path(url2pathname(urlparse(uri).path))))

    registry = Registry(retrieve=retrieve).with_resource(schema["$id"], Resource.from_contents(schema))
    return Draft202012Validator(schema, registry=registry)


@functools.cache
def _config_schema(name: str) -> dict:
    return load_yaml(CONFIG_SCHEMAS / name)


def _filled(prop: dict) -> Any:
    """The default of one property; an object default gets its own properties' defaults too
    (as ``snakemake.utils.validate`` fills a section that the config leaves out)."""
    value = copy.deepcopy(prop["default"])
    if isinstance(value, dict) and "properties" in prop:
        value = {**_defaults_of(prop), **value}
    return value


def _defaults_of(schema: dict) -> dict:
    return {key: _filled(prop) for key, prop in (schema.get("properties") or {}).items()
            if isinstance(prop, dict) and "default" in prop}


def schema_defaults(name: str, *keys: str) -> dict:
    """Defaults of the settings under ``keys`` in config schema ``config/schema/<name>``.

    ``schema_defaults("instruct.schema.yaml", "train")`` is ``{"lr": 1e-4, "epochs": 3, ...}``:
    every property of ``instruct.train`` that has a default (nested objects filled the same way).
    A key ``*`` stands for any key of a mapping (``schema_defaults("models.schema.yaml", "*")``:
    the defaults of one model entry). A fresh copy each call, so callers may change it.
    """
    schema = _config_schema(name)
    for i, key in enumerate(keys):
        props = schema.get("properties") or {}
        if key == "*" and isinstance(schema.get("additionalProperties"), dict):
            schema = schema["additionalProperties"]
        elif key in props:
            schema = props[key]
        else:
            raise KeyError(f"config/schema/{name} has no setting {'.'.join(keys[:i + 1])!r}")
    return _defaults_of(schema)
