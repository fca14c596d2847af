"""Tag the NER test sets with a trained tagger and write one predictions file.

A predictions file (JSONL, one line per test sentence and test set) holds::

    {testset, family, id, orig_id, source, text, gold: [spans], pred: [entities], rejected: [...]}

``testset`` is ``clean`` or a perturbation family. The tables (:mod:`tinysec.ner.tables`) are
computed from these files only, so changing a caption or a table never re-runs the models.
"""

from __future__ import annotations

import os

from ..io import read_records, write_jsonl
from .postprocess import PostprocessSettings, Tagger, context_checks
from .train import stratified_sample


def predict_testsets(model_dir: str | os.PathLike, testsets: dict[str, str], out_path: str | os.PathLike,
                     post: PostprocessSettings, normalize: bool = True, batch_size: int = 32,
                     device: str = "cpu", max_rows: int | None = None) -> int:
    """Tag every test set (``{name: jsonl path}``, ``clean`` first) and write one predictions file.

    ``max_rows`` keeps a seeded source-stratified sample of N clean test sentences and only their
    perturbed copies.
    """
    tagger = Tagger(model_dir, post, normalize=normalize, device=device, batch_size=batch_size)
    out = []
    keep: set[str] | None = None
    for name, path in testsets.items():
        rows = read_records(path, "ner_test_sentences")
        if max_rows:
            if keep is None:
                rows = stratified_sample(rows, max_rows)
                keep = {r["id"] for r in rows}
            else:
                rows = [r for r in rows if r.get("orig_id", r["id"]) in keep]
        tagged = tagger.tag([r["text"] for r in rows], progress=True)
        for row, res in zip(rows, tagged):
            out.append({"testset": name, "family": row.get("family", "clean" if name == "clean" else name),
                        "id": row["id"], "orig_id": row.get("orig_id", row["id"]),
                        "source": row.get("source", ""), "rendering": row.get("rendering", ""), "text": row["text"],
                        "gold": [{k: s[k] for k in ("start", "end", "type")} for s in row["spans"]],
                        "pred": res["entities"], "rejected": res["rejected"]})
    return write_jsonl(out_path, out)


def tag_windows(tagger: Tagger, texts: list[str], max_words: int) -> list[dict]:
    """Tag each text in line windows of at most ``max_words`` words (:func:`tinysec.ner.view.line_windows`,
    the windows the corpus's raw rendering trains on), all windows in one batched call; entity and
    rejected spans are shifted back into each whole text, and the context checks
    (:func:`tinysec.ner.postprocess.context_checks`) run on the whole text. Per text: ``{"entities", "rejected", "windows"}``."""
    from .view import line_windows

    pieces: list[tuple[int, int, int]] = []
    for i, text in enumerate(texts):
        pieces += [(i, a, b) for a, b in (line_windows(text, max_words) or [(0, len(text))])]
    tagged = tagger.tag([texts[i][a:b] for i, a, b in pieces]) if pieces else []
    out = [{"entities": [], "rejected": [], "windows": 0} for _ in texts]
    for (i, a, _), res in zip(pieces, tagged):
        out[i]["entities"] += [{**e, "start": e["start"] + a, "end": e["end"] + a} for e in res["entities"]]
        out[i]["rejected"] += [{**e, "start": e["start"] + a, "end": e["end"] + a} for e in res["rejected"]]
        out[i]["windows"] += 1
    return [context_checks(o, text) for o, text in zip(out, texts)]


def predict_real(model_dir: str | os.PathLike, records_path: str | os.PathLike, out_path: str | os.PathLike,
                 types: list[str], post: PostprocessSettings, normalize: bool, batch_size: int,
                 device: str = "cpu") -> int:
    """Tag the real-scan evaluation records (:mod:`tinysec.osint.real_scan`) as ``tinysec tag`` does
    (tagger view of the raw output, line windows) and write one predictions line per record:
    ``{testset: "real", family: <format>, id, source, text: raw, gold, pred, rejected}``; gold spans
    are every whole-word occurrence of the record's gold entities in the view (same offsets as raw)."""
    from ..osint.record import load_records
    from .corpus import RAW_MAX_WORDS
    from .render import render_raw

    records = load_records(records_path)
    rendered = [render_raw(rec, types, where=str(records_path), row=i) for i, rec in enumerate(records, start=1)]
    tagger = Tagger(model_dir, post, normalize=normalize, device=device, batch_size=batch_size)
    results = tag_windows(tagger, [r.text for r in rendered], RAW_MAX_WORDS)
    rows = [{"testset": "real", "family": r.format, "id": rec["id"], "orig_id": rec["id"], "source": rec["source"],
             "text": rec["raw"], "gold": [{k: s[k] for k in ("start", "end", "type")} for s in r.spans],
             "pred": [{**e, "text": rec["raw"][e["start"]:e["end"]]} for e in res["entities"]],
             "rejected": res["rejected"], "windows": res["windows"]}
            for rec, r, res in zip(records, rendered, results)]
    return write_jsonl(out_path, rows)


__all__ = ["predict_testsets", "tag_windows", "predict_real"]
