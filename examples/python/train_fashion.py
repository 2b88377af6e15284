"""Trains the three-modality Fashion-MNIST example (examples/fashion_fusion) from Python: fit on
the raw PNG / WAV / text tables, learning curves into a PNG, evaluation on the test table, and
a prediction of one sample from its raw files.

    /usr/bin/python3 examples/fashion_fusion/make_dataset.py --out fashion-data
    PYTHONPATH=build/python /usr/bin/python3 examples/python/train_fashion.py \\
        --data fashion-data --graph graphs/fashion_gated.yaml --epochs 5 --out fashion-python

Writes OUT/checkpoint.safetensors (after every epoch: the trained weights, the optimizer state
and the learnt vocabulary), OUT/history.json, OUT/learning_curves.png and OUT/results.json.
"""
import argparse
import csv
import json
import pathlib
import sys
import time

import matplotlib

matplotlib.use("Agg")  # no display needed: write files only
import matplotlib.pyplot as plt  # noqa: E402

import fusiongraph as fg  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


def parse_args():
    p = argparse.ArgumentParser(description="Train a graphs/fashion_*.yaml model from Python.")
    p.add_argument("--data", type=pathlib.Path, default=pathlib.Path("fashion-data"),
                   help="the folder make_dataset.py wrote (train.csv, validation.csv, test.csv)")
    p.add_argument("--graph", type=pathlib.Path, default=ROOT / "graphs" / "fashion_gated.yaml",
                   help="the graph (default graphs/fashion_gated.yaml)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs to train (default: the graph's training.epochs, 5); with "
                        "--resume, the total to reach")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("fashion-python"),
                   help="output folder (checkpoint, history, curves, results)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--threads", type=int, default=0, help="OpenMP threads (0: all cores)")
    p.add_argument("--workers", type=int, default=0,
                   help="threads decoding the raw files (0: the default, 2)")
    p.add_argument("--sample", type=int, default=0, help="the test row to predict")
    return p.parse_args()


def check_data(data):
    missing = [t for t in ("train.csv", "validation.csv", "test.csv") if not (data / t).is_file()]
    if missing:
        sys.exit(f"{data}: no {', '.join(missing)}; make the data set first:\n"
                 f"  /usr/bin/python3 examples/fashion_fusion/make_dataset.py --out {data}")


def merged_history(path, history):
    """The epochs of earlier runs (OUT/history.json) joined with this run's, by epoch number."""
    epochs = {}
    if path.is_file():
        for row in json.loads(path.read_text()):
            epochs[row["epoch"]] = row
    for i, epoch in enumerate(history.epoch):
        epochs[epoch] = {"epoch": epoch, **{k: v[i] for k, v in history.history.items()}}
    rows = [epochs[e] for e in sorted(epochs)]
    path.write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def plot_curves(rows, path, title):
    """Loss and accuracy per epoch, training solid, validation dashed (counted from 1)."""
    epochs = [r["epoch"] + 1 for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, name in zip(axes, ("loss", "accuracy")):
        for key, style, label in ((name, "o-", "train"), ("val_" + name, "s--", "validation")):
            values = [r.get(key) for r in rows]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def predict_one(model, table, row_index):
    """Runs one test row from its raw files; prints the top classes and the true label."""
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    row = rows[row_index]
    base = table.parent  # the table's paths are relative to its folder
    raw = {"image": str(base / row["image"]), "audio": str(base / row["audio"]),
           "text": row["text"]}
    output = model.output_names[0]
    probs = model.run(raw)[output][0]
    names = model.class_names(output)
    top = sorted(range(len(probs)), key=lambda c: -probs[c])[:3]
    print(f"sample {row_index} of {table.name}:")
    for key, value in raw.items():
        print(f"  {key}: {value}")
    print(f"  true label: {row['label']}")
    for c in top:
        print(f"  {names[c]:<12} {probs[c]:.4f}")
    return {"row": row_index, "inputs": raw, "label": row["label"],
            "top": [(names[c], float(probs[c])) for c in top]}


def main():
    args = parse_args()
    check_data(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.out / "checkpoint.safetensors"
    if args.resume and not checkpoint.is_file():
        sys.exit(f"--resume: {checkpoint} does not exist (train without --resume first)")

    model = fg.load(args.graph, threads=args.threads)
    print(model)
    start = time.monotonic()
    try:
        history = model.fit(args.data / "train.csv",
                            validation_data=args.data / "validation.csv",
                            cache=args.data / "cache", epochs=args.epochs,
                            checkpoint=checkpoint, resume=checkpoint if args.resume else None,
                            workers=args.workers)
    except KeyboardInterrupt:  # Ctrl-C: fit stopped at a batch boundary
        print(f"\ninterrupted: {checkpoint} holds the last finished epoch; continue with "
              f"--resume --epochs TOTAL")
        if model.history is not None and model.history.epoch:
            merged_history(args.out / "history.json", model.history)
        return 1
    fit_seconds = time.monotonic() - start

    rows = merged_history(args.out / "history.json", history)
    curves = args.out / "learning_curves.png"
    plot_curves(rows, curves, f"{model.name} on {args.data.name}")
    print(f"fit: {len(history.epoch)} epochs in {fit_seconds:.1f} s; curves {curves}")

    start = time.monotonic()
    test = model.evaluate(args.data / "test.csv", return_dict=True)
    eval_seconds = time.monotonic() - start
    print(f"test: {test} ({eval_seconds:.1f} s)")

    prediction = predict_one(model, args.data / "test.csv", args.sample)
    results = {"graph": str(args.graph), "data": str(args.data), "epochs_done": model.epochs_done,
               "fit_seconds": round(fit_seconds, 1), "last_epoch": rows[-1],
               "test": test, "evaluate_seconds": round(eval_seconds, 1),
               "prediction": prediction}
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
