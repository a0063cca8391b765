#!/usr/bin/python3
"""PyTorch anchor for issue 14 item 2: causal attention forward + backward at a preset's shape, float32.

Times PyTorch's composed attention (q·kᵀ/√HS, causal mask, softmax, ·v, then backward of Σ ctx·dCtx) and, when
this torch has it, F.scaled_dot_product_attention(is_causal=True), in alternating rounds; prints the medians.
Compare with `SddIlgpu.Perf.dll attention PRESET BATCH` (same shape, 2 threads).

Usage: /usr/bin/python3 torch_attention.py [PRESET] [BATCH] [ROUNDS] [THREADS]
Run it on OpenBLAS as perf/cpu/compare.sh does (Debian's torch otherwise links the reference BLAS):
  OMP_NUM_THREADS=2 LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 torch_attention.py baby-gpt 4
"""
import argparse, statistics, time
import torch
import torch.nn.functional as F

PRESETS = {  # (n_head, head_size, seq_len), as ModelConfig.Preset (n_kv_head = n_head)
    "tiny": (4, 16, 64),
    "shakespeare-cpu": (4, 32, 64),
    "baby-gpt": (6, 64, 256),
}
CALLS_PER_ROUND = 10


def composed(q, k, v):
    T, HS = q.shape[-2], q.shape[-1]
    s = (q @ k.transpose(-2, -1)) / HS ** 0.5
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    p = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1)
    return p @ v


def fused(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def time_round(fn, q, k, v, dctx):
    t0 = time.perf_counter()
    for _ in range(CALLS_PER_ROUND):
        for t in (q, k, v):
            t.grad = None
        out = fn(q, k, v)
        out.backward(dctx)
    return (time.perf_counter() - t0) / CALLS_PER_ROUND * 1e3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("preset", nargs="?", default="baby-gpt", choices=PRESETS)
    p.add_argument("batch", type=int, nargs="?", default=4)
    p.add_argument("rounds", type=int, nargs="?", default=9)
    p.add_argument("threads", type=int, nargs="?", default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    NH, HS, T = PRESETS[a.preset]
    gen = torch.Generator().manual_seed(7)
    q, k, v = (torch.rand(a.batch, NH, T, HS, generator=gen, dtype=torch.float32).requires_grad_() for _ in range(3))
    dctx = torch.rand(a.batch, NH, T, HS, generator=gen, dtype=torch.float32)
    variants = [("composed", composed)]
    if hasattr(F, "scaled_dot_product_attention"):
        variants.append(("scaled_dot_product_attention", fused))
    else:
        print(f"torch {torch.__version__} has no F.scaled_dot_product_attention: composed attention only")
    for _, fn in variants:  # warm-up
        time_round(fn, q, k, v, dctx)
    times = {name: [] for name, _ in variants}
    for r in range(a.rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for name, fn in order:
            times[name].append(time_round(fn, q, k, v, dctx))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, {a.preset}: B={a.batch} T={T} NH={NH} HS={HS}")
    for name, ts in times.items():
        print(f"{name:<30} fwd+bwd median {statistics.median(ts):.3f} ms")


if __name__ == "__main__":
    main()
