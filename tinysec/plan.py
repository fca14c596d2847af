"""What the workflow runs, computed from the validated config: contestants, judge pairs, merged
hyperparameters, model folders, test sets and table rows.

``rules/common.smk`` builds one object per section from Snakemake's ``config`` (after
``tinysec.config.validate_config`` filled the schema defaults, so every key is indexed directly)
and the rules call their methods. Nothing here reads result files or imports torch, so building
the DAG stays fast and pytest can check the plan on any config (tests/test_plan.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .cti.corpus import PACKAGE_SOURCE as CTI_PACKAGE_SOURCE
from .cti.corpus import package_files as cti_package_files
from .judge import pools
from .models.sources import local_model_path, parse_source
from .osint.targets import slug

#: Collectors of the OSINT section, in record-file order.
OSINT_SOURCES = ("dns", "whois", "shodan", "nmap")
#: The results folder of the NER corpus.
NER_DATA = "results/ner/data"


def one_of(names: Iterable[str]) -> str:
    """Wildcard regex matching exactly one of ``names`` (matches nothing when there are none;
    an empty name matches the empty string)."""
    names = list(names)
    return "(?:" + "|".join(re.escape(n) for n in names) + ")" if names else "(?!x)x"


def unique(names: Iterable[str]) -> list[str]:
    """``names`` without repeats, first occurrence kept."""
    return list(dict.fromkeys(names))


class Models:
    """The ``models`` registry: entries, weight folders, labels."""

    def __init__(self, config: Mapping[str, Any]):
        self.config = config

    def entry(self, name: str) -> dict:
        try:
            return self.config["models"][name]
        except KeyError:
            raise ValueError(f"model '{name}' is not defined under 'models:' in the config") from None

    def path(self, name: str) -> str:
        """Folder holding the weights of model ``name`` (an input of the rules that load it).

        pkg: and local-folder sources are used in place; hf:, gguf: and random: sources are
        materialised once by rule prepare_model under resources/models/<name>/.
        """
        local = local_model_path(self.entry(name)["source"])
        return str(local) if local is not None else f"resources/models/{name}"

    def is_api(self, name: str) -> bool:
        return parse_source(self.entry(name)["source"]).kind == "api"

    def label(self, name: str) -> str:
        """Display name of a model: its ``label``, else its name."""
        return self.entry(name).get("label", name)

    def lora_targets(self, name: str, table: Mapping[str, list[str]]) -> list[str]:
        """LoRA target modules of model ``name``'s family (``table`` overrides the built-in ones)."""
        from .models.train import lora_target_modules

        return lora_target_modules(self.entry(name)["family"], table)


class Instruct:
    """The ``instruct`` section: contestants, data files, prompts, fine-tuning hyperparameters."""

    def __init__(self, config: Mapping[str, Any], models: Models):
        self.config, self.cfg, self.models = config, config["instruct"], models

    def base_models(self) -> list[str]:
        """Base models that answer as they are and get fine-tuned."""
        return list(self.cfg["models"])

    def finetuned(self) -> list[str]:
        """Fine-tuned contestants: ``<model>-<method>`` for every base model and method."""
        return [f"{m}-{meth}" for m in self.cfg["models"] for meth in self.cfg["methods"]]

    def references(self) -> list[str]:
        """Reference opponents (not fine-tuned; local models or api: models)."""
        return list(self.cfg["references"])

    def contestants(self) -> list[str]:
        """Every contestant with a results/answers/{contestant}.jsonl file."""
        return self.base_models() + self.finetuned() + self.references()

    def answer_files(self) -> list[str]:
        return [f"results/answers/{c}.jsonl" for c in self.contestants()]

    def local_answerers(self) -> list[str]:
        """Contestants answering with local weights as they are (base models, local references)."""
        return unique(self.base_models() + [r for r in self.references() if not self.models.is_api(r)])

    def api_answerers(self) -> list[str]:
        return [r for r in self.references() if self.models.is_api(r)]

    def data_entries(self, role: str) -> list[dict]:
        """Configured train or eval data files (``role`` 'train' or 'eval'); none for ATT&CK data."""
        data = self.cfg["data"]
        return list(data[f"{role}_files"]) if data["source"] == "files" else []

    def data_entry(self, name: str) -> dict:
        for e in self.data_entries("train") + self.data_entries("eval"):
            if e["name"] == name:
                return e
        raise ValueError(f"no instruct data file named '{name}' in the config")

    def data_inputs(self, role: str) -> list[str]:
        return [f"results/data/downloads/{e['name']}" for e in self.data_entries(role)]

    def prompt(self, name: str) -> dict:
        """Prompt settings of model ``name``: its chat_template choice and ``instruct.prompt``."""
        p = self.cfg["prompt"]
        out = {"chat_template": self.models.entry(name)["chat_template"], "system": p["system"]}
        if "template" in p:
            out["template"] = p["template"]
        return out

    def hparams(self, model: str, method: str) -> dict:
        """Hyperparameters of tinysec.models.train for one fine-tuning job (``full_lr`` applied)."""
        hp = dict(self.cfg["train"])
        full_lr = hp.pop("full_lr")
        if method == "full" and full_lr:
            hp["lr"] = full_lr
        lora = dict(self.cfg["lora"])
        targets = lora.pop("target_modules")
        lora["target_modules"] = self.models.lora_targets(model, targets) if method == "lora" else []
        hp.update(method=method, lora=lora, seed=self.config["seed"])
        return hp

    def train_gpus(self) -> int:
        """GPUs of each fine-tuning job: ``instruct.gpus_per_job``, else ``device.gpus_per_job``."""
        own = self.cfg["gpus_per_job"]
        return self.config["device"]["gpus_per_job"] if own is None else own

    def timing_runs(self) -> list[tuple[str, str]]:
        """(model, method) of every timing-only run (``instruct.timing_only``): timed, never judged."""
        cfg = self.cfg["timing_only"]
        return [(m, meth) for meth in ("lora", "full") for m in cfg[meth]]

    def timing_steps(self) -> int:
        """Optimizer steps of each timing-only run."""
        return self.cfg["timing_only"]["steps"]

    def timing_hparams(self, model: str, method: str) -> dict:
        """:meth:`hparams` of a timing-only run: the same training, stopped after
        ``timing_only.steps`` optimizer steps, with no checkpoints."""
        return {**self.hparams(model, method), "max_steps": self.timing_steps(), "save_every": 0}

    def time_table_runs(self) -> list[dict]:
        """Rows of the fine-tuning time table, in input order: ``{model, metrics, extrapolate}``
        for every fine-tune of ``models``, then every timing-only run."""
        rows = [{"model": m, "metrics": f"results/finetune/{m}-{meth}/train_metrics.json", "extrapolate": False}
                for m in self.base_models() for meth in self.cfg["methods"]]
        rows += [{"model": m, "metrics": f"results/timing/{m}-{meth}/train_metrics.json", "extrapolate": True}
                 for m, meth in self.timing_runs()]
        return rows

    def weights(self, model: str, method: str | None = None) -> dict:
        """Inputs a generation job loads: base weights, plus the adapter (lora) or only the
        fine-tuned model (full)."""
        if method == "full":
            return {"model": f"results/finetune/{model}-full/model"}
        inputs = {"model": self.models.path(model)}
        if method == "lora":
            inputs["adapter"] = f"results/finetune/{model}-lora/adapter"
        return inputs


class Judge:
    """The ``judge`` section: judges, the pairs they judge, their inputs."""

    def __init__(self, config: Mapping[str, Any], models: Models, instruct: Instruct):
        self.config, self.cfg, self.models, self.instruct = config, config["judge"], models, instruct

    def spec(self, name: str) -> dict:
        """Config entry of judge ``name`` (``judge.judges.<name>``)."""
        try:
            return self.cfg["judges"][name]
        except KeyError:
            raise ValueError(f"judge '{name}' is not defined under judge.judges in the config") from None

    def pairs(self) -> list[tuple[str, str]]:
        """(a, b) contestant pairs: each fine-tune vs each reference, then the tournament among all
        contestants, then every pair inside each pool with a member list; each unordered pair once,
        in that order."""
        sel = self.cfg["pairs"]
        cands = []
        if sel["references"]:
            cands += [(f, r) for f in self.instruct.finetuned() for r in self.instruct.references()]
        if sel["tournament"]:
            cands += pools.round_robin(self.instruct.contestants())
        for spec in self.cfg["pools"].values():
            if spec["members"] != pools.ALL:
                cands += pools.round_robin(list(spec["members"]))
        pairs, seen = [], set()
        for a, b in cands:
            if a != b and frozenset((a, b)) not in seen:
                seen.add(frozenset((a, b)))
                pairs.append((a, b))
        return pairs

    def answerers(self) -> list[str]:
        """Every contestant that appears in a judged pair."""
        return unique(m for pair in self.pairs() for m in pair)

    def orders(self) -> list[str]:
        """Orders each pair is judged in: ``['ab']`` (a shown first) or ``['ab', 'ba']``."""
        return list(self.cfg["orders"])

    def pools(self) -> list[str]:
        """Names of the rating pools (``judge.pools``)."""
        return list(self.cfg["pools"])

    def pool_members(self, pool: str) -> list[str]:
        """Contestants rated in ``pool`` (see :func:`tinysec.judge.pools.members`)."""
        return pools.members(self.cfg["pools"][pool], self.answerers())

    def pool_settings(self, pool: str) -> dict:
        """What a pool's table and figures need: name, members, rating column, self-judging flag
        and the members that are the primary judge's own model (``self_judged``)."""
        spec, members = self.cfg["pools"][pool], self.pool_members(pool)
        return {"pool": pool, "members": members, "rating": spec["rating"],
                "allow_self_judging": spec["allow_self_judging"], "self_judged": self.self_judged(members)}

    def self_judged(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` that are the primary judge's own model or a fine-tune of it."""
        judge_model = self.spec(self.cfg["judge"]).get("model")
        return pools.judge_contestants(judge_model, names, self.instruct.cfg["methods"])

    def pool_suffixes(self) -> list[str]:
        """File-name suffix of every pool ('' for ``all``)."""
        return [pools.suffix(p) for p in self.pools()]

    def pool_of(self, suffix: str) -> str:
        """The pool whose outputs carry ``suffix``."""
        for p in self.pools():
            if pools.suffix(p) == suffix:
                return p
        raise ValueError(f"no rating pool writes files with suffix '{suffix}' (judge.pools)")

    def pool_targets(self) -> list[str]:
        """Markdown table and figures of every pool (the final outputs of `rule all`)."""
        return [path for p in self.pools() for role, path in pools.outputs(p).items() if role != "csv"]

    def api(self, name: str) -> dict:
        """The ``api`` block (base_url, model, key_env: never the key) of an api judge's model, else {}."""
        spec = self.spec(name)
        return self.models.entry(spec["model"]).get("api", {}) if spec["kind"] == "api" else {}

    def vs_pairs(self, opponent: str) -> dict[str, str]:
        """Fine-tuned contestant -> its battle file against ``opponent`` (primary judge)."""
        j = self.cfg["judge"]
        return {f: f"results/battles/{j}/{f}__vs__{opponent}.jsonl" for f in self.instruct.finetuned()}

    def weights(self, name: str) -> list[str]:
        """Weights folder a judge loads: the embedder (reference), its model (hf), none (api)."""
        spec = self.spec(name)
        if spec["kind"] == "reference":
            return [self.models.path(self.config["embedder"])]
        if spec["kind"] == "hf":
            return [self.models.path(spec["model"])]
        return []


def judge_pool_problems(config: Mapping[str, Any]) -> list[str]:
    """:func:`tinysec.judge.pools.pool_problems` of a validated config (checked at config load)."""
    models = Models(config)
    instruct = Instruct(config, models)
    judge = Judge(config, models, instruct)
    name = config["judge"]["judge"]
    spec = config["judge"]["judges"].get(name) or {}
    return pools.pool_problems(config["judge"]["pools"], instruct.contestants(), judge.answerers(), name,
                               spec.get("model"), config["instruct"]["methods"])


class Cti:
    """The ``cti`` section: contestants (table rows), prompts, LoRA hyperparameters."""

    def __init__(self, config: Mapping[str, Any], models: Models):
        self.config, self.cfg, self.models = config, config["cti"], models

    def finetuned(self) -> list[str]:
        """LoRA fine-tuned CTI contestants: ``<model>-lora``."""
        return [f"{m}-lora" for m in self.cfg["models"]]

    def zero_shot(self) -> list[str]:
        """Base LLMs (local or api:) answering zero-shot with the label list in the prompt."""
        return list(self.cfg["zero_shot"])

    def llm_contestants(self) -> list[str]:
        return self.finetuned() + self.zero_shot()

    def tfidf_rows(self) -> list[str]:
        tfidf = self.cfg["tfidf"]
        if not tfidf["enabled"]:
            return []
        return ["tfidf-lr", "tfidf-lr-full"] if tfidf["full_train"] else ["tfidf-lr"]

    def encoder_rows(self) -> list[str]:
        """The encoder classifier row (``encoder``) when ``cti.encoder.enabled``."""
        return ["encoder"] if self.cfg["encoder"]["enabled"] else []

    def contestants(self) -> list[str]:
        """Every row of the CTI tables (each has results/cti/{contestant}/{task}_metrics.json)."""
        return self.llm_contestants() + self.tfidf_rows() + self.encoder_rows()

    def heldout_enabled(self) -> bool:
        """Whether the held-out groups tables are built: ``cti.heldout.fraction`` is set and the
        source read is ATT&CK procedure examples (a user file names no groups)."""
        source = self.source()
        user_file = os.path.splitext(source.split("?")[0])[1].lower() in (".csv", ".jsonl", ".ndjson")
        return self.cfg["heldout"]["fraction"] is not None and not user_file

    def heldout_rows(self) -> list[str]:
        """Rows of the held-out groups tables: TF-IDF (when enabled) and the encoder, trained on the
        held-out split's training set and scored on its test set."""
        if not self.heldout_enabled():
            return []
        return (["tfidf-lr-heldout"] if self.cfg["tfidf"]["enabled"] else []) + \
            [f"{r}-heldout" for r in self.encoder_rows()]

    def scored(self) -> list[str]:
        """Every contestant cti_score scores: the table rows and the held-out rows."""
        return self.contestants() + self.heldout_rows()

    def full_test_rows(self) -> list[str]:
        """Rows scored on the whole test split (cheap classifiers); LLM rows use the seeded subset."""
        return self.tfidf_rows() + self.encoder_rows()

    def test_file(self, contestant: str) -> str:
        """The test items ``contestant`` answers and is scored on."""
        if contestant in self.heldout_rows():
            return "results/cti/heldout/test.jsonl"
        return "results/cti/test.jsonl" if contestant in self.full_test_rows() else "results/cti/subset/test.jsonl"

    def train_file(self, row: str) -> str:
        """The training texts of a cheap-classifier row: the subsample (``tfidf-lr``), the held-out
        split's training set (``*-heldout``) or the whole training split."""
        if row.endswith("-heldout"):
            return "results/cti/heldout/train.jsonl"
        return "results/cti/subset/train.jsonl" if row == "tfidf-lr" else "results/cti/train.jsonl"

    def val_file(self, row: str) -> str:
        """The validation texts an encoder row chooses its thresholds on."""
        return "results/cti/heldout/val.jsonl" if row.endswith("-heldout") else "results/cti/val.jsonl"

    def tfidf_label(self, row: str) -> str | None:
        """Display name of a TF-IDF row when it is not the default one (the held-out row)."""
        return "TF-IDF + LR, held-out groups" if row.endswith("-heldout") else None

    def encoder_model(self) -> str:
        """The encoder the classifier fine-tunes: ``cti.encoder.model``, else the top-level ``embedder``."""
        return self.cfg["encoder"]["model"] or self.config["embedder"]

    def encoder_settings(self) -> dict:
        """Training settings of tinysec.cti.encoder (``cti.encoder`` less ``enabled`` and ``model``)."""
        return {k: v for k, v in self.cfg["encoder"].items() if k not in ("enabled", "model")}

    def encoder_label(self, row: str) -> str:
        """Display name of an encoder row."""
        base = f"{self.models.label(self.encoder_model())} + sigmoid head (fine-tuned)"
        return f"{base}, held-out groups" if row.endswith("-heldout") else base

    def source(self) -> str:
        """The source ``cti_data`` reads: ``cti.source``, or ``cti.fallback_source`` when
        ``source`` names a local file (relative to the working directory) that does not exist."""
        source, fallback = self.cfg["source"], self.cfg["fallback_source"]
        local = source != CTI_PACKAGE_SOURCE and not source.startswith(("http://", "https://"))
        return fallback if fallback is not None and local and not os.path.exists(source) else source

    def source_inputs(self) -> dict[str, str]:
        """Input files of ``cti_data``: the package lookup files, a local file, or none (a URL)."""
        source = self.source()
        if source == CTI_PACKAGE_SOURCE:
            return {k: str(v) for k, v in cti_package_files().items()}
        return {} if source.startswith(("http://", "https://")) else {"source": source}

    def memory_fraction(self) -> float | None:
        """GPU memory cap of the CTI fine-tunes: ``cti.gpu_memory_fraction``, else ``device``'s."""
        own = self.cfg["gpu_memory_fraction"]
        return self.config["device"]["gpu_memory_fraction"] if own is None else own

    def intervals(self) -> dict:
        """Bootstrap settings of the scores: ``cti.bootstrap`` and the run's seed."""
        return {**self.cfg["bootstrap"], "seed": self.config["seed"]}

    def tfidf_settings(self) -> dict:
        """Settings of the TF-IDF model itself (not which rows exist)."""
        return {k: v for k, v in self.cfg["tfidf"].items() if k not in ("enabled", "full_train")}

    def base_model(self, contestant: str) -> str:
        """Base model name of an LLM contestant (``x-lora`` -> ``x``)."""
        return contestant[: -len("-lora")] if contestant in self.finetuned() else contestant

    def model_inputs(self, contestant: str) -> list[str]:
        """The base weights an LLM contestant loads (none for api: models)."""
        base = self.base_model(contestant)
        return [] if self.models.is_api(base) else [self.models.path(base)]

    def finetune_label(self, model: str) -> str:
        """Display name of the LoRA fine-tune of ``model``."""
        return f"{self.models.label(model)} + LoRA"

    def prompt(self, name: str) -> dict:
        """Prompt settings of model ``name``: its chat_template choice and the CTI system prompt."""
        return {"chat_template": self.models.entry(name)["chat_template"], "system": self.cfg["system"]}

    def hparams(self, model: str) -> dict:
        """Hyperparameters of tinysec.models.train for one CTI LoRA fine-tune."""
        hp = dict(self.cfg["train"])
        lora = dict(hp.pop("lora"))
        lora["target_modules"] = self.models.lora_targets(model, lora.pop("target_modules"))
        hp.update(method="lora", lora=lora, seed=self.config["seed"])
        return hp


class Osint:
    """The ``osint`` section: collector targets and the record files they write."""

    def __init__(self, config: Mapping[str, Any]):
        self.config, self.cfg = config, config["osint"]

    def targets(self, source: str) -> list[str]:
        """Targets of one collector (empty unless ``osint.collect`` is set)."""
        return list(self.cfg["targets"][source]) if self.cfg["collect"] else []

    def target(self, source: str, target_slug: str) -> str:
        """The configured target whose file name is ``target_slug``."""
        for target in self.targets(source):
            if slug(target) == target_slug:
                return target
        raise ValueError(f"no osint.targets.{source} entry is written as '{target_slug}'")

    def collected_records(self) -> list[str]:
        """Per-target record files of every enabled collector."""
        return [f"results/osint/raw/{s}/{slug(t)}.json" for s in OSINT_SOURCES for t in self.targets(s)]

    def synthetic_records(self) -> list[str]:
        return ["results/osint/synthetic.jsonl"] if self.cfg["synthetic"]["n_records"] > 0 else []

    def synthetic_seed(self) -> int:
        """The synthetic corpus's own seed, else the global one."""
        seed = self.cfg["synthetic"]["seed"]
        return self.config["seed"] if seed is None else seed


class NerData:
    """The ``ner_data`` section: perturbation families and the LLMs that rewrite text."""

    def __init__(self, config: Mapping[str, Any], models: Models):
        self.config, self.cfg, self.models = config, config["ner_data"], models

    def perturb_families(self) -> list[str]:
        """Label-preserving perturbation families (``ner_data.perturb.families``)."""
        return list(self.cfg["perturb"]["families"])

    def test_families(self) -> list[str]:
        """Every perturbed test set's family: the configured ones, plus 'paraphrase' when enabled."""
        return self.perturb_families() + (["paraphrase"] if self.cfg["paraphrase"]["enabled"] else [])

    def llm_entry(self, part: str) -> dict | None:
        """Model entry of the ``rephrase`` or ``paraphrase`` LLM when that part is enabled."""
        cfg = self.cfg[part]
        return self.models.entry(cfg["model"]) if cfg["enabled"] else None

    def llm_input(self, part: str, always: bool = False) -> dict:
        """``{'llm': weights folder}`` of the rephrase/paraphrase model when ``part`` is enabled
        (or ``always``) and the model is local (api: models need none)."""
        cfg = self.cfg[part]
        if not (cfg["enabled"] or always):
            return {}
        if not cfg["model"]:
            raise ValueError(f"ner_data.{part}.enabled needs ner_data.{part}.model (a key in models)")
        return {} if self.models.is_api(cfg["model"]) else {"llm": self.models.path(cfg["model"])}


class Ner:
    """The ``ner`` section: encoders, tagger variants, test sets and the methods of each table."""

    def __init__(self, config: Mapping[str, Any], models: Models, ner_data: NerData):
        self.config, self.cfg, self.models, self.data = config, config["ner"], models, ner_data

    def labels(self) -> list[str]:
        """Word-level BIO label vocabulary of the NER corpus."""
        from .ner.labels import bio_labels, entity_types

        return bio_labels(entity_types(self.config["ner_data"]))

    def encoders(self) -> list[str]:
        """Main encoder first, then the configured encoder variants (no repeats)."""
        return unique([self.cfg["encoder"], *self.cfg["encoder_variants"]])

    def train_inputs(self, encoder: str, variant: str) -> dict:
        inputs = {"encoder": self.models.path(encoder), "train": f"{NER_DATA}/train.jsonl",
                  "val": f"{NER_DATA}/val.jsonl"}
        if variant not in ("baseline", "no-adv-samples"):
            inputs["adv"] = f"{NER_DATA}/train.adv.jsonl"
        if variant == "baseline":  # the study's baseline: the raw rows only (method 'baseline')
            inputs.update(train=f"{NER_DATA}/baseline/train.jsonl", val=f"{NER_DATA}/baseline/val.jsonl")
        return inputs

    def train_settings(self, variant: str) -> dict:
        from .ner.settings import variant_settings

        return variant_settings(variant, self.cfg, seed=self.config["seed"])

    def dropout_sweep(self, variant: str) -> list[list[float]]:
        """``ner.robust.dropout_sweep`` for the robust taggers (every method's), else no sweep."""
        return self.cfg["robust"]["dropout_sweep"] if variant == "robust" else []

    def testsets(self) -> dict[str, str]:
        """Test set name (``clean`` or a perturbation family) -> its file."""
        files = {"clean": f"{NER_DATA}/test.jsonl"}
        files.update({f: f"{NER_DATA}/test.{f}.jsonl" for f in self.data.test_families()})
        return files

    def postprocess(self) -> dict:
        return {"threshold": self.cfg["confidence_threshold"], "low_confidence": self.cfg["low_confidence"],
                "type_patterns": self.cfg["regex"]}

    def method(self, encoder: str, variant: str) -> dict:
        """One row of the NER tables: encoder, variant, display label, predictions file."""
        return {"encoder": encoder, "variant": variant, "encoder_label": self.models.label(encoder),
                "predictions": f"results/ner/pred/{encoder}/{variant}.jsonl"}

    def prf_methods(self) -> list[dict]:
        """Baseline and robust tagger of every encoder."""
        return [self.method(e, v) for e in self.encoders() for v in ("baseline", "robust")]

    def main_methods(self, variants: Iterable[str]) -> list[dict]:
        """``variants`` of the main encoder."""
        return [self.method(self.cfg["encoder"], v) for v in variants]

    def ablation_variants(self) -> list[str]:
        return ["robust", *self.cfg["ablations"]]

    def robustness_methods(self) -> list[dict]:
        """Rows of ``ner_robustness``: baseline, robust, and (when ``ner.normalize`` is on) the robust
        tagger on test text that skipped the normaliser, so the normaliser's share shows."""
        enc = self.cfg["encoder"]
        rows = self.main_methods(["baseline", "robust"])
        if self.cfg["normalize"]:
            rows.append({**self.method(enc, "robust"), "normalize": False, "model": f"results/ner/models/{enc}/robust",
                         "predictions": f"results/ner/pred/{enc}/robust.no-normalizer.jsonl"})
        return rows

    def real_scan_enabled(self) -> bool:
        """Whether ``rule all`` builds ``ner_real``: the section and ``ner.real_scan`` are enabled and
        the nmap binary (``ner.real_scan.nmap``) is on PATH; without nmap the rule is not scheduled."""
        import shutil

        scan = self.cfg["real_scan"]
        return bool(self.cfg["enabled"] and scan["enabled"] and shutil.which(scan["nmap"]))

    def real_methods(self) -> list[dict]:
        """Baseline and robust tagger of the main encoder, with their real-scan predictions file."""
        enc = self.cfg["encoder"]
        return [{**self.method(enc, v), "predictions": f"results/ner/real/pred/{enc}/{v}.jsonl"}
                for v in ("baseline", "robust")]

    # ------------------------------------------------------------ methods (ner.methods)
    def methods(self) -> list[str]:
        """Methods built, in config order: ``ner.methods`` less the api: LLM methods whose key's
        environment variable is unset, when ``ner.skip_keyless_api_methods`` (they run once it is set)."""
        from .ner.methods import method_kind

        def ready(m: str) -> bool:
            if method_kind(m) != "llm" or not self.models.is_api(m) or not self.cfg["skip_keyless_api_methods"]:
                return True
            return bool(os.environ.get(self.models.entry(m)["api"]["key_env"]))

        return [m for m in self.cfg["methods"] if ready(m)]

    def method_kind(self, method: str) -> str:
        from .ner.methods import method_kind

        return method_kind(method)

    def llm_methods(self) -> list[str]:
        return [m for m in self.methods() if self.method_kind(m) == "llm"]

    def corpus_methods(self) -> list[str]:
        """Methods with a corpus of their own (``results/ner/data/{method}/``): baseline, and LLM
        methods when they train their own tagger (``ner.chain.own_tagger``)."""
        own = self.cfg["chain"]["own_tagger"]
        return [m for m in self.methods() if m == "baseline" or (own and self.method_kind(m) == "llm")]

    def method_normalize(self, method: str) -> bool:
        """The baseline tags the raw text as it comes; the others normalise (``ner.normalize``)."""
        return method != "baseline" and self.cfg["normalize"]

    def _llm_weights(self, method: str) -> dict:
        is_local = self.method_kind(method) == "llm" and not self.models.is_api(method)
        return {"llm": self.models.path(method)} if is_local else {}

    def method_llm_entry(self, method: str) -> dict | None:
        return self.models.entry(method) if self.method_kind(method) == "llm" else None

    def method_corpus_inputs(self, method: str) -> dict:
        return {"train": f"{NER_DATA}/train.jsonl", "val": f"{NER_DATA}/val.jsonl", **self._llm_weights(method)}

    def method_model(self, method: str, encoder: str) -> str:
        """Tagger of a method: baseline and templates are the ``baseline`` and ``robust`` variants; an
        LLM method's own robust tagger, or the templates one without ``ner.chain.own_tagger``."""
        variant = {"baseline": "baseline", "templates": "robust"}.get(method)
        if variant is None and not self.cfg["chain"]["own_tagger"]:
            variant = "robust"
        return f"results/ner/models/{encoder}/{variant}" if variant else f"results/ner/models/{encoder}/llm/{method}/robust"

    def method_train_inputs(self, method: str, encoder: str) -> dict:
        """Robust training inputs of an LLM method's tagger: its own corpus and variants."""
        data = f"{NER_DATA}/{method}"
        return {"encoder": self.models.path(encoder), "train": f"{data}/train.jsonl", "val": f"{data}/val.jsonl",
                "adv": f"{data}/train.adv.jsonl"}

    def method_predict_inputs(self, method: str, encoder: str) -> dict:
        return {"model": self.method_model(method, encoder), "test": f"{NER_DATA}/test.raw.jsonl",
                **self._llm_weights(method)}

    def method_label(self, method: str) -> str:
        if method == "baseline":
            return "fine-tuned (baseline, raw text)"
        if method == "templates":
            return "our method + templates (no LLM)"
        return f"our method + {self.models.label(method)}"

    def method_rows(self) -> list[dict]:
        """One row per method and encoder of ``ner_prf`` / ``ner_counts``."""
        return [{"encoder": e, "variant": "baseline" if m == "baseline" else "robust", "method": m,
                 "method_label": self.method_label(m), "encoder_label": self.models.label(e),
                 "llm": self.models.label(m) if self.method_kind(m) == "llm" else "none",
                 "predictions": f"results/ner/pred/methods/{m}/{e}.jsonl", "model": self.method_model(m, e)}
                for m in self.methods() for e in self.encoders()]

    def direct_rows(self) -> list[dict]:
        """One ``<LLM> (direct)`` row per LLM method (``ner.direct.enabled``): the LLM itself as
        the NER system (:mod:`tinysec.ner.direct`); no encoder."""
        if not self.cfg["direct"]["enabled"]:
            return []
        return [{"encoder": "", "variant": "direct", "method": m, "direct": True, "llm": self.models.label(m),
                 "method_label": f"{self.models.label(m)} (direct)",
                 "predictions": f"results/ner/pred/direct/{m}.jsonl"} for m in self.llm_methods()]

    def direct_inputs(self, method: str) -> dict:
        """Inputs of ``ner_direct_predict``: the raw test inputs and the LLM's local weights."""
        return {"test": f"{NER_DATA}/test.raw.jsonl", **self._llm_weights(method)}

    def example_input(self) -> dict:
        """The input of ``ner_example`` (kinds of :mod:`tinysec.ner.example`): the real-scan records
        when ``ner_real`` is built, else the first collected Nmap record, else the raw test inputs."""
        if self.real_scan_enabled():
            return {"kind": "real", "path": "results/ner/real/records.jsonl"}
        collected = [f for f in Osint(self.config).collected_records() if f.startswith("results/osint/raw/nmap/")]
        if collected:
            return {"kind": "collected", "path": collected[0]}
        return {"kind": "test", "path": f"{NER_DATA}/test.raw.jsonl"}

    def example_methods(self) -> list[dict]:
        """The main encoder's method rows with what tagging the example needs: display label,
        normaliser switch, LLM config entry and local weights folder (None for the others)."""
        return [{**r, "label": f"{r['method_label']} [{r['encoder_label']}]",
                 "normalize": self.method_normalize(r["method"]), "llm_entry": self.method_llm_entry(r["method"]),
                 "llm_dir": self._llm_weights(r["method"]).get("llm")}
                for r in self.method_rows() if r["encoder"] == self.cfg["encoder"]]

    def example_inputs(self) -> dict:
        """Inputs of ``ner_example``: the example input, every method's predictions (to pick the best
        method), taggers and local LLM weights."""
        rows = self.example_methods()
        return {"example": self.example_input()["path"], "predictions": [r["predictions"] for r in rows],
                "models": [r["model"] for r in rows], "llms": unique(r["llm_dir"] for r in rows if r["llm_dir"])}

    def caption_context(self) -> dict:
        """Facts every NER caption states: run, encoder, training sizes and settings."""
        ner = self.cfg
        return {"run_name": self.config["run_name"], "train": ner["train"], "robust": ner["robust"],
                "threshold": ner["confidence_threshold"], "low_confidence": ner["low_confidence"],
                "normalize": ner["normalize"], "ablations": ner["ablations"], "ablation_train": ner["ablation_train"],
                "families": self.data.test_families(), "chain": ner["chain"],
                "method_test_rows": ner["method_test_rows"], "direct": ner["direct"],
                "skipped_methods": [m for m in ner["methods"] if m not in self.methods()]}


def predictions(methods: Iterable[Mapping[str, str]]) -> list[str]:
    """The predictions files of table methods."""
    return [m["predictions"] for m in methods]
