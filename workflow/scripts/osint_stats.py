"""Snakemake entry: OSINT corpus statistics table and entity figure."""

from tinysec.io import script_logging
from tinysec.osint.corpus import corpus_stats, entity_figure, stats_caption
from tinysec.osint.record import iter_records
from tinysec.reports import save_figure, write_table

with script_logging(snakemake) as log:
    df = corpus_stats(iter_records(snakemake.input.records))
    write_table(df, snakemake.output.csv, snakemake.output.md, stats_caption(df, snakemake.params.run_name))
    save_figure(entity_figure(df), snakemake.output.figure)
    log.info("corpus statistics:\n%s", df.to_string(index=False))
