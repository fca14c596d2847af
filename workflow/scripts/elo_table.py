"""Ratings of one rating pool: Elo (file order, shuffled orders) and Bradley-Terry with CIs
from the primary judge's battles among the pool's members -> results/tables/elo{_pool}.*"""

import tinysec.io
from tinysec.io import InputError
from tinysec.judge.pools import RATING_NAMES, caption_facts, in_pool, pool_judging
from tinysec.rating.battles import Battles
from tinysec.rating.bt import BTParams
from tinysec.rating.elo import EloParams
from tinysec.rating.rate import rate
from tinysec.reports import write_table

with tinysec.io.script_logging(snakemake) as log:
    p = snakemake.params
    pool = p.pool
    rows = in_pool(tinysec.io.read_jsonl(snakemake.input.battles), pool["members"])
    if not rows:
        raise InputError(snakemake.input.battles, f"no valid battle among the members of pool '{pool['pool']}' "
                         f"({', '.join(pool['members'])})")
    try:
        judging = pool_judging(tinysec.io.read_json(snakemake.input.summary), pool["members"])
    except KeyError as missing:
        raise InputError(snakemake.input.summary, "written by an older version of judge_battles; rerun it",
                         field=missing.args[0]) from None
    battles = Battles.from_records(rows, path=snakemake.input.battles)
    elo = EloParams(k=p.elo["k"], scale=p.elo["scale"], base=p.elo["base"], initial=p.elo["initial"])
    bt = BTParams(scale=p.elo["scale"], base=p.elo["base"], initial=p.elo["initial"], l2=p.bt["l2"])
    df = rate(battles, elo, bt, n_orders=p.elo["orders"], rounds=p.bt["rounds"], seed=p.seed, ci=p.ci, rows=rows)
    pct = round(100 * p.ci)
    caption = (
        f"Elo and Bradley-Terry ratings from {len(battles)} valid battles among {len(battles.models)} models, "
        f"judge `{p.judge}`. {caption_facts(pool, judging)} "
        f"elo: online Elo, one pass in file order (K={p.elo['k']:g}, scale {p.elo['scale']:g}, base "
        f"{p.elo['base']:g}, initial {p.elo['initial']:g}); elo_median [elo_lower, elo_upper]: median and "
        f"{pct}% interval over {p.elo['orders']} random orders; bt [bt_lower, bt_upper]: Bradley-Terry "
        f"maximum likelihood (ties = half a win each way) with {pct}% bootstrap interval over "
        f"{p.bt['rounds']} resamples; rank: 1 + models whose BT interval lies entirely above; battles: "
        f"valid battles of the model; mean_answer_words: mean answer length in words. "
        f"This pool's predicted win-rate figure uses {RATING_NAMES[pool['rating']]}.")
    write_table(df, snakemake.output.csv, snakemake.output.md, caption, floatfmt=".1f")
    log.info("\n%s", df.to_string(index=False))
