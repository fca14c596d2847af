"""Baseline: TF-IDF features and one-vs-rest logistic regression (scikit-learn).

A fitted model is saved without pickle: ``tfidf.json`` (vectorizer settings, vocabulary, label
list) and ``weights.npz`` (idf, coefficients, intercepts; loaded with ``allow_pickle=False``).
Prediction is the one-vs-rest rule: every label whose decision value is positive; labels absent
from the training data cannot be predicted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import read_json, write_json
from ..schema import schema_defaults

#: Model settings of the ``cti.tfidf`` schema (its row switches ``enabled``/``full_train`` left out).
DEFAULTS: dict[str, Any] = {k: v for k, v in schema_defaults("cti.schema.yaml", "tfidf").items()
                            if k not in ("enabled", "full_train")}


class TfidfOvr:
    """TF-IDF + one-vs-rest logistic regression over a multi-label training set."""

    def __init__(self, vectorizer, coef: np.ndarray, intercept: np.ndarray, labels: list[str], settings: dict):
        self.vectorizer, self.coef, self.intercept = vectorizer, coef, intercept
        self.labels, self.settings = labels, settings

    @staticmethod
    def _vectorizer(settings: dict, vocabulary: dict | None = None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(ngram_range=(1, int(settings["ngram_max"])), min_df=settings["min_df"] if vocabulary is None else 1,
                               max_features=settings["max_features"] if vocabulary is None else None,
                               sublinear_tf=True, strip_accents="unicode", vocabulary=vocabulary)

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[Sequence[str]], settings: dict | None = None,
            seed: int = 0) -> TfidfOvr:
        """Fit on ``texts`` with label sets ``labels``."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.preprocessing import MultiLabelBinarizer

        s = {**DEFAULTS, **(settings or {})}
        vec = cls._vectorizer(s)
        try:
            x = vec.fit_transform(texts)
        except ValueError:  # too few texts for min_df: keep every term
            vec = cls._vectorizer({**s, "min_df": 1})
            x = vec.fit_transform(texts)
        mlb = MultiLabelBinarizer()
        y = mlb.fit_transform([list(ls) for ls in labels])
        names = [str(c) for c in mlb.classes_]
        coef = np.zeros((len(names), x.shape[1]))
        intercept = np.zeros(len(names))
        for j in range(y.shape[1]):
            column = y[:, j]
            if column.min() == column.max():  # on every example or on none: a constant answer
                intercept[j] = 1.0 if column[0] else -1.0
            elif y.shape[1] == 1:
                lr = LogisticRegression(C=float(s["C"]), max_iter=int(s["max_iter"]), solver="liblinear",
                                        class_weight=s["class_weight"], random_state=seed).fit(x, column)
                coef[j], intercept[j] = lr.coef_[0], lr.intercept_[0]
        if y.shape[1] > 1:
            clf = OneVsRestClassifier(LogisticRegression(C=float(s["C"]), max_iter=int(s["max_iter"]), solver="liblinear",
                                                         class_weight=s["class_weight"], random_state=seed))
            clf.fit(x, y)
            for j, est in enumerate(clf.estimators_):
                if hasattr(est, "coef_"):  # constant columns get a constant predictor (handled above)
                    coef[j], intercept[j] = est.coef_[0], est.intercept_[0]
        return cls(vec, coef, intercept, names, s)

    def decision(self, texts: Sequence[str]) -> np.ndarray:
        x = self.vectorizer.transform(texts)
        return np.asarray(x @ self.coef.T) + self.intercept

    def predict(self, texts: Sequence[str]) -> list[list[str]]:
        """Label set of each text: every label with a positive decision value."""
        scores = self.decision(texts)
        return [[self.labels[j] for j in np.flatnonzero(row > 0)] for row in scores]

    @property
    def n_parameters(self) -> int:
        return int(self.coef.size + self.intercept.size)

    # ------------------------------------------------------------------ persistence
    def save(self, out_dir: str | os.PathLike) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        vocab = {term: int(i) for term, i in self.vectorizer.vocabulary_.items()}
        write_json(out / "tfidf.json", {"settings": self.settings, "labels": self.labels, "vocabulary": vocab})
        np.savez_compressed(out / "weights.npz", idf=self.vectorizer.idf_, coef=self.coef, intercept=self.intercept)

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> TfidfOvr:
        d = Path(model_dir)
        meta = read_json(d / "tfidf.json")
        with np.load(d / "weights.npz", allow_pickle=False) as w:
            idf, coef, intercept = w["idf"], w["coef"], w["intercept"]
        vec = cls._vectorizer(meta["settings"], vocabulary=meta["vocabulary"])
        vec.idf_ = idf
        return cls(vec, coef, intercept, list(meta["labels"]), meta["settings"])
