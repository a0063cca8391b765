#!/usr/bin/env bash
# The GPU side of the kit (no .NET SDK needed): sdd devices, the kernel report made at pack time, then for each
# device (cuda and opencl side by side on the same GPU by default) sdd doctor against the golden fixtures and
# sdd bench; a short baby-gpt training run and the PyTorch FP32 side-by-side on the first device; one summary.
# Everything lands in $SDD_OUT (default ./sdd-results). SDD_DEVICES=cpu runs the whole flow on the CPU (kit test).
set -uo pipefail
kit="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
devices="${SDD_DEVICES:-${SDD_DEVICE:-cuda opencl}}"
out="$(mkdir -p "${SDD_OUT:-$PWD/sdd-results}" && cd "${SDD_OUT:-$PWD/sdd-results}" && pwd)"
train_preset="${SDD_TRAIN_PRESET:-baby-gpt}"
train_steps="${SDD_TRAIN_STEPS:-100}"
bench_args="${SDD_BENCH_ARGS:-}"
torch_args="${SDD_TORCH_ARGS:-}"
sdd="$kit/bin/sdd"
python="${PYTHON:-python3}"
: > "$out/status.txt"

# OpenCL on NVIDIA: the kit's ICD file names the driver's libnvidia-opencl.so.1; its ICD loader is used only when
# the machine has none (ocl-icd reads OCL_ICD_VENDORS as a folder of .icd files).
if [[ -z "${OCL_ICD_VENDORS:-}" && ! -d /etc/OpenCL/vendors ]]; then export OCL_ICD_VENDORS="$kit/icd"; fi
if ! ldconfig -p 2>/dev/null | grep -q 'libOpenCL\.so\.1'; then export LD_LIBRARY_PATH="$kit/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi

step() {  # step NAME COMMAND...: runs it, tees its output to NAME.log, records the exit code
  local name="$1"; shift
  echo; echo "=== $name: $*"
  "$@" 2>&1 | tee "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "$name $rc" >> "$out/status.txt"
  return 0
}

echo "sdd GPU kit $(cat "$kit/VERSION" 2>/dev/null) on $(hostname), devices: $devices, results in $out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/nvidia-smi: /' || true
step devices "$sdd" devices
cp "$kit/kernels.txt" "$out/kernels.txt" 2>/dev/null && echo "kernel report (made at pack time): $out/kernels.txt"

first=""
for device in $devices; do
  kind="${device%%:*}"
  # The first device is required; a later one that this machine lacks is skipped with a note, not failed.
  if [[ -n "$first" && "$kind" != cpu && "$kind" != ilgpu-cpu ]] && ! grep -qE "^$kind(:[0-9]+)? .* yes " "$out/devices.log"; then
    echo "(no usable $device device here: its doctor and bench are skipped)" | tee "$out/skipped-$kind.log"
    continue
  fi
  tag="${device//:/-}"
  [[ -z "$first" ]] && first="$device" && first_tag="$tag"
  step "doctor-$tag" "$sdd" doctor --device "$device" --golden "$kit/golden"
  # shellcheck disable=SC2086
  step "bench-$tag" "$sdd" bench --device "$device" --json "$out/bench-$tag.json" $bench_args
done

step train "$sdd" train --preset "$train_preset" --device "$first" --steps "$train_steps" --data "$kit/data/tinyshakespeare.txt" \
  --cache-dir "$out/cache" --out "$out/train-$train_preset" --eval-every 0 --eval-batches 2 --quiet

torch_device=cuda
[[ "$first" == cuda* ]] || torch_device=cpu
if "$python" -c "import torch" 2>/dev/null; then
  # shellcheck disable=SC2086
  step torch "$python" "$kit/torch_bench.py" --device "$torch_device" --ours "$out/bench-$first_tag.json" --json "$out/torch.json" $torch_args
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
