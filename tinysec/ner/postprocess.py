"""Extraction post-processing: entities from CRF paths, marginal confidence, regex validation, offsets.

Text goes through the identification module first (:func:`tinysec.ner.identify.normalize`), is
split into words (:func:`tinysec.ner.tokenize.word_spans`) and tagged; the entities found in the
normalised text are then

1. scored: an entity's confidence is the mean, over its words, of the CRF marginal probability
   (forward-backward) of the tag the Viterbi path gave that word, at the tagger's fitted
   temperature (:mod:`tinysec.ner.calibration`; ``confidence_raw`` is the same at temperature 1);
2. thresholded: below ``threshold`` (the study's 0.85) the entity is dropped, or kept with
   ``flagged: true`` when ``low_confidence == "flag"``;
3. validated: an entity whose type has patterns (``type_patterns``) must match one of them,
   else it is dropped however confident it is;
4. mapped back to its character span in the original text through the normaliser's offset map.

Entities follow strict IOB2: an entity starts at ``B-X`` and extends over the ``I-X`` that
follow; an ``I-X`` with no ``B-X`` before it starts nothing (as seqeval's strict mode).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

from ..schema import schema_defaults

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
IPV4 = re.compile(rf"^(?:{_OCTET}\.){{3}}{_OCTET}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DOMAIN = re.compile(rf"^(?=.{{4,253}}\.?$)(?:{_LABEL}\.)+[A-Za-z][A-Za-z0-9-]{{0,61}}[A-Za-z0-9]\.?$")
_IPV6_CHARS = re.compile(r"^[0-9A-Fa-f:.]{2,45}$")
URL = re.compile(rf"^(?:https?|ftp)://(?:{_LABEL}\.)*{_LABEL}(?::\d{{1,5}})?(?:[/?#]\S*)?$|"
                 rf"^(?:https?|ftp)://\[[0-9A-Fa-f:.]+\](?::\d{{1,5}})?(?:[/?#]\S*)?$")
_VERSION_TOKEN = r"[vV]?\d+(?:\.(?:\d+|[xX]))*(?:[-_.+~]?[A-Za-z0-9]+)*"
# nmap's version field: a version, a range ("3.X - 4.X") or "or later", then a distribution build
# ("8.9p1 Ubuntu 3ubuntu0.10", "9.2p1 Debian 2+deb12u3")
VERSION = re.compile(rf"^{_VERSION_TOKEN}(?: - {_VERSION_TOKEN}| or (?:later|earlier))?"
                     rf"(?: [A-Z][A-Za-z]+ [0-9][A-Za-z0-9.+~:-]*)?$")


def is_ipv6(text: str) -> bool:
    """IPv6 address: a character-class regex, then the exact grammar via :mod:`ipaddress`."""
    if not _IPV6_CHARS.match(text) or ":" not in text:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


PATTERNS: dict[str, Callable[[str], bool]] = {
    "ipv4": lambda t: bool(IPV4.match(t)),
    "ipv6": is_ipv6,
    "domain": lambda t: bool(DOMAIN.match(t)),
    "url": lambda t: bool(URL.match(t)),
    "version": lambda t: bool(VERSION.match(t)),
}

#: Defaults of the ``ner`` config section: ``regex`` (entity type -> pattern names),
#: ``confidence_threshold`` and ``low_confidence``.
_NER_DEFAULTS = schema_defaults("ner.schema.yaml")
DEFAULT_TYPE_PATTERNS = _NER_DEFAULTS["regex"]


def validate(text: str, type_: str, type_patterns: dict[str, list[str]] | None = None) -> bool:
    """True when ``type_`` has no pattern or ``text`` matches one of its patterns."""
    names = (DEFAULT_TYPE_PATTERNS if type_patterns is None else type_patterns).get(type_)
    if not names:
        return True
    unknown = [n for n in names if n not in PATTERNS]
    if unknown:
        raise ValueError(f"unknown regex pattern(s) {unknown} for type {type_}; choose from {sorted(PATTERNS)}")
    return any(PATTERNS[n](text) for n in names)


@dataclass
class Entity:
    """One extracted entity: ``[start, end)`` in the original text, type, text, confidence."""

    start: int
    end: int
    type: str
    text: str
    confidence: float
    flagged: bool = False
    confidence_raw: float | None = None  # uncalibrated (temperature 1) confidence, when the tagger has a temperature

    def as_dict(self) -> dict:
        """The entity as a dict; ``confidence_raw`` only when it is known."""
        out = asdict(self)
        if out["confidence_raw"] is None:
            del out["confidence_raw"]
        return out


def path_entities(tags: list[str], probs: list[float]) -> list[tuple[int, int, str, float]]:
    """Strict-IOB2 entities of a tag path as ``(first word, last word + 1, type, confidence)``."""
    out = []
    i = 0
    while i < len(tags):
        kind, _, typ = tags[i].partition("-")
        if kind != "B":
            i += 1
            continue
        j = i + 1
        while j < len(tags) and tags[j] == f"I-{typ}":
            j += 1
        out.append((i, j, typ, sum(probs[i:j]) / (j - i)))
        i = j
    return out


@dataclass
class PostprocessSettings:
    threshold: float = _NER_DEFAULTS["confidence_threshold"]
    low_confidence: str = _NER_DEFAULTS["low_confidence"]   # drop | flag
    type_patterns: dict | None = None

    def __post_init__(self):
        if self.low_confidence not in ("drop", "flag"):
            raise ValueError(f"low_confidence must be 'drop' or 'flag', got {self.low_confidence!r}")


def line_pieces(text: str, words: list[tuple[int, int]], a: int, b: int) -> list[tuple[int, int]]:
    """Words ``a .. b-1`` of one entity cut at every line break between two of them: tool output is
    line-structured, so an entity never runs from one line into the next."""
    cuts = [k for k in range(a + 1, b) if "\n" in text[words[k - 1][1]:words[k][0]]]
    bounds = [a, *cuts, b]
    return list(zip(bounds[:-1], bounds[1:]))


def select_entities(text: str, words: list[tuple[int, int]], tags: list[str], probs: list[float],
                    settings: PostprocessSettings,
                    raw_probs: list[float] | None = None) -> tuple[list[Entity], list[dict]]:
    """Entities of one tagged text (spans in ``text``, cut at line breaks), after the confidence and
    regex filters; ``raw_probs`` (temperature-1 marginals) give each entity's ``confidence_raw``.

    Returns ``(kept, rejected)``; each rejected item is the entity dict plus ``reason``.
    """
    kept, rejected = [], []
    for a0, b0, typ, _ in path_entities(tags, probs):
        for a, b in line_pieces(text, words, a0, b0):
            start, end = words[a][0], words[b - 1][1]
            conf = sum(probs[a:b]) / (b - a)
            raw = round(sum(raw_probs[a:b]) / (b - a), 4) if raw_probs is not None else None
            ent = Entity(start, end, typ, text[start:end], round(conf, 4), confidence_raw=raw)
            if not validate(ent.text, typ, settings.type_patterns):
                rejected.append({**ent.as_dict(), "reason": "regex"})
            elif conf < settings.threshold:
                if settings.low_confidence == "flag":
                    ent.flagged = True
                    kept.append(ent)
                else:
                    rejected.append({**ent.as_dict(), "reason": "confidence"})
            else:
                kept.append(ent)
    return kept, rejected


def confirm_repeated(result: dict) -> dict:
    """The extraction module's context check, on one input's ``{"entities", "rejected"}``: an
    entity below the confidence threshold (flagged, or rejected for confidence) whose text and
    type are kept at or above the threshold elsewhere in the same input is kept, unflagged, with
    ``confirmed: "repeat"``. Its confidence is left as the tagger gave it."""
    confident = {(e["text"], e["type"]) for e in result["entities"] if not e.get("flagged")}
    entities = [{**e, "flagged": False, "confirmed": "repeat"} if e.get("flagged") and (e["text"], e["type"]) in confident
                else e for e in result["entities"]]
    rejected = []
    for r in result["rejected"]:
        if r.get("reason") == "confidence" and (r["text"], r["type"]) in confident:
            entities.append({**{k: v for k, v in r.items() if k != "reason"}, "flagged": False, "confirmed": "repeat"})
        else:
            rejected.append(r)
    return {**result, "entities": sorted(entities, key=lambda e: (e["start"], e["end"])), "rejected": rejected}


def propagate_confident(result: dict, text: str) -> dict:
    """The extraction module's second context check, on one input's ``{"entities", "rejected"}``
    and its text: every other occurrence of the text of an entity kept at or above the threshold
    (or confirmed) becomes an entity of the same type, with ``confirmed: "propagated"`` and the
    confidence of that confident mention. Occurrences count as the gold spans of raw views are
    projected (:func:`tinysec.ner.render.project_spans`: on word boundaries, the longer of two
    overlapping ones). One that overlaps an entity already found, or whose text was kept with
    two types, is left alone."""
    from .render import project_spans

    best: dict[str, dict] = {}
    types: dict[str, set[str]] = {}
    for e in result["entities"]:
        if not e.get("flagged"):
            types.setdefault(e["text"], set()).add(e["type"])
            if e["confidence"] > best.get(e["text"], {"confidence": -1.0})["confidence"]:
                best[e["text"]] = e
    gold = [(e["type"], t) for t, e in best.items() if len(types[t]) == 1]
    taken = [(e["start"], e["end"]) for e in result["entities"]]
    added = []
    for span in project_spans(text, gold, {t for t, _ in gold}):
        if all(span["end"] <= a or span["start"] >= b for a, b in taken):
            source = best[span["text"]]
            added.append({**source, "start": span["start"], "end": span["end"], "flagged": False,
                          "confirmed": "propagated"})
    if not added:
        return result
    return {**result, "entities": sorted(result["entities"] + added, key=lambda e: (e["start"], e["end"]))}


def context_checks(result: dict, text: str) -> dict:
    """Both context checks of the extraction module on one input's result: :func:`confirm_repeated`,
    then :func:`propagate_confident`."""
    return propagate_confident(confirm_repeated(result), text)


class Tagger:
    """Text in, entities out: identification (normalise), words, encoder+CRF, post-processing."""

    def __init__(self, model_dir, settings: PostprocessSettings | None = None, normalize: bool = True,
                 device: str = "cpu", batch_size: int = 32, max_length: int | None = None):
        from .model import EncoderCRFTagger

        self.model, self.tokenizer, self.meta = EncoderCRFTagger.load(model_dir, device=device)
        self.settings = settings or PostprocessSettings()
        self.normalize, self.device, self.batch_size = normalize, device, batch_size
        self.max_length = max_length or int(self.meta.get("max_length", 256))

    def tag(self, texts: list[str], progress: bool = False) -> list[dict]:
        """Per text: ``{"entities": [...], "rejected": [...]}`` with spans in the original text
        after the context checks of :func:`context_checks`."""
        from tqdm.auto import tqdm

        from .identify import normalize
        from .model import encode_words, length_batches
        from .tokenize import word_spans

        prepared = []
        for text in texts:
            norm = normalize(text) if self.normalize else None
            ntext = norm.text if norm is not None else text
            words = word_spans(ntext)
            prepared.append((text, norm, ntext, words))
        results: list[dict] = [None] * len(texts)  # type: ignore[list-item]
        sentences = [[ntext[a:b] for a, b in words] for _, _, ntext, words in prepared]
        # batches of similar subword count, so little of each padded batch is padding
        counts = self.tokenizer([s or [""] for s in sentences], is_split_into_words=True,
                                add_special_tokens=False)["input_ids"] if texts else []
        for idx in tqdm(length_batches([len(c) for c in counts], self.batch_size), desc="tag",
                        disable=not progress, mininterval=5):
            batch = encode_words(self.tokenizer, [sentences[i] for i in idx], self.max_length).to(self.device)
            paths, probs, raw = self.model.predict_calibrated(batch)
            for k, i in enumerate(idx):
                text, norm, ntext, words = prepared[i]
                n = min(len(words), len(paths[k]))
                tags = [self.model.labels[t] for t in paths[k][:n]]
                kept, rejected = select_entities(ntext, words[:n], tags, probs[k][:n], self.settings, raw[k][:n])
                results[i] = context_checks(
                    {"entities": [self._to_original(e, text, norm).as_dict() for e in kept],
                     "rejected": [self._reject_to_original(r, text, norm) for r in rejected],
                     "n_words": len(words), "n_tagged": n}, text)
        return results

    @staticmethod
    def _to_original(ent: Entity, text: str, norm) -> Entity:
        if norm is None:
            return ent
        start, end = norm.original_span(ent.start, ent.end)
        return Entity(start, end, ent.type, text[start:end], ent.confidence, ent.flagged, ent.confidence_raw)

    @staticmethod
    def _reject_to_original(rej: dict, text: str, norm) -> dict:
        if norm is None:
            return rej
        start, end = norm.original_span(rej["start"], rej["end"])
        return {**rej, "start": start, "end": end, "text": text[start:end]}
