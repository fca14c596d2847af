"""NER corpus benchmark: our identification module vs plain NFKC, and span->BIO speed.

1. Entity recovery under each perturbation family: the share of perturbed entities whose
   normalised text equals the clean entity, for ``tinysec.ner.identify.normalize`` (invisible
   characters, NFKC, confusables, leetspeak, with an offset map) and for a plain baseline
   (``unicodedata.normalize('NFKC')`` only), with the time each takes.
2. ``spans_to_bio`` (bisect over word ends) vs the naive all-spans-times-all-words loop.

Data: seeded synthetic OSINT records (tinysec.osint.synthetic), rendered by the corpus code.
Writes results/bench/ner_data.json. Usage: ``python bench/ner_data.py [--records N]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
import unicodedata
from pathlib import Path

from tinysec.ner.corpus import build_samples, perturb_rows
from tinysec.ner.identify import normalize
from tinysec.ner.labels import DEFAULT_TYPES, spans_to_bio
from tinysec.ner.tokenize import word_spans
from tinysec.osint.synthetic import generate

OUT = Path(__file__).resolve().parents[1] / "results" / "bench" / "ner_data.json"
FAMILIES = {"char": ["char"], "leet": ["leet"], "homoglyph": ["homoglyph"], "diacritic": ["diacritic"],
            "zero_width": ["zero_width"], "symbol": ["symbol"]}


def naive_spans_to_bio(text, spans, words):
    """Baseline: every span against every word."""
    tags = ["O"] * len(words)
    for sp in spans:
        first = True
        for wi, (ws, we) in enumerate(words):
            if min(we, sp["end"]) - max(ws, sp["start"]) > 0:
                tags[wi] = ("B-" if first else "I-") + sp["type"]
                first = False
    return tags


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=400)
    args = ap.parse_args()
    records = list(generate(args.records, {"dns": 1, "whois": 1, "shodan": 1, "nmap": 1}, seed=0))
    samples = build_samples(records, DEFAULT_TYPES, seed=0)
    result = {"records": len(records), "entities": sum(len(s["spans"]) for s in samples),
              "machine": f"{platform.machine()} {platform.processor()}", "recovery": {}}
    by_id = {s["id"]: s for s in samples}
    for fam, ops in FAMILIES.items():
        rows = perturb_rows(samples, fam, ops, seed=0, entity_prob=1.0, char_rate=0.12)
        pairs = [(new["text"], old["text"]) for r in rows
                 for new, old in zip(r["spans"], by_id[r["orig_id"]]["spans"])]
        ours, t_ours = timed(lambda pairs=pairs: [normalize(p).text == normalize(c).text for p, c in pairs])
        base, t_base = timed(lambda pairs=pairs: [unicodedata.normalize("NFKC", p) == unicodedata.normalize("NFKC", c)
                                      for p, c in pairs])
        result["recovery"][fam] = {"entities": len(pairs), "ours": round(sum(ours) / len(pairs), 4),
                                   "nfkc_baseline": round(sum(base) / len(pairs), 4),
                                   "ours_us_per_entity": round(1e6 * t_ours / len(pairs), 1),
                                   "nfkc_us_per_entity": round(1e6 * t_base / len(pairs), 1)}
    words = [word_spans(s["text"]) for s in samples]
    _, t_fast = timed(lambda: [spans_to_bio(s["text"], s["spans"], w) for s, w in zip(samples, words)])
    _, t_naive = timed(lambda: [naive_spans_to_bio(s["text"], s["spans"], w) for s, w in zip(samples, words)])
    check = random.Random(0).sample(range(len(samples)), min(100, len(samples)))
    same = all(spans_to_bio(samples[i]["text"], samples[i]["spans"], words[i])
               == naive_spans_to_bio(samples[i]["text"], samples[i]["spans"], words[i]) for i in check)
    result["spans_to_bio"] = {"samples": len(samples), "ours_s": round(t_fast, 3), "naive_s": round(t_naive, 3),
                              "speedup": round(t_naive / t_fast, 2), "same_tags_on_100": same}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
