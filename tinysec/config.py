"""Config pre-check: schema errors reported with the full key path (``judge.margin``).

:func:`check_config` validates the config against the draft 2020-12 schema (with its ``$ref``
files; parsed once per process) and raises a
:class:`ConfigError` that lists every problem as ``<config file>: <dotted.key.path>: <what is
wrong>``, with a "did you mean" hint for misspelled keys.

:func:`validate_config` then checks what a schema cannot: every name of a model, judge or
perturbation family is defined and usable where it is named (no ``api:`` model to fine-tune),
the source of each model in use can be loaded here (without importing torch), and split
fractions add up to 1. :func:`load_config_file` names the file and line of a YAML syntax error;
:func:`exit_on_config_error` lets the Snakefile stop with one message instead of a traceback;
``python -m tinysec.config FILE...`` runs every check on config files outside Snakemake.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from .schema import fill_defaults, load_validator


class ConfigError(ValueError):
    """The configuration does not match its schema; the message names every offending key."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid {source} ({len(problems)} problem(s)):\n{lines}")


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


def load_config_file(path: str | os.PathLike) -> dict:
    """The mapping in YAML/JSON config file ``path``; :class:`ConfigError` naming the file and
    line of a syntax error, or saying that the file is empty or not a mapping of keys."""
    source = f"config {path}"
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)  # the pure-Python loader: its syntax errors name line and problem
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = exc.problem or exc.context
        if exc.context and exc.context_mark and exc.problem_mark:
            what += f" ({exc.context} started at line {exc.context_mark.line + 1})"
        raise ConfigError([f"{where}: YAML syntax error: {what}"], source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: YAML error: {exc}"], source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read the file: {exc}"], source) from None
    if data is None:
        raise ConfigError([f"{path}:1: the file is empty (expected a mapping such as 'models: ...')"], source)
    if not isinstance(data, dict):
        raise ConfigError([f"{path}:1: expected a mapping of config keys at the top level, "
                           f"got a {type(data).__name__}"], source)
    return data


def _model_refs(config: dict) -> Iterable[tuple[str, str, str]]:
    """(key path, model name, use) of every place that names a key of ``models:``.

    ``use`` is ``train`` (weights are fine-tuned, so not ``api:``), ``encoder`` (trained encoder),
    ``weights`` (loaded locally), ``api`` (an endpoint), ``llm`` (a causal or api: model) or ``any``.
    """
    inst, cti, ner, data = (config.get(k) or {} for k in ("instruct", "cti", "ner", "ner_data"))
    yield "embedder", config.get("embedder"), "weights"
    for i, name in enumerate(inst.get("models") or []):
        yield f"instruct.models[{i}]", name, "train"
    for i, name in enumerate(inst.get("references") or []):
        yield f"instruct.references[{i}]", name, "any"
    for method in ("lora", "full"):
        for i, name in enumerate((inst.get("timing_only") or {}).get(method) or []):
            yield f"instruct.timing_only.{method}[{i}]", name, "train"
    for i, name in enumerate(cti.get("models") or []):
        yield f"cti.models[{i}]", name, "train"
    for i, name in enumerate(cti.get("zero_shot") or []):
        yield f"cti.zero_shot[{i}]", name, "any"
    if (cti.get("encoder") or {}).get("model"):
        yield "cti.encoder.model", cti["encoder"]["model"], "encoder"
    yield "ner.encoder", ner.get("encoder"), "encoder"
    for i, name in enumerate(ner.get("encoder_variants") or []):
        yield f"ner.encoder_variants[{i}]", name, "encoder"
    for i, name in enumerate(ner.get("methods") or []):
        if name not in ("baseline", "templates"):  # the fixed methods; others name an LLM
            yield f"ner.methods[{i}]", name, "llm"
    for part in ("rephrase", "paraphrase"):
        if (data.get(part) or {}).get("model"):
            yield f"ner_data.{part}.model", data[part]["model"], "any"
    for jname, spec in ((config.get("judge") or {}).get("judges") or {}).items():
        if isinstance(spec, dict) and spec.get("model"):
            yield f"judge.judges.{jname}.model", spec["model"], {"api": "api", "hf": "weights"}.get(spec.get("kind"), "any")


def _use_problem(where: str, name: str, entry: dict, use: str) -> str | None:
    """Why model ``name`` cannot serve as ``use`` at ``where`` (see :func:`_model_refs`)."""
    from tinysec.models.sources import parse_source

    is_api = parse_source(entry["source"]).kind == "api"
    if is_api and use in ("train", "encoder"):
        return (f"{where}: model '{name}' is an API model ({entry['source']}); it has no weights to "
                f"fine-tune (api: models can only answer: instruct.references, cti.zero_shot, api judges)")
    if is_api and use == "weights":
        return f"{where}: model '{name}' is an API model ({entry['source']}); this needs local weights"
    if use == "api" and not is_api:
        return f"{where}: an api judge needs an api: model, but '{name}' has source {entry['source']}"
    if use == "llm" and entry["kind"] == "encoder":
        return (f"{where}: model '{name}' is an encoder; a method is 'baseline', 'templates' or the name of "
                f"an identification/extraction LLM (a causal or api: model under models:)")
    if use == "encoder" and entry["kind"] != "encoder":
        return f"{where}: model '{name}' is not an encoder (set models.{name}.kind: encoder)"
    return None


def reference_problems(config: dict, resolve_gguf: bool = True) -> list[str]:
    """Names that point nowhere or at a model that cannot serve there, with their key paths;
    then the unresolvable source of each model in use (``gguf:``/``pkg:`` package missing...).

    ``resolve_gguf=False`` skips ``gguf:`` sources, whose packages only the jobs need (under
    ``--sdm conda`` they are installed in the jobs' environment, not in this process's).
    """
    from tinysec.models.sources import parse_source, unresolved_reason

    models = config.get("models") or {}
    problems: list[str] = []
    used: dict[str, str] = {}
    for where, name, use in _model_refs(config):
        if name not in models:
            problems.append(f"{where}: model '{name}' is not defined under models:")
            continue
        used.setdefault(name, where)
        problem = _use_problem(where, name, models[name], use)
        if problem:
            problems.append(problem)
    for name, where in used.items():
        if not resolve_gguf and parse_source(models[name]["source"]).kind == "gguf":
            continue
        reason = unresolved_reason(models[name]["source"])
        if reason:
            problems.append(f"models.{name}.source: {models[name]['source']!r} cannot be loaded "
                            f"(used by {where}): {reason}")
    return problems + _section_name_problems(config)


def _section_name_problems(config: dict) -> list[str]:
    """Names of judges and perturbation families that are not defined in their section."""
    problems = []
    judge = config.get("judge") or {}
    if judge.get("judge") not in (judge.get("judges") or {}):
        problems.append(f"judge.judge: judge '{judge.get('judge')}' is not defined under judge.judges:")
    perturb = (config.get("ner_data") or {}).get("perturb") or {}
    for i, family in enumerate(perturb.get("adv_families") or []):
        if family not in (perturb.get("families") or {}):
            problems.append(f"ner_data.perturb.adv_families[{i}]: family '{family}' is not defined "
                            "under ner_data.perturb.families:")
    return problems


def split_problems(config: dict, tolerance: float = 1e-6) -> list[str]:
    """Split fractions (``cti.split``, ``ner_data.split``) that do not add up to 1."""
    splits = {"cti.split": (config.get("cti") or {}).get("split"),
              "ner_data.split": list(((config.get("ner_data") or {}).get("split") or {}).values())}
    return [f"{where}: fractions must add up to 1, got {' + '.join(f'{x:g}' for x in fr)} = {sum(fr):g}"
            for where, fr in splits.items() if fr and abs(sum(fr) - 1) > tolerance]


def validate_config(config: dict, schema_path: str | os.PathLike, source: str = "config",
                    resolve_gguf: bool = True) -> dict:
    """Check ``config`` (errors name each key's path), then validate it and fill its defaults.

    Defaults are filled by :func:`tinysec.schema.fill_defaults` (as ``snakemake.utils.validate``
    would, from cached schemas; ``$ref``'d section files included). Then every name of a model or judge must be defined and usable
    where it is named, with a loadable source (:func:`reference_problems`, ``resolve_gguf``);
    split fractions must add up to 1; nmap options and targets must pass
    :func:`tinysec.osint.targets.nmap_config_problems`; then rating pools must name contestants
    and not let the judge rate itself unasked (:func:`tinysec.plan.judge_pool_problems`).
    ``config`` is updated in place and returned; problems raise :class:`ConfigError`.
    """
    from tinysec.osint.targets import nmap_config_problems
    from tinysec.plan import judge_pool_problems

    schema_path = Path(schema_path).resolve()
    check_config(config, schema_path, source=source)
    problems = fill_defaults(config, schema_path)
    problems += reference_problems(config, resolve_gguf) + split_problems(config) + nmap_config_problems(config)
    if not problems:  # pool members are contestants: their names must resolve first
        problems = judge_pool_problems(config)
    if problems:
        raise ConfigError(problems, source=source)
    return config


def exit_on_config_error(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``func(*args, **kwargs)``; a :class:`ConfigError` is printed to stderr as one clean
    message and ends the process with status 1 (the Snakefile's way to stop without a traceback)."""
    import sys

    try:
        return func(*args, **kwargs)
    except ConfigError as exc:
        print(f"ConfigError: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _merge(base: dict, update: dict) -> dict:
    """``update`` merged into ``base`` key by key, recursing into mappings (as ``--configfile`` merges)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def main(argv: list[str] | None = None) -> int:
    """``python -m tinysec.config FILE...``: check config files (merged in order) as the Snakefile
    does, naming file and line of a YAML syntax error that ``snakemake --configfile`` reports
    without them. Prints ``ok`` and returns 0, or prints the problems and returns 1."""
    import argparse
    import sys

    from tinysec.paths import CONFIG

    parser = argparse.ArgumentParser(prog="python -m tinysec.config", description=main.__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", help="config files, as given to --configfile")
    parser.add_argument("--schema", default=str(CONFIG / "schema" / "config.schema.yaml"))
    args = parser.parse_args(argv)
    config: dict = {}
    try:
        for path in args.files:
            _merge(config, load_config_file(path))
        validate_config(config, args.schema, source="config " + ", ".join(args.files))
    except ConfigError as exc:
        print(f"ConfigError: {exc}", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
