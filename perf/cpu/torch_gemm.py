#!/usr/bin/python3
"""PyTorch anchor for the weight-gradient GEMM of issue 14: dW (Out, In) += dYᵀ (Out, n)·X (n, In), timed as
torch.addmm(W, dY.t(), X, out=W) (accumulate in place, as autograd adds into .grad) at the shapes of
`SddIlgpu.Perf.dll gemm wgrad` (CpuBench.WeightGradShapes), dY read through its real row stride (a column slice
of the fused (n, 2F) up/gate buffer for up and gate). float32, 2 threads by default, medians.

Usage: /usr/bin/python3 perf/cpu/torch_gemm.py [--threads 2] [--samples 15] [SHAPE ...]
SHAPE is "MxNxK" or "MxNxK:lda" (M = Out, N = In, K = n = B·T). Prints the BLAS library torch loaded (from
/proc/self/maps), then one line per shape: median and best GFLOP/s of samples of ~20 ms (2·M·N·K per call), and
of the fastest single call (robust to a loaded machine), as `SddIlgpu.Perf.dll gemm wgrad`.
"""
import argparse, statistics, time
import torch

# (M = Out, N = In, K = B·T, lda): the weight gradients of tiny (B=8, T=64), shakespeare-cpu (B=12, T=64), baby-gpt (B=4, T=256).
SHAPES = [
    (64, 64, 512, 64), (176, 64, 512, 352), (64, 176, 512, 64), (65, 64, 512, 65),
    (128, 128, 768, 128), (344, 128, 768, 688), (128, 344, 768, 128), (65, 128, 768, 65),
    (384, 384, 1024, 384), (1024, 384, 1024, 2048), (384, 1024, 1024, 384), (65, 384, 1024, 65),
]


def blas_libraries():
    """Shared objects mapped into this process whose names say BLAS/LAPACK (what torch's matmul really calls)."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = path.rsplit("/", 1)[-1].lower()
            if any(s in name for s in ("blas", "lapack", "mkl", "blis", "atlas")):
                libs.add(path)
    return sorted(libs)


def parse(shape):
    dims, _, lda = shape.partition(":")
    m, n, k = (int(x) for x in dims.split("x"))
    return m, n, k, int(lda) if lda else m


def time_shape(m, n, k, lda, samples):
    g = torch.Generator().manual_seed(1)
    dy_full = torch.rand(k, lda, generator=g) - 0.5
    dy = dy_full[:, :m]  # (n, Out) with row stride lda, as the model's dY
    x = torch.rand(k, n, generator=g) - 0.5
    w = torch.zeros(m, n)
    flops = 2.0 * m * n * k
    calls = max(1, int(20e-3 * 100e9 / flops))
    for _ in range(3):
        for _ in range(calls):
            torch.addmm(w, dy.t(), x, out=w)
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(calls):
            torch.addmm(w, dy.t(), x, out=w)
        times.append((time.perf_counter() - t0) / calls)
    single = []  # the fastest single call of ~100 ms of them: on a loaded machine, the calls that ran unpreempted
    for _ in range(min(2000, max(20, int(0.1 * 100e9 / flops)))):
        t0 = time.perf_counter()
        torch.addmm(w, dy.t(), x, out=w)
        single.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), min(single), flops


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--samples", type=int, default=15)
    p.add_argument("shapes", nargs="*")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    shapes = [parse(s) for s in a.shapes] if a.shapes else SHAPES
    torch.zeros(8, 8) @ torch.zeros(8, 8)  # loads the BLAS before /proc/self/maps is read
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, BLAS loaded: {', '.join(blas_libraries()) or 'none found'}")
    for m, n, k, lda in shapes:
        med, best, single, flops = time_shape(m, n, k, lda, a.samples)
        print(f"torch dYtX {m}x{n}x{k} lda={lda:<5} median {med * 1e6:9.1f} us {flops / med / 1e9:6.1f} GFLOP/s  "
              f"best {flops / best / 1e9:6.1f}  best single call {flops / single / 1e9:6.1f}")


if __name__ == "__main__":
    main()
