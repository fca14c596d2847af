"""``tinysec tag`` entry point: tag raw tool output or plain text (inputs, views, options and output
are described in :mod:`tinysec.ner.cli`).

``--method NAME`` reads the workflow plan of a config file (:mod:`tinysec.config`,
:mod:`tinysec.plan`) to find the method's tagger folder and LLM. That is why this module sits
above the sections: ``tinysec.plan`` imports ``tinysec.ner``, so ``tinysec.ner`` itself imports
neither the plan nor the config checks.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any

from .ner.cli import add_arguments, load_tagger, print_docs, read_views

__all__ = ["MethodSetup", "add_arguments", "method_setup", "run", "tag_views"]


@dataclass
class MethodSetup:
    """How ``tinysec tag --method`` tags: the tagger folder, the normaliser switch and, for an LLM
    method, the cached LLM and the omission-check rounds."""

    method: str
    kind: str
    model_dir: str
    normalize: bool
    llm: Any = None
    rounds: int = 0


def method_setup(method: str, configfile: str | os.PathLike, model_dir: str | None = None,
                 cache_dir: str = "results/cache/ner_llm") -> MethodSetup:
    """The setup of method ``method`` (a name of ``ner.methods``) of the validated config file
    ``configfile``; ``model_dir`` overrides the method's tagger folder."""
    from . import plan
    from .config import load_config_file, validate_config
    from .ner.methods import method_kind
    from .paths import CONFIG

    config = validate_config(load_config_file(configfile), CONFIG / "schema" / "config.schema.yaml",
                             source=f"config {configfile}", resolve_gguf=False)
    models = plan.Models(config)
    ner = plan.Ner(config, models, plan.NerData(config, models))
    if method not in config["ner"]["methods"]:
        raise ValueError(f"--method {method!r} is not one of ner.methods in {configfile}: "
                         f"{', '.join(config['ner']['methods'])}")
    kind = method_kind(method)
    setup = MethodSetup(method, kind, model_dir or ner.method_model(method, config["ner"]["encoder"]),
                        ner.method_normalize(method))
    if kind == "llm":
        from .ner.chain import chain_llm

        chain = config["ner"]["chain"]
        weights = None if models.is_api(method) else models.path(method)
        if weights is not None and not os.path.isdir(weights):
            raise ValueError(f"no weights for LLM {method!r} at {weights}: build them with "
                             f"`snakemake --cores all {weights}`")
        setup.llm = chain_llm(models.entry(method), method, weights, cache_dir, chain["max_new_tokens"],
                              config["seed"])
        setup.rounds = chain["reflection_rounds"]
    return setup


def tag_views(args: argparse.Namespace, views: list[str]) -> list[dict]:
    """Tag the views with ``--model``, or with ``--method`` (an LLM method runs the tag-time chain)."""
    from .ner.corpus import RAW_MAX_WORDS
    from .ner.predict import tag_windows

    if not args.method:
        return tag_windows(load_tagger(args), views, RAW_MAX_WORDS)
    from .ner.chain import tag_with_chain

    setup = method_setup(args.method, args.configfile, args.model)
    args.model, args.no_normalize = setup.model_dir, args.no_normalize or not setup.normalize
    tagger = load_tagger(args)
    if setup.kind == "llm":
        return tag_with_chain(views, tagger, setup.llm, setup.rounds)
    return tag_windows(tagger, views, RAW_MAX_WORDS)


def run(args: argparse.Namespace) -> int:
    """Tag every input that can be read; exit status 0 when all were tagged, 1 when some were
    refused (each named on stderr) and the others tagged, 2 when none could be tagged."""
    from .ner.calibration import read_temperature

    paths = args.paths or ["-"]
    views, refused = read_views(paths, args.format_in)
    if not views:
        return 2
    results = tag_views(args, [view for _, _, _, view in views])
    temperature = read_temperature(args.model)
    docs = []
    for (name, raw, fmt, _), res in zip(views, results, strict=True):
        ents = [{**e, "text": raw[e["start"]:e["end"]]} for e in res["entities"]]
        docs.append({"input": name, "format": fmt, "format_source": "detected" if args.format_in == "auto" else "forced",
                     "temperature": temperature, "entities": ents})
        if "hallucinated" in res:
            docs[-1].update(hallucinated=res["hallucinated"], segments=res["segments"])
    print_docs(docs, args.format == "json", as_list=len(paths) > 1)
    if refused:
        print(f"tinysec tag: error: {refused} of {len(paths)} inputs refused (named above); the others were tagged",
              file=sys.stderr)
        return 1
    return 0
