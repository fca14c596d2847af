"""Win/tie counts of every fine-tuned model against one reference opponent -> results/tables/vs_{opponent}.*"""

import tinysec.io
from tinysec.judge.battle import summarize
from tinysec.judge.tables import vs_table
from tinysec.reports import write_table

with tinysec.io.script_logging(snakemake) as log:
    opponent = snakemake.wildcards.opponent
    by_model, everything = {}, []
    for model, path in zip(snakemake.params.models, snakemake.input.pairs):
        by_model[model] = tinysec.io.read_jsonl(path, allow_empty=True)
        everything.extend(by_model[model])
    df = vs_table(by_model, opponent)
    s = summarize(everything)
    items = len({r["id"] for r in everything})
    caption = (
        f"Tables 1-2 analog: fine-tuned models against `{opponent}` on {items} evaluation items, "
        f"judge `{snakemake.params.judge}`. Each item is judged twice (A/B and B/A); agreeing verdicts "
        f"are kept, disagreeing ones count as a tie. Position-flip rate (share of items whose two "
        f"verdicts differ): {s['flip_rate']:.1%}; invalid battles excluded: {s['invalid']}. "
        f"custom_wins / ties / {opponent}_wins: battle counts; win_or_tie_rate: (wins + ties) / valid "
        f"battles; flip_rate: per model.")
    write_table(df, snakemake.output.csv, snakemake.output.md, caption)
    log.info("\n%s", df.to_string(index=False))
