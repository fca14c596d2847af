"""Snakemake entry: start services on 127.0.0.1, scan them with the real nmap -sV (text and XML),
write the two evaluation records."""

from tinysec.io import script_logging, write_jsonl
from tinysec.osint.real_scan import real_scan

with script_logging(snakemake) as log:
    records = real_scan(binary=snakemake.params.nmap, timeout_s=snakemake.params.timeout_s)
    for rec in records:
        log.info("%s: %d gold entities: %s", rec["id"], len(rec["gold_entities"]),
                 ", ".join(f"{e['type']} {e['text']}" for e in rec["gold_entities"]))
    write_jsonl(snakemake.output.records, records)
