#!/usr/bin/env python3
"""Summarises bench/reference-parity.sh results: per recipe, both implementations' test top-1
and many/medium/few accuracy as mean ± std over seeds, the difference, a Welch t-test on top-1,
and wall time per epoch.

    python3 bench/parity_report.py RESULTS_DIR OUT_MARKDOWN

RESULTS_DIR holds `<recipe>/<impl>-seed<N>.json` (impl: reference or repro), each with top1,
per_class, train_counts and wall_s_per_epoch. Groups: many > 100 training images, few < 20
(repro's defaults, the usual CIFAR-LT split). Both test sets are balanced, so a group's accuracy
is the mean of its classes'.
"""
import glob
import json
import os
import statistics
import sys

from scipy import stats

IMPLS = ("reference", "repro")


def groups(result):
    acc, counts = result["per_class"], result["train_counts"]
    pick = {
        "many": [a for a, n in zip(acc, counts) if n > 100],
        "medium": [a for a, n in zip(acc, counts) if 20 <= n <= 100],
        "few": [a for a, n in zip(acc, counts) if n < 20],
    }
    return {k: (sum(v) / len(v) if v else None) for k, v in pick.items()}


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def recipe_table(name, folder):
    runs = {impl: [json.load(open(p)) for p in sorted(glob.glob(os.path.join(folder, f"{impl}-seed*.json")))]
            for impl in IMPLS}
    lines = [f"### {name}", ""]
    seeds = {impl: [r["seed"] for r in runs[impl]] for impl in IMPLS}
    epochs = {r["epochs"] for impl in IMPLS for r in runs[impl]}
    lines.append(f"Epochs: {', '.join(map(str, sorted(epochs)))}; seeds: reference {seeds['reference']}, "
                 f"repro {seeds['repro']}.")
    lines.append("")
    lines.append("| metric | reference | repro | Δ (repro − reference) |")
    lines.append("|---|---|---|---|")
    columns = {impl: [dict(top1=r["top1"], **groups(r)) for r in runs[impl]] for impl in IMPLS}
    for metric in ("top1", "many", "medium", "few"):
        vals = {impl: [c[metric] for c in columns[impl]] for impl in IMPLS}
        ref = [v for v in vals["reference"] if v is not None]
        ours = [v for v in vals["repro"] if v is not None]
        diff = f"{statistics.mean(ours) - statistics.mean(ref):+.2f}" if ref and ours else "–"
        lines.append(f"| {metric} | {mean_std(vals['reference'])} | {mean_std(vals['repro'])} | {diff} |")
    wall = {impl: [r["wall_s_per_epoch"] for r in runs[impl]] for impl in IMPLS}
    lines.append(f"| wall s/epoch | {mean_std(wall['reference'])} | {mean_std(wall['repro'])} | |")
    lines.append("")
    top1 = {impl: [c["top1"] for c in columns[impl]] for impl in IMPLS}
    if min(len(top1["reference"]), len(top1["repro"])) >= 2:
        t = stats.ttest_ind(top1["repro"], top1["reference"], equal_var=False)
        delta = statistics.mean(top1["repro"]) - statistics.mean(top1["reference"])
        verdict = "within noise" if t.pvalue >= 0.05 and abs(delta) <= 1.5 else "NOT at parity"
        low, high = t.confidence_interval(0.95)
        lines.append(f"Welch t-test on top-1: t = {t.statistic:.3f}, p = {t.pvalue:.3f}; "
                     f"|Δ| = {abs(delta):.2f} pp, 95% interval of Δ [{low:+.2f}, {high:+.2f}] pp "
                     f"→ {verdict} (goal: p ≥ 0.05 and |Δ| ≤ 1.5 pp).")
    else:
        lines.append("Welch t-test on top-1: not computable (needs at least 2 seeds per implementation); "
                     "one seed says nothing about parity.")
    lines.append("")
    return lines


def machine():
    """CPU model, widest vector extension and core count, since wall times only compare within
    one machine (the same code reads differently with and without AVX-512)."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        model = next(l.split(":", 1)[1].strip() for l in lines if l.startswith("model name"))
        flags = set(next(l.split(":", 1)[1] for l in lines if l.startswith("flags")).split())
    except (OSError, StopIteration):
        pass
    vector = next((name for flag, name in [("avx512f", "AVX-512"), ("avx2", "AVX2")] if flag in flags), None)
    return ", ".join(filter(None, [model, vector, f"{os.cpu_count()} cores"]))


def main():
    results, out = sys.argv[1], sys.argv[2]
    lines = ["# Parity with the reference implementation (CIFAR-10-LT, imbalance 100)", "",
             "Written by `bench/reference-parity.sh`; see README \"Parity with the reference\". "
             "Top-1 and group accuracies in %, last epoch; wall time per epoch = the whole "
             "command's wall time (data preparation, training, per-epoch and final evaluation) / "
             "epochs.", "", f"Machine: {machine()}.", ""]
    for folder in sorted(d for d in glob.glob(os.path.join(results, "*")) if os.path.isdir(d)):
        lines += recipe_table(os.path.basename(folder), folder)
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
