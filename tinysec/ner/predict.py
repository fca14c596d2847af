"""Tag the NER test sets with a trained tagger and write one predictions file.

A predictions file (JSONL, one line per test sentence and test set) holds::

    {testset, family, id, orig_id, source, text, gold: [spans], pred: [entities], rejected: [...]}

``testset`` is ``clean`` or a perturbation family. The tables (:mod:`tinysec.ner.tables`) are
computed from these files only, so changing a caption or a table never re-runs the models.
"""

from __future__ import annotations

import os

from ..io import InputError, read_jsonl, write_jsonl
from .postprocess import PostprocessSettings, Tagger
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
        rows = read_jsonl(path)
        for i, row in enumerate(rows, start=1):
            for key in ("id", "text", "spans"):
                if key not in row:
                    raise InputError(path, f"missing field '{key}'", row=i, field=key)
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
                        "source": row.get("source", ""), "text": row["text"],
                        "gold": [{k: s[k] for k in ("start", "end", "type")} for s in row["spans"]],
                        "pred": res["entities"], "rejected": res["rejected"]})
    return write_jsonl(out_path, out)


__all__ = ["predict_testsets"]
