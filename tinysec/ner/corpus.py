"""The NER corpus: records -> rendered samples -> stratified splits, perturbed sets, statistics.

Sample rows (``results/ner/data/{train,val,test}.jsonl``)::

    {id, source, context, text, tokens, tags, spans, synthetic, templates, mentions}

(``templates``: the template ids used; ``mentions``: gold entities that needed the closing
mention sentence.) Perturbed rows (``test.{family}.jsonl``, ``train.adv.jsonl``) add ``orig_id``,
``family``, ``operators`` (one per perturbed entity) and ``word_map``.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from typing import Iterable, Mapping, Sequence

from tqdm.auto import tqdm

from ..io import InputError
from .labels import check_spans, spans_to_bio
from .perturb import perturb_sample
from .render import load_templates, record_rng, render_record
from .tokenize import word_spans

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def make_sample(rec: dict, types: Sequence[str], seed: int, templates: dict, where: str, row: int) -> dict:
    """Render one OSINT record into a corpus sample."""
    r = render_record(rec, types, seed=seed, templates=templates, where=where, row=row)
    ws = word_spans(r.text)
    return {"id": rec["id"], "source": rec["source"], "context": r.context, "text": r.text,
            "tokens": [r.text[a:b] for a, b in ws], "tags": spans_to_bio(r.text, r.spans, ws),
            "spans": r.spans, "synthetic": bool(rec["synthetic"]), "templates": r.templates,
            "mentions": r.mentions}


def sample_records(records: Sequence[dict], max_records: int, seed: int) -> list[dict]:
    """At most ``max_records`` records (0: all), the same share from each source, seeded."""
    if not max_records or len(records) <= max_records:
        return list(records)
    by_src: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_src[r["source"]].append(r)
    rng = random.Random(seed)
    share = max_records / len(records)
    keep = []
    for src in sorted(by_src):
        group = by_src[src][:]
        rng.shuffle(group)
        keep += group[:max(1, round(share * len(group)))]
    rng.shuffle(keep)
    return keep[:max_records]


def build_samples(records: Iterable[dict], types: Sequence[str], seed: int = 0, templates_path: str | None = None,
                  where: str = "<records>") -> list[dict]:
    """Render every record; a gold span that does not match its text raises :class:`InputError`."""
    templates = load_templates(templates_path or None)
    out = []
    for row, rec in enumerate(tqdm(list(records), desc="rendering records", mininterval=5), start=1):
        out.append(make_sample(rec, types, seed, templates, where, row))
    return out


def split_samples(samples: Sequence[dict], fractions: Mapping[str, float], seed: int = 0) -> dict[str, list[dict]]:
    """Seeded split stratified by source (each source cut train/val/test by ``fractions``).

    When there are at least three samples, val and test each get at least one. Fractions that
    do not add up to 1 raise ``ValueError`` (they are never rescaled).
    """
    total = sum(fractions[s] for s in SPLITS)
    if abs(total - 1) > 1e-6:
        raise ValueError(f"ner_data.split: fractions must add up to 1, got {total:g} ({dict(fractions)})")
    cum_train = fractions["train"]
    cum_val = cum_train + fractions["val"]
    by_src: dict[str, list[dict]] = defaultdict(list)
    for s in samples:
        by_src[s["source"]].append(s)
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for src in sorted(by_src):
        group = sorted(by_src[src], key=lambda s: s["id"])
        random.Random(f"{seed}:{src}").shuffle(group)
        n = len(group)
        a, b = round(n * cum_train), round(n * cum_val)
        out["train"] += group[:a]
        out["val"] += group[a:b]
        out["test"] += group[b:]
    for need in ("test", "val"):
        if not out[need] and len(samples) >= 3 and fractions[need] > 0:
            counts = Counter(s["source"] for s in out["train"])
            src = counts.most_common(1)[0][0]
            moved = next(s for s in reversed(out["train"]) if s["source"] == src)
            out["train"].remove(moved)
            out[need].append(moved)
    return out


def check_sample(sample: dict, where: str, row: int, types: Sequence[str]) -> None:
    """Check a sample's spans and tags against its text (errors name file, row and field)."""
    check_spans(sample["text"], sample["spans"], where=where, row=row, types=types)
    if len(sample["tokens"]) != len(sample["tags"]):
        raise InputError(where, f"{len(sample['tags'])} tags for {len(sample['tokens'])} tokens", row=row,
                         field="tags")


def perturb_rows(samples: Sequence[dict], family: str, operators: Sequence[str], seed: int,
                 entity_prob: float, char_rate: float, copy: int = 0, with_word_map: bool = False) -> list[dict]:
    """Perturbed copies of ``samples`` under one family (samples without entities are skipped)."""
    out = []
    for s in samples:
        if not s["spans"]:
            continue
        rng = record_rng(seed, s["id"], f"{family}:{copy}")
        p = perturb_sample(s["text"], s["spans"], operators, rng, entity_prob=entity_prob, char_rate=char_rate)
        row = {"id": f"{s['id']}~{family}" + (f"~{copy}" if copy else ""), "orig_id": s["id"],
               "family": family, "source": s["source"], "context": s["context"], "text": p.text,
               "tokens": [p.text[a:b] for a, b in p.words], "tags": p.tags, "spans": p.spans,
               "synthetic": s["synthetic"], "operators": p.operators}
        if with_word_map:
            row["word_map"] = p.word_map
        out.append(row)
    return out


def adversarial_rows(train: Sequence[dict], families: Mapping[str, Sequence[str]], adv_families: Sequence[str],
                     copies: int, seed: int, entity_prob: float, char_rate: float) -> list[dict]:
    """``copies`` perturbed variants of each training sample, family drawn per (sample, copy)."""
    unknown = [f for f in adv_families if f not in families]
    if unknown:
        raise ValueError(f"adv_families {unknown} are not defined under ner_data.perturb.families")
    out = []
    for c in range(copies):
        for s in train:
            fam = record_rng(seed, s["id"], f"adv:{c}").choice(list(adv_families))
            out += perturb_rows([s], fam, families[fam], seed, entity_prob, char_rate, copy=c + 1,
                                with_word_map=True)
    return out


# ---------------------------------------------------------------- statistics
def corpus_table(splits: Mapping[str, Sequence[dict]], types: Sequence[str]):
    """Samples, tokens and entities per type, per source (and all), with the IP+ORG share (a DataFrame)."""
    import pandas as pd

    rows = []
    all_samples = [(name, s) for name in SPLITS for s in splits.get(name, [])]
    sources = sorted({s["source"] for _, s in all_samples})
    for src in sources + ["all"]:
        group = [(n, s) for n, s in all_samples if src == "all" or s["source"] == src]
        ents = Counter(sp["type"] for _, s in group for sp in s["spans"])
        n_ent = sum(ents.values())
        row = {"source": src, "samples": len(group)}
        for name in SPLITS:
            row[name] = sum(1 for n, _ in group if n == name)
        row["tokens"] = sum(len(s["tokens"]) for _, s in group)
        row.update({t: ents.get(t, 0) for t in types})
        row["entities"] = n_ent
        row["ip_org_share"] = (ents.get("IP", 0) + ents.get("ORG", 0)) / n_ent if n_ent else 0.0
        row["synthetic_share"] = sum(1 for _, s in group if s["synthetic"]) / len(group) if group else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def table_caption(df, types: Sequence[str], run_name: str, seed: int,
                  fractions: Mapping[str, float], rephrase_note: str = "") -> str:
    """Caption of the corpus table; says 'synthetic' when (part of) the corpus is synthetic."""
    total = df[df.source == "all"].iloc[0] if len(df) else None
    syn = float(total["synthetic_share"]) if total is not None else 0.0
    if syn >= 1.0:
        origin = "SYNTHETIC corpus: every record was generated offline (no real OSINT answers)"
    elif syn > 0:
        origin = f"partly synthetic corpus: {syn:.0%} of the records were generated offline, the rest collected"
    else:
        origin = "collected corpus: every record is a real tool answer"
    return (f"NER corpus statistics ({run_name}; {origin}). One sample per OSINT record, rendered with "
            f"seeded natural-language templates{rephrase_note}. Columns: samples and their "
            f"train/val/test split ({fractions['train']:g}/{fractions['val']:g}/{fractions['test']:g}, "
            f"stratified by source, seed {seed}); tokens (words of the security-aware tokenizer); entity "
            f"mentions per type ({', '.join(types)}); entities (all mentions); ip_org_share = (IP+ORG)/entities; "
            f"synthetic_share = share of samples from generated records.")


# ---------------------------------------------------------------- rule jobs
def corpus_job(records_path: str, out: Mapping[str, str], types: Sequence[str], seed: int, templates: str,
               max_records: int, fractions: Mapping[str, float], rephrase: Mapping | None = None,
               rewriter=None) -> dict:
    """Records -> rendered (optionally rephrased) samples -> train/val/test JSONL + stats JSON."""
    from ..io import write_json, write_jsonl
    from ..osint.record import load_records

    records = sample_records(load_records(records_path), max_records, seed)
    if not records:
        raise InputError(records_path, "no OSINT records to build the NER corpus from")
    samples = build_samples(records, types, seed, templates or None, where=records_path)
    stats = {"records": len(records), "samples": len(samples), "mention_fallbacks": sum(s["mentions"] for s in samples),
             "rephrase": None}
    if rephrase and rephrase.get("enabled"):
        from .rephrase import reflect_rephrase

        limit = rephrase.get("max_records") or len(samples)
        res = reflect_rephrase(samples[:limit], rewriter, max_tries=int(rephrase.get("max_tries", 3)))
        samples[:limit] = res.samples
        stats["rephrase"] = {"model": rephrase.get("model"), "attempted": len(res.samples),
                             "rewritten": res.rewritten, "fallbacks": res.fallbacks, "retries": res.retries}
        log.info("rephrasing: %d rewritten, %d fallbacks to the template, %d retries",
                 res.rewritten, res.fallbacks, res.retries)
    splits = split_samples(samples, fractions, seed)
    for name in SPLITS:
        for row, s in enumerate(splits[name], start=1):
            check_sample(s, out[name], row, types)
        write_jsonl(out[name], splits[name])
    stats["splits"] = {n: len(splits[n]) for n in SPLITS}
    stats["synthetic"] = sum(1 for s in samples if s["synthetic"])
    write_json(out["stats"], stats)
    return stats
