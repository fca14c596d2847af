# Shared helpers: wildcard constraints, the plan of each section, resources, targets. Included
# first. What runs (contestants, judge pairs, hyperparameters, table rows) is computed by
# tinysec.plan from the validated config; this file binds it to `config`.
import os

from tinysec import plan
from tinysec.ner.settings import VARIANTS as NER_VARIANTS

NAME = r"[A-Za-z0-9][A-Za-z0-9.-]*"


wildcard_constraints:
    model=NAME,
    opponent=NAME,
    judge=NAME,
    method=r"lora|full",
    task=r"tactic|technique",
    source=plan.one_of(plan.OSINT_SOURCES),
    target=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    ner_encoder=NAME,
    ner_variant=plan.one_of(NER_VARIANTS),


MODELS = plan.Models(config)
INSTRUCT = plan.Instruct(config, MODELS)
JUDGE = plan.Judge(config, MODELS, INSTRUCT)
CTI = plan.Cti(config, MODELS)
OSINT = plan.Osint(config)
NER_CORPUS = plan.NerData(config, MODELS)
NER = plan.Ner(config, MODELS, NER_CORPUS)
NER_DATA = plan.NER_DATA
one_of = plan.one_of

# ---------------------------------------------------------------- targets of `rule all`
# Each rules/*.smk registers the final tables and figures of its section.
TARGETS = []


def register_targets(*paths):
    """Add final outputs (tables, figures) to `rule all`."""
    TARGETS.extend(str(p) for p in paths)


def all_targets(wildcards):
    return TARGETS


def section_enabled(name):
    return config[name]["enabled"]


# ---------------------------------------------------------------- models and resources
def model_path(name):
    """Folder holding the weights of model `name` (see tinysec.plan.Models.path)."""
    return MODELS.path(name)


def gpu_resources(gpus=None):
    """`resources:` of GPU-tagged rules: gpu count (`gpus`, else device.gpus_per_job; + gpu_model
    for SLURM), memory, runtime."""
    dev = config["device"]
    gpus = dev["gpus_per_job"] if gpus is None else gpus
    res = {"gpu": gpus, "mem_mb": dev["mem_mb"], "runtime": dev["runtime"]}
    if dev["gpu_model"] and gpus > 0:
        res["gpu_model"] = dev["gpu_model"]
    return res


HEAVY_THREADS = config["device"]["threads"]


def judge_resource(key):
    """A judge file setting (prompt template): as given when it exists from the working
    directory or is absolute, else relative to the repository (shipped resources/judge/)."""
    path = config["judge"][key]
    if os.path.isabs(path) or os.path.exists(path):
        return path
    from tinysec.paths import REPO

    return str(REPO / path)
