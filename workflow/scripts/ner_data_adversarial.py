"""Snakemake entry: perturbed training variants (train.adv.jsonl with word_map) for adversarial training."""

from tinysec.gpu import claim_gpus
from tinysec.io import read_jsonl, script_logging, write_json, write_jsonl
from tinysec.ner.corpus import adversarial_rows

with script_logging(snakemake) as log:
    p = snakemake.params
    train = read_jsonl(snakemake.input.train, allow_empty=True)
    rows = adversarial_rows(train, p.families, p.adv_families, p.copies, p.seed, p.entity_prob, p.char_rate)
    stats = {"train": len(train), "perturbed": len(rows), "paraphrase": None}
    if p.paraphrase["enabled"]:
        import torch

        from tinysec.ner.rephrase import paraphrase_rows

        torch.set_num_threads(snakemake.threads)

        with claim_gpus(snakemake.resources.gpu):
            kept, pstats = paraphrase_rows(train, p.paraphrase, p.llm_entry, snakemake.input.get("llm"),
                                           snakemake.input.embedder, p.seed)
        rows += kept
        stats["paraphrase"] = pstats
    stats["rows"] = write_jsonl(snakemake.output.adv, rows)
    write_json(snakemake.output.stats, stats)
    log.info("adversarial training variants: %s", stats)
