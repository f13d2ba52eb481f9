#!/usr/bin/env python3
"""Summarises bench/epoch-speed.sh: per recipe, each implementation's wall time per epoch, the
training part of an epoch and one evaluation, with ratios to the reference.

    python3 bench/epoch_speed_report.py RESULTS_DIR EPOCHS LABEL...

RESULTS_DIR holds r<recipe>-reference.json/.log and r<recipe>-<label>.json/.result.json.
"""
import glob
import json
import math
import os
import re
import statistics
import sys


def seconds(text):
    h, m, s = (int(part) for part in text.split(":"))
    return 3600 * h + 60 * m + s


def reference_phases(log_path):
    """Mean training seconds per epoch and per evaluation, from the reference's MetricLogger."""
    log = open(log_path).read()
    train = [seconds(t) for t in re.findall(r"^Epoch: \[\d+\] Total time: (\d+:\d\d:\d\d)", log, re.M)]
    evals = [seconds(t) for t in re.findall(r"^Test: +Total time: (\d+:\d\d:\d\d)", log, re.M)]
    if not train or not evals:
        sys.exit(f"error: {log_path} has no 'Epoch: [i] Total time' or 'Test: Total time' line")
    return statistics.mean(train), statistics.mean(evals)


def repro_phases(result_path):
    result = json.load(open(result_path))
    train_images = sum(c["n_train"] for c in result["classes"])
    epochs = result["epochs"]
    train = statistics.mean(train_images / e["images_per_s"] for e in epochs)
    evals = [e["eval_seconds"] for e in epochs if e.get("eval_seconds") is not None]
    return train, (statistics.mean(evals) if evals else float("nan")), train_images


def main():
    results, epochs, labels = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    recipes = sorted({os.path.basename(p).split("-")[0] for p in glob.glob(f"{results}/r*-reference.json")})
    lines = [f"Epochs per run: {epochs}, seed 0. Ratio: reference time / repro time (above 1: repro is faster).", ""]
    for recipe in recipes:
        rows = []
        for label in labels:
            train, evaluation, images = repro_phases(f"{results}/{recipe}-{label}.result.json")
            wall = json.load(open(f"{results}/{recipe}-{label}.json"))["wall_s_per_epoch"]
            rows.append((f"repro ({label})", wall, train, evaluation, images))
        images = rows[0][4]
        train, evaluation = reference_phases(f"{results}/{recipe}-reference.log")
        wall = json.load(open(f"{results}/{recipe}-reference.json"))["wall_s_per_epoch"]
        reference = ("reference", wall, train, evaluation, images)
        lines += [
            f"### Recipe {recipe[1:]} ({images} training images, 10,000 test images)",
            "",
            "| implementation | wall s/epoch | ratio | training s/epoch | img/s | ratio | one evaluation, s | ratio |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, wall, train, evaluation, n in [reference] + rows:
            # Builds from before evaluations were timed have no eval_seconds.
            evaluated = "— | —" if math.isnan(evaluation) else f"{evaluation:.1f} | {reference[3] / evaluation:.2f}"
            lines.append(
                f"| {name} | {wall:.1f} | {reference[1] / wall:.2f} | {train:.1f} | {n / train:.0f} "
                f"| {reference[2] / train:.2f} | {evaluated} |"
            )
        lines.append("")
    text = "\n".join(lines)
    print(text)
    with open(f"{results}/epoch-speed.md", "w") as out:
        out.write(text + "\n")


if __name__ == "__main__":
    main()
