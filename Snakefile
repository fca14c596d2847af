# tinysec: small cybersecurity LLMs and robust NER over OSINT.
#   snakemake --cores all                         # embedded default (offline, CPU)
#   snakemake --cores all --resources gpu=2 --configfile config/paper.yaml
#   snakemake --profile profiles/slurm --configfile config/paper.yaml
#   snakemake results/tables/elo.md               # one table and only its ancestors
import os

from snakemake.utils import min_version

from tinysec.config import exit_on_config_error, load_config_file, validate_config

min_version("9.0")


if not workflow.config_settings.configfiles:
    if os.path.exists("config/config.yaml"):  # a YAML syntax error names the file and line
        exit_on_config_error(load_config_file, "config/config.yaml")

    configfile: "config/config.yaml"


# Validate against config/schema/config.schema.yaml and fill its defaults
# (tinysec.config.validate_config); any misspelled key, wrong type or undefined model name stops the run with
# one message naming its full key path (no traceback).
exit_on_config_error(
    validate_config,
    config,
    workflow.current_basedir.join("config/schema/config.schema.yaml").get_path_or_uri(
        secret_free=True
    ),
    source="config "
    + ", ".join(map(str, workflow.config_settings.configfiles or ["config/config.yaml"])),
    # with --sdm conda/apptainer, gguf: model packages live in the jobs' environment only
    resolve_gguf=not workflow.deployment_settings.deployment_method,
)


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/instruct.smk"
include: "rules/judge.smk"
include: "rules/cti.smk"
include: "rules/osint.smk"
include: "rules/ner_data.smk"
include: "rules/ner.smk"
include: "rules/ner_methods.smk"


rule all:
    default_target: True
    input:
        all_targets,
