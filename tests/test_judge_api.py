"""The API judge end to end: real snakemake on the tiny config, judging through a real
OpenAI-compatible server on 127.0.0.1 that answers 429, 5xx, garbage and hangs once."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import TINY, run_snakemake
from openai_server import OpenAIServer

KEY = "sk-tinysec-TEST-4f9d2c"
KEY_ENV = "TINYSEC_TEST_JUDGE_KEY"
CONTESTANTS = ["tiny-llama", "tiny-llama-lora", "tiny-llama-full", "tiny-llama-ref"]
JUDGE_RULES = ["judge_battles", "elo_table"]


def prefer_longer(body: dict) -> str:
    """A deterministic judge: the longer output wins; it cannot decide on 'UNANSWERABLE' items."""
    prompt = body["messages"][0]["content"]
    record = json.loads(prompt[prompt.index("{"): prompt.rindex("}") + 1])
    if "UNANSWERABLE" in record["instruction"]:
        return "Both answers have merit, I cannot choose."
    la, lb = len(record["model-A-output"]), len(record["model-B-output"])
    return "Tie." if la == lb else ("Verdict: A is better." if la > lb else "B is better")


def write_inputs(workdir: Path, base_url: str) -> Path:
    data = workdir / "results" / "data"
    data.mkdir(parents=True)
    items = [{"id": f"q{i}", "instruction": "UNANSWERABLE riddle" if i == 2 else f"Explain control {i}",
              "input": "" if i % 2 else "log line", "output": "reference", "kind": "qa"} for i in range(4)]
    (data / "instruct_eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    answers = workdir / "results" / "answers"
    answers.mkdir()
    for rank, name in enumerate(CONTESTANTS):
        rows = [{"id": it["id"], "instruction": it["instruction"], "input": it["input"],
                 "answer": "word " * (rank + 1 + (i % 2)), "n_tokens": 3, "seconds": 0.1}
                for i, it in enumerate(items)]
        (answers / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = yaml.safe_load(TINY.read_text())
    cfg["models"]["loopback-judge"] = {"source": "api:loopback", "api": {
        "base_url": base_url, "model": "judge-x", "key_env": KEY_ENV, "timeout": 1.0, "max_retries": 4,
        "concurrency": 2}}
    cfg["judge"]["judge"] = "api"
    cfg["judge"]["judges"] = {"api": {"kind": "api", "model": "loopback-judge", "max_reasks": 1}}
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_api_judge_retries_invalid_cache_and_no_key_leak(tmp_path):
    with OpenAIServer(responder=prefer_longer, key=KEY, hang_seconds=2.5,
                      script=["429", "hang", "text:let me think", "503", "429"]) as srv:
        config = write_inputs(tmp_path, srv.base_url)
        def run(*extra):
            return run_snakemake(tmp_path, "results/tables/elo.md", "--allowed-rules", *JUDGE_RULES,
                                 *extra, configfile=config, env={KEY_ENV: KEY}, timeout=600)
        run()
        first_calls = srv.calls
        # 6 pairs x 4 items x 2 orders, + retried 429/503/hang + re-asks (1 garbage + 12 undecidable)
        assert first_calls >= 48 + 4 + 13
        assert {429, 503}.issubset(srv.statuses)
        reasks = [r for r in srv.requests if len(r["messages"]) == 3]
        assert len(reasks) == 13 and reasks[0]["messages"][2]["content"].startswith("That was not one")

        judge_dir = tmp_path / "results" / "battles" / "api"
        summary = json.loads((judge_dir / "summary.json").read_text())
        assert summary["battles"] == 24 and summary["invalid"] == 6 and summary["valid"] == 18
        assert summary["invalid_orders"] == 12 and summary["flip_rate"] == 0.0
        pair = [json.loads(line) for line in (judge_dir / "tiny-llama__vs__tiny-llama-ref.jsonl").read_text().splitlines()]
        assert [r["verdict"] for r in pair] == ["model_b", "model_b", "invalid", "model_b"]
        exported = [json.loads(line) for line in (judge_dir / "battles.jsonl").read_text().splitlines()]
        assert len(exported) == 18 and {b["win"] for b in exported} <= {"model_a", "model_b", "tie"}
        elo_md = (tmp_path / "results" / "tables" / "elo.md").read_text()
        assert "judge `api`" in elo_md and "6 invalid battles excluded" in elo_md
        log = (tmp_path / "logs" / "judge_battles" / "api.log").read_text()
        assert "retry" in log

        # rerun of the judging rule: everything comes from the cache, no call reaches the server
        run("--forcerun", "judge_battles")
        assert srv.calls == first_calls

    for folder in ("results", "logs", "benchmarks"):
        for path in (tmp_path / folder).rglob("*"):
            if path.is_file():
                assert KEY.encode() not in path.read_bytes(), f"API key leaked into {path}"
