#!/usr/bin/env bash
# The GPU side of the kit (no .NET SDK needed): sdd devices, the kernel report made at pack time, then for each
# device (cuda and opencl side by side on the same GPU by default) sdd doctor against the golden fixtures and
# sdd bench; a short baby-gpt training run and the PyTorch FP32 side-by-side on the first device; one summary.
# Everything lands in $SDD_OUT (default ./sdd-results). SDD_DEVICES=cpu runs the whole flow on the CPU (kit test).
# SDD_DEADLINE_S bounds the whole run (a lent GPU's minutes are counted): each step gets its own limit, cut to what
# is left, and a step that would start with under 15 s left is skipped; logs are written as they come, so a cut
# run still returns everything up to the cut. SDD_NCU=1 adds an Nsight Compute pass over one training step.
set -uo pipefail
start_s=$SECONDS
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

deadline="${SDD_DEADLINE_S:-0}"
step() {  # step NAME LIMIT_S COMMAND...: runs it (at most LIMIT_S, cut to the deadline), tees its output to NAME.log,
          # records the exit code (124: it ran out of time; "skipped": no time was left to start it)
  local name="$1" limit="$2"; shift 2
  if (( deadline > 0 )); then
    local left=$(( deadline - (SECONDS - start_s) ))
    if (( left < 15 )); then
      echo "=== $name: skipped, ${left}s left of SDD_DEADLINE_S=$deadline" | tee "$out/$name.log"
      echo "$name skipped" >> "$out/status.txt"
      return 0
    fi
    (( left < limit )) && limit=$left
  fi
  echo; echo "=== $name (at $(( SECONDS - start_s ))s, limit ${limit}s): $*"
  timeout -k 5 "$limit" "$@" 2>&1 | tee "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  (( rc == 124 || rc == 137 )) && echo "=== $name: stopped after ${limit}s" | tee -a "$out/$name.log"
  echo "$name $rc $(( SECONDS - start_s ))s" >> "$out/status.txt"
  return 0
}

echo "sdd GPU kit $(cat "$kit/VERSION" 2>/dev/null) on $(hostname), devices: $devices, results in $out"
{ nvidia-smi 2>/dev/null; nvidia-smi -q -d CLOCK 2>/dev/null; uname -a; nproc; } > "$out/machine.txt" 2>&1 || true
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/nvidia-smi: /' || true
step devices 90 "$sdd" devices
cp "$kit/kernels.txt" "$out/kernels.txt" 2>/dev/null && echo "kernel report (made at pack time): $out/kernels.txt"

check_device() {  # check_device DEVICE: its doctor (against the golden fixtures) and its bench
  local tag="${1//:/-}"
  step "doctor-$tag" "${SDD_DOCTOR_LIMIT_S:-240}" "$sdd" doctor --device "$1" --golden "$kit/golden"
  # shellcheck disable=SC2086
  step "bench-$tag" "${SDD_BENCH_LIMIT_S:-300}" "$sdd" bench --device "$1" --json "$out/bench-$tag.json" $bench_args
}

# The first device is required and runs first, with the PyTorch side-by-side right after it; a later device that this
# machine lacks is skipped with a note, not failed. The training run comes last but one: bench already times steps.
set -- $devices
first="$1"; first_tag="${first//:/-}"; shift
check_device "$first"

torch_device=cuda
[[ "$first" == cuda* ]] || torch_device=cpu
if "$python" -c "import torch" 2>/dev/null; then
  # shellcheck disable=SC2086
  step torch "${SDD_TORCH_LIMIT_S:-240}" "$python" "$kit/torch_bench.py" --device "$torch_device" --ours "$out/bench-$first_tag.json" --json "$out/torch.json" $torch_args
else
  echo "torch 1" >> "$out/status.txt"
  echo "(no PyTorch for $python: the side-by-side is skipped; pip install torch, or set PYTHON)" | tee "$out/torch.log"
fi

for device in "$@"; do
  kind="${device%%:*}"
  if [[ "$kind" != cpu && "$kind" != ilgpu-cpu ]] && ! grep -qE "^$kind(:[0-9]+)? .* yes " "$out/devices.log"; then
    echo "(no usable $device device here: its doctor and bench are skipped)" | tee "$out/skipped-$kind.log"
    continue
  fi
  check_device "$device"
done

step train "${SDD_TRAIN_LIMIT_S:-300}" "$sdd" train --preset "$train_preset" --device "$first" --steps "$train_steps" \
  --data "$kit/data/tinyshakespeare.txt" --cache-dir "$out/cache" --out "$out/train-$train_preset" --eval-every 0 --eval-batches 2 --quiet

step determinism "${SDD_DET_LIMIT_S:-180}" "$kit/determinism.sh" "$sdd" "$first" "${SDD_DET_PRESET:-shakespeare-cpu}" \
  "${SDD_DET_STEPS:-12}" "$kit/data/tinyshakespeare.txt" "$out/determinism"

# Nsight Compute over a 2-step training run: speed-of-light, occupancy and launch figures of the first launches of
# the step's main kernels (GEMM, attention's softmax, norms, SwiGLU, RoPE). Needs ncu and GPU counter access.
if [[ "${SDD_NCU:-0}" == 1 ]]; then
  ncu_bin="$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)"
  if [[ -n "$ncu_bin" ]]; then
    step ncu "${SDD_NCU_LIMIT_S:-120}" "$ncu_bin" --target-processes all -k 'regex:Blocked|Tiled|Softmax|RmsNorm|SwiGlu|Rope|CrossEntropy|AdamW' \
      --launch-count "${SDD_NCU_LAUNCHES:-24}" --section SpeedOfLight --section Occupancy --section LaunchStats \
      "$sdd" train --preset "$train_preset" --device "$first" --steps 2 --data "$kit/data/tinyshakespeare.txt" \
      --cache-dir "$out/cache" --out "$out/ncu-train" --eval-every 0 --eval-batches 1 --quiet
  else
    echo "ncu missing" >> "$out/status.txt"; echo "(no ncu on PATH or in /usr/local/cuda*/bin)" | tee "$out/ncu.log"
  fi
fi

echo
if "$python" -c "" 2>/dev/null; then
  "$python" "$kit/summary.py" "$out" | tee "$out/summary.txt"
else
  cat "$out/status.txt"
fi
! awk '$2 != "0" { bad = 1 } END { exit !bad }' "$out/status.txt"
