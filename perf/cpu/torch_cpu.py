#!/usr/bin/python3
"""PyTorch CPU anchor (issues 6 and 14): a full training step (forward, cross-entropy, backward, global-norm
clipping, torch.optim.AdamW) of a preset with the definitions of sdd_reference.py, in float32.

Usage: /usr/bin/python3 torch_cpu.py PATH/TO/sdd_reference.py PRESET BATCH [STEPS] [WARMUP] [THREADS]
           [--allow-reference-blas] [--which-blas] [--export FILE [--export-steps N]]
Prints which BLAS library provides the sgemm_ that torch calls (resolved from the loaded libtorch_cpu, then
dladdr), the median seconds per step and tokens/s, and a line "TPS <preset> torch <tokens/s>". Refuses to run
on the netlib reference BLAS (Debian's libblas3, ~6 GFLOP/s) unless --allow-reference-blas is given: select
OpenBLAS for the command, e.g. LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp.

--export FILE writes the initial weights (param.<name>), one batch (input.tokens, input.targets, as float) and
the losses of --export-steps (default 4) training steps on that batch, exactly the timed step, to a safetensors
file (metadata: config, hyper-parameters, losses as repr floats); perf/libtorch `verify FILE` replays it.
"""
import argparse, ctypes, importlib.util, json, os, statistics, sys, time
import torch

PRESETS = {  # (n_layer, n_head, d_model, seq_len), as ModelConfig.Preset; ffn_hidden = 8C/3 rounded up to 8
    "tiny": (2, 4, 64, 64),
    "shakespeare-cpu": (4, 4, 128, 64),
    "baby-gpt": (6, 6, 384, 256),
}
HYPER = dict(lr=1e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, clip=1.0)  # as perf/libtorch Bench.cs
SEED = 1337


def load_reference(path):
    spec = importlib.util.spec_from_file_location("sdd_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # sets float64 as the default dtype; overridden below
    return module


class DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def blas_in_use():
    """(kind, path, detail) of the library whose sgemm_ libtorch_cpu binds to; kind is openblas, reference,
    mkl, blis or unknown. Resolved as the dynamic linker does for libtorch_cpu: dlsym on its handle (global
    scope, then its own dependencies in load order), dladdr on the address."""
    torch.ones(2, 2) @ torch.ones(2, 2)  # BLAS is bound lazily on some builds: make sure it is in use
    maps = [line.split()[-1] for line in open("/proc/self/maps") if "/" in line]
    lib = next((p for p in maps if "libtorch_cpu" in os.path.basename(p)), None)
    if lib is None:
        return "unknown", "?", "libtorch_cpu is not mapped"
    handle = ctypes.CDLL(lib, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    addr = ctypes.cast(handle.sgemm_, ctypes.c_void_p).value
    info = DlInfo()
    if not ctypes.CDLL(None).dladdr(ctypes.c_void_p(addr), ctypes.byref(info)):
        return "unknown", "?", "dladdr failed"
    path = os.path.realpath(info.dli_fname.decode())
    name = os.path.basename(path)
    blas_maps = sorted({os.path.realpath(p) for p in maps if any(s in os.path.basename(p) for s in
                                                                   ("blas", "lapack", "mkl", "blis", "omp"))})
    detail = "mapped: " + " ".join(blas_maps)
    if "openblas" in name or "openblas" in os.path.basename(os.path.dirname(path)):  # Debian: openblas-*/libblas.so.3
        core = next((q for q in blas_maps if os.path.basename(q).startswith("libopenblas")), path)
        ob = ctypes.CDLL(core)
        ob.openblas_get_config.restype = ob.openblas_get_corename.restype = ctypes.c_char_p
        detail = (f"{ob.openblas_get_config().decode().strip()}, core {ob.openblas_get_corename().decode()}, "
                  f"{ob.openblas_get_num_threads()} threads; " + detail)
        return "openblas", path, detail
    if "mkl" in name:
        return "mkl", path, detail
    if "blis" in name:
        return "blis", path, detail
    if name.startswith("libblas.so") and os.path.basename(os.path.dirname(path)) == "blas":
        return "reference", path, detail  # Debian's libblas3: /usr/lib/<triplet>/blas/libblas.so.3.x
    return "unknown", path, detail


def train_step(ref, cfg, ps, params, opt, tokens, targets):
    """The timed step: forward, mean cross-entropy, backward, global-norm clip at 1.0, AdamW. Returns the loss."""
    opt.zero_grad(set_to_none=True)
    loss, _ = ref.loss_fn(ps, tokens, targets, cfg)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, HYPER["clip"])
    opt.step()
    return float(loss)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("reference")
    p.add_argument("preset", choices=PRESETS)
    p.add_argument("batch", type=int)
    p.add_argument("steps", type=int, nargs="?", default=30)
    p.add_argument("warmup", type=int, nargs="?", default=5)
    p.add_argument("threads", type=int, nargs="?", default=2)
    p.add_argument("--allow-reference-blas", action="store_true",
                   help="time even on the netlib reference BLAS (not a fair anchor)")
    p.add_argument("--which-blas", action="store_true", help="print the BLAS line (and refuse as usual), then exit")
    p.add_argument("--export", metavar="FILE", help="write weights, one batch and the losses of --export-steps steps")
    p.add_argument("--export-steps", type=int, default=4)
    a = p.parse_args()
    kind, path, detail = blas_in_use()
    print(f"# torch {torch.__version__} BLAS: {kind} {path} ({detail})")
    if kind == "reference" and not a.allow_reference_blas:
        print(f"torch_cpu.py: torch is using the netlib reference BLAS ({path}), not a fair anchor; run it with "
              "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp (apt-get install libopenblas0-openmp) "
              "or pass --allow-reference-blas.", file=sys.stderr)
        return 2
    if a.which_blas:
        return 0
    ref = load_reference(a.reference)
    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(a.threads)
    L, NH, C, T = PRESETS[a.preset]
    cfg = ref.make_config(argparse.Namespace(vocab=65, d_model=C, n_layer=L, n_head=NH, n_kv_head=None,
                                             ffn_hidden=(8 * C + 23) // 24 * 8, seq_len=T,
                                             residual="post", linear="sdd-code"))
    gen = torch.Generator().manual_seed(SEED)
    ps = ref.random_params(cfg, gen)
    assert all(t.dtype == torch.float32 for t in ps.values())
    params = list(ps.values())
    n_params = sum(t.numel() for t in params)
    opt = torch.optim.AdamW(params, lr=HYPER["lr"], betas=(HYPER["beta1"], HYPER["beta2"]), eps=HYPER["eps"],
                            weight_decay=HYPER["weight_decay"])
    if a.export:
        return export(a, ref, cfg, ps, params, opt, gen, n_params)
    times = []
    for i in range(a.warmup + a.steps):
        tokens = torch.randint(0, 65, (a.batch, T), generator=gen)
        targets = torch.randint(0, 65, (a.batch, T), generator=gen)
        t0 = time.perf_counter()
        loss = train_step(ref, cfg, ps, params, opt, tokens, targets)
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    tps = a.batch * T / med
    print(f"torch {torch.__version__} {a.preset} B={a.batch} T={T} threads={torch.get_num_threads()} "
          f"params={n_params}: median {med * 1e3:.2f} ms/step, {tps:.0f} tokens/s (min {min(times) * 1e3:.2f} ms, "
          f"{a.steps} steps after {a.warmup} warm-up, loss {loss:.3f})")
    print(f"TPS {a.preset} torch {tps:.0f}")
    return 0


def export(a, ref, cfg, ps, params, opt, gen, n_params):
    T = cfg["seq_len"]
    tensors = {"param." + n: t.detach().clone() for n, t in ps.items()}
    tokens = torch.randint(0, 65, (a.batch, T), generator=gen)
    targets = torch.randint(0, 65, (a.batch, T), generator=gen)
    tensors["input.tokens"] = tokens.to(torch.float32)  # small integers, exact in float32
    tensors["input.targets"] = targets.to(torch.float32)
    losses = [train_step(ref, cfg, ps, params, opt, tokens, targets) for _ in range(a.export_steps)]
    meta = dict(config=json.dumps(cfg), preset=a.preset, batch=a.batch, params=n_params, hyper=json.dumps(HYPER),
                losses=json.dumps(losses), torch=torch.__version__)
    tmp = a.export + ".tmp"
    ref.save_safetensors(tmp, tensors, meta)
    os.replace(tmp, a.export)
    print(f"torch {torch.__version__} {a.preset} B={a.batch} params={n_params}: losses of {a.export_steps} steps "
          + " ".join(f"{x:.7g}" for x in losses) + f" -> {a.export}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
