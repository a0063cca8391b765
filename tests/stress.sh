#!/usr/bin/env bash
# Runs the test suite (or part of it) with every core saturated, to flush out results that depend on timing
# (issue 10 §6): a race that a quiet machine hides shows up when the OS preempts our threads at random.
#
#   bash tests/stress.sh                               # the whole suite, built here first, under load
#   bash tests/stress.sh --filter "FullyQualifiedName~Gemm" --runs 10 --no-build
#
# Options: --filter F (dotnet test filter), --runs N (repeat N times, stop at the first failure), --hogs K
# (busy loops per core, default 2), --no-build (skip `dotnet build`), --no-memory-hog (skip the low-priority
# memory-bandwidth hog). The busy loops are shell spins at our own priority, so our threads compete
# with them; they and the hog are always killed on exit (EXIT/INT/TERM trap). Exit code: the first failing
# run's `dotnet test` code, else 0.
set -uo pipefail
cd "$(dirname "$0")/.."

filter=""
runs=1
hogs=2
build=1
memhog=1
while [ $# -gt 0 ]; do
  case "$1" in
    --filter) filter="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --hogs) hogs="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-memory-hog) memhog=0; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "stress.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$runs$hogs" in *[!0-9]*|"") echo "stress.sh: --runs and --hogs take whole numbers" >&2; exit 2 ;; esac

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
  bash -c 'while :; do :; done' &
  pids+=($!)
done
if [ "$memhog" -eq 1 ]; then
  # Clears a 64 MiB buffer over and over at the lowest priority: evicts our caches and eats memory bandwidth.
  nice -n 19 dd if=/dev/zero of=/dev/null bs=64M status=none &
  pids+=($!)
fi
echo "stress.sh: $((cores * hogs)) busy loops on $cores cores$([ "$memhog" -eq 1 ] && echo ' + a memory hog'); load $(cut -d' ' -f1-3 /proc/loadavg)"

args=(tests/SddIlgpu.Tests -c Release --no-build)
[ -n "$filter" ] && args+=(--filter "$filter")
rc=0
for i in $(seq 1 "$runs"); do
  echo "stress.sh: run $i/$runs (load $(cut -d' ' -f1-3 /proc/loadavg))"
  dotnet test "${args[@]}" &
  test_pid=$!
  wait "$test_pid" || { rc=$?; echo "stress.sh: run $i/$runs FAILED (exit $rc)"; break; }
  test_pid=""
done
[ "$rc" -eq 0 ] && echo "stress.sh: $runs/$runs runs passed"
exit "$rc"
