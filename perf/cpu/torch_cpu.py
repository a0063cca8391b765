#!/usr/bin/python3
"""PyTorch CPU baseline for issue 6: a full training step (forward, cross-entropy, backward, global-norm
clipping, torch.optim.AdamW) of a preset with the definitions of sdd_reference.py, in float32.

Usage: /usr/bin/python3 torch_cpu.py PATH/TO/sdd_reference.py PRESET BATCH [STEPS] [WARMUP] [THREADS]
Prints the median seconds per step and tokens/s, and a line "TPS <preset> torch <tokens/s>".
"""
import argparse, importlib.util, statistics, sys, time
import torch

PRESETS = {  # (n_layer, n_head, d_model, seq_len), as ModelConfig.Preset; ffn_hidden = 8C/3 rounded up to 8
    "tiny": (2, 4, 64, 64),
    "shakespeare-cpu": (4, 4, 128, 64),
    "baby-gpt": (6, 6, 384, 256),
}


def load_reference(path):
    spec = importlib.util.spec_from_file_location("sdd_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # sets float64 as the default dtype; overridden below
    return module


def main():
    p = argparse.ArgumentParser()
    p.add_argument("reference")
    p.add_argument("preset", choices=PRESETS)
    p.add_argument("batch", type=int)
    p.add_argument("steps", type=int, nargs="?", default=30)
    p.add_argument("warmup", type=int, nargs="?", default=5)
    p.add_argument("threads", type=int, nargs="?", default=2)
    a = p.parse_args()
    ref = load_reference(a.reference)
    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(a.threads)
    L, NH, C, T = PRESETS[a.preset]
    cfg = ref.make_config(argparse.Namespace(vocab=65, d_model=C, n_layer=L, n_head=NH, n_kv_head=None,
                                             ffn_hidden=(8 * C + 23) // 24 * 8, seq_len=T,
                                             residual="post", linear="sdd-code"))
    gen = torch.Generator().manual_seed(1337)
    ps = ref.random_params(cfg, gen)
    assert all(t.dtype == torch.float32 for t in ps.values())
    params = list(ps.values())
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    times = []
    for i in range(a.warmup + a.steps):
        tokens = torch.randint(0, 65, (a.batch, T), generator=gen)
        targets = torch.randint(0, 65, (a.batch, T), generator=gen)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, _ = ref.loss_fn(ps, tokens, targets, cfg)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        float(loss)
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    tps = a.batch * T / med
    print(f"torch {torch.__version__} {a.preset} B={a.batch} T={T} threads={torch.get_num_threads()}: median "
          f"{med * 1e3:.2f} ms/step, {tps:.0f} tokens/s (min {min(times) * 1e3:.2f} ms, {a.steps} steps after "
          f"{a.warmup} warm-up, loss {float(loss):.3f})")
    print(f"TPS {a.preset} torch {tps:.0f}")


if __name__ == "__main__":
    sys.exit(main())
