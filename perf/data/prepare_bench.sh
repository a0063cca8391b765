#!/usr/bin/env bash
# Issue 12's figures: `sdd prepare` throughput (MB/s) on a generated corpus against a single-threaded
# Microsoft.ML.Tokenizers encode, in alternating rounds (medians); peak RSS for 100 MB and 1 GB inputs
# (/usr/bin/time -v); time from `sdd train` start to the end of its first step on a 1 GB prepared folder
# against the same on a tiny one (the difference is what the data size costs).
# Usage: perf/data/prepare_bench.sh [WORKDIR] [ROUNDS]   (needs ~6 GB free in WORKDIR; /usr/bin/time from Debian's `time`)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-/tmp/sdd-prepare-bench}
rounds=${2:-3}
mkdir -p "$work"
dotnet build SddIlgpu.sln -c Release -v q >/dev/null
sdd=(dotnet src/SddIlgpu.Cli/bin/Release/net10.0/sdd.dll)
perf=(dotnet perf/SddIlgpu.Perf/bin/Release/net10.0/SddIlgpu.Perf.dll)
[ -f "$work/c100.txt" ] || "${perf[@]}" corpus 100 "$work/c100.txt"
[ -f "$work/c1000.txt" ] || "${perf[@]}" corpus 1000 "$work/c1000.txt"
echo "date $(date -u +%FT%TZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"

rss() { grep 'Maximum resident' "$1" | awk '{printf "%.0f MB", $6/1024}'; }
secs() { grep 'Elapsed (wall' "$1" | awk '{print $NF}'; }

for kind in gpt2 char; do
  for r in $(seq "$rounds"); do
    "${perf[@]}" encode-baseline "$work/c1000.txt" "$kind"
    for t in 1 2; do
      /usr/bin/time -v "${sdd[@]}" prepare "$work/c1000.txt" --tokenizer "$kind" --out "$work/p-$kind-$t" --threads "$t" --overwrite --quiet \
        > "$work/out.txt" 2> "$work/time.txt"
      echo "prepare $kind threads=$t round $r: $(grep -o '([0-9.]* MB/s)' "$work/out.txt") wall $(secs "$work/time.txt") peak RSS $(rss "$work/time.txt")"
    done
    cmp <(cat "$work"/p-$kind-1/*.bin | sha256sum) <(cat "$work"/p-$kind-2/*.bin | sha256sum) >/dev/null \
      && echo "  threads=1 and threads=2 shards identical" || echo "  SHARDS DIFFER"
  done
done
/usr/bin/time -v "${sdd[@]}" prepare "$work/c100.txt" --tokenizer gpt2 --out "$work/p100" --overwrite --quiet > /dev/null 2> "$work/time.txt"
echo "prepare gpt2 100 MB: peak RSS $(rss "$work/time.txt")"

head -c 200000 "$work/c100.txt" > "$work/small.txt"
"${sdd[@]}" prepare "$work/small.txt" --tokenizer gpt2 --out "$work/psmall" --overwrite --quiet > /dev/null
for r in $(seq "$rounds"); do
  for d in psmall p-gpt2-2; do
    start=$(date +%s.%N)
    "${sdd[@]}" train --data "$work/$d" --device cpu --steps 1 --eval-every 0 --eval-batches 1 --out "$work/run-$d" --overwrite --quiet > /dev/null
    end=$(date +%s.%N)
    echo "train --steps 1 on $d round $r: $(echo "$end - $start" | bc) s (process start to exit)"
  done
done
