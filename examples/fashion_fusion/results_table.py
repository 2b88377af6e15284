#!/usr/bin/python3
"""results_table.py RUNS MODEL...: the markdown table of train_all.sh from RUNS/<model>.txt
(graph-runner train's output: the "Epoch k/n - steps - 41s - ..." lines) and RUNS/<model>.json
(graph-runner evaluate --json on the test set)."""
import json
import os
import re
import sys

SINGLE = ("image", "audio", "text")
# "Epoch 2/5 - 844/844 - 41s - 48ms/step - ...": steps x time per step (finer than the 41s)
EPOCH = re.compile(r"Epoch \d+/\d+ - (\d+)/\d+ - [^ ]+ - (\d+(?:\.\d+)?)(us|ms|s)/step")
UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def epoch_seconds(path):
    """Mean wall time of the epochs printed in a train log (the progress bar's plain lines)."""
    times = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f.read().replace("\r", "\n").splitlines():
            m = EPOCH.search(line)
            if m:
                times.append(int(m.group(1)) * float(m.group(2)) * UNIT[m.group(3)])
    return (sum(times) / len(times), len(times)) if times else (float("nan"), 0)


def main():
    runs, models = sys.argv[1], sys.argv[2:]
    rows = {}
    for model in models:
        if not os.path.exists(f"{runs}/{model}.json"):   # training failed: its log says why
            rows[model] = (None,) + epoch_seconds(f"{runs}/{model}.txt")
            continue
        with open(f"{runs}/{model}.json", encoding="utf-8") as f:
            accuracy = json.load(f)["accuracy"]
        rows[model] = (accuracy,) + epoch_seconds(f"{runs}/{model}.txt")
    singles = [rows[m][0] for m in models if m in SINGLE and rows[m][0] is not None]
    best_single = max(singles) if singles else None
    print("| model | test accuracy | epochs | time per epoch | margin over the best single modality |")
    print("|---|---|---|---|---|")
    for model in models:
        accuracy, seconds, epochs = rows[model]
        if accuracy is None:
            print(f"| fashion_{model} | failed (see {model}.txt) | {epochs} | {seconds:.1f} s | — |")
            continue
        margin = "—"
        if model not in SINGLE and best_single is not None:
            margin = f"{100 * (accuracy - best_single):+.1f} points"
        print(f"| fashion_{model} | {100 * accuracy:.2f}% | {epochs} | {seconds:.1f} s | {margin} |")


if __name__ == "__main__":
    main()
