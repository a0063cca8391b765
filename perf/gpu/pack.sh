#!/usr/bin/env bash
# Builds the GPU run kit here (needs the .NET SDK): a self-contained linux-x64 `sdd`, run.sh, the PyTorch
# side-by-side (torch_bench.py + ../shared/reference/sdd_reference.py), summary.py, the golden fixtures,
# tiny Shakespeare, an OpenCL ICD loader with an ICD file for NVIDIA's driver, and the kernel report (kernels.txt),
# packed as perf/gpu/dist/sdd-gpu-kit.tar.gz (git-ignored; must stay under 64 MiB).
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
cp "$here/run.sh" "$here/determinism.sh" "$here/torch_bench.py" "$here/summary.py" "$shared/reference/sdd_reference.py" "$kit/"
cp -r "$shared/golden" "$kit/golden"
cp "$shared/data/tinyshakespeare.txt" "$kit/data/"

# OpenCL through the NVIDIA driver: GPU machines often have the driver's libnvidia-opencl.so.1 but no ICD loader
# and no /etc/OpenCL/vendors entry. The kit carries Debian's ICD loader (ocl-icd-libopencl1, fetched with
# `apt-get download`, not installed) and an ICD file naming the driver's library; run.sh points OCL_ICD_VENDORS
# at it and puts lib/ on LD_LIBRARY_PATH only when the machine has no loader of its own.
mkdir -p "$kit/lib" "$kit/icd"
echo "libnvidia-opencl.so.1" > "$kit/icd/nvidia.icd"
icd_tmp=$(mktemp -d)
if (cd "$icd_tmp" && apt-get download -qq ocl-icd-libopencl1 >/dev/null 2>&1) && dpkg -x "$icd_tmp"/ocl-icd-libopencl1_*.deb "$icd_tmp/x"; then
  cp -P "$icd_tmp"/x/usr/lib/x86_64-linux-gnu/libOpenCL.so.1* "$kit/lib/"
else
  echo "pack.sh: warning: could not fetch ocl-icd-libopencl1; opencl on the GPU machine needs its own ICD loader" >&2
fi
rm -rf "$icd_tmp"

# The kernel report (ptxas resources, occupancy, launch geometry, GEMM loop mix): made here, where ptxas is.
if ptxas_dir=$("$repo/.ci/fetch-ptxas.sh"); then
  PATH="$ptxas_dir:$PATH" dotnet run --project "$repo/perf/SddIlgpu.Perf" -c Release -- kernels > "$kit/kernels.txt" \
    || echo "pack.sh: warning: the kernel report failed; the kit carries none" >&2
else
  echo "(no ptxas here when the kit was packed: no kernel report)" > "$kit/kernels.txt"
fi
chmod +x "$kit/run.sh" "$kit/determinism.sh" "$kit/bin/sdd"
git -C "$repo" describe --always --dirty > "$kit/VERSION" 2>/dev/null || echo unknown > "$kit/VERSION"

tar -C "$dist" -czf "$dist/sdd-gpu-kit.tar.gz" sdd-gpu-kit
size=$(stat -c %s "$dist/sdd-gpu-kit.tar.gz")
echo "pack.sh: $dist/sdd-gpu-kit.tar.gz, $((size / 1024 / 1024)) MiB ($(cat "$kit/VERSION"))"
if (( size >= limit )); then
  echo "pack.sh: the kit is $size bytes, over the 64 MiB limit" >&2
  exit 1
fi
echo "Copy it to the GPU machine and run:  tar xzf sdd-gpu-kit.tar.gz && sdd-gpu-kit/run.sh"
