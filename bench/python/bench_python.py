#!/usr/bin/env python3
"""Python API vs C++ (graph-runner), side by side in one session: inference latency at a batch
size, and fit vs `graph-runner train` on the same data folder and seed.

    PYTHONPATH=build/python /usr/bin/python3 bench/python/bench_python.py infer --rounds 7
    PYTHONPATH=build/python /usr/bin/python3 bench/python/bench_python.py train --rounds 3

infer: each round times N runs of Session::run from C++ in this process (no Python in the loop)
interleaved with N model.run calls from Python, on the same session and inputs, and also runs
`graph-runner bench --batch B --iterations N --json` in its own process (same graph, weights of
seed 0, input shapes); it prints the medians and ratios per round, then the median ratios.
train: each round times `graph-runner train GRAPH --data DIR --epochs E --save C` and a Python
process doing fg.load(GRAPH).fit(DIR, epochs=E, checkpoint=C), each in a fresh process (start,
load, training, checkpoints, exit), then prints the median ratio. The data folder is made with examples/train_mlp/reference_data.py.
Ratios > 1 mean Python is slower. The machine is shared: trust the ratios of one session.
"""
import argparse
import json
import os
import pathlib
import re
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
    """Per round: the in-process C++ loop (Session::run with no Python in it), N Python
    model.run calls, and graph-runner bench in its own process; medians and ratios."""
    runner = graph_runner_path(args.graph_runner)
    model = fg.load(args.graph, init_seed=0, threads=args.threads)
    x = None
    in_process, separate = [], []
    for r in range(args.rounds):
        proc = subprocess.run([runner, "bench", args.graph, "--batch", str(args.batch),
                               "--iterations", str(args.iterations), "--threads",
                               str(args.threads), "--json", "--peak-seconds", "0"],
                              capture_output=True, text=True, check=True)
        measured = json.loads(proc.stdout)["batches"][0]
        bench = measured["median_ms"]
        if x is None:
            x = synthetic_inputs(model, measured["inputs"], np.random.default_rng(1))
            for _ in range(2):
                model.run(x)
        cpp, py = [], []
        for _ in range(args.iterations):  # interleaved, one call of each at a time
            cpp += model._impl.time_cpp_runs(x, 1)
            t0 = time.perf_counter()
            model.run(x)
            py.append((time.perf_counter() - t0) * 1e3)
        c, p_ = statistics.median(cpp), statistics.median(py)
        in_process.append(p_ / c)
        separate.append(p_ / bench)
        print(f"round {r + 1}: C++ Session::run {c:.2f} ms, Python model.run {p_:.2f} ms "
              f"(ratio {p_ / c:.3f}); graph-runner bench {bench:.2f} ms (ratio {p_ / bench:.3f})")
    print(f"batch {args.batch}, median of {args.rounds} rounds: Python / C++ in one process "
          f"{statistics.median(in_process):.3f} (min {min(in_process):.3f}, max "
          f"{max(in_process):.3f}); Python / graph-runner bench {statistics.median(separate):.3f}")


FIT = """
import sys, fusiongraph as fg
graph, data, epochs, threads, ckpt = sys.argv[1:]
fg.load(graph, threads=int(threads)).fit(data, epochs=int(epochs), checkpoint=ckpt, verbose=2)
"""


def train(args):
    """Per round, each in a fresh process, one after the other: `graph-runner train` and the
    same fit from Python (process start, import, load, training, checkpoints, exit)."""
    runner = graph_runner_path(args.graph_runner)
    with tempfile.TemporaryDirectory() as tmp:
        data = pathlib.Path(tmp) / "data"
        subprocess.run([sys.executable, str(ROOT / "examples/train_mlp/reference_data.py"),
                        str(data), str(args.samples)], check=True)
        ratios, rates = [], []
        for r in range(args.rounds):
            t0 = time.perf_counter()
            cli = subprocess.run([runner, "train", args.graph, "--data", str(data), "--epochs",
                                  str(args.epochs), "--threads", str(args.threads), "--save",
                                  str(pathlib.Path(tmp) / "cli.safetensors")],
                                 check=True, capture_output=True, text=True)
            cpp = time.perf_counter() - t0
            t0 = time.perf_counter()
            fit = subprocess.run([sys.executable, "-c", FIT, args.graph, str(data),
                                  str(args.epochs), str(args.threads),
                                  str(pathlib.Path(tmp) / "py.safetensors")],
                                 check=True, capture_output=True, text=True, env=os.environ.copy())
            py = time.perf_counter() - t0
            # the epochs' samples/s as both print them (the same progress-bar code)
            c_rate = [float(v) for v in re.findall(r"([0-9.]+) samples/s", cli.stdout)]
            p_rate = [float(v) for v in re.findall(r"([0-9.]+) samples/s", fit.stdout)]
            ratios.append(py / cpp)
            rates.append(statistics.median(c_rate) / statistics.median(p_rate))
            print(f"round {r + 1}: graph-runner train {cpp:.1f} s ({c_rate} samples/s per epoch),"
                  f" Python fit {py:.1f} s ({p_rate}); ratio of times {py / cpp:.3f}, of epoch "
                  f"rates {rates[-1]:.3f}")
        print(f"median ratio Python / graph-runner ({args.epochs} epochs of {args.samples} "
              f"samples): whole processes {statistics.median(ratios):.3f} (min "
              f"{min(ratios):.3f}, max {max(ratios):.3f}); epoch time (inverse samples/s) "
              f"{statistics.median(rates):.3f} (min {min(rates):.3f}, max {max(rates):.3f})")


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
