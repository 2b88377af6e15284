"""Shared fixtures of the Python tests (run by ctest as the test `python`, with PYTHONPATH set to
the build tree's package and FG_GRAPH_RUNNER / FG_SOURCE_DIR set by CMake)."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("FG_SOURCE_DIR",
                                         pathlib.Path(__file__).resolve().parents[2]))
GRAPH_RUNNER = os.environ.get("FG_GRAPH_RUNNER", str(SOURCE_DIR / "build" / "graph-runner"))
TINY = SOURCE_DIR / "tests" / "python" / "graphs" / "tiny_fusion.yaml"


def graph_runner(*args, check=True):
    """Runs graph-runner; returns the CompletedProcess (stdout, stderr as text)."""
    proc = subprocess.run([GRAPH_RUNNER, *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"graph-runner {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def tiny_data(n, seed=0):
    """Learnable data for tiny_fusion.yaml: the class of a sample is given by its tokens' block
    (ids 1 + 16c .. 16c + 16) and by the sign pattern of its first three features."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, n)
    tokens = (1 + 16 * classes[:, None] + rng.integers(0, 16, (n, 7))).astype(np.int32)
    features = rng.normal(0, 1, (n, 13)).astype(np.float32)
    features[np.arange(n), classes] += 2.0
    onehot = np.eye(3, dtype=np.float32)[classes]
    return {"tokens": tokens, "features": features}, {"classifier": onehot}


def save_folder(path, x, y):
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name, value in {**x, **y}.items():
        np.save(path / f"{name}.npy", value)
    return path


@pytest.fixture
def tiny():
    import fusiongraph as fg
    return fg.load(TINY, threads=2)
