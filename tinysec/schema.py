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
    """The YAML (or JSON) document in ``path`` (libyaml's C loader when available)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)


@functools.cache
def _schema_file(path: Path) -> dict:
    """A schema file, parsed once per process (callers must not change it)."""
    return load_yaml(path)


@functools.cache
def load_validator(schema_path: str | os.PathLike, cls: type | None = None):
    """The draft 2020-12 validator (or ``cls``, a validator class) of ``schema_path``, resolving
    relative ``$ref`` files; built once per process for each path."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schema_path = Path(schema_path).resolve()
    schema = {**_schema_file(schema_path), "$id": schema_path.as_uri()}

    def retrieve(uri: str) -> Resource:
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        return Resource.from_contents(_schema_file(Path(url2pathname(urlparse(uri).path))))

    registry = Registry(retrieve=retrieve).with_resource(schema["$id"], Resource.from_contents(schema))
    return (cls or Draft202012Validator)(schema, registry=registry)


@functools.cache
def _defaults_validator_class():
    """Draft 2020-12 that also sets each missing property that has a ``default`` (a deep copy) before
    descending, so the defaults of a filled-in object are filled too (as ``snakemake.utils.validate``
    with ``set_default``)."""
    from jsonschema import Draft202012Validator, validators

    plain = Draft202012Validator.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if isinstance(sub, dict) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from plain(validator, props, instance, schema)

    return validators.extend(Draft202012Validator, {"properties": properties})


def fill_defaults(instance: dict, schema_path: str | os.PathLike) -> list[str]:
    """Fill ``instance`` in place with the defaults of schema ``schema_path``; returns the messages of
    what still breaks the schema afterwards (empty when valid)."""
    validator = load_validator(Path(schema_path).resolve(), _defaults_validator_class())
    return [err.message for err in validator.iter_errors(instance)]


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
