"""The NER corpus: records -> rendered samples -> stratified splits, perturbed sets, statistics.

Every OSINT record gives a *template* sample (natural-language segments,
:func:`~tinysec.ner.render.render_record`) and *raw* samples: the tagger view of its raw tool
text that ``tinysec tag`` builds, gold spans projected onto it
(:func:`~tinysec.ner.render.render_raw`), cut at line starts into windows of at most
``raw_max_words`` words (:func:`~tinysec.ner.view.line_windows`) so that a long dig or WHOIS
answer is not truncated by the encoder; at most :data:`RAW_MAX_WINDOWS` windows per record are
kept, those covering the most gold entities. All samples of a record land in the same split.

Sample rows (``results/ner/data/{train,val,test}.jsonl``)::

    {id, record, rendering, format, source, context, text, tokens, tags, spans, synthetic, templates, mentions}

(``record``: the OSINT record id; ``rendering``: ``template`` or ``raw`` (raw samples' ids are
``<record>~raw`` for the first window, ``<record>~raw.<k>`` for the view's window k >= 2; raw samples also
carry ``window``: ``[start, end]`` of the slice in the full view); ``format``: the input format the tagger view detected (``text`` for templates);
``templates``: the template ids used; ``mentions``: gold entities that needed the closing
mention sentence.) Perturbed rows (``test.{family}.jsonl``, ``train.adv.jsonl``) add ``orig_id``,
``family``, ``operators`` (one per perturbed entity) and ``word_map``.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from tqdm.auto import tqdm

from ..io import InputError
from .labels import check_spans, spans_to_bio
from .perturb import perturb_sample
from .render import Rendered, load_templates, record_rng, render_raw, render_record
from .substitutions import HELDOUT, TRAIN
from .tokenize import word_spans
from .view import line_windows

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
RENDERINGS = ("template", "raw")
RAW_MAX_WORDS = 120  # words per raw-view window (about 200-250 subword tokens of a BERT-style vocabulary)
RAW_MAX_WINDOWS = 4  # raw windows kept per record (a 7-query dig answer has about 9)


def _sample(rec: dict, r: Rendered, rendering: str) -> dict:
    ws = word_spans(r.text)
    sid = rec["id"] if rendering == "template" else f"{rec['id']}~raw"
    return {"id": sid, "record": rec["id"], "rendering": rendering, "format": r.format,
            "source": rec["source"], "context": r.context, "text": r.text,
            "tokens": [r.text[a:b] for a, b in ws], "tags": spans_to_bio(r.text, r.spans, ws),
            "spans": r.spans, "synthetic": bool(rec["synthetic"]), "templates": r.templates,
            "mentions": r.mentions}


def make_sample(rec: dict, types: Sequence[str], seed: int, templates: dict, where: str, row: int) -> dict:
    """The template rendering of one OSINT record as a corpus sample."""
    return _sample(rec, render_record(rec, types, seed=seed, templates=templates, where=where, row=row), "template")


def _covering(windows: list[tuple[int, int]], spans: list[dict], keep: int) -> list[int]:
    """Indices of at most ``keep`` windows, picked greedily by the gold ``(type, text)`` pairs they
    add (ties: the earlier window), in text order; the first window is always kept."""
    have = [{(sp["type"], sp["text"]) for sp in spans if a <= sp["start"] < b} for a, b in windows]
    chosen, seen = [0], set(have[0]) if have else set()
    while len(chosen) < min(keep, len(windows)):
        gain = [(len(h - seen), -i) for i, h in enumerate(have) if i not in chosen]
        best = -max(gain)[1]
        chosen.append(best)
        seen |= have[best]
    return sorted(chosen)


def make_raw_samples(rec: dict, types: Sequence[str], where: str, row: int, max_words: int = RAW_MAX_WORDS,
                     max_windows: int = RAW_MAX_WINDOWS) -> list[dict]:
    """The raw rendering (tagger view of the raw tool text) of one OSINT record as corpus samples:
    line windows of at most ``max_words`` words, at most ``max_windows`` of them (those that cover
    the most gold entities); spans are shifted into each window."""
    full = render_raw(rec, types, where=where, row=row)
    windows = line_windows(full.text, max_words)
    out = []
    for k in _covering(windows, full.spans, max_windows) if windows else []:
        a, b = windows[k]
        spans = [{**sp, "start": sp["start"] - a, "end": sp["end"] - a} for sp in full.spans if a <= sp["start"] < b]
        if any(sp["end"] > b - a for sp in spans):
            raise InputError(where, f"record {rec['id']!r}: a gold span crosses a line window", row=row,
                             field="gold_entities")
        part = Rendered(full.text[a:b], spans, full.context, full.templates, 0, full.format, full.missing)
        sample = _sample(rec, part, "raw")
        sample["id"] += f".{k + 1}" if k else ""
        sample["window"] = [a, b]
        out.append(sample)
    return out


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
                  where: str = "<records>", raw_max_words: int = RAW_MAX_WORDS) -> list[dict]:
    """Both renderings of every record (the template sample, then the raw view's windows); a gold
    span that does not match its text raises :class:`InputError`."""
    from ..osint.real_scan import refuse_real_scan

    templates = load_templates(templates_path or None)
    out = []
    for row, rec in enumerate(tqdm(list(records), desc="rendering records", mininterval=5), start=1):
        refuse_real_scan(rec, where, row)  # real-scan records are evaluation only, never training
        out.append(make_sample(rec, types, seed, templates, where, row))
        out += make_raw_samples(rec, types, where, row, raw_max_words)
    return out


def split_samples(samples: Sequence[dict], fractions: Mapping[str, float], seed: int = 0) -> dict[str, list[dict]]:
    """Seeded split of records stratified by source (each source's records cut train/val/test by
    ``fractions``); all samples of one record (its renderings, key ``record``, default ``id``) go
    to the same split.

    When there are at least three records, val and test each get at least one. Fractions that
    do not add up to 1 raise ``ValueError`` (they are never rescaled).
    """
    total = sum(fractions[s] for s in SPLITS)
    if abs(total - 1) > 1e-6:
        raise ValueError(f"ner_data.split: fractions must add up to 1, got {total:g} ({dict(fractions)})")
    cum_train = fractions["train"]
    cum_val = cum_train + fractions["val"]
    by_record: dict[str, list[dict]] = defaultdict(list)
    for s in samples:
        by_record[s.get("record", s["id"])].append(s)
    by_src: dict[str, list[str]] = defaultdict(list)
    for rid, group in by_record.items():
        by_src[group[0]["source"]].append(rid)
    cut: dict[str, list[str]] = {s: [] for s in SPLITS}
    for src in sorted(by_src):
        group = sorted(by_src[src])
        random.Random(f"{seed}:{src}").shuffle(group)
        n = len(group)
        a, b = round(n * cum_train), round(n * cum_val)
        cut["train"] += group[:a]
        cut["val"] += group[a:b]
        cut["test"] += group[b:]
    for need in ("test", "val"):
        if not cut[need] and len(by_record) >= 3 and fractions[need] > 0:
            counts = Counter(by_record[r][0]["source"] for r in cut["train"])
            src = counts.most_common(1)[0][0]
            moved = next(r for r in reversed(cut["train"]) if by_record[r][0]["source"] == src)
            cut["train"].remove(moved)
            cut[need].append(moved)
    return {name: [s for rid in cut[name] for s in by_record[rid]] for name in SPLITS}


def check_sample(sample: dict, where: str, row: int, types: Sequence[str]) -> None:
    """Check a sample's spans and tags against its text (errors name file, row and field)."""
    check_spans(sample["text"], sample["spans"], where=where, row=row, types=types)
    if len(sample["tokens"]) != len(sample["tags"]):
        raise InputError(where, f"{len(sample['tags'])} tags for {len(sample['tokens'])} tokens", row=row,
                         field="tags")


def perturb_rows(samples: Sequence[dict], family: str, operators: Sequence[str], seed: int,
                 entity_prob: float, char_rate: float, copy: int = 0, with_word_map: bool = False,
                 half: str = HELDOUT) -> list[dict]:
    """Perturbed copies of ``samples`` under one family (samples without entities are skipped), with
    substitutions from table half ``half`` (held-out for test sets, see :mod:`.substitutions`)."""
    out = []
    for s in samples:
        if not s["spans"]:
            continue
        rng = record_rng(seed, s["id"], f"{family}:{copy}")
        p = perturb_sample(s["text"], s["spans"], operators, rng, entity_prob=entity_prob, char_rate=char_rate,
                           half=half)
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
    """``copies`` perturbed variants of each training sample, family drawn per (sample, copy); the
    substitutions come from the training halves of the tables only."""
    unknown = [f for f in adv_families if f not in families]
    if unknown:
        raise ValueError(f"adv_families {unknown} are not defined under ner_data.perturb.families")
    out = []
    for c in range(copies):
        for s in train:
            fam = record_rng(seed, s["id"], f"adv:{c}").choice(list(adv_families))
            out += perturb_rows([s], fam, families[fam], seed, entity_prob, char_rate, copy=c + 1,
                                with_word_map=True, half=TRAIN)
    return out


# ---------------------------------------------------------------- statistics
def corpus_table(splits: Mapping[str, Sequence[dict]], types: Sequence[str]):
    """Samples (per rendering), tokens and entities per type, per source (and all), with the IP+ORG
    share and the raw views' input formats (``raw_formats``: ``format:count`` pairs) (a DataFrame)."""
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
        origin = {s.get("record", s["id"]): s["synthetic"] for _, s in group}
        row["synthetic_share"] = sum(origin.values()) / len(origin) if origin else 0.0
        for rendering in RENDERINGS:
            row[rendering] = sum(1 for _, s in group if s.get("rendering", "template") == rendering)
        formats = Counter(s["format"] for _, s in group if s.get("rendering") == "raw")
        row["raw_formats"] = " ".join(f"{f}:{c}" for f, c in sorted(formats.items())) or "-"
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
    mix = str(total["raw_formats"]) if total is not None and "raw_formats" in total else "-"
    return (f"NER corpus statistics ({run_name}; {origin}). Each OSINT record gives a template sample "
            f"(seeded natural-language templates{rephrase_note}) and raw samples: the tagger view of the "
            f"record's raw tool text that `tinysec tag` builds, gold spans projected onto it, cut at line "
            f"starts into windows of at most {RAW_MAX_WORDS} words, at most {RAW_MAX_WINDOWS} per record, those "
            f"covering the most gold entities (raw-sample input formats: {mix}). "
            f"Columns: samples and their "
            f"train/val/test split ({fractions['train']:g}/{fractions['val']:g}/{fractions['test']:g}, "
            f"records stratified by source, all samples of a record in one split, seed {seed}); tokens (words of the security-aware tokenizer); entity "
            f"mentions per type ({', '.join(types)}); entities (all mentions); ip_org_share = (IP+ORG)/entities; "
            f"synthetic_share = share of the records that were generated; template / raw = samples per rendering; "
            f"raw_formats = input formats of the raw samples (format:count).")


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
             "rephrase": None, "renderings": dict(Counter(s["rendering"] for s in samples)),
             "raw_max_words": RAW_MAX_WORDS, "raw_max_windows": RAW_MAX_WINDOWS,
             "formats": {src: dict(Counter(s["format"] for s in samples if s["source"] == src and s["rendering"] == "raw"))
                         for src in sorted({s["source"] for s in samples})}}
    if rephrase and rephrase["enabled"]:
        from .rephrase import reflect_rephrase

        at = [i for i, s in enumerate(samples) if s["rendering"] == "template"]  # raw views stay as the tool wrote them
        at = at[:rephrase["max_records"] or len(at)]
        res = reflect_rephrase([samples[i] for i in at], rewriter, max_tries=int(rephrase["max_tries"]))
        for i, s in zip(at, res.samples):
            samples[i] = s
        stats["rephrase"] = {"model": rephrase["model"], "attempted": len(res.samples),
                             "rewritten": res.rewritten, "fallbacks": res.fallbacks, "retries": res.retries}
        log.info("rephrasing: %d rewritten, %d fallbacks to the template, %d retries",
                 res.rewritten, res.fallbacks, res.retries)
    splits = split_samples(samples, fractions, seed)
    for name in SPLITS:
        for row, s in enumerate(splits[name], start=1):
            check_sample(s, out[name], row, types)
        write_jsonl(out[name], splits[name])
    stats["splits"] = {n: len(splits[n]) for n in SPLITS}
    stats["synthetic"] = sum(1 for r in records if r["synthetic"])
    write_json(out["stats"], stats)
    return stats
