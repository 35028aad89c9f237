#!/usr/bin/env bash
# Excise against the identical UNet in plain PyTorch (bench/reference), run alternately: A B A B …
# Usage: bench/compare-pytorch.sh [CONFIG=base] [ROUNDS=5] [STEPS=10] [THREADS=2] [OUT_DIR]
# Each round starts one Excise process and one PyTorch process; each times STEPS training steps after 3 warm-up
# steps (same batch, tokens, threads), and a no_grad classifier-free-guidance forward (batch 2B). The summary is
# the ratio of the medians of the per-round medians; below 1.0 means Excise is faster.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
config="${1:-base}"; rounds="${2:-5}"; steps="${3:-10}"; threads="${4:-2}"
out="${5:-$root/runs/bench-pytorch/$config}"
python=/usr/bin/python3   # Debian's python3-torch; a pyenv python3 on PATH has no torch

if ! "$python" -c "import torch" 2>/dev/null || [ ! -e /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing python3-torch and OpenBLAS (first run only)…" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch libopenblas0-openmp >/dev/null
  else
    echo "needs: sudo apt-get install -y python3-torch libopenblas0-openmp" >&2; exit 1
  fi
fi

mkdir -p "$out"
"$root/excise" bench export --config "$config" --out "$out/model" >/dev/null
batch=$(
  "$python" - "$out/model/inputs.safetensors" <<'PY'
import sys, struct, json
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    print(json.loads(f.read(n))["sample"]["shape"][0])
PY
)
tokens=32
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds: Excise…" >&2
  "$root/excise" bench --config "$config" --only train,sampling --steps "$steps" --warmup 3 --threads "$threads" \
    --sampling-calls 1 --sampling-steps 2 --out "$out/excise-$r.json" >/dev/null
  echo "round $r/$rounds: PyTorch…" >&2
  "$python" "$root/bench/reference/train_step.py" --bench --config "$out/model/unet_config.json" --batch "$batch" --tokens "$tokens" \
    --threads "$threads" --warmup 3 --steps "$steps" --json "$out/pytorch-$r.json" >/dev/null
  "$python" "$root/bench/reference/train_step.py" --bench --sampling --config "$out/model/unet_config.json" --batch "$batch" --tokens "$tokens" \
    --threads "$threads" --warmup 1 --steps 3 --json "$out/pytorch-sampling-$r.json" >/dev/null
done

"$python" - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ex = [json.load(open(f"{out}/excise-{r}.json")) for r in range(1, rounds + 1)]
pt = [json.load(open(f"{out}/pytorch-{r}.json")) for r in range(1, rounds + 1)]
ps = [json.load(open(f"{out}/pytorch-sampling-{r}.json")) for r in range(1, rounds + 1)]
ex_step = [e["models"][0]["step"]["median_seconds"] for e in ex]
pt_step = [p["median_seconds"] for p in pt]
ex_fwd = [e["sampling"]["batched_guidance_forward"]["median_seconds"] for e in ex]
pt_fwd = [p["forward_seconds"] for p in ps]
m = statistics.median
summary = {
    "config": ex[0]["models"][0]["name"], "rounds": rounds, "batch": pt[0]["batch"], "threads": pt[0]["threads"],
    "pytorch": {"version": pt[0]["torch_version"], "blas": pt[0]["blas"]},
    "excise": {"torchsharp": ex[0]["machine"]["torch_sharp"], "threads": ex[0]["machine"]["torch_threads"]},
    "training_step_seconds": {"excise": ex_step, "pytorch": pt_step, "excise_median": m(ex_step), "pytorch_median": m(pt_step),
                              "ratio_excise_over_pytorch": m(ex_step) / m(pt_step)},
    "guidance_forward_seconds": {"excise": ex_fwd, "pytorch": pt_fwd, "excise_median": m(ex_fwd), "pytorch_median": m(pt_fwd),
                                 "ratio_excise_over_pytorch": m(ex_fwd) / m(pt_fwd)},
}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
t, g = summary["training_step_seconds"], summary["guidance_forward_seconds"]
print(f"{summary['config']}: batch {summary['batch']}, {summary['threads']} threads, {rounds} alternating rounds; "
      f"PyTorch {summary['pytorch']['version']} with {summary['pytorch']['blas']}, TorchSharp {summary['excise']['torchsharp']}")
print(f"training step: Excise {t['excise_median']:.3f} s, PyTorch {t['pytorch_median']:.3f} s -> ratio {t['ratio_excise_over_pytorch']:.2f}")
print(f"guidance forward (2x batch, no grad): Excise {g['excise_median']:.3f} s, PyTorch {g['pytorch_median']:.3f} s -> ratio {g['ratio_excise_over_pytorch']:.2f}")
print(f"written: {out}/summary.json")
PY
