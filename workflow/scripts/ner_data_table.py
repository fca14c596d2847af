"""Snakemake entry: corpus statistics table results/tables/ner_corpus.{csv,md}."""

from tinysec.io import read_json, read_jsonl, script_logging
from tinysec.ner.corpus import SPLITS, corpus_table, table_caption
from tinysec.reports import write_table

with script_logging(snakemake) as log:
    p = snakemake.params
    splits = {name: read_jsonl(snakemake.input[name], allow_empty=True) for name in SPLITS}
    stats = read_json(snakemake.input.stats)
    df = corpus_table(splits, p.types)
    note = ""
    if stats.get("rephrase"):
        r = stats["rephrase"]
        note = (f", then rephrased by {r['model']} with the reflection loop ({r['rewritten']} rewritten, "
                f"{r['fallbacks']} fell back to the template)")
    write_table(df, snakemake.output.csv, snakemake.output.md,
                table_caption(df, p.types, p.run_name, p.seed, p.split, note), floatfmt=".3f")
    log.info("wrote %s", snakemake.output.md)
