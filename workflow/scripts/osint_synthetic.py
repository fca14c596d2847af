"""Snakemake entry: the seeded offline sample corpus (every record labelled synthetic)."""

from tinysec.io import script_logging, write_jsonl
from tinysec.osint.synthetic import generate

with script_logging(snakemake) as log:
    p = snakemake.params
    n = write_jsonl(snakemake.output.records,
                    generate(p.n_records, dict(p.mix), int(p.seed), tuple(p.record_types)))
    log.info("wrote %d synthetic records to %s", n, snakemake.output.records)
