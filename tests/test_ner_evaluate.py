"""NER tables from hand-made prediction files: exact counts, F1, drop and attack success rate."""

from __future__ import annotations

import pytest

from tinysec.io import write_jsonl
from tinysec.ner.tables import Method, ablation_table, attack_success, counts_table, robustness_table

IP, DOM = "IP", "DOMAIN"


def _row(testset, rid, source, gold, pred, orig=None):
    return {"testset": testset, "family": testset, "id": rid, "orig_id": orig or rid, "source": source,
            "text": "x" * 40, "gold": [dict(start=a, end=b, type=t) for a, b, t in gold],
            "pred": [dict(start=a, end=b, type=t, text="x", confidence=0.9, flagged=False) for a, b, t in pred],
            "rejected": []}


def _write(path, found_clean, found_char):
    g1 = [(0, 5, IP), (10, 15, DOM)]
    g2 = [(0, 4, DOM)]
    rows = [
        _row("clean", "a", "nmap", g1, [g1[i] for i in found_clean]),
        _row("clean", "b", "dns", g2, g2),
        # perturbed copies: spans moved by one character
        _row("char", "a~c", "nmap", [(0, 6, IP), (11, 16, DOM)], [[(0, 6, IP), (11, 16, DOM)][i] for i in found_char], "a"),
        _row("char", "b~c", "dns", [(0, 5, DOM)], [(0, 5, IP)], "b"),
    ]
    write_jsonl(path, rows)
    return str(path)


@pytest.fixture()
def methods(tmp_path):
    base = Method("enc", "baseline", _write(tmp_path / "b.jsonl", [0], [0]))
    rob = Method("enc", "robust", _write(tmp_path / "r.jsonl", [0, 1], [1]))
    return base, rob


def test_attack_success(methods):
    from tinysec.io import read_jsonl

    rows = read_jsonl(methods[1].predictions)
    clean = [r for r in rows if r["testset"] == "clean"]
    char = [r for r in rows if r["testset"] == "char"]
    # robust finds 3 on clean (a: IP, DOMAIN; b: DOMAIN); keeps a's DOMAIN only -> lost 2 of 3
    assert attack_success(clean, char) == (2, 3)


def test_counts_table(methods):
    df = counts_table(list(methods), baseline=methods[0]).set_index("method")
    assert df.loc["gold entities (test)", "Nmap"] == 2 and df.loc["gold entities (test)", "DNS (dig)"] == 1
    rob = df.loc[methods[1].label]
    assert rob["Nmap"] == 2 and rob["Nmap delta"] == "+1" and rob["DNS (dig)"] == 1 and rob["DNS (dig) delta"] == "+0"


def test_robustness_and_ablation_tables(methods):
    df = robustness_table(list(methods), ["char"]).set_index(["method", "testset"])
    rob = methods[1].label
    assert df.loc[(rob, "clean"), "f1"] == pytest.approx(1.0)
    # char: 1 TP, 1 FP, 2 FN -> P 0.5, R 1/3, F1 0.4
    assert df.loc[(rob, "char"), "f1"] == pytest.approx(0.4)
    assert df.loc[(rob, "char"), "f1_drop"] == pytest.approx(0.6)
    assert df.loc[(rob, "char"), "attack_success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    ab = ablation_table([methods[1]], ["char"])
    assert ab.loc[0, "f1_perturbed_mean"] == pytest.approx(0.4) and ab.loc[0, "f1_char"] == pytest.approx(0.4)
