#!/usr/bin/env bash
# Projection cost and certificates for a short fine-tune of the base model in each mode.
# Usage: bench/projection-overhead.sh BASE_RUN [STEPS] [OUT_DIR]
# Prints, per arm: median s/step, the projection's share of training time, and the certificate's worst share
# of the learned change inside the concept subspace. Runs the arms one after another on the same data and seed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
base="${1:?give the base run directory, e.g. runs/cache/base-…}"
steps="${2:-100}"
out="${3:-$root/runs/bench-projection}"
mkdir -p "$out"
"$root/excise" concept --concept "the Acme logo" --out "$out/concept.safetensors" >/dev/null
for arm in standard gradient-projection update-projection; do
  for lora in none rank4; do
    run="$out/$arm-$lora"
    rm -rf "$run"
    extra=()
    [ "$lora" = rank4 ] && extra=(--set 'lora={"rank":4,"alpha":4}' --set training.learning_rate=0.005)
    "$root/excise" train --config "$root/configs/finetune.json" --init "$base" --arm "$arm" --basis "$out/concept.safetensors" \
      --set training.steps="$steps" --set training.checkpoint_every=0 --set preview.per_prompt=0 "${extra[@]}" --out "$run" >/dev/null
    if [ "$arm" = standard ]; then
      "$root/excise" verify --run "$run" --basis "$out/concept.safetensors" --json "$run/certificate.json" >/dev/null || true
    fi
    python3 - "$run" "$arm" "$lora" <<'PY'
import json, sys
run, arm, lora = sys.argv[1:]
s = json.load(open(f"{run}/summary.json"))
c = json.load(open(f"{run}/certificate.json"))
print(f"{arm:20s} lora={lora:6s} {s['median_seconds_per_step']:.3f} s/step  projection {100*s['projection_share_of_training']:.3f}% of training  "
      f"certificate worst share {c['worst_share_of_change_in_concept']:.2e} (passed={c['passed']})")
PY
  done
done
