"""Snakemake entry: merge collected and synthetic records into results/osint/records.jsonl."""

from tinysec.io import script_logging
from tinysec.osint.corpus import merge_records

with script_logging(snakemake) as log:
    n = merge_records(snakemake.input.collected, snakemake.input.synthetic, snakemake.output.records)
    log.info("wrote %d records (%d collected files) to %s", n, len(snakemake.input.collected),
             snakemake.output.records)
