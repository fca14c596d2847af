"""Snakemake entry: collect one target with one OSINT tool (cached, rate-limited)."""

from tinysec.io import script_logging, write_json
from tinysec.osint.collect import collect

with script_logging(snakemake) as log:
    conf = snakemake.config["osint"]
    record, cached = collect(snakemake.wildcards.source, snakemake.params.target, snakemake.params.options,
                             conf["cache_dir"], conf["cache_ttl_s"])
    log.info("%s %s: %d gold entities (%s)", record["source"], record["target"], len(record["gold_entities"]),
             "from cache" if cached else "queried")
    write_json(snakemake.output.record, record)
