"""bench/run_all.py's summary lists every checked target with its measured value and whether it holds."""

from __future__ import annotations

import json
import textwrap

from conftest import load_bench


def load_runner(monkeypatch, root):
    module = load_bench("run_all", monkeypatch)
    monkeypatch.setattr(module, "REPO", root)
    monkeypatch.setattr(module, "OUT", root / "results" / "bench")
    return module


def write_bench(bench, name: str, result: dict, exit_code: int = 0) -> None:
    (bench / f"{name}.py").write_text(textwrap.dedent(f"""
        import json, pathlib, sys
        out = pathlib.Path("results/bench"); out.mkdir(parents=True, exist_ok=True)
        (out / "{name}.json").write_text(json.dumps({result!r}))
        sys.exit({exit_code})
    """))


def test_summary_marks_each_target(tmp_path, monkeypatch):
    bench = tmp_path / "bench"
    bench.mkdir()
    write_bench(bench, "a_list", {"speedup": 2.0, "checks": [
        {"target": "speedup >= 1.5", "measured": 2.0, "holds": True},
        {"target": "padding <= 0.1", "measured": 0.25, "holds": False}]})
    write_bench(bench, "b_dict", {"checks": {"speedup_10x": {"target": 30.0, "measured": 50.2, "holds": True}}})
    write_bench(bench, "c_plain", {"speedup": 1.7, "train": {"speedup": 1.2, "target": 1.3},
                                   "gen": {"speedup": 5.0, "target": 4.0}, "other": {"x": 1}})
    write_bench(bench, "d_crashed", {"checks": [{"target": "x >= 1", "measured": 3, "holds": True}]}, exit_code=4)
    runner = load_runner(monkeypatch, tmp_path)
    assert runner.main([]) == 1  # d_crashed exited 4

    summary = json.loads((tmp_path / "results/bench/summary.json").read_text())
    rows = {(t["bench"], t["name"]): t["holds"] for t in summary["targets"]}
    assert rows == {("a_list.py", "speedup >= 1.5"): True, ("a_list.py", "padding <= 0.1"): False,
                    ("b_dict.py", "speedup_10x"): True, ("c_plain.py", "speedup"): None,
                    ("c_plain.py", "train.speedup"): False, ("c_plain.py", "gen.speedup"): True,
                    ("d_crashed.py", "x >= 1"): False}
    assert summary["all_targets_hold"] is False
    assert len(summary["machine"]["load_average_at_start"]) == 3 and summary["machine"]["cpus"] >= 1
    assert all(len(b["load_average_before"]) == 3 for b in summary["benchmarks"])

    md = (tmp_path / "results/bench/summary.md").read_text()
    assert "## Targets (3 of 7 hold)" in md
    assert "| c_plain.py | train.speedup | 1.3 | 1.2 | **no** |" in md
    assert "| a_list.py | padding <= 0.1 | - | 0.25 | **no** |" in md
    assert "| a_list.py | speedup >= 1.5 | - | 2 | yes |" in md
    assert "| b_dict.py | speedup_10x | 30 | 50.2 | yes |" in md
    assert "| c_plain.py | speedup | - | 1.7 | no target |" in md
    assert "| d_crashed.py | x >= 1 | - | 3 | **no** |" in md
    assert "| d_crashed.py | failed (4) |" in md and "load average" in md


def test_all_targets_hold_when_every_check_holds(tmp_path, monkeypatch):
    bench = tmp_path / "bench"
    bench.mkdir()
    write_bench(bench, "ok", {"checks": [{"target": "speedup >= 1.5", "measured": 1.6, "holds": True}]})
    runner = load_runner(monkeypatch, tmp_path)
    assert runner.main([]) == 0
    summary = json.loads((tmp_path / "results/bench/summary.json").read_text())
    assert summary["all_targets_hold"] is True
    assert "## Targets (1 of 1 hold)" in (tmp_path / "results/bench/summary.md").read_text()


def test_summarize_only_reuses_result_files_and_runs_nothing(tmp_path, monkeypatch):
    bench = tmp_path / "bench"
    bench.mkdir()
    write_bench(bench, "done", {"checks": [{"target": "speedup >= 1.5", "measured": 1.2, "holds": False}]})
    (bench / "never.py").write_text("raise SystemExit('must not run')\n")
    out = tmp_path / "results" / "bench"
    out.mkdir(parents=True)
    (out / "done.json").write_text(json.dumps({"checks": [{"target": "speedup >= 1.5", "measured": 1.2,
                                                            "holds": False}]}))
    runner = load_runner(monkeypatch, tmp_path)
    assert runner.main(["--summarize-only"]) == 1  # never.py has no result
    md = (out / "summary.md").read_text()
    assert "| done.py | speedup >= 1.5 | - | 1.2 | **no** |" in md
    assert "| done.py | result of " in md and "| never.py | not run |" in md
    assert not (out / "never.json").exists()
