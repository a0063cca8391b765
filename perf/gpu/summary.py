#!/usr/bin/env python3
"""One summary table of a run.sh results folder: step exit codes, the doctor verdict, sdd vs PyTorch for
every figure both measured (GEMM GFLOP/s, training-step tokens/s), sdd-only figures, and the training run."""
import json, os, sys


def load(path):
    return json.load(open(path)) if os.path.exists(path) else []


def last_line(path, prefix=""):
    if not os.path.exists(path):
        return "(no log)"
    lines = [l.strip() for l in open(path, errors="replace") if l.strip().startswith(prefix)]
    return lines[-1] if lines else "(nothing)"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "sdd-results"
    status = [l.split() for l in open(os.path.join(out, "status.txt")) if l.strip()]
    ours, theirs = load(os.path.join(out, "bench.json")), load(os.path.join(out, "torch.json"))
    print("=" * 112)
    print("sdd GPU kit summary")
    print("steps:   " + ", ".join(f"{n} {'ok' if rc == '0' else 'FAILED (exit ' + rc + ')'}" for n, rc in status))
    print("device:  " + (ours[0]["device"] if ours else "?") + (f"   vs   {theirs[0]['device']}" if theirs else ""))
    print("doctor:  " + last_line(os.path.join(out, "doctor.log"), ("All", "")))
    print("train:   " + last_line(os.path.join(out, "train.log"), "Done"))
    print()
    peer = {(r["name"], r["metric"]): r for r in theirs}
    print(f"{'figure':<64} {'sdd':>12} {'PyTorch':>12} {'sdd/PyTorch':>12}  unit")
    for r in ours:
        p = peer.get((r["name"], r["metric"]))
        if p is None and not r["name"].startswith("train-step/"):
            continue
        ratio = f"{r['value'] / p['value']:.3f}" if p and p["value"] else ""
        other = f"{p['value']:.2f}" if p else "-"
        print(f"{r['name'] + ' ' + r['metric']:<64} {r['value']:>12.2f} {other:>12} {ratio:>12}  {r['unit']}")
    rest = [r for r in ours if (r["name"], r["metric"]) not in peer and not r["name"].startswith("train-step/")]
    if rest:
        print()
        print(f"{'sdd only':<64} {'value':>12}  unit")
        for r in rest:
            print(f"{r['name'] + ' ' + r['metric']:<64} {r['value']:>12.2f}  {r['unit']}")
    print("=" * 112)


if __name__ == "__main__":
    main()
