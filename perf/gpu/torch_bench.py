#!/usr/bin/env python3
"""PyTorch side of the GPU kit: the peer a user would pick instead of sdd, measured in the same run.

- train-step/<preset>: tokens/s of forward + backward + clip + torch.optim.AdamW of the SAME model
  (sdd_reference.py's definitions, residual post, linear sdd-code, vocab 65) at the SAME batch as `sdd bench`,
  FP32 eager with TF32 off, one loss.item() read-back per step like sdd's step.
- gemm/...: cuBLAS FP32 GFLOP/s via torch.matmul at the GEMM sizes and layouts `sdd bench` timed
  (read from its --json output with --ours; otherwise the same default list).
Prints (and with --json writes) records {name, device, metric, value, unit} in sdd bench's format.
"""
import argparse, json, math, os, statistics, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
import sdd_reference as ref  # sets float64 as the default dtype: reset below

PRESETS = {  # name: (n_layer, n_head, d_model, seq_len, batch), as ModelConfig.Preset and sdd bench
    "tiny": (2, 4, 64, 64, 8),
    "shakespeare-cpu": (4, 4, 128, 64, 12),
    "baby-gpt": (6, 6, 384, 256, 64),
}
VOCAB = 65


def ffn_hidden(c):
    return (8 * c + 23) // 24 * 8


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_seconds(fn, device, warmup, reps):
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train_step(preset, device, warmup, reps):
    L, NH, C, T, B = PRESETS[preset]
    ns = argparse.Namespace(vocab=VOCAB, d_model=C, n_layer=L, n_head=NH, n_kv_head=NH, ffn_hidden=ffn_hidden(C),
                            seq_len=T, residual="post", linear="sdd-code")
    c = ref.make_config(ns)
    gen = torch.Generator(device=device).manual_seed(1337)
    std = 1.0 / math.sqrt(2.5 * C)
    ps, decay, no_decay = {}, [], []
    for name, shape, kind in ref.param_shapes(c):
        if kind in ("matrix", "embedding"):
            t = torch.randn(shape, generator=gen, device=device) * std
        else:
            t = torch.ones(shape, device=device)
        ps[name] = t.requires_grad_(True)
        (decay if ref.decays(name, kind, True) else no_decay).append(ps[name])
    n_params = sum(p.numel() for p in ps.values())
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    tokens = torch.randint(0, VOCAB, (B, T), generator=gen, device=device)
    targets = torch.randint(0, VOCAB, (B, T), generator=gen, device=device)
    params = list(ps.values())

    def step():
        opt.zero_grad(set_to_none=True)
        loss, _ = ref.loss_fn(ps, tokens, targets, c)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    seconds = median_seconds(step, device, warmup, reps)
    flops_per_token = 6.0 * n_params + 12.0 * L * NH * (C // NH) * T
    return B * T / seconds, seconds, flops_per_token


def default_gemms():
    out = [("square", "NN", n, n, n) for n in (256, 512, 1024, 2048)]
    for preset in ("shakespeare-cpu", "baby-gpt"):
        L, NH, C, T, B = PRESETS[preset]
        n, F = B * T, ffn_hidden(C)
        out += [(f"{preset} attn-proj fwd", "NT", n, C, C), (f"{preset} up/gate fwd", "NT", n, F, C),
                (f"{preset} down fwd", "NT", n, C, F), (f"{preset} down dX", "NN", n, F, C),
                (f"{preset} up dW", "TN", F, C, n), (f"{preset} lm-head fwd", "NT", n, VOCAB, C)]
    return out


def gemms_from(path):
    """The gemm records of `sdd bench --json`: name 'gemm/LABEL LAYOUT MxNxK'."""
    out = []
    for r in json.load(open(path)):
        if r["name"].startswith("gemm/") and r["metric"] == "throughput":
            words = r["name"][len("gemm/"):].split(" ")
            m, n, k = (int(x) for x in words[-1].split("x"))
            out.append((" ".join(words[:-2]), words[-2], m, n, k))
    return out


def gemm_gflops(layout, m, n, k, device, warmup, reps):
    g = torch.Generator(device=device).manual_seed(1)
    a = torch.randn((k, m) if layout[0] == "T" else (m, k), generator=g, device=device, dtype=torch.float32)
    b = torch.randn((n, k) if layout[1] == "T" else (k, n), generator=g, device=device, dtype=torch.float32)
    a_op = a.t() if layout[0] == "T" else a
    b_op = b.t() if layout[1] == "T" else b
    c = torch.empty((m, n), device=device, dtype=torch.float32)
    ref64 = a_op.double() @ b_op.double()  # validate before timing, like sdd bench
    torch.matmul(a_op, b_op, out=c)
    err = ((c.double() - ref64).abs().max() / ref64.abs().max()).item()
    if err > 1e-4:
        raise RuntimeError(f"torch.matmul {layout} {m}x{n}x{k}: relative error {err:.3g} (is TF32 really off?)")
    seconds = median_seconds(lambda: torch.matmul(a_op, b_op, out=c), device, warmup, reps)
    return 2.0 * m * n * k / seconds / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--ours", help="sdd bench --json output: time the same GEMMs")
    ap.add_argument("--json", help="also write the records to this file")
    ap.add_argument("--presets", default="baby-gpt", help="comma-separated presets for the training step")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--no-gemm", action="store_true")
    a = ap.parse_args()

    torch.set_default_dtype(torch.float32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    if a.device.startswith("cuda"):
        if not torch.cuda.is_available():
            sys.exit("torch_bench.py: torch.cuda.is_available() is False (CPU-only torch or no driver); use --device cpu")
        if not hasattr(torch, "set_default_device"):
            sys.exit(f"torch_bench.py: torch {torch.__version__} lacks set_default_device; CUDA needs torch >= 2.0")
        torch.set_default_device(a.device)  # the reference builds masks and RoPE tables on the default device
        name = f"torch {torch.__version__} {torch.cuda.get_device_name(a.device)}"
    else:
        name = f"torch {torch.__version__} cpu ({torch.get_num_threads()} threads)"

    records = []

    def add(rec_name, metric, value, unit):
        r = {"name": rec_name, "device": name, "metric": metric, "value": value, "unit": unit}
        records.append(r)
        print(f"{rec_name:<50} {metric:<18} {value:12.2f}  {unit}", flush=True)

    for preset in [p for p in a.presets.split(",") if p]:
        tps, seconds, fpt = train_step(preset, a.device, a.warmup, a.reps)
        add(f"train-step/{preset}", "throughput", tps, "tokens/s")
        add(f"train-step/{preset}", "step time", seconds * 1e3, "ms")
        add(f"train-step/{preset}", "model GFLOP/s", fpt * tps / 1e9, "GFLOP/s")
    if not a.no_gemm:
        for label, layout, m, n, k in (gemms_from(a.ours) if a.ours and os.path.exists(a.ours) else default_gemms()):
            add(f"gemm/{label} {layout} {m}x{n}x{k}", "throughput", gemm_gflops(layout, m, n, k, a.device, a.warmup, a.reps), "GFLOP/s")
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(records, f, indent=2)
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
