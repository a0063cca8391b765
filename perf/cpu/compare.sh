#!/usr/bin/env bash
# Side-by-side training-step throughput for issue 6, in one run: our `cpu` (managed SIMD) and `ilgpu-cpu`
# (ILGPU's CPU accelerator) devices and PyTorch CPU (Debian python3-torch, float32, 2 threads, AdamW) on the
# same models (tiny B=8, shakespeare-cpu B=12; char vocab 65, post-norm, sdd-code). Medians after warm-up.
# Usage: perf/cpu/compare.sh [path/to/sdd_reference.py]   (default ../shared/reference/sdd_reference.py)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
ref="${1:-$root/../shared/reference/sdd_reference.py}"
[[ -f "$ref" ]] || { echo "sdd_reference.py not found at '$ref': pass its path as the first argument." >&2; exit 2; }
perf="$root/perf/SddIlgpu.Perf"
dotnet build "$perf" -c Release -v q -nologo >/dev/null
bench=(dotnet "$perf/bin/Release/net10.0/SddIlgpu.Perf.dll")
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "# $(date -u +%FT%TZ) $(uname -n), $(nproc) cores, load: $(uptime | sed 's/.*load average: //')"
run() { "$@" | tee -a "$log"; }
for case in "tiny 8" "shakespeare-cpu 12"; do
  set -- $case
  run /usr/bin/python3 "$root/perf/cpu/torch_cpu.py" "$ref" "$1" "$2" 30 5 2
  run "${bench[@]}" step "$1" cpu "$2" 50 10
  run "${bench[@]}" step "$1" ilgpu-cpu "$2" 3 1
done
echo "# load after: $(uptime | sed 's/.*load average: //')"
awk '/^TPS / { tps[$2 " " $3] = $4 }
END {
  printf "\n%-16s %10s %10s %10s %12s %12s\n", "preset", "cpu", "ilgpu-cpu", "torch", "cpu/ilgpu", "cpu/torch"
  n = split("tiny shakespeare-cpu", ps, " ")
  for (i = 1; i <= n; i++) {
    p = ps[i]; c = tps[p " cpu"]; g = tps[p " ilgpu-cpu"]; t = tps[p " torch"]
    printf "%-16s %10.0f %10.0f %10.0f %11.1fx %11.2fx\n", p, c, g, t, (g > 0 ? c / g : 0), (t > 0 ? c / t : 0)
  }
  print "bars: cpu >= 20x ilgpu-cpu, cpu >= 3x torch"
}' "$log"
