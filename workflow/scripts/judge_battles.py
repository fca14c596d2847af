"""Judge every configured pair in the configured orders (A/B, and B/A when asked) ->
results/battles/{judge}/{a}__vs__{b}.jsonl, plus the FastChat-shaped battles.jsonl and summary.json
(orders, outcomes, invalid, position-flip rate)."""

import torch

import tinysec.io
from tinysec.judge.battle import judge_pairs, read_answers, read_items, summarize, to_fastchat
from tinysec.judge.cache import JudgmentCache
from tinysec.judge.judges import make_judge

with tinysec.io.script_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    name, spec = snakemake.wildcards.judge, dict(snakemake.params.spec)
    models = {spec["model"]: {"api": snakemake.params.api}} if spec["kind"] == "api" else {}
    judge = make_judge(spec, models, model_dir=snakemake.input.weights[0] if snakemake.input.weights else None,
                       embedder=snakemake.params.embedder, template=snakemake.input.prompt,
                       reask=snakemake.input.reask)
    answers = {name: read_answers(path) for name, path in zip(snakemake.params.contestants, snakemake.input.answers)}
    pairs = [tuple(p) for p in snakemake.params.pairs]
    cache = JudgmentCache(snakemake.params.cache)
    try:
        battles, stats = judge_pairs(read_items(snakemake.input.eval, need_reference=spec["kind"] == "reference"),
                                     answers, pairs, judge, cache, orders=snakemake.params.orders)
    finally:
        cache.close()
    log.info("judge %s: %s", name, stats)
    if stats["errors"]:
        raise RuntimeError(f"{stats['errors']} judge calls failed after retries (not cached; rerun to retry)")
    everything, per_pair = [], {}
    for (a, b), path in zip(pairs, snakemake.output.pairs):
        rows = battles[(a, b)]
        tinysec.io.write_jsonl(path, rows)
        per_pair[f"{a}__vs__{b}"] = summarize(rows)
        everything.extend(rows)
    n = tinysec.io.write_jsonl(snakemake.output.battles, to_fastchat(everything, name))
    summary = {"judge": name, "judge_kind": spec["kind"], "orders": list(snakemake.params.orders),
               **summarize(everything), "calls": stats, "pairs": per_pair}
    tinysec.io.write_json(snakemake.output.summary, summary)
    log.info("%d valid battles of %d; position-flip rate %s; %d invalid", n, len(everything),
             summary["flip_rate"], summary["invalid"])
