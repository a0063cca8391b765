#!/usr/bin/env bash
# Builds the GPU run kit here (needs the .NET SDK): a self-contained linux-x64 `sdd`, run.sh, the PyTorch
# side-by-side (torch_bench.py + ../shared/reference/sdd_reference.py), summary.py, the golden fixtures and
# tiny Shakespeare, packed as perf/gpu/dist/sdd-gpu-kit.tar.gz (git-ignored; must stay under 64 MiB).
# There: tar xzf sdd-gpu-kit.tar.gz && sdd-gpu-kit/run.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
shared="${SDD_SHARED:-$repo/../shared}"
dist="$here/dist"
kit="$dist/sdd-gpu-kit"
limit=$((64 * 1024 * 1024))

for f in "$shared/reference/sdd_reference.py" "$shared/golden" "$shared/data/tinyshakespeare.txt"; do
  [[ -e "$f" ]] || { echo "pack.sh: $f is missing (set SDD_SHARED to the shared folder)" >&2; exit 1; }
done

rm -rf "$kit" "$dist/sdd-gpu-kit.tar.gz"
mkdir -p "$kit/data"
dotnet publish "$repo/src/SddIlgpu.Cli/SddIlgpu.Cli.csproj" -c Release -r linux-x64 --self-contained \
  -p:DebugType=none -p:GenerateDocumentationFile=false -o "$kit/bin" --nologo -v quiet
cp "$here/run.sh" "$here/torch_bench.py" "$here/summary.py" "$shared/reference/sdd_reference.py" "$kit/"
cp -r "$shared/golden" "$kit/golden"
cp "$shared/data/tinyshakespeare.txt" "$kit/data/"
chmod +x "$kit/run.sh" "$kit/bin/sdd"
git -C "$repo" describe --always --dirty > "$kit/VERSION" 2>/dev/null || echo unknown > "$kit/VERSION"

tar -C "$dist" -czf "$dist/sdd-gpu-kit.tar.gz" sdd-gpu-kit
size=$(stat -c %s "$dist/sdd-gpu-kit.tar.gz")
echo "pack.sh: $dist/sdd-gpu-kit.tar.gz, $((size / 1024 / 1024)) MiB ($(cat "$kit/VERSION"))"
if (( size >= limit )); then
  echo "pack.sh: the kit is $size bytes, over the 64 MiB limit" >&2
  exit 1
fi
echo "Copy it to the GPU machine and run:  tar xzf sdd-gpu-kit.tar.gz && sdd-gpu-kit/run.sh"
