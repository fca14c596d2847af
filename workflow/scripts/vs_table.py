"""Win/tie counts of every fine-tuned model against one reference opponent -> results/tables/vs_{opponent}.*"""

import tinysec.io
from tinysec.judge.battle import summarize
from tinysec.judge.tables import vs_table
from tinysec.reports import write_table

with tinysec.io.script_logging(snakemake) as log:
    opponent, orders = snakemake.wildcards.opponent, list(snakemake.params.orders)
    by_model, everything = {}, []
    for model, path in zip(snakemake.params.models, snakemake.input.pairs):
        by_model[model] = tinysec.io.read_jsonl(path, allow_empty=True)
        everything.extend(by_model[model])
    df = vs_table(by_model, opponent, orders)
    items = len({r["id"] for r in everything})
    caption = (
        f"Wins, ties and losses of fine-tuned models against `{opponent}` on {items} evaluation items, "
        f"judge `{snakemake.params.judge}`. custom_wins / ties / {opponent}_wins / invalid: the study's "
        f"single-order counts, one verdict per item with the fine-tuned model's answer shown first "
        f"(A/B order), so each row sums to its items; win_or_tie_rate: (wins + ties) / valid verdicts.")
    if orders == ["ab", "ba"]:
        flip = summarize(everything)["flip_rate"]
        caption += (
            f" Each item was also judged in the swapped order (B/A). debiased_*: two-order counts, agreeing "
            f"verdicts kept, disagreeing ones counted as a tie, an invalid order makes the item invalid; "
            f"flip_rate: position-flip rate, the share of items with both verdicts valid whose two verdicts differ (all models: "
            f"{'no item' if flip is None else format(flip, '.1%')}).")
    else:
        caption += " Only the A/B order was judged (judge.orders: [ab]): no debiased counts, no flip rate."
    if snakemake.params.self_judged:
        caption += (f" The judge's own model answers in this table ({', '.join(snakemake.params.self_judged)}): "
                    f"it judges itself.")
    write_table(df, snakemake.output.csv, snakemake.output.md, caption)
    log.info("\n%s", df.to_string(index=False))
