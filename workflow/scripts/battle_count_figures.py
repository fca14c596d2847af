"""Battle counts of one rating pool: per model pair among its members (all,
without ties, ties only)."""

import pandas as pd

import tinysec.io
from tinysec.judge.pools import in_pool
from tinysec.rating.figures import battle_count_figure
from tinysec.reports import save_figure

with tinysec.io.script_logging(snakemake):
    members = snakemake.params.pool["members"]
    battles = pd.DataFrame(in_pool(tinysec.io.read_jsonl(snakemake.input.battles), members),
                           columns=["model_a", "model_b", "win"])
    models = sorted(set(battles["model_a"]) | set(battles["model_b"])) or sorted(members)
    for which, out in (("all", snakemake.output.counts), ("no_ties", snakemake.output.no_ties),
                       ("ties", snakemake.output.ties)):
        save_figure(battle_count_figure(battles, models, which), out)
