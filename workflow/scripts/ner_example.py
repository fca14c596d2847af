"""Snakemake entry: one report and the entities each method finds (Table 3 analog)."""

from tinysec.io import atomic_path, script_logging
from tinysec.ner.tables import Method, caption, example_markdown

with script_logging(snakemake):
    methods = [Method(**m) for m in snakemake.params.methods]
    text = example_markdown(methods, source=snakemake.params.source,
                            caption=caption("example", methods, snakemake.params.context))
    with atomic_path(snakemake.output.md) as fh:
        fh.write(text)
