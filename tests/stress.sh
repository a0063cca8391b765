#!/usr/bin/env bash
# Runs the test suite (or part of it) with every core saturated, to flush out results that depend on timing
# (issue 10 §6): a race that a quiet machine hides shows up when the OS preempts our threads at random.
#
#   bash tests/stress.sh                               # the whole suite 3 times in a row, built here first, under load
#   bash tests/stress.sh --filter "FullyQualifiedName~Gemm" --runs 10 --no-build --nice 0
#
# Options: --filter F (dotnet test filter), --runs N (repeat N times, stop at the first failure; default 3),
# --hogs K (busy loops per core, default 1), --nice N (the busy loops' niceness, default 5), --no-build (skip
# `dotnet build`), --no-memory-hog (skip the lowest-priority memory-bandwidth hog). Every core stays 100 %
# busy, and the loops take the CPU from our threads at random moments; at niceness 5 the scheduler gives a
# loop about a quarter of a core it shares with one runnable thread of ours (CFS weights 335 : 1024), and more
# while our threads wait on each other: top showed 45-88 % per loop in whole-suite runs. At --nice 0 the
# whole suite takes well over 20 minutes on two cores (ILGPU CPU-accelerator groups wait at every barrier for a
# preempted partner), so use it with a --filter. The loops and the hog are always killed on exit (EXIT/INT/TERM
# trap; started in the background, bash ignores SIGINT, so stop it with SIGTERM). Exit code: the first failing
# run's `dotnet test` code, else 0.
set -uo pipefail
cd "$(dirname "$0")/.."

filter=""
runs=3
hogs=1
nice=5
build=1
memhog=1
while [ $# -gt 0 ]; do
  case "$1" in
    --filter) filter="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --hogs) hogs="$2"; shift 2 ;;
    --nice) nice="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-memory-hog) memhog=0; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "stress.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$runs$hogs$nice" in *[!0-9]*|"") echo "stress.sh: --runs, --hogs and --nice take whole numbers (niceness 0-19)" >&2; exit 2 ;; esac
[ "$nice" -le 19 ] || { echo "stress.sh: --nice takes a niceness from 0 to 19" >&2; exit 2; }

pids=()
test_pid=""
kill_tree() {
  local child
  for child in $(pgrep -P "$1"); do kill_tree "$child"; done
  kill "$1" 2>/dev/null
}
stop_load() {
  # The test run too when we are interrupted (bash runs traps during `wait`, not during a foreground command).
  [ -n "$test_pid" ] && kill_tree "$test_pid"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  pids=()
}
trap stop_load EXIT
trap 'stop_load; exit 130' INT
trap 'stop_load; exit 143' TERM

if [ "$build" -eq 1 ]; then
  dotnet build SddIlgpu.sln -c Release || exit $?
fi

cores=$(nproc)
for _ in $(seq 1 $((cores * hogs))); do
  nice -n "$nice" bash -c 'while :; do :; done' &
  pids+=($!)
done
if [ "$memhog" -eq 1 ]; then
  # Clears a 64 MiB buffer over and over at the lowest priority: evicts our caches and eats memory bandwidth.
  nice -n 19 dd if=/dev/zero of=/dev/null bs=64M status=none &
  pids+=($!)
fi
echo "stress.sh: $((cores * hogs)) busy loops (nice $nice) on $cores cores$([ "$memhog" -eq 1 ] && echo ' + a memory hog'); load $(cut -d' ' -f1-3 /proc/loadavg)"

args=(tests/SddIlgpu.Tests -c Release --no-build)
[ -n "$filter" ] && args+=(--filter "$filter")
rc=0
for i in $(seq 1 "$runs"); do
  echo "stress.sh: run $i/$runs (load $(cut -d' ' -f1-3 /proc/loadavg))"
  dotnet test "${args[@]}" &
  test_pid=$!
  start=$SECONDS
  wait "$test_pid" || { rc=$?; echo "stress.sh: run $i/$runs FAILED (exit $rc) after $((SECONDS - start)) s"; break; }
  test_pid=""
  echo "stress.sh: run $i/$runs passed in $((SECONDS - start)) s (load $(cut -d' ' -f1-3 /proc/loadavg))"
done
[ "$rc" -eq 0 ] && echo "stress.sh: $runs/$runs runs passed"
exit "$rc"
