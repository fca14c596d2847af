"""Figs. 4-6 analog: battle counts per model pair (all, without ties, ties only)."""

import pandas as pd

import tinysec.io
from tinysec.rating.figures import battle_count_figure
from tinysec.reports import save_figure

with tinysec.io.script_logging(snakemake):
    battles = pd.DataFrame(tinysec.io.read_jsonl(snakemake.input.battles))
    models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    for which, out in (("all", snakemake.output.counts), ("no_ties", snakemake.output.no_ties),
                       ("ties", snakemake.output.ties)):
        save_figure(battle_count_figure(battles, models, which), out)
