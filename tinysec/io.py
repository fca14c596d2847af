"""Small I/O helpers shared by every module: JSON/JSONL with clear errors, data-file formats checked
against their JSON schemas (``tinysec/schemas/<name>.schema.yaml``), atomic writes, script logging."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("tinysec")


class InputError(ValueError):
    """Bad input data: the message names the file, the row and the field."""

    def __init__(self, path: str | os.PathLike, message: str, row: int | None = None, field: str | None = None):
        self.path, self.row, self.field = str(path), row, field
        where = str(path)
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a file; a folder, a missing or an unreadable path raises :class:`InputError`."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder, not a file")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read: {exc.strerror or exc}") from None


def read_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file; non-UTF-8 or empty files raise :class:`InputError`."""
    data = read_bytes(path)
    if not data.strip():
        raise InputError(path, "file is empty")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(path, f"not valid UTF-8 at byte {exc.start}", row=line) from None


def iter_jsonl(path: str | os.PathLike, allow_empty: bool = False) -> Iterator[dict]:
    """Yield one dict per non-blank line; errors name the file and the 1-based line."""
    for _, obj in iter_jsonl_lines(path, allow_empty=allow_empty):
        yield obj


def iter_jsonl_lines(path: str | os.PathLike, allow_empty: bool = False) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, dict)`` per non-blank line (1-based, blank lines counted)."""
    path = Path(path)
    raw = read_bytes(path)
    if not raw.strip():
        if allow_empty:
            return
        raise InputError(path, "file is empty")
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a leading BOM is not data
        except UnicodeDecodeError as exc:
            raise InputError(path, f"not valid UTF-8 at column {exc.start + 1}", row=lineno) from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"invalid JSON: {exc.msg} at column {exc.colno}", row=lineno) from None
        if not isinstance(obj, dict):
            raise InputError(path, f"expected a JSON object, got {type(obj).__name__}", row=lineno)
        yield lineno, obj


def read_jsonl(path: str | os.PathLike, allow_empty: bool = False) -> list[dict]:
    """Read a JSONL file into a list of dicts (see :func:`iter_jsonl`)."""
    return list(iter_jsonl(path, allow_empty=allow_empty))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON document with a clear error on bad UTF-8, emptiness or syntax (a leading BOM is skipped)."""
    text = read_text(path)
    try:
        return json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON: {exc.msg} at column {exc.colno}", row=exc.lineno) from None


# ---------------------------------------------------------------- data-file formats
#: Folder of the JSON schemas (draft 2020-12, YAML) of the data files that connect the sections;
#: package data, so an installed ``tinysec`` checks its inputs without the repository.
FORMATS_DIR = Path(__file__).resolve().parent / "schemas"
_TYPE_WORDS = {"string": ("a string", "strings"), "integer": ("an integer", "integers"),
               "number": ("a number", "numbers"), "boolean": ("true or false", "booleans"),
               "object": ("an object", "objects"), "array": ("a list", "lists"), "null": ("null", "nulls")}


def format_names() -> list[str]:
    """Names of the data-file formats (``tinysec/schemas/<name>.schema.yaml``)."""
    return sorted(p.name.removesuffix(".schema.yaml") for p in FORMATS_DIR.glob("*.schema.yaml"))


@functools.cache
def format_validator(name: str):
    """The cached draft 2020-12 validator of data-file format ``name`` (``$ref`` to sibling files resolved)."""
    from .schema import load_validator

    path = FORMATS_DIR / f"{name}.schema.yaml"
    if not path.is_file():
        raise ValueError(f"unknown data-file format {name!r}; known: {', '.join(format_names())}")
    return load_validator(path.resolve())


def _key_path(parts: Iterable[Any]) -> str:
    """``spans[2].start`` from ``['spans', 2, 'start']``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


def _shown(value: Any) -> str:
    """A value as it is written in the file (JSON), cut to 80 characters."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _bounds(schema: dict) -> str:
    parts = [f"{op} {schema[key]}" for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                   ("maximum", "<="), ("exclusiveMaximum", "<")) if key in schema]
    return (" " + " and ".join(parts)) if parts else ""


def describe_schema(schema: Any, plural: bool = False) -> str:
    """What a (sub)schema accepts, in words: ``a non-empty list of strings``, ``one of 'a', 'b'``."""
    if not isinstance(schema, dict):
        return "anything" if schema is True else "nothing"
    if "x-expected" in schema:  # a schema's own wording wins
        return schema["x-expected"]
    if "const" in schema:
        return _shown(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(str(v) if isinstance(v, str) else _shown(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(describe_schema(s, plural) for s in schema[key])
    types = schema.get("type")
    if types is None:
        return "values" if plural else "a value"
    return " or ".join(_describe_type(t, schema, plural) for t in ([types] if isinstance(types, str) else types))


def _describe_type(kind: str, schema: dict, plural: bool) -> str:
    word = _TYPE_WORDS[kind][1 if plural else 0]
    if kind == "string" and schema.get("minLength", 0) >= 1:
        word = "non-empty strings" if plural else "a non-empty string"
    elif kind == "array":
        if schema.get("minItems", 0) >= 1:
            word = "non-empty lists" if plural else "a non-empty list"
        if isinstance(schema.get("items"), dict) and ("type" in schema["items"] or "x-expected" in schema["items"]):
            word += " of " + describe_schema(schema["items"], plural=True)
    elif kind == "object" and schema.get("required"):
        word += " with " + ", ".join(repr(k) for k in schema["required"])
    return word + _bounds(schema)


def _missing_key(error) -> str:
    missing = [k for k in error.validator_value if k not in error.instance]
    return next((k for k in missing if error.message.startswith(repr(k))), missing[0])


def _explain(error) -> tuple[str | None, str]:
    """``(field, message)`` of one jsonschema error, in the words of :class:`InputError`."""
    path = list(error.absolute_path)
    if error.validator == "required":
        key = _missing_key(error)
        sub = (error.schema.get("properties") or {}).get(key)
        return _key_path(path + [key]), "missing field" + (f", expected {describe_schema(sub)}" if sub else "")
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties") or {})
        extra = sorted(k for k in error.instance if k not in allowed)
        return _key_path(path + extra[:1]), f"unknown field(s) {extra}; allowed: {', '.join(sorted(allowed))}"
    if error.validator in ("uniqueItems", "minProperties", "maxProperties", "not"):
        return _key_path(path) or None, error.message
    return _key_path(path) or None, f"expected {describe_schema(error.schema)}, got {_shown(error.instance)}"


def _error_rank(error, row: Any) -> tuple[int, int, int]:
    """Report problems left to right: fields in the order the row holds them, then missing fields,
    the shallowest problem of a field first."""
    path = list(error.absolute_path)
    order = list(row) if isinstance(row, dict) else []
    if path and path[0] in order:
        return (order.index(path[0]), len(path), 0)
    missing = list(error.validator_value).index(_missing_key(error)) if error.validator == "required" else 0
    return (len(order), len(path), missing)


def record_problem(row: Any, name: str) -> tuple[str | None, str] | None:
    """``(field, message)`` of the first way ``row`` breaks format ``name``; None when it fits."""
    from .schema import surely_valid

    if surely_valid(row, FORMATS_DIR / f"{name}.schema.yaml"):
        return None
    errors = list(format_validator(name).iter_errors(row))
    if not errors:
        return None
    return _explain(min(errors, key=lambda e: _error_rank(e, row)))


def check_record(row: Any, name: str, path: str | os.PathLike, row_no: int | None = None) -> dict:
    """Return ``row`` when it fits format ``name``, else raise :class:`InputError` naming ``path``,
    ``row_no`` and the field (``spans[2].start``), e.g. ``field 'labels': expected a list of strings, got 'x'``."""
    problem = record_problem(row, name)
    if problem is not None:
        field, message = problem
        raise InputError(path, message, row=row_no, field=field)
    return row


def iter_records(path: str | os.PathLike, name: str, allow_empty: bool = False) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, row)`` of a JSONL file, each row checked against format ``name``."""
    for lineno, row in iter_jsonl_lines(path, allow_empty=allow_empty):
        yield lineno, check_record(row, name, path, lineno)


def read_records(path: str | os.PathLike, name: str, allow_empty: bool = False) -> list[dict]:
    """The rows of a JSONL file, each checked against data-file format ``name`` (see :func:`check_record`)."""
    return [row for _, row in iter_records(path, name, allow_empty=allow_empty)]


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file: same resolved path (symlinks followed) or,
    when both exist, the same inode (hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: dict[str, str | os.PathLike | None], inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse output paths that are folders, lie under a file, are one of ``inputs`` or repeat each other.

    ``outputs`` maps what names the output for the user (an option such as ``--csv``) to its path;
    ``None`` paths are skipped. Raises :class:`InputError` naming the option and both paths.
    """
    inputs = [p for p in inputs if p is not None]
    seen: list[tuple[str, str | os.PathLike]] = []
    for name, out in outputs.items():
        if out is None:
            continue
        if Path(out).is_dir():
            raise InputError(out, f"{name} is a folder; give a file path")
        parent = Path(out).absolute().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise InputError(out, f"{name} cannot be created: {parent} is a file, not a folder")
        for inp in inputs:
            if same_file(out, inp):
                raise InputError(out, f"{name} would overwrite the input file {inp}; choose another path")
        for other, prev in seen:
            if same_file(out, prev):
                raise InputError(out, f"{name} is the same file as {other}; choose another path")
        seen.append((name, out))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# permission bits of files written by atomic_path: what open() would give under the umask at import
FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: str = "w",
                inputs: Iterable[str | os.PathLike] = ()) -> Iterator[Any]:
    """Open a temp file beside ``path`` and move it into place (``os.replace``) only on success.

    Parent folders are created. ``path`` may not be one of ``inputs`` (see :func:`check_outputs`):
    the check runs before anything is written, so an input is never overwritten.
    """
    check_outputs({"output": path}, inputs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, FILE_MODE)
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str, inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Write ``text`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, inputs=inputs) as fh:
        fh.write(text)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict], inputs: Iterable[str | os.PathLike] = ()) -> int:
    """Write rows atomically as JSONL (see :func:`atomic_path`); returns the row count."""
    n = 0
    with atomic_path(path, inputs=inputs) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def write_json(path: str | os.PathLike, obj: Any, inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Write a JSON document atomically, pretty-printed (see :func:`atomic_path`)."""
    with atomic_path(path, inputs=inputs) as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False, default=str)
        fh.write("\n")


@contextlib.contextmanager
def script_logging(snakemake: Any) -> Iterator[logging.Logger]:
    """Route logging, warnings and stderr (tqdm progress) of a Snakemake script into its ``log:`` file."""
    logfile = snakemake.log[0] if len(snakemake.log) else None
    if logfile is None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        yield log
        return
    Path(logfile).parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "a", encoding="utf-8", buffering=1) as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        old_err = sys.stderr
        sys.stderr = fh
        try:
            yield log
        except BaseException:
            log.exception("rule %s failed", getattr(snakemake, "rule", "?"))
            raise
        finally:
            sys.stderr = old_err
            root.removeHandler(handler)
