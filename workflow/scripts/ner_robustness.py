"""Snakemake entry of ner_robustness and ner_ablation (`use rule ner_robustness as ner_ablation`):
F1 on the clean and each perturbed test set with drop and attack success rate, per method
(robustness) or per robust-training component removed (ablation); clean P/R/F1 per source and
rendering (ner_sources, also `use rule ner_robustness`)."""

from tinysec.io import script_logging
from tinysec.ner.tables import Method, ablation_table, caption, robustness_table, sources_table
from tinysec.reports import write_table

TABLES = {"robustness": robustness_table, "ablation": ablation_table, "sources": sources_table}

with script_logging(snakemake):
    kind = snakemake.params.table
    methods = [Method(**m) for m in snakemake.params.methods]
    df = TABLES[kind](methods, snakemake.params.families)
    write_table(df, snakemake.output.table, snakemake.output.md, caption(kind, methods, snakemake.params.context))
