#!/usr/bin/env bash
# Fetch NVIDIA's ptxas, nvdisasm and cuobjdump from CUDA 11.8 (Debian bookworm's non-free
# nvidia-cuda-toolkit packages) without installing anything: a private apt configuration under a temp
# dir adds the non-free component to the URIs of /etc/apt/sources.list.d/debian.sources, `apt-get
# download` fetches the .debs, `dpkg -x` unpacks them into a cache folder reused between runs. The tools
# need only libc. Prints the bin folder (holding ptxas) on stdout; warnings go to stderr.
# Exit status: 0 when ptxas is available, 1 (with a warning) when it could not be fetched.
# Usage: .ci/fetch-ptxas.sh [cache-dir]   (default ${SDD_CI_CACHE:-~/.cache/sdd-ci}/cuda-11.8)
set -euo pipefail

cache=${1:-${SDD_CI_CACHE:-$HOME/.cache/sdd-ci}/cuda-11.8}
bin="$cache/usr/bin"
warn() { echo "warning: $*; the PTX assembly checks will be ignored" >&2; }

if [ -x "$bin/ptxas" ] && "$bin/ptxas" --version >/dev/null 2>&1; then
  echo "$bin"; exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
  warn "apt-get/dpkg not found, cannot fetch ptxas"; exit 1
fi
sources=/etc/apt/sources.list.d/debian.sources
if [ ! -r "$sources" ]; then
  warn "$sources not found, cannot locate a Debian mirror for ptxas"; exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/state/lists/partial" "$tmp/cache/archives/partial" "$tmp/etc/sources.list.d" "$tmp/debs"
# Same stanzas as the system's sources (URIs, Suites, Signed-By), with the non-free component only.
sed -e 's/^Components:.*/Components: non-free/' "$sources" > "$tmp/etc/sources.list.d/non-free.sources"
: > "$tmp/etc/sources.list"
: > "$tmp/state/status"
apt_opts=(
  -o "Dir::Etc::SourceList=$tmp/etc/sources.list"
  -o "Dir::Etc::SourceParts=$tmp/etc/sources.list.d"
  -o "Dir::State=$tmp/state" -o "Dir::State::status=$tmp/state/status"
  -o "Dir::Cache=$tmp/cache" -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=$(id -un)"
)
if ! apt-get "${apt_opts[@]}" -qq update >"$tmp/log" 2>&1; then
  warn "apt-get update of the non-free component failed ($(tail -n 1 "$tmp/log"))"; exit 1
fi
# ptxas and nvdisasm live in nvidia-cuda-toolkit; cuobjdump in nvidia-cuda-toolkit too (checked with dpkg -c).
pkgs=(nvidia-cuda-toolkit)
if ! (cd "$tmp/debs" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}" >"$tmp/log" 2>&1); then
  warn "apt-get download ${pkgs[*]} failed ($(tail -n 1 "$tmp/log"))"; exit 1
fi
mkdir -p "$cache.partial"
for deb in "$tmp"/debs/*.deb; do dpkg -x "$deb" "$cache.partial"; done
rm -rf "$cache" && mv "$cache.partial" "$cache"
if ! "$bin/ptxas" --version >/dev/null 2>&1; then
  warn "the fetched package holds no working ptxas in $bin"; exit 1
fi
echo "$bin"
