#!/usr/bin/env bash
# Side-by-side training-step throughput (issues 6 and 14): our `cpu` device (managed SIMD), PyTorch 1.13
# (Debian python3-torch) on OpenBLAS (the openmp build, selected for that command alone), libtorch 2.10
# (TorchSharp-cpu, perf/libtorch/run.sh) when it can run, and optionally our `ilgpu-cpu` device, on the same
# models (char vocab 65, post-norm, sdd-code; tiny B=8, shakespeare-cpu B=12, baby-gpt B=4), float32, 2 threads,
# AdamW with clipping. The contenders alternate: in each round every contender runs once per preset, and the
# order rotates from round to round, so slow drifts in the machine's load hit all of them alike. Each run
# prints its median step; the summary gives per-contender medians over the rounds, min–max, and the ratios.
#
# Usage: perf/cpu/compare.sh [--rounds 5] [--presets "tiny shakespeare-cpu baby-gpt"] [--steps N --warmup N]
#                            [--libtorch | --no-libtorch] [--attention sdpa|composed] [--ilgpu-cpu]
#                            [--reference PATH/sdd_reference.py]     (default ../shared/reference/sdd_reference.py)
# libtorch is used when perf/libtorch/run.sh can prepare it (--libtorch makes that a requirement). ilgpu-cpu is
# slow (3 steps a run) and not an anchor, hence off by default.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
die() { echo "compare.sh: $*" >&2; exit 2; }

ref="$root/../shared/reference/sdd_reference.py"
rounds=5 presets="tiny shakespeare-cpu baby-gpt" libtorch=auto attention=sdpa ilgpu=0 steps="" warmup=""
while (( $# )); do
  case "$1" in
    --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
    --presets) presets="${2:?--presets needs a value}"; shift 2 ;;
    --steps) steps="${2:?--steps needs a value}"; shift 2 ;;
    --warmup) warmup="${2:?--warmup needs a value}"; shift 2 ;;
    --libtorch) libtorch=yes; shift ;;
    --no-libtorch) libtorch=no; shift ;;
    --attention) attention="${2:?--attention needs a value}"; shift 2 ;;
    --ilgpu-cpu) ilgpu=1; shift ;;
    --reference) ref="${2:?--reference needs a value}"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) die "unknown option '$1'; see --help." ;;
    *) ref="$1"; shift ;;   # the old positional form: compare.sh PATH/sdd_reference.py
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, not '$rounds'."
[[ -z "$steps" || "$steps" =~ ^[1-9][0-9]*$ ]] || die "--steps must be a positive integer, not '$steps'."
[[ -z "$warmup" || "$warmup" =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer, not '$warmup'."
[[ "$attention" == sdpa || "$attention" == composed ]] || die "--attention must be sdpa or composed, not '$attention'."
[[ -f "$ref" ]] || die "sdd_reference.py not found at '$ref': pass --reference PATH."
declare -A batch=([tiny]=8 [shakespeare-cpu]=12 [baby-gpt]=4)
declare -A run_len=([tiny]="50 10" [shakespeare-cpu]="50 10" [baby-gpt]="20 5")   # steps, warm-up per run
for p in $presets; do [[ -n "${batch[$p]:-}" ]] || die "unknown preset '$p'; presets: ${!batch[*]}."; done

openblas=/usr/lib/x86_64-linux-gnu/openblas-openmp
[[ -f "$openblas/libblas.so.3" ]] || die "$openblas/libblas.so.3 is missing: apt-get install libopenblas0-openmp."
export OMP_NUM_THREADS=2   # every contender: 2 threads (the tools also set them themselves)

perf="$root/perf/SddIlgpu.Perf"
dotnet build "$perf" -c Release -v q -nologo >/dev/null || die "dotnet build of perf/SddIlgpu.Perf failed."
bench=(dotnet "$perf/bin/Release/net10.0/SddIlgpu.Perf.dll")
libtorch_info="not run (--no-libtorch)"
if [[ "$libtorch" != no ]]; then
  if libtorch_info="$("$root/perf/libtorch/run.sh" prepare 2>&1)"; then
    libtorch=yes libtorch_info="$(tail -n 1 <<<"$libtorch_info" | sed 's/^# //'), attention $attention"
  elif [[ "$libtorch" == yes ]]; then
    die "libtorch cannot run: $(tail -n 1 <<<"$libtorch_info")"
  else
    libtorch=no libtorch_info="skipped: $(tail -n 1 <<<"$libtorch_info")"
  fi
fi

contenders=(cpu torch)
[[ "$libtorch" == yes ]] && contenders+=(libtorch)
(( ilgpu )) && contenders+=(ilgpu-cpu)

run_one() {   # contender preset -> the tool's output; TPS line "TPS preset contender tok/s"
  local who="$1" p="$2" b="${batch[$2]}" s w
  read -r s w <<<"${run_len[$2]}"
  s="${steps:-$s}" w="${warmup:-$w}"
  case "$who" in
    cpu) "${bench[@]}" step "$p" cpu "$b" "$s" "$w" ;;
    ilgpu-cpu) "${bench[@]}" step "$p" ilgpu-cpu "$b" 3 1 ;;
    torch) LD_LIBRARY_PATH="$openblas" /usr/bin/python3 "$root/perf/cpu/torch_cpu.py" "$ref" "$p" "$b" "$s" "$w" 2 ;;
    libtorch) "$root/perf/libtorch/run.sh" --no-build step "$p" "$b" "$s" "$w" --attention "$attention" --threads 2 ;;
  esac
}

log="$(mktemp)" out="$(mktemp)"
trap 'rm -f "$log" "$out"' EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
cpu_model="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
cpu_ids="$(lscpu | awk -F: '/^CPU family/ {f=$2} /^Model:/ {m=$2} END {gsub(/ /, "", f); gsub(/ /, "", m); print "family " f ", model " m}')"
echo "# $(date -u +%FT%TZ) $(uname -n): $cpu_model ($cpu_ids), $(nproc) logical cores ($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s)/core), load before: $(load)"
echo "# contenders: ${contenders[*]}; presets: $presets; $rounds rounds, rotating order; OMP_NUM_THREADS=2"
echo "# torch: /usr/bin/python3 (python3-torch $(dpkg-query -W -f='${Version}' python3-torch 2>/dev/null || echo '?')) with LD_LIBRARY_PATH=$openblas"
LD_LIBRARY_PATH="$openblas" /usr/bin/python3 "$root/perf/cpu/torch_cpu.py" "$ref" tiny 1 --which-blas || die "torch is not on OpenBLAS (see above)."
echo "# libtorch: $libtorch_info"
echo "# dotnet $(dotnet --version)"
n=${#contenders[@]}
for (( r = 0; r < rounds; r++ )); do
  for p in $presets; do
    for (( j = 0; j < n; j++ )); do
      who="${contenders[$(( (j + r) % n ))]}"
      if ! run_one "$who" "$p" >"$out" 2>&1; then
        cat "$out" >&2
        die "round $(( r + 1 )): $who on $p failed (output above)."
      fi
      grep -v -e '^TPS ' -e '^# torch .* BLAS: ' "$out" | sed "s/^/[round $(( r + 1 ))] /" || true
      grep '^TPS ' "$out" >>"$log" || die "round $(( r + 1 )): $who on $p printed no TPS line."
    done
  done
done
echo "# load after: $(load)"
awk -v presets="$presets" -v who="${contenders[*]}" '
function median(list,   a, k, i, j, t) {
  k = split(list, a, " ")
  for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
function lo(list,   a, k, i, m) { k = split(list, a, " "); m = a[1]; for (i = 2; i <= k; i++) if (a[i] < m) m = a[i]; return m }
function hi(list,   a, k, i, m) { k = split(list, a, " "); m = a[1]; for (i = 2; i <= k; i++) if (a[i] > m) m = a[i]; return m }
/^TPS / { runs[$2 " " $3] = runs[$2 " " $3] " " $4 }
END {
  np = split(presets, ps, " "); nc = split(who, cs, " ")
  printf "\nmedian tokens/s over the rounds (min-max)\n%-16s", "preset"
  for (i = 1; i <= nc; i++) printf " %24s", cs[i]
  for (i = 2; i <= nc; i++) printf " %13s", "cpu/" cs[i]
  printf "\n"
  for (q = 1; q <= np; q++) {
    p = ps[q]; printf "%-16s", p
    for (i = 1; i <= nc; i++) {
      l = runs[p " " cs[i]]; med[i] = median(l)
      printf " %8.0f (%6.0f-%6.0f)", med[i], lo(l), hi(l)
    }
    for (i = 2; i <= nc; i++) printf " %12.2fx", (med[i] > 0 ? med[1] / med[i] : 0)
    printf "\n"
  }
}' "$log"
