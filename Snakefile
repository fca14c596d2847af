# tinysec: small cybersecurity LLMs and robust NER over OSINT.
#   snakemake --cores all                         # embedded default (offline, CPU)
#   snakemake --cores all --resources gpu=2 --configfile config/paper.yaml
#   snakemake --profile profiles/slurm --configfile config/paper.yaml
#   snakemake results/tables/elo.md               # one table and only its ancestors
from snakemake.utils import min_version, validate

min_version("9.0")


if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


validate(config, "config/schema/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/instruct.smk"
include: "rules/judge.smk"
include: "rules/cti.smk"
include: "rules/osint.smk"
include: "rules/ner_data.smk"
include: "rules/ner.smk"


rule all:
    default_target: True
    input:
        all_targets,
