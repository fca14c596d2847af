#!/usr/bin/env bash
# GPU check, ready to run on any CUDA machine (no internet needed):
#   1. the whole tiny config (config/tiny.yaml) with --resources gpu=1 in a scratch directory;
#      asserts that its LoRA and full fine-tunings ran on CUDA (train_metrics.json "device");
#   2. one LoRA optimiser step and one batch of greedy generation of the embedded SmolLM2-135M in
#      bf16 on one GPU (bench/_gpu_check.py).
# Prints the wall time of each part and the peak GPU memory; writes results/bench/gpu_check.json.
# Exits 2 (with a message saying why) when torch sees no CUDA device or CUDA was not used.
# Usage: bench/gpu_check.sh            (from anywhere; uses the repo's .venv)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$REPO/.venv/bin/python"
cd "$REPO"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PATH="$REPO/.venv/bin:$PATH"

if [ ! -x "$PY" ]; then
  echo "gpu_check: FAILED: $PY not found; run 'make venv' first" >&2
  exit 2
fi
if ! "$PY" - <<'EOF'
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_check: FAILED: no CUDA device visible to torch {torch.__version__} "
             f"(CUDA build: {torch.version.cuda or 'none, a CPU-only build'}); run this on a CUDA machine "
             f"with a CUDA build of torch (make venv TORCH_INDEX=https://download.pytorch.org/whl/cu128)")
print(f"gpu_check: CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s): {torch.cuda.get_device_name(0)}")
EOF
then
  exit 2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tinysec-gpu-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
echo "gpu_check: 1/2 tiny config with --resources gpu=1 in $WORK"
start=$(date +%s.%N)
if ! "$PY" -m snakemake -s "$REPO/Snakefile" -d "$WORK" --cores 4 --resources gpu=1 \
     --configfile "$REPO/config/tiny.yaml" > "$WORK/snakemake.log" 2>&1; then
  tail -n 40 "$WORK/snakemake.log" >&2
  echo "gpu_check: FAILED: the tiny config run failed (log above)" >&2
  exit 1
fi
tiny_s=$("$PY" -c "import time; print(round(time.time() - $start, 1))")
"$PY" - "$WORK" <<'EOF'
import json, sys
from pathlib import Path
found = sorted(Path(sys.argv[1], "results", "finetune").glob("*/train_metrics.json"))
if not found:
    sys.exit("gpu_check: FAILED: the tiny run wrote no results/finetune/*/train_metrics.json")
for f in found:
    m = json.loads(f.read_text())
    print(f"gpu_check:   {f.parent.name}: device {m['device']}, {m['wall_seconds']} s, "
          f"peak memory {m['peak_memory_mb']} MB")
    if not str(m["device"]).startswith("cuda"):
        sys.exit(f"gpu_check: FAILED: {f} says device {m['device']!r}, not CUDA")
EOF
echo "gpu_check: tiny config done in ${tiny_s} s"

echo "gpu_check: 2/2 embedded model: one LoRA step and generation in bf16"
"$PY" bench/_gpu_check.py
echo "gpu_check: OK (details in results/bench/gpu_check.json)"
