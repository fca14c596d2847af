"""The NER study's tables, figure and captions, built from predictions files only.

The predictions files are written by :func:`tinysec.ner.predict.predict_testsets` (one JSONL line
per test sentence and test set: ``{testset, family, id, orig_id, source, text, gold, pred,
rejected}``), so changing a caption or a table never re-runs the models. Imports no torch.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..io import read_records
from .calibration import ECE_DEFINITION
from .metrics import F1_DEFINITION, span_counts, span_scores

SOURCES = ("shodan", "whois", "dns", "nmap")
SOURCE_LABELS = {"shodan": "Shodan", "whois": "WHOIS", "dns": "DNS (dig)", "nmap": "Nmap"}
VARIANT_LABELS = {
    "baseline": "fine-tuned (baseline)",
    "robust": "robust (adversarial fine-tuning)",
    "no-adv-samples": "robust - adversarial samples",
    "no-adv-loss": "robust - adversarial loss (samples as plain data)",
    "no-consistency": "robust - consistency loss",
    "no-grad-mask": "robust - gradient masking",
    "no-dropout": "robust - dropout tuning",
}


@dataclass(frozen=True)
class Method:
    """One trained tagger and its predictions file; ``method`` (a name of ``ner.methods``, with its
    display label and identification LLM) when the row is one of the study's methods."""

    encoder: str
    variant: str
    predictions: str
    encoder_label: str = ""
    method: str = ""
    method_label: str = ""
    llm: str = ""
    model: str = ""  # tagger folder, when not the one beside the predictions' name
    direct: bool = False  # the LLM ``llm`` itself as the NER system (tinysec.ner.direct), no tagger
    normalize: bool = True  # False: the test text skipped the identification module's normaliser

    @property
    def label(self) -> str:
        if self.direct:
            return self.method_label or f"{self.llm} (direct)"
        if self.method:
            return f"{self.method_label or self.method} [{self.encoder_label or self.encoder}]"
        label = f"{self.encoder_label or self.encoder} {VARIANT_LABELS.get(self.variant, self.variant)}"
        return label if self.normalize else f"{label}, normaliser off"


def hallucinated(rows: list[dict]) -> int:
    """Entities an LLM method's tagger found in its segments but not in the input (dropped)."""
    return sum(len(r.get("hallucinated", [])) for r in rows)


def _by_testset(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["testset"], []).append(r)
    return out


def testset_scores(rows: list[dict]) -> dict[str, dict]:
    """Strict span scores (see :mod:`tinysec.ner.metrics`) of a list of prediction rows."""
    return span_scores([r["gold"] for r in rows], [r["pred"] for r in rows])


def _load(method: Method) -> dict[str, list[dict]]:
    return _by_testset(read_records(method.predictions, "ner_predictions"))


# ---------------------------------------------------------------- confidence calibration
def scored_entities(row: dict) -> list[dict]:
    """Every entity the tagger output for one prediction row with a confidence: kept (flagged or
    not) and those dropped for low confidence; regex-rejected ones are left out (they are dropped
    whatever their confidence)."""
    return list(row["pred"]) + [e for e in row.get("rejected", []) if e.get("reason") == "confidence"]


def _confidence(entity: dict, key: str) -> float:
    """``entity[key]``; predictions written before calibration have no ``confidence_raw`` (T was 1)."""
    value = entity.get(key)
    return entity["confidence"] if value is None else value


_CONFIDENCE_KEYS = (("raw", "confidence_raw"), ("calibrated", "confidence"))


def _ece(rows: list[dict], key: str) -> float | str:
    """ECE of every scored entity's ``key`` confidence against strict correctness, rounded; blank
    when there is no entity."""
    from .calibration import expected_calibration_error

    conf, correct = [], []
    for r in rows:
        gold = {(g["start"], g["end"], g["type"]) for g in r["gold"]}
        for e in scored_entities(r):
            conf.append(_confidence(e, key))
            correct.append((e["start"], e["end"], e["type"]) in gold)
    ece = expected_calibration_error(conf, correct)
    return "" if ece is None else round(ece, 4)


def ece_scores(rows: list[dict]) -> dict:
    """``ece_raw`` (temperature 1) and ``ece_calibrated`` (fitted temperature) of ``rows``."""
    return {f"ece_{name}": _ece(rows, key) for name, key in _CONFIDENCE_KEYS}


def calibration_scores(rows: list[dict], threshold: float) -> dict:
    """ECE of the entity confidences before (``confidence_raw``, temperature 1) and after temperature
    scaling (``confidence``), and the strict precision/recall of the entities kept at ``threshold``
    with each (see :mod:`tinysec.ner.calibration` for the ECE)."""
    out = {}
    for name, key in _CONFIDENCE_KEYS:
        out[f"ece_{name}"] = _ece(rows, key)
        kept = [[e for e in scored_entities(r) if _confidence(e, key) >= threshold] for r in rows]
        sc = span_scores([r["gold"] for r in rows], kept)["ALL"]
        out[f"precision_kept_{name}"], out[f"recall_kept_{name}"] = sc["precision"], sc["recall"]
    return out


def model_temperature(method: Method) -> float:
    """The fitted temperature of a method's tagger (1 when its folder has no ``calibration.json``)."""
    from .calibration import read_temperature

    model = getattr(method, "model", "")
    return read_temperature(Path(model) if model else Path(method.predictions.replace("/pred/", "/models/")).with_suffix(""))


_CALIBRATION_COLUMNS = ("ece_raw", "precision_kept_raw", "recall_kept_raw", "ece_calibrated",
                        "precision_kept_calibrated", "recall_kept_calibrated")


def direct_counts(method: Method, rows: list[dict]) -> dict:
    """A direct row's counters from its predictions: answers that held no valid JSON entity list and
    entities of a type outside the label set (both blank on the other rows)."""
    if not method.direct:
        return {"invalid_answers": "", "unknown_type": ""}
    return {"invalid_answers": sum(bool(r.get("invalid")) for r in rows),
            "unknown_type": sum(len(r.get("unknown_type", [])) for r in rows)}


# ---------------------------------------------------------------- clean-test precision, recall, F1
def prf_table(methods: list[Method], threshold: float) -> pd.DataFrame:
    """Clean-test P/R/F1 (micro) and F1 per entity type, one row per method."""
    rows = []
    for m in methods:
        clean = _load(m)["clean"]
        sc = testset_scores(clean)
        confident = span_scores([r["gold"] for r in clean],
                                [[e for e in r["pred"] if not e.get("flagged")] for r in clean])["ALL"]
        row = {"method": m.label, "encoder": m.encoder, "variant": m.variant, "ner_method": m.method,
               "llm": m.llm, "precision": sc["ALL"]["precision"], "recall": sc["ALL"]["recall"], "f1": sc["ALL"]["f1"],
               "tp": sc["ALL"]["tp"], "fp": sc["ALL"]["fp"], "fn": sc["ALL"]["fn"],
               "f1_unflagged": confident["f1"], "flagged": sum(e.get("flagged", False) for r in clean for e in r["pred"]),
               "hallucinated": hallucinated(clean), "inputs": len(clean), **direct_counts(m, clean)}
        if m.direct:  # an LLM's entity list has no confidences: no temperature, no calibration
            row.update(temperature="", **{k: "" for k in _CALIBRATION_COLUMNS})
        else:
            row.update(temperature=model_temperature(m), **calibration_scores(clean, threshold))
        for typ in sorted(k for k in sc if k != "ALL"):
            row[f"f1_{typ}"] = sc[typ]["f1"]
        rows.append(row)
    return pd.DataFrame(rows)


def prf_figure(df: pd.DataFrame, path: str | os.PathLike, title: str = "") -> None:
    """Grouped bars: precision, recall and F1 per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ..reports import save_figure

    metrics = ["precision", "recall", "f1"]
    x = np.arange(len(metrics))
    width = 0.8 / max(len(df), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(df) + 3), 4))
    for i, (_, row) in enumerate(df.iterrows()):
        vals = [row[m] for m in metrics]
        bars = ax.bar(x + (i - (len(df) - 1) / 2) * width, vals, width, label=row["method"])
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, ["Precision", "Recall", "F1 (strict, micro)"])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    save_figure(fig, path)


# ---------------------------------------------------------------- correct entities per source
def counts_table(methods: list[Method], baseline: Method | None = None) -> pd.DataFrame:
    """Correctly recognised entities (strict TP) per source on the clean test set, with delta to the
    baseline (``baseline``, else the ``baseline`` method of the row's encoder, else the first row)
    and the entities dropped as hallucinated."""
    def tp_by_source(m: Method, ids: set[str] | None = None) -> dict[str, int]:
        clean = [r for r in _load(m)["clean"] if ids is None or r["id"] in ids]
        return {s: span_counts([r["gold"] for r in clean if r["source"] == s],
                               [r["pred"] for r in clean if r["source"] == s])["ALL"]["tp"] for s in SOURCES}

    bases = {m.encoder: m for m in methods if m.method == "baseline" and not m.direct}
    first_base = baseline or next(iter(bases.values()), methods[0])
    # a direct row tags a subset of the inputs: its delta is against the baseline on that subset
    base_tp = {id(m): tp_by_source(first_base, {r["id"] for r in _load(m)["clean"]}) if m.direct
               else tp_by_source(baseline or bases.get(m.encoder, methods[0])) for m in methods}
    gold = Counter()
    for r in _load(baseline or methods[0])["clean"]:
        gold[r["source"]] += len(r["gold"])
    rows = []
    for m in methods:
        tp, base = tp_by_source(m), base_tp[id(m)]
        row = {"method": m.label}
        for s in SOURCES:
            row[SOURCE_LABELS[s]] = tp[s]
            row[f"{SOURCE_LABELS[s]} delta"] = f"{tp[s] - base[s]:+d}"
        row["hallucinated"] = hallucinated(_load(m)["clean"])
        rows.append(row)
    gold_row = {"method": "gold entities (test)", "hallucinated": ""}
    for s in SOURCES:
        gold_row[SOURCE_LABELS[s]], gold_row[f"{SOURCE_LABELS[s]} delta"] = gold[s], ""
    return pd.DataFrame([gold_row, *rows])[["method", *[c for s in SOURCES for c in (SOURCE_LABELS[s], f"{SOURCE_LABELS[s]} delta")], "hallucinated"]]


def counts_figure(df: pd.DataFrame, path: str | os.PathLike, title: str = "") -> None:
    """Grouped bars: correct entities per source (groups) and method (bars), gold as outlined bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ..reports import save_figure

    labels = [SOURCE_LABELS[s] for s in SOURCES]
    x = np.arange(len(labels))
    rows = list(df.iterrows())
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(max(7, 1.2 * len(rows) + 5), 4))
    for i, (_, row) in enumerate(rows):
        vals = [int(row[c]) for c in labels]
        gold = i == 0 and row["method"].startswith("gold")
        bars = ax.bar(x + (i - (len(rows) - 1) / 2) * width, vals, width, label=row["method"],
                      fill=not gold, edgecolor="black" if gold else None, linestyle="--" if gold else "-")
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, labels)
    ax.set_ylabel("correctly recognised entities")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    save_figure(fig, path)


# ---------------------------------------------------------------- robustness
def attack_success(clean: list[dict], perturbed: list[dict]) -> tuple[int, int]:
    """``(lost, found)``: gold entities found on clean text, and how many of them are missed on the
    perturbed copy. Clean and perturbed gold entities are paired by position when the two
    sentences have the same number of gold entities of the same types (other pairs are skipped).
    """
    by_id = {r["id"]: r for r in clean}
    lost = found = 0
    for pr in perturbed:
        cr = by_id.get(pr["orig_id"])
        if cr is None or [g["type"] for g in cr["gold"]] != [g["type"] for g in pr["gold"]]:
            continue
        c_pred = {(e["start"], e["end"], e["type"]) for e in cr["pred"]}
        p_pred = {(e["start"], e["end"], e["type"]) for e in pr["pred"]}
        cg = sorted(cr["gold"], key=lambda g: g["start"])
        pg = sorted(pr["gold"], key=lambda g: g["start"])
        for g_clean, g_pert in zip(cg, pg):
            if (g_clean["start"], g_clean["end"], g_clean["type"]) in c_pred:
                found += 1
                if (g_pert["start"], g_pert["end"], g_pert["type"]) not in p_pred:
                    lost += 1
    return lost, found


def robustness_table(methods: list[Method], families: list[str]) -> pd.DataFrame:
    """Per method and test set: F1 on clean text and each perturbation family, drop, attack success rate."""
    rows = []
    for m in methods:
        sets = _load(m)
        clean_f1 = testset_scores(sets["clean"])["ALL"]["f1"]
        for name in ["clean", *families]:
            if name not in sets:
                raise ValueError(f"{m.predictions} has no predictions for test set '{name}'")
            sc = testset_scores(sets[name])["ALL"]
            lost, found = attack_success(sets["clean"], sets[name]) if name != "clean" else (0, 0)
            is_clean = name == "clean"
            rows.append({"method": m.label, "testset": name, "sentences": len(sets[name]),
                         "precision": sc["precision"], "recall": sc["recall"], "f1": sc["f1"],
                         "f1_drop": clean_f1 - sc["f1"],
                         "attack_success_rate": None if is_clean or not found else round(lost / found, 4),
                         "entities_found_clean": None if is_clean else found})
    df = pd.DataFrame(rows)
    for col in ("attack_success_rate", "entities_found_clean"):  # blank on the clean rows
        df[col] = df[col].astype(object).where(df[col].notna(), "")
    return df


def sources_table(methods: list[Method], families: list[str] | None = None) -> pd.DataFrame:
    """Clean-test strict P/R/F1 of each method per OSINT source and rendering (``template``
    sentences or the ``raw`` tool-text view), with ``all`` rows pooling sources or renderings."""
    rows = []
    for m in methods:
        groups: dict[tuple[str, str], list[dict]] = {}
        for r in _load(m)["clean"]:
            src, rend = r.get("source") or "?", r.get("rendering") or "?"
            for key in ((src, rend), (src, "all"), ("all", rend), ("all", "all")):
                groups.setdefault(key, []).append(r)
        order = {s: i for i, s in enumerate((*SOURCES, "all"))}
        for (src, rend), rs in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], -1), kv[0][1] == "all", kv[0][1])):
            sc = testset_scores(rs)["ALL"]
            rows.append({"method": m.label, "source": SOURCE_LABELS.get(src, src), "rendering": rend,
                         "sentences": len(rs), "gold_entities": sum(len(r["gold"]) for r in rs),
                         "precision": sc["precision"], "recall": sc["recall"], "f1": sc["f1"],
                         **({"ece_raw": "", "ece_calibrated": ""} if m.direct else ece_scores(rs))})
    return pd.DataFrame(rows)


def ablation_table(methods: list[Method], families: list[str]) -> pd.DataFrame:
    """Robust model and each ablation: clean F1, mean perturbed F1, drop, pooled attack success rate."""
    rows = []
    for m in methods:
        sets = _load(m)
        clean_f1 = testset_scores(sets["clean"])["ALL"]["f1"]
        fam_f1 = {f: testset_scores(sets[f])["ALL"]["f1"] for f in families}
        lost = found = 0
        for f in families:
            lo, fo = attack_success(sets["clean"], sets[f])
            lost, found = lost + lo, found + fo
        mean_adv = sum(fam_f1.values()) / len(fam_f1) if fam_f1 else float("nan")
        rows.append({"variant": m.variant, "configuration": VARIANT_LABELS.get(m.variant, m.variant),
                     "f1_clean": clean_f1, "f1_perturbed_mean": mean_adv, "f1_drop": clean_f1 - mean_adv,
                     "attack_success_rate": lost / found if found else float("nan"),
                     **{f"f1_{f}": v for f, v in fam_f1.items()}})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- real loopback scans
REAL_TYPES = ("IP", "SOFTWARE", "VERSION", "SERVICE")
REAL_FORMATS = {"nmap_text": "nmap -sV text (-oN)", "nmap_xml": "nmap -sV XML (-oX)"}


def real_table(methods: list[Method]) -> pd.DataFrame:
    """Per method and nmap output format (and both together): strict precision and recall per entity
    type of the entities kept at the confidence threshold (flagged ones left out) on the real
    loopback scans, and all-type P/R with and without the flagged entities."""
    rows = []
    for m in methods:
        preds = read_records(m.predictions, "ner_predictions")
        for fmt in [*sorted({r["family"] for r in preds}), "all"]:
            sel = [r for r in preds if fmt in ("all", r["family"])]
            gold = [r["gold"] for r in sel]
            kept = span_scores(gold, [[e for e in r["pred"] if not e.get("flagged")] for r in sel])
            anyc = span_scores(gold, [r["pred"] for r in sel])["ALL"]
            row = {"method": m.label, "output": REAL_FORMATS.get(fmt, "both outputs" if fmt == "all" else fmt),
                   "gold": kept["ALL"]["support"]}
            for typ in [*REAL_TYPES, "ALL"]:
                sc = kept.get(typ, {"precision": 0.0, "recall": 0.0, "tp": 0, "fp": 0, "fn": 0})
                row[f"precision_{typ}"], row[f"recall_{typ}"] = sc["precision"], sc["recall"]
            row.update(tp=kept["ALL"]["tp"], fp=kept["ALL"]["fp"], fn=kept["ALL"]["fn"],
                       precision_ALL_with_flagged=anyc["precision"], recall_ALL_with_flagged=anyc["recall"])
            rows.append(row)
    return pd.DataFrame(rows)


def real_caption(methods: list[Method], context: dict) -> str:
    """Caption of ``ner_real``: what was scanned, how gold was made, the metric and the threshold."""
    preds = read_records(methods[0].predictions, "ner_predictions")
    gold = Counter(g["type"] for r in preds for g in r["gold"])
    return "\n".join([
        f"**ner_real** ({context['run_name']}). Entity-level precision and recall of the taggers on real "
        "`nmap -sV` output (nmap's own text and XML, run by the pipeline against services it started on "
        "127.0.0.1: an OpenSSH-banner server, an HTTP server sending `Server: nginx/1.24.0`, a Redis-protocol "
        "responder answering INFO with `redis_version:7.2.4`). These records are evaluation only, never training.",
        f"Methods: {', '.join(m.label for m in methods)}. Each output is tagged as `tinysec tag` does (tagger view, "
        f"line windows). Gold: the IP, service names, software and versions the pipeline started, as nmap names "
        f"them, wherever they occur as whole words ({len(preds)} outputs, gold mentions per type: "
        f"{', '.join(f'{t} {gold[t]}' for t in REAL_TYPES)}).",
        f"precision_<TYPE>/recall_<TYPE>: strict P/R of the entities kept at CRF-marginal confidence >= "
        f"{context['threshold']:g} (calibrated; flagged entities left out; the extraction module's context checks "
        f"applied: an entity whose text and type are kept at or above the threshold elsewhere in the same output "
        f"counts as kept, and other whole-word occurrences of a kept entity's text are added with its type); "
        f"*_with_flagged: all types, "
        f"flagged entities kept. An entity predicted with a type outside the four counts against precision_ALL only. "
        f"Metric: {F1_DEFINITION}.",
    ])


# ---------------------------------------------------------------- captions
def train_metrics(method: Method) -> dict:
    """``train_metrics.json`` of a method's tagger (the folder beside its predictions' name)."""
    folder = Path(method.model) if method.model else Path(method.predictions.replace("/pred/", "/models/")).with_suffix("")
    path = folder / "train_metrics.json"
    return json.loads(path.read_text("utf-8")) if path.is_file() else {}


_WHAT = {
    "prf": ("Strict entity-level precision, recall and F1 of each tagger on the clean test set "
            "(the NER study reports P 0.932 / R 0.527 / F1 0.669 for its "
            "fine-tuned SecureBERT baseline and 0.961 / 0.660 / 0.785 for its best method - note its F1 values "
            "do not follow from its P and R, 2*0.961*0.660/(0.961+0.660) = 0.783). tp/fp/fn are summed counts; "
            "f1_<TYPE> is the same strict F1 restricted to one entity type; "
            "flagged counts kept entities below the confidence threshold (flag mode) and f1_unflagged is F1 "
            "when they are dropped instead. Calibration: temperature is the tagger's fitted T (every CRF score "
            "divided by T before the forward-backward marginals; T minimises the gold-tag marginal NLL on the "
            "validation set; 1 = not fitted); ece_raw / ece_calibrated are the expected calibration error of "
            "the entity confidences at T = 1 and at the fitted T over every entity the tagger output on the "
            "clean test set (kept, flagged or dropped for low confidence; regex-rejected ones excluded); "
            "precision_kept_* / recall_kept_* are strict P/R of the entities whose confidence (raw or "
            "calibrated) is at least the threshold."),
    "counts": ("Correctly recognised entities (strict true positives) on the clean test set per OSINT source, "
               "with the difference to the baseline; the first row counts the "
               "gold entities per source."),
    "robustness": ("F1 on the clean test set and on each perturbation family (the same sentences perturbed), "
                   "f1_drop = clean F1 - family F1, and attack_success_rate = share of gold entities found on "
                   "the clean sentence that are lost (not found exactly) on its perturbed copy; "
                   "entities_found_clean is that rate's denominator. The row marked 'normaliser off' is the "
                   "robust tagger on test text that skipped the identification module's normaliser (homoglyph, "
                   "leet, diacritic and invisible-character folding): its gap to the robust row is what the "
                   "normaliser contributes, its gap to the baseline what adversarial training contributes."),
    "sources": ("Strict entity-level precision, recall and F1 on the clean test set per OSINT source and per "
                "rendering: 'template' rows are the identification module's natural-language sentences, 'raw' "
                "rows the tool output itself as `tinysec tag` sees it (nmap/dig/WHOIS text, Shodan JSON and nmap "
                "XML with markup blanked, in windows of at most 120 words); 'all' pools sources or renderings. "
                "sentences and gold_entities are each cell's data size. ece_raw / ece_calibrated are the expected "
                "calibration error of the tagger's entity confidences in the cell at temperature 1 and at its "
                "fitted temperature (every entity it output, kept, flagged or dropped for low confidence; "
                "regex-rejected ones excluded)."),
    "ablation": ("Robust tagger with one component removed at a time: adversarial samples (no perturbed "
                 "variants: clean data only), adversarial loss (variants as plain extra data, no "
                 "alpha/beta pairing), consistency loss (KL between clean and perturbed emissions), gradient "
                 "masking, dropout tuning (encoder's own dropout). f1_perturbed_mean averages the families; "
                 "attack_success_rate pools them."),
}


def caption(kind: str, methods: list[Method], context: dict) -> str:
    """Caption of an NER table: what it holds, data sizes, training settings, device, F1 definition."""
    from ..reports import device_description

    clean = _load(methods[0])["clean"]
    tm = train_metrics(methods[0])
    tr, rob = context["train"], context["robust"]
    robust = [m for m in methods if m.variant == "robust"]
    n_adv = f" (+{train_metrics(robust[0]).get('adversarial_variants', '?')} perturbed variants for the robust model)" \
        if robust else ""
    parts = [
        f"**{kind}** ({context['run_name']}). {_WHAT[kind]}",
        f"Methods: {', '.join(m.label for m in methods)}.",
        f"Test: {len(clean)} clean sentences with {sum(len(r['gold']) for r in clean)} gold entities; "
        f"perturbation families: {', '.join(context['families']) or 'none'}.",
        f"Training: {tm.get('train_sentences', '?')} clean sentences{n_adv}, "
        f"{tr['epochs']} epochs, batch {tr['batch_size']}, max {tr['max_length']} subword tokens, full fine-tuning, "
        f"encoder lr {tr['lr']:g} (head+CRF {tr['head_lr']:g}), linear warm-up {tr['warmup_ratio']:g}, seed-fixed; "
        f"robust: L = {rob['alpha']:g}*L_clean + {rob['beta']:g}*L_adv + {rob['consistency']:g}*KL, gradient masking "
        f"at the running {rob['grad_mask_quantile']:g} quantile, {dropout_note(robust, rob)}.",
        f"Post-processing: identification-module normalisation {'on' if context['normalize'] else 'off'}, "
        f"entities below CRF-marginal confidence {context['threshold']:g} "
        f"{'dropped' if context['low_confidence'] == 'drop' else 'flagged'} unless the same text and type is kept "
        f"at or above it elsewhere in the same input, other whole-word occurrences of a kept entity's text added "
        f"with its type, regex validation of typed entities, entities cut at line breaks.",
        f"Device: {tm.get('device', '?')} for training ({tm.get('dtype', 'fp32')}); tables built on {device_description()}.",
        f"Metric: {F1_DEFINITION}.",
    ]
    if kind == "prf":
        parts.append(f"Calibration: {ECE_DEFINITION}; kept = confidence >= {context['threshold']:g}.")
    if kind == "sources":
        parts.append(f"Calibration: {ECE_DEFINITION}.")
    if kind == "ablation":
        less = ", ".join(f"{k} {v}" for k, v in (context.get("ablation_train") or {}).items())
        parts.append(f"Ablations run in this configuration: {', '.join(context['ablations']) or 'none'}"
                     + (f"; they train with {less} (the robust row with the full settings above, so compare "
                        "each ablation with the others more than with the robust row)." if less else "."))
    if any(m.method for m in methods):
        parts.insert(2, method_note(methods, context))
    if any(m.direct for m in methods):
        parts.insert(3, direct_note(methods, context))
    return "\n".join(parts)


def dropout_note(robust: list[Method], rob: dict) -> str:
    """Caption words on the robust tagger's attention/hidden dropout: tuned by the validation-F1 sweep
    (``ner.robust.dropout_sweep``, read from its ``train_metrics.json``) or fixed."""
    sweep = train_metrics(robust[0]).get("dropout_sweep") if robust else None
    if not sweep:
        return f"attention/hidden dropout fixed at {rob['attention_dropout']:g}/{rob['hidden_dropout']:g} (not tuned)"
    tried = ", ".join(f"{c['attention_dropout']:g}/{c['hidden_dropout']:g} (val F1 {c['best_val_f1']})"
                      for c in sweep["candidates"])
    return (f"attention/hidden dropout tuned on validation F1 over {tried}: chose "
            f"{sweep['chosen'][0]:g}/{sweep['chosen'][1]:g}")


def direct_note(methods: list[Method], context: dict) -> str:
    """Caption line of the direct rows: prompt, answer limit, inputs tagged (of how many), how the
    answers are parsed and mapped, and their invalid answers and hallucinations."""
    total = len(_load(next((m for m in methods if not m.direct), methods[0]))["clean"])
    cfg = context.get("direct") or {}
    rows = []
    for m in (m for m in methods if m.direct):
        clean = _load(m)["clean"]
        n = direct_counts(m, clean)
        rows.append(f"{m.label}: {len(clean)} of {total} inputs, {n['invalid_answers']} invalid answer(s), "
                    f"{hallucinated(clean)} hallucinated and {n['unknown_type']} unknown-type entities dropped")
    return ("Direct rows (the LLM itself as the NER system, no encoder): each input is sent with "
            "resources/ner/direct_prompt.txt (the entity types filled in; no gold labels), "
            f"{cfg.get('max_new_tokens', '?')} new tokens per answer; the answer's JSON entity list is parsed (no "
            "valid list: an invalid answer, no entities) and each entity string is mapped to every whole-word "
            "occurrence in the input (else through the normaliser), as the method chain maps its entities; a "
            "string not in the input is dropped as hallucinated. The inputs are a seeded, source-stratified "
            f"sample of the raw test inputs (ner.direct.test_rows = {cfg.get('test_rows') or 'all'}); their "
            "counts deltas are against the baseline on the same inputs. " + "; ".join(rows) + ".")


def method_note(methods: list[Method], context: dict) -> str:
    """Caption lines of the method rows: each method's identification LLM, gold labels at test
    time (never), the chain's limits, the raw test inputs and the perturbation tables' split."""
    from .substitutions import split_note

    seen: dict[str, str] = {}
    for m in methods:
        if not m.direct:
            seen.setdefault(m.method, m.llm or "none")
    ch = context.get("chain") or {}
    llms = [f"{name}: identification LLM {llm}" + (
        " (raw rows only, no normaliser, no templates, no adversarial training)" if name == "baseline" else
        " (template identification module + normaliser, robust tagger)" if name == "templates" else
        (f" (robust tagger on its rephrased corpus, {ch.get('train_rephrase_rows') or 'all'} template rows rephrased"
         if ch.get("own_tagger", True) else " (the templates method's robust tagger: the LLM acts at tagging time only")
        + f"; tag-time chain: context, template, rephrasing, at most {ch.get('reflection_rounds')} "
        f"omission check(s) against the input, {ch.get('max_new_tokens')} new tokens per LLM answer)")
        for name, llm in seen.items()]
    skipped = context.get("skipped_methods") or []
    return (f"Method rows ({'; '.join(llms)}). Every method tags the same raw test inputs (the tool text "
            f"as it comes, at most {context.get('method_test_rows') or 'all'} raw-rendering test rows). "
            "Gold labels at test time: no method saw them (LLM prompts hold the input text only; gold is "
            "used only to score). Entities an LLM method's tagger finds in its segments but not in the input "
            "are dropped and counted (hallucinated)."
            + (f" Not run (API key unset): {', '.join(skipped)}." if skipped else "") + " " + split_note())


__all__ = ["F1_DEFINITION", "Method", "direct_counts", "direct_note", "prf_table", "prf_figure", "counts_table", "counts_figure", "hallucinated",
           "robustness_table", "sources_table", "ablation_table", "attack_success", "caption",
           "calibration_scores", "real_table", "real_caption"]
