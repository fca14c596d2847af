"""Fig. 3 analog: predicted win rates from the median shuffled-order Elo ratings."""

import pandas as pd

import tinysec.io
from tinysec.rating.figures import win_rate_figure
from tinysec.reports import save_figure

with tinysec.io.script_logging(snakemake):
    df = pd.read_csv(snakemake.input.ratings)
    fig = win_rate_figure(df["model"].tolist(), df["elo_median"].to_numpy(), snakemake.params.scale,
                          snakemake.params.base)
    save_figure(fig, snakemake.output.figure)
