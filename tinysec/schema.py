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
from collections.abc import Callable
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
    from referencing.jsonschema import DRAFT202012

    schema_path = Path(schema_path).resolve()
    schema = {**_schema_file(schema_path), "$id": schema_path.as_uri()}

    def retrieve(uri: str) -> Resource:
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        # without its "$schema", a $ref'd file is validated by this same (possibly extended) class:
        # jsonschema picks the class of a sub-schema's "$schema" dialect when it has one
        contents = {k: v for k, v in _schema_file(Path(url2pathname(urlparse(uri).path))).items() if k != "$schema"}
        return DRAFT202012.create_resource(contents)

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


def _config_schema(name: str) -> dict:
    return _schema_file((CONFIG_SCHEMAS / name).resolve())


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


# ---------------------------------------------------------------- fast path for valid data rows
#: Keywords :func:`surely_valid` understands; a schema using any other keyword is left to jsonschema.
_FAST_KEYS = frozenset({"$schema", "$id", "$defs", "$ref", "title", "description", "default", "examples", "type",
                        "properties", "required", "additionalProperties", "items", "allOf", "enum", "minLength",
                        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "x-expected"})
_TYPES = {"string": lambda x: isinstance(x, str), "object": lambda x: isinstance(x, dict),
          "array": lambda x: isinstance(x, list), "boolean": lambda x: isinstance(x, bool),
          "null": lambda x: x is None, "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
          "number": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)}
_BOUNDS = (("minimum", lambda x, b: x >= b), ("maximum", lambda x, b: x <= b),
           ("exclusiveMinimum", lambda x, b: x > b), ("exclusiveMaximum", lambda x, b: x < b))


def surely_valid(instance: Any, schema_path: str | os.PathLike) -> bool:
    """True when ``instance`` certainly fits the schema file ``schema_path``, checked by closures
    compiled once from the schema (a microsecond or so per field). False means "not sure": the
    instance breaks the schema, or the schema uses a keyword outside :data:`_FAST_KEYS` (or an
    integer is written as a float); callers then run the full validator, which also explains the error."""
    return _file_checker(Path(schema_path).resolve())(instance)


@functools.cache
def _file_checker(path: Path) -> Callable[[Any], bool]:
    return _compile(_schema_file(path), path)


def _ref_checker(ref: str, doc: Path) -> Callable[[Any], bool]:
    """The checker of a ``$ref`` target, compiled at its first use (so recursive schemas compile)."""
    compiled: list[Callable[[Any], bool]] = []

    def check(x: Any) -> bool:
        if not compiled:
            file, _, pointer = ref.partition("#")
            target_doc = (doc.parent / file).resolve() if file else doc
            node: Any = _schema_file(target_doc)
            for part in filter(None, pointer.split("/")):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            compiled.append(_compile(node, target_doc))
        return compiled[0](x)

    return check


def _compile(s: Any, doc: Path) -> Callable[[Any], bool]:
    if isinstance(s, bool) or not isinstance(s, dict) or not s.keys() <= _FAST_KEYS:
        verdict = s is True or s == {}
        return lambda x: verdict
    checks: list[Callable[[Any], bool]] = []
    if "$ref" in s:
        checks.append(_ref_checker(s["$ref"], doc))
    if "type" in s:
        kinds = [_TYPES[k] for k in ([s["type"]] if isinstance(s["type"], str) else s["type"])]
        checks.append(kinds[0] if len(kinds) == 1 else lambda x: any(k(x) for k in kinds))
    if "enum" in s:
        options = s["enum"]
        checks.append(lambda x: any(type(x) is type(e) and x == e for e in options))
    if "minLength" in s:
        n = s["minLength"]
        checks.append(lambda x: not isinstance(x, str) or len(x) >= n)
    bounds = [(ok, s[k]) for k, ok in _BOUNDS if k in s]
    if bounds:
        checks.append(lambda x: not _TYPES["number"](x) or all(ok(x, b) for ok, b in bounds))
    if {"required", "properties", "additionalProperties"} & s.keys():
        checks.append(_object_checker(s, doc))
    if "items" in s:
        checks.append(_items_checker(s["items"], doc))
    checks += [_compile(sub, doc) for sub in s.get("allOf", ())]
    if len(checks) == 1:
        return checks[0]
    return lambda x: all(c(x) for c in checks)


def _object_checker(s: dict, doc: Path) -> Callable[[Any], bool]:
    required = tuple(s.get("required", ()))
    props = {k: _compile(v, doc) for k, v in s.get("properties", {}).items()}
    extra = _compile(s.get("additionalProperties", True), doc)

    def check(x: Any) -> bool:
        if not isinstance(x, dict):
            return True
        return all(k in x for k in required) and all(props.get(k, extra)(v) for k, v in x.items())

    return check


_SCALAR_TYPES = {"string": str, "integer": int, "boolean": bool}


def _items_checker(items: Any, doc: Path) -> Callable[[Any], bool]:
    """Every item of a list fits ``items``; a list of plain strings, integers or booleans is checked in one pass."""
    kind = _SCALAR_TYPES.get(items.get("type")) if isinstance(items, dict) else None
    if kind is None or not items.keys() <= {"type", "description", "minLength", "minimum"}:
        each = _compile(items, doc)
        return lambda x: not isinstance(x, list) or all(each(i) for i in x)
    least_len, least = items.get("minLength"), items.get("minimum")

    def check(x: Any) -> bool:
        if not isinstance(x, list) or not x:
            return True
        if not all(type(i) is kind for i in x):
            return False
        return (least_len is None or min(map(len, x)) >= least_len) and (least is None or min(x) >= least)

    return check
