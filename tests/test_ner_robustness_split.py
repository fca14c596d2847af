"""Honest robustness: every substitution table has disjoint training and held-out halves, the test
families draw only from the held-out halves (which the normaliser does not fold), adversarial
training variants only from the training halves, ``char`` perturbs about 12% of all entity
characters, and ``abbreviation`` keeps the gold spans consistent."""

from __future__ import annotations

import random

import pytest
import yaml

from tinysec.ner.corpus import adversarial_rows, perturb_rows
from tinysec.ner.identify import fold_leet, normalize
from tinysec.ner.labels import bio_to_spans, spans_to_bio
from tinysec.ner.perturb import OPERATORS, _match_case, _shorten, perturb_sample
from tinysec.ner.settings import NER_SCHEMA
from tinysec.ner.substitutions import HELDOUT, RESOURCES, TRAIN, full_table, pairs, split_table, table, values
from tinysec.ner.tokenize import words

ORGS = ["Cloudflare Incorporated", "Amazon Web Services", "Microsoft Corporation", "Example Networks Limited",
        "Akamai Technologies", "Hetzner Online", "Google Information Services", "Acme Hosting Solutions",
        "Northwind Government Department", "Contoso International Management"]
SOFTWARE = ["nginx", "OpenSSH", "Apache httpd", "Microsoft IIS", "lighttpd", "Postfix smtpd", "Exim"]
FILLERS = ["the host", "runs", "and", "is served by", "(port 22)", "on", "while", "registered to"]


def _entity(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["IP", "DOMAIN", "VERSION", "ORG", "SOFTWARE"])
    if kind == "IP":
        return ".".join(str(rng.randint(1, 254)) for _ in range(4)), kind
    if kind == "DOMAIN":
        labels = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
                  for _ in range(rng.randint(1, 2))]
        return ".".join(labels + [rng.choice(["com", "org", "net", "io"])]), kind
    if kind == "VERSION":
        return f"{rng.randint(0, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}", kind
    return rng.choice(ORGS if kind == "ORG" else SOFTWARE), kind


def corpus(n: int = 400, seed: int = 7) -> list[dict]:
    """A fixed (seeded) corpus of sentences with 1-4 entities each, in the corpus row format."""
    rng = random.Random(seed)
    rows = []
    for k in range(n):
        parts, spans, pos = [], [], 0
        for _ in range(rng.randint(1, 4)):
            filler = rng.choice(FILLERS) + " "
            ent, etype = _entity(rng)
            spans.append({"start": pos + len(filler), "end": pos + len(filler) + len(ent), "type": etype,
                          "text": ent})
            parts += [filler, ent, ", "]
            pos += len(filler) + len(ent) + 2
        text = "".join(parts) + "end."
        rows.append({"id": f"r{k}", "source": "nmap", "context": "host", "text": text, "spans": spans,
                     "synthetic": True})
    return rows


CORPUS = corpus()


def default_families() -> dict[str, list[str]]:
    schema = yaml.safe_load(NER_SCHEMA.with_name("ner_data.schema.yaml").read_text(encoding="utf-8"))
    return schema["properties"]["perturb"]["properties"]["families"]["default"]


# ---------------------------------------------------------------- the split itself
@pytest.mark.parametrize("name", RESOURCES)
def test_halves_of_each_table_are_disjoint_and_cover_it(name):
    train, held = pairs(name, TRAIN), pairs(name, HELDOUT)
    full = {(k, v) for k, vs in full_table(name).items() for v in vs}
    assert train and held, name
    assert not train & held
    assert train | held == full
    # no value is a training substitution for one key and a held-out one for another
    assert not {v for _, v in train} & {v for _, v in held}
    # deterministic: the split does not depend on the order the table is listed in
    shuffled = dict(reversed([(k, tuple(reversed(vs))) for k, vs in full_table(name).items()]))
    assert split_table(name, shuffled) == {TRAIN: table(name, TRAIN), HELDOUT: table(name, HELDOUT)}


def test_keys_with_several_values_have_values_in_both_halves():
    for name in ("homoglyph", "diacritic"):
        for key, vs in full_table(name).items():
            if len(set(vs)) >= 2:
                assert key in table(name, TRAIN) and key in table(name, HELDOUT), (name, key)


def test_unknown_table_or_half_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown substitution table 'emoji'"):
        full_table("emoji")
    with pytest.raises(ValueError, match="unknown half 'test'"):
        table("leet", "test")


def test_normaliser_folds_the_training_half_and_not_the_held_out_half():
    for name in ("homoglyph", "diacritic"):
        for key, value in sorted(pairs(name, TRAIN)):
            assert normalize(f"x{value}x").text == f"x{key}x", (name, key, value)
        for key, value in sorted(pairs(name, HELDOUT)):
            assert normalize(f"x{value}x").text == f"x{value}x", (name, key, value)
    for z in values("zero_width", TRAIN):
        assert normalize(f"ab{z}cd").text == "abcd"
    for z in values("zero_width", HELDOUT):
        assert z in normalize(f"ab{z}cd").text
    for key, value in sorted(pairs("leet", TRAIN) | pairs("leet", HELDOUT)):
        host = f"ma{value}{value}l.example.com"
        folded = fold_leet(host)
        if (key, value) in pairs("leet", TRAIN) and value.isdigit():
            assert folded == f"ma{key}{key}l.example.com"
        else:
            assert folded == host, (key, value)


# ---------------------------------------------------------------- which half each path draws from
def _substitutions(text: str, spans: list[dict], p) -> dict[str, set]:
    """What a perturbation put into each entity: 1:1 character swaps, inserted characters inside
    entities, and the symbols inserted right before/after each entity."""
    out = {"swaps": set(), "inner": set(), "around": set()}
    for old, new in zip(sorted(spans, key=lambda s: s["start"]), p.spans):
        for i in range(new["start"], new["end"]):
            o = p.origin[i]
            if o < 0:
                out["inner"].add(p.text[i])
            elif p.text[i] != text[o]:
                out["swaps"].add((text[o], p.text[i]))
        a = new["start"]
        while a > 0 and p.origin[a - 1] < 0:
            a -= 1
        b = new["end"]
        while b < len(p.text) and p.origin[b] < 0:
            b += 1
        if a < new["start"] or b > new["end"]:
            out["around"].add((old["text"], p.text[a:new["start"]], p.text[new["end"]:b]))
    return out


def _rendered(half: str, entity: str) -> set[tuple[str, str]]:
    out = set()
    for tpl in values("wrapper", half) + values("markup", half):
        before, after = tpl.format(e="\x00", u=entity).split("\x00")
        out.add((before, after))
    return out


def _check_half(op: str, text: str, spans: list[dict], p, half: str) -> None:
    other = TRAIN if half == HELDOUT else HELDOUT
    subs = _substitutions(text, spans, p)
    if op in ("homoglyph", "diacritic"):
        assert subs["swaps"] <= pairs(op, half) and not subs["swaps"] & pairs(op, other)
    if op == "leet":
        swaps = {(c.lower(), d) for c, d in subs["swaps"]}
        assert swaps <= pairs("leet", half) and not swaps & pairs("leet", other)
    if op == "zero_width":
        assert subs["inner"] <= set(values("zero_width", half))
    if op == "symbol":
        assert subs["inner"] <= set(values("separator", half))
        for ent, before, after in subs["around"]:
            assert (before, after) in _rendered(half, ent) and (before, after) not in _rendered(other, ent)


@pytest.mark.parametrize("op", ["homoglyph", "diacritic", "leet", "zero_width", "symbol"])
def test_test_families_draw_only_from_the_held_out_half(op):
    seen = 0
    for row in CORPUS[:150]:
        for seed in range(2):
            p = perturb_sample(row["text"], row["spans"], [op], random.Random(f"{seed}:{row['id']}"),
                               entity_prob=1.0)
            _check_half(op, row["text"], row["spans"], p, HELDOUT)
            seen += bool(_substitutions(row["text"], row["spans"], p)["swaps"] or p.text != row["text"])
    assert seen > 200  # the operator really changed the sentences (IP/version-only ones may not change)


@pytest.mark.parametrize("op", ["homoglyph", "diacritic", "leet", "zero_width", "symbol"])
def test_adversarial_training_draws_only_from_the_training_half(op):
    for row in CORPUS[:150]:
        p = perturb_sample(row["text"], row["spans"], [op], random.Random(row["id"]), entity_prob=1.0, half=TRAIN)
        _check_half(op, row["text"], row["spans"], p, TRAIN)


def test_corpus_paths_use_the_right_half():
    """perturb_rows (the test sets) uses the held-out half; adversarial_rows (training) the training half."""
    fam = {"homoglyph": ["homoglyph"]}
    test_rows = perturb_rows(CORPUS[:80], "homoglyph", ["homoglyph"], 0, 1.0, 0.12)
    adv_rows = adversarial_rows(CORPUS[:80], fam, ["homoglyph"], 1, 0, 1.0, 0.12)
    test_chars = {c for r in test_rows for c in r["text"] if not c.isascii()}
    adv_chars = {c for r in adv_rows for c in r["text"] if not c.isascii()}
    assert test_chars and test_chars <= {v for _, v in pairs("homoglyph", HELDOUT)}
    assert adv_chars and adv_chars <= {v for _, v in pairs("homoglyph", TRAIN)}
    # and the normaliser undoes the training variants but not the test copies
    assert all(normalize(r["text"]).text == s["text"] for r, s in zip(adv_rows, CORPUS[:80]))
    changed = [(r, s) for r, s in zip(test_rows, CORPUS[:80]) if r["text"] != s["text"]]
    assert len(changed) > 50 and all(normalize(r["text"]).text != s["text"] for r, s in changed)


def test_abbreviation_test_family_uses_no_training_abbreviation():
    train_abbr, held_abbr = table("abbreviation", TRAIN), table("abbreviation", HELDOUT)
    train_styles, held_styles = values("abbreviation_style", TRAIN), values("abbreviation_style", HELDOUT)

    def options(word: str, known, styles) -> set[str]:
        out = {_shorten(word, s) for s in styles} - {None}
        return out | ({_match_case(word, known[word.lower()][0])} if word.lower() in known else set())

    rows = perturb_rows(CORPUS, "abbreviation", ["abbreviation"], 0, 1.0, 0.12)
    checked = 0
    for row, clean in zip(rows, [s for s in CORPUS if s["spans"]]):
        for new, old in zip(row["spans"], clean["spans"]):
            for word in old["text"].split():
                if not word.isalpha():
                    continue
                train_only = options(word, train_abbr, train_styles) - options(word, held_abbr, held_styles)
                assert not train_only & set(new["text"].split()), (old["text"], new["text"])
                checked += 1
            if "initials" in train_styles and "initials" not in held_styles and len(old["text"].split()) > 1:
                assert new["text"] != "".join(w[0].upper() for w in old["text"].split())
    assert checked > 300


def test_default_families_register_abbreviation():
    fams = default_families()
    assert fams["abbreviation"] == ["abbreviation"] and "abbreviation" in fams["obfuscation"]
    assert set(o for ops in fams.values() for o in ops) == set(OPERATORS)


# ---------------------------------------------------------------- char rate, abbreviation spans
def test_char_perturbs_about_twelve_percent_of_all_entity_characters():
    total = changed = touched = entities = 0
    for row in CORPUS * 3:
        rng = random.Random(f"char:{total}:{row['id']}")
        p = perturb_sample(row["text"], row["spans"], ["char"], rng, entity_prob=0.6, char_rate=0.12)
        kept = {p.origin[i] for i in range(len(p.text)) if p.origin[i] >= 0 and p.text[i] == row["text"][p.origin[i]]}
        for sp in row["spans"]:
            lost = sum(1 for o in range(sp["start"], sp["end"]) if o not in kept)
            total += sp["end"] - sp["start"]
            changed += lost
            touched += lost > 0
            entities += 1
    assert total > 15000
    assert 0.105 < changed / total < 0.135, changed / total
    # every entity is eligible (not 60% of them): short ones are often untouched, long ones rarely
    assert touched / entities > 0.6


@pytest.mark.parametrize("half", [TRAIN, HELDOUT])
def test_abbreviation_keeps_gold_spans_consistent(half):
    rows = perturb_rows(CORPUS, "abbreviation", ["abbreviation"], 0, 1.0, 0.12, with_word_map=True, half=half)
    assert len(rows) == len(CORPUS)
    changed = 0
    for row, clean in zip(rows, CORPUS):
        assert row["tokens"] == words(row["text"])
        assert row["tags"] == spans_to_bio(row["text"], row["spans"])
        assert [s["type"] for s in bio_to_spans(row["text"], row["tags"])] == [s["type"] for s in clean["spans"]]
        assert len(row["word_map"]) == len(row["tokens"])
        for new, old in zip(row["spans"], clean["spans"]):
            assert row["text"][new["start"]:new["end"]] == new["text"] and new["type"] == old["type"]
            assert new["text"] and new["text"][0].lower() == old["text"][0].lower()
            if old["type"] in ("IP", "VERSION"):
                assert new["text"] == old["text"]  # nothing to abbreviate
            elif any(len(w) >= 6 for w in old["text"].split() if w.isalpha()):
                assert len(new["text"]) < len(old["text"]), (old["text"], new["text"])
                changed += 1
        # the text around the entities is untouched
        outside = lambda t, sps: "".join(  # noqa: E731
            t[a:b] for a, b in zip([0] + [s["end"] for s in sps], [s["start"] for s in sps] + [len(t)]))
        assert outside(row["text"], row["spans"]) == outside(clean["text"], clean["spans"])
    assert changed > 200


def test_full_normalisation_is_only_for_gold_labels():
    """``full=True`` (used to locate entities in LLM paraphrases) folds both halves; tagging does not."""
    for name in ("homoglyph", "diacritic"):
        for key, value in sorted(pairs(name, HELDOUT))[:20]:
            assert normalize(f"x{value}x", full=True).text == f"x{key}x"
            assert normalize(f"x{value}x").text == f"x{value}x"


def test_split_note_states_the_sizes_of_both_halves():
    from tinysec.ner.substitutions import split_note

    note = split_note()
    for name in RESOURCES:
        assert f"{name} {len(pairs(name, TRAIN))}/{len(pairs(name, HELDOUT))}" in note
