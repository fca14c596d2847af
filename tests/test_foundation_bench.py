"""bench/run_all.py runs each benchmark script and gathers results, timings and failures."""

from __future__ import annotations

import json
import textwrap

from conftest import load_bench


def load_runner(monkeypatch, root):
    module = load_bench("run_all", monkeypatch)
    monkeypatch.setattr(module, "REPO", root)
    monkeypatch.setattr(module, "OUT", root / "results" / "bench")
    return module


def test_run_all_collects_results_and_failures(tmp_path, monkeypatch):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "run_all.py").write_text("raise SystemExit('the runner must not run itself')\n")
    (bench / "alpha_speed.py").write_text(textwrap.dedent("""
        import json, pathlib
        out = pathlib.Path("results/bench"); out.mkdir(parents=True, exist_ok=True)
        (out / "alpha_speed.json").write_text(json.dumps({"ours_s": 1.0, "baseline_s": 3.0}))
    """))
    (bench / "beta_broken.py").write_text("import sys; print('boom'); sys.exit(3)\n")
    runner = load_runner(monkeypatch, tmp_path)
    assert [p.name for p in runner.bench_scripts()] == ["alpha_speed.py", "beta_broken.py"]
    assert runner.main([]) == 1
    summary = json.loads((tmp_path / "results/bench/summary.json").read_text())
    alpha, beta = summary["benchmarks"]
    assert alpha["returncode"] == 0 and alpha["result"] == {"ours_s": 1.0, "baseline_s": 3.0}
    assert beta["returncode"] == 3 and "boom" in beta["output_tail"] and beta["result"] is None
    md = (tmp_path / "results/bench/summary.md").read_text()
    assert "| alpha_speed.py | ok |" in md and "| beta_broken.py | failed (3) |" in md
    assert runner.main(["--only", "alpha*"]) == 0
    assert runner.main(["--only", "nothing*"]) == 1
