#!/usr/bin/env bash
# Runs the libtorch 2.10 anchor (perf/libtorch, TorchSharp-cpu 0.107) on Debian 12.
#
# libtorch 2.10's TorchSharp glue (libLibTorchSharp.so) needs GLIBCXX_3.4.32 (std::ios_base_library_init, GCC 13);
# Debian 12's libstdc++6 stops at GLIBCXX_3.4.30. No Debian 12 suite (nor bookworm-backports) ships a newer
# libstdc++, and trixie's libstdc++6 14.2 in turn needs GLIBC_2.38 (__isoc23_strtoul) where Debian 12 has 2.36.
# So this script runs the benchmark process, and only it, on Debian 13 (trixie)'s C and C++ runtime:
#   1. once: apt-get download libc6, libgcc-s1, libstdc++6 from trixie with a temporary sources list (the
#      machine's apt configuration is not touched) and dpkg-deb -x them into $SDD_PERF_CACHE (default
#      ~/.cache/sdd-perf/trixie-runtime); the versions are written to VERSIONS there;
#   2. build perf/libtorch (Release) unless --no-build, and make a copy of its apphost whose ELF interpreter is
#      trixie's ld-linux-x86-64.so.2 (patchelf; the copy lives next to the original so it finds the app);
#   3. exec that copy with LD_LIBRARY_PATH=<runtime> (so libc, libstdc++ and libgcc_s come from trixie),
#      OMP_NUM_THREADS=2 unless set. Everything else (the .NET runtime, ICU) is Debian 12's, which runs on the
#      newer glibc. Nothing downloaded is committed; delete the cache folder to start over.
#
# Usage: perf/libtorch/run.sh [--no-build] prepare | step PRESET BATCH [STEPS] [WARMUP] | verify FILE
#                             | attention [B T NH HS] | gemm [MxNxK ...]   (see perf/libtorch/Program.cs)
# Needs: dotnet, apt-get, dpkg-deb, patchelf (apt-get install patchelf).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${SDD_PERF_CACHE:-$HOME/.cache/sdd-perf}"
rt="$cache/trixie-runtime"
lib="$rt/usr/lib/x86_64-linux-gnu"
build=1
if [[ "${1:-}" == "--no-build" ]]; then build=0; shift; fi
die() { echo "perf/libtorch/run.sh: $*" >&2; exit 2; }

[[ "$(uname -m)" == x86_64 ]] || die "only x86_64 Linux is supported (libtorch-cpu-linux-x64)."
for tool in dotnet apt-get dpkg-deb patchelf; do
  command -v "$tool" >/dev/null || die "'$tool' is not installed; install it (patchelf: apt-get install patchelf)."
done

fetch_runtime() {
  local work
  mkdir -p "$cache" 2>/dev/null && [[ -w "$cache" ]] || die "cannot write the cache folder '$cache'; set SDD_PERF_CACHE to a writable folder."
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$work/root"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" >"$work/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$work/lists"
              -o "Dir::Cache=$work/cache" -o "Dir::State::status=/dev/null" -o "APT::Sandbox::User=$(id -un)" -qq)
  echo "# fetching Debian trixie's libc6, libgcc-s1, libstdc++6 into $rt (once)" >&2
  apt-get "${opts[@]}" update || die "apt-get update of Debian trixie failed (no network to the Debian archive?)."
  (cd "$work/debs" && apt-get "${opts[@]}" download libc6 libgcc-s1 libstdc++6) || die "apt-get download from trixie failed."
  for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
    dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb" >>"$work/root/VERSIONS"
  done
  [[ -x "$work/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ]] || die "trixie's libc6 has no ld-linux-x86-64.so.2 where expected."
  rm -rf "$rt.tmp" && mv "$work/root" "$rt.tmp" && rm -rf "$rt" && mv "$rt.tmp" "$rt"
}
[[ -f "$rt/VERSIONS" && -x "$lib/ld-linux-x86-64.so.2" ]] || fetch_runtime

out="$here/bin/Release/net10.0"
if (( build )); then
  dotnet build "$here/LibtorchBench.csproj" -c Release -v q -nologo >/dev/null || die "dotnet build of perf/libtorch failed (run it by hand to see why)."
fi
[[ -x "$out/LibtorchBench" ]] || die "$out/LibtorchBench is missing; run without --no-build first."
host="$out/LibtorchBench.trixie"
if [[ ! -x "$host" || "$out/LibtorchBench" -nt "$host" ]]; then
  patchelf --set-interpreter "$lib/ld-linux-x86-64.so.2" --output "$host.tmp" "$out/LibtorchBench" && mv "$host.tmp" "$host"
fi
if [[ "${1:-}" == "prepare" ]]; then
  echo "# libtorch runtime ready (trixie: $(paste -sd, "$rt/VERSIONS"))"
  exit 0
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
LD_LIBRARY_PATH="$lib" exec "$host" "$@"
