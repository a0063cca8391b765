#!/usr/bin/env bash
# The GPU side of the kit (no .NET SDK needed): sdd devices, sdd doctor against the golden fixtures, sdd bench,
# a short baby-gpt training run, the PyTorch FP32 side-by-side (when python3 has torch), then one summary table.
# Everything lands in $SDD_OUT (default ./sdd-results). SDD_DEVICE=cpu runs the whole flow on the CPU (kit test).
set -uo pipefail
kit="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
device="${SDD_DEVICE:-cuda}"
out="$(mkdir -p "${SDD_OUT:-$PWD/sdd-results}" && cd "${SDD_OUT:-$PWD/sdd-results}" && pwd)"
train_preset="${SDD_TRAIN_PRESET:-baby-gpt}"
train_steps="${SDD_TRAIN_STEPS:-100}"
bench_args="${SDD_BENCH_ARGS:-}"
torch_args="${SDD_TORCH_ARGS:-}"
sdd="$kit/bin/sdd"
python="${PYTHON:-python3}"
: > "$out/status.txt"

step() {  # step NAME COMMAND...: runs it, tees its output to NAME.log, records the exit code
  local name="$1"; shift
  echo; echo "=== $name: $*"
  "$@" 2>&1 | tee "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "$name $rc" >> "$out/status.txt"
  return 0
}

echo "sdd GPU kit $(cat "$kit/VERSION" 2>/dev/null) on $(hostname), device $device, results in $out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/nvidia-smi: /' || true
step devices "$sdd" devices
step doctor "$sdd" doctor --device "$device" --golden "$kit/golden"
# shellcheck disable=SC2086
step bench "$sdd" bench --device "$device" --json "$out/bench.json" $bench_args
step train "$sdd" train --preset "$train_preset" --device "$device" --steps "$train_steps" --data "$kit/data/tinyshakespeare.txt" \
  --cache-dir "$out/cache" --out "$out/train-$train_preset" --eval-every 0 --eval-batches 2 --quiet

torch_device=cuda
[[ "$device" == cuda* ]] || torch_device=cpu
if "$python" -c "import torch" 2>/dev/null; then
  # shellcheck disable=SC2086
  step torch "$python" "$kit/torch_bench.py" --device "$torch_device" --ours "$out/bench.json" --json "$out/torch.json" $torch_args
else
  echo "torch 1" >> "$out/status.txt"
  echo "(no PyTorch for $python: the side-by-side is skipped; pip install torch, or set PYTHON)" | tee "$out/torch.log"
fi

echo
if "$python" -c "" 2>/dev/null; then
  "$python" "$kit/summary.py" "$out" | tee "$out/summary.txt"
else
  cat "$out/status.txt"
fi
! grep -qv ' 0$' "$out/status.txt"
