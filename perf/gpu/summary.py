#!/usr/bin/env python3
"""One summary table of a run.sh results folder: step exit codes, the doctor verdict per device, each device's
figures side by side (cuda and opencl on the same GPU) with PyTorch where it measured the same figure (GEMM GFLOP/s,
training-step tokens/s), and the training run."""
import glob, json, os, sys


def load(path):
    return json.load(open(path)) if os.path.exists(path) else []


def last_line(path, prefix=""):
    if not os.path.exists(path):
        return "(no log)"
    lines = [l.strip() for l in open(path, errors="replace") if l.strip().startswith(prefix)]
    return lines[-1] if lines else "(nothing)"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "sdd-results"
    # "STEP RC [ELAPSED]": RC 0 ok, 124 out of its time, "skipped" when the deadline left no time to start it
    status = [l.split()[:2] for l in open(os.path.join(out, "status.txt")) if l.strip()]
    # bench-TAG.json per device, in run order (the first is the one PyTorch is compared with)
    order = [n[len("bench-"):] for n, _ in status if n.startswith("bench-")]
    benches = {tag: load(os.path.join(out, f"bench-{tag}.json")) for tag in order}
    benches.update({os.path.basename(p)[6:-5]: load(p) for p in glob.glob(os.path.join(out, "bench-*.json"))
                    if os.path.basename(p)[6:-5] not in benches})
    tags = list(benches)
    theirs = load(os.path.join(out, "torch.json"))
    print("=" * 120)
    print("sdd GPU kit summary")
    verdict = {"0": "ok", "124": "OUT OF TIME", "137": "OUT OF TIME", "skipped": "SKIPPED (deadline)", "missing": "NOT RUN (no ncu)"}
    print("steps:   " + ", ".join(f"{n} {verdict.get(rc, 'FAILED (exit ' + rc + ')')}" for n, rc in status))
    for tag in tags:
        rows = benches[tag]
        print(f"{tag + ':':<9}" + (rows[0]["device"] if rows else "?") + "   doctor: " +
              last_line(os.path.join(out, f"doctor-{tag}.log"), ("All", "")))
    if theirs:
        print(f"{'PyTorch:':<9}{theirs[0]['device']}")
    print("train:   " + last_line(os.path.join(out, "train.log"), "Done"))
    det = os.path.join(out, "determinism.log")
    if os.path.exists(det):
        for l in open(det, errors="replace"):
            if l.startswith("determinism:"):
                print(l.rstrip())
    print()
    peer = {(r["name"], r["metric"]): r for r in theirs}
    keys = []
    for tag in tags:
        for r in benches[tag]:
            if (r["name"], r["metric"]) not in keys:
                keys.append((r["name"], r["metric"]))
    values = {tag: {(r["name"], r["metric"]): r for r in benches[tag]} for tag in tags}
    head = f"{'figure':<56}" + "".join(f" {t:>12}" for t in tags) + f" {'PyTorch':>12} {'first/PyT':>10}  unit"
    print(head)
    for key in keys:
        cells = [values[t].get(key) for t in tags]
        unit = next(c["unit"] for c in cells if c)
        p = peer.get(key)
        ratio = f"{cells[0]['value'] / p['value']:.3f}" if p and p["value"] and cells[0] else ""
        print(f"{key[0] + ' ' + key[1]:<56}" + "".join(f" {c['value']:>12.2f}" if c else f" {'-':>12}" for c in cells)
              + (f" {p['value']:>12.2f}" if p else f" {'-':>12}") + f" {ratio:>10}  {unit}")
    print("=" * 120)


if __name__ == "__main__":
    main()
