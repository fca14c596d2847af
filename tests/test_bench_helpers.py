"""Pure parts of the training and snakemake benches: FLOP counts, checks, import-log parsing."""

from __future__ import annotations

from conftest import load_bench


def test_train_flops_and_checks(monkeypatch):
    train = load_bench("train", monkeypatch)
    params = (100, 10)
    assert train.useful_flops("lora", 50, 20, params) == 4 * (100 * 50 + 10 * 20)
    assert train.useful_flops("full", 50, 20, params) == 6 * (100 * 50 + 10 * 20)
    run = train.add_efficiency({"train_tokens": 1000, "answer_tokens": 400, "wall_seconds": 2.0, "cpu_seconds": 4.0}, "lora",
                               (10**8, 10**7))
    assert run["useful_gflops_per_s"] == round(4 * (10**11 + 4 * 10**9) / 2.0 / 1e9, 2)
    assert run["fraction_of_gemm_peak"] == 2.08  # 208 GFLOP/s over the nominal 100
    assert run["tokens_per_cpu_second"] == 250.0
    lora = {"tokens_per_second": 120.0, "padding_fraction": 0.12, "fraction_of_gemm_peak": 0.8}
    base = {"tokens_per_second": 100.0}
    full = {"fraction_of_gemm_peak": 0.76}
    got = [(c["measured"], c["holds"]) for c in train.checks(lora, base, full)]
    assert got == [(1.2, False), (0.12, False), (0.95, True)]
    runs = [({"tokens_per_second": a}, {"tokens_per_second": b}) for a, b in ((150, 100), (120, 100), (200, 100))]
    lora, base, speedup = train.median_pair(runs)
    assert (lora["tokens_per_second"], speedup) == (150, 1.5)
    assert train.median_pair(runs[:2])[2] == 1.2  # an even count takes the lower middle pair


def test_snakemake_import_report_finds_heavy_modules(monkeypatch):
    smk = load_bench("snakemake_dryrun", monkeypatch)
    log = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |        100 |     torch._C",
        "import time:      2000 |       5000 | torch",
        "import time:        50 |         50 |   yaml.error",
        "import time:       300 |        900 | yaml",
    ])
    rep = smk.import_report(log)
    assert rep["heavy_imported"] == ["torch", "torch._C"]
    assert rep["slowest_top_level"][0] == {"module": "torch", "cumulative_ms": 5.0}
    assert [r["module"] for r in rep["slowest_top_level"]] == ["torch", "yaml"]
    assert smk.import_report("nothing")["heavy_imported"] == []
