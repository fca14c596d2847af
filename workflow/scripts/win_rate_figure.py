"""Predicted win rates of one rating pool, from the ratings column of the pool's own
Elo table that judge.pools.<pool>.rating names (online Elo, shuffled median or Bradley-Terry)."""

import pandas as pd

import tinysec.io
from tinysec.judge.pools import RATING_LABELS, RATING_NAMES
from tinysec.rating.figures import win_rate_figure
from tinysec.reports import save_figure

with tinysec.io.script_logging(snakemake) as log:
    column = snakemake.params.pool["rating"]
    df = pd.read_csv(snakemake.input.ratings)
    if column not in df.columns:
        raise tinysec.io.InputError(snakemake.input.ratings, f"no '{column}' column (judge.pools rating)",
                                    field=column)
    label = RATING_LABELS[column]
    fig = win_rate_figure(df["model"].tolist(), df[column].to_numpy(), snakemake.params.scale,
                          snakemake.params.base, rating_name=label)
    save_figure(fig, snakemake.output.figure)
    log.info("pool %s: win rates from %s", snakemake.params.pool["pool"], RATING_NAMES[column])
