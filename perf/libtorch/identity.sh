#!/usr/bin/env bash
# Proves that perf/cpu/torch_cpu.py (PyTorch 1.13, OpenBLAS) and perf/libtorch (libtorch 2.10) train the same
# model: for each preset, torch_cpu.py --export writes its random initial weights, one batch and the losses of
# 4 training steps (forward, loss, backward, clip, AdamW) to a safetensors file; libtorch loads the same
# weights and batch, runs the same 4 steps with both attention forms, and compares the parameter count and
# every loss (|Δ| ≤ 1e-6·|loss|, i.e. 6 significant digits). Exit 0 only if every preset and form agrees.
# Usage: perf/libtorch/identity.sh [--reference PATH/sdd_reference.py] [PRESET...]   (default: all three)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
ref="$root/../shared/reference/sdd_reference.py"
if [[ "${1:-}" == "--reference" ]]; then ref="${2:?--reference needs a path}"; shift 2; fi
[[ -f "$ref" ]] || { echo "identity.sh: sdd_reference.py not found at '$ref': pass --reference PATH." >&2; exit 2; }
declare -A batch=([tiny]=8 [shakespeare-cpu]=12 [baby-gpt]=4)
presets=("$@")
(( ${#presets[@]} )) || presets=(tiny shakespeare-cpu baby-gpt)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=2
"$root/perf/libtorch/run.sh" prepare
status=0
for p in "${presets[@]}"; do
  [[ -n "${batch[$p]:-}" ]] || { echo "identity.sh: unknown preset '$p'; presets: ${!batch[*]}." >&2; exit 2; }
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
    /usr/bin/python3 "$root/perf/cpu/torch_cpu.py" "$ref" "$p" "${batch[$p]}" --export "$work/$p.safetensors"
  for attention in sdpa composed; do
    "$root/perf/libtorch/run.sh" --no-build verify "$work/$p.safetensors" --attention "$attention" || status=1
  done
done
exit $status
