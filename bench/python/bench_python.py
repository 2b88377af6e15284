#!/usr/bin/env python3
"""Python API vs C++ (graph-runner), side by side in one session: inference latency at a batch
size, and fit vs `graph-runner train` on the same data folder and seed.

    PYTHONPATH=build/python /usr/bin/python3 bench/python/bench_python.py infer --rounds 7
    PYTHONPATH=build/python /usr/bin/python3 bench/python/bench_python.py train --rounds 3

infer: each round runs `graph-runner bench --batch B --iterations N --json` (its median) and then
N timed model.run calls in this process (their median) on the same graph, weights (seed 0) and
kind of inputs; it prints both medians and their ratio per round, then the median ratio.
train: each round times `graph-runner train GRAPH --data DIR --epochs E` and fg.load(GRAPH).fit(DIR,
epochs=E) (wall time of the epochs: the callbacks' epoch timings, which leave out loading), then
prints the median ratio. The data folder is made with examples/train_mlp/reference_data.py.
Ratios > 1 mean Python is slower. The machine is shared: trust the ratios of one session.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import fusiongraph as fg

ROOT = pathlib.Path(__file__).resolve().parents[2]


def graph_runner_path(arg):
    return arg or os.environ.get("FG_GRAPH_RUNNER") or str(ROOT / "build" / "graph-runner")


def synthetic_inputs(model, shapes, rng):
    """Inputs of graph-runner bench's shapes (its JSON's "inputs")."""
    out = {}
    for spec in model.inputs:
        shape = shapes[spec.name]
        if spec.dtype == np.int32:
            out[spec.name] = rng.integers(1, 1000, shape, dtype=np.int32)
        else:
            out[spec.name] = rng.random(shape, dtype=np.float32)
    return out


def infer(args):
    runner = graph_runner_path(args.graph_runner)
    model = fg.load(args.graph, init_seed=0, threads=args.threads)
    x = None
    ratios = []
    for r in range(args.rounds):
        proc = subprocess.run([runner, "bench", args.graph, "--batch", str(args.batch),
                               "--iterations", str(args.iterations), "--threads",
                               str(args.threads), "--json", "--peak-seconds", "0"],
                              capture_output=True, text=True, check=True)
        measured = json.loads(proc.stdout)["batches"][0]
        cpp = measured["median_ms"]
        if x is None:
            x = synthetic_inputs(model, measured["inputs"], np.random.default_rng(1))
            for _ in range(2):
                model.run(x)
        times = []
        for _ in range(args.iterations):
            t0 = time.perf_counter()
            model.run(x)
            times.append((time.perf_counter() - t0) * 1e3)
        py = statistics.median(times)
        ratios.append(py / cpp)
        print(f"round {r + 1}: graph-runner {cpp:.2f} ms, Python {py:.2f} ms, ratio {py / cpp:.3f}")
    print(f"median ratio Python / C++ at batch {args.batch}: {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f})")


class EpochTimer(fg.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.t0)


def train(args):
    runner = graph_runner_path(args.graph_runner)
    with tempfile.TemporaryDirectory() as tmp:
        data = pathlib.Path(tmp) / "data"
        subprocess.run([sys.executable, str(ROOT / "examples/train_mlp/reference_data.py"),
                        str(data), str(args.samples)], check=True)
        ratios = []
        for r in range(args.rounds):
            t0 = time.perf_counter()
            subprocess.run([runner, "train", args.graph, "--data", str(data), "--epochs",
                            str(args.epochs), "--threads", str(args.threads)],
                           check=True, capture_output=True)
            cpp = time.perf_counter() - t0
            t0 = time.perf_counter()
            model = fg.load(args.graph, threads=args.threads)
            timer = EpochTimer()
            model.fit(str(data), epochs=args.epochs, callbacks=[timer], verbose=0)
            py = time.perf_counter() - t0
            ratios.append(py / cpp)
            print(f"round {r + 1}: graph-runner train {cpp:.1f} s, Python load + fit {py:.1f} s "
                  f"(epochs {', '.join(f'{s:.1f}' for s in timer.seconds)} s), ratio {py / cpp:.3f}")
        print(f"median ratio Python / graph-runner (whole run, {args.epochs} epochs of "
              f"{args.samples}): {statistics.median(ratios):.3f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["infer", "train"])
    p.add_argument("--graph", default=str(ROOT / "graphs/multimodal_fusion.yaml"))
    p.add_argument("--graph-runner", default="")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    infer(args) if args.what == "infer" else train(args)


if __name__ == "__main__":
    main()
