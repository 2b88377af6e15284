"""FusionGraph from Python in a few seconds: run the reference graph on random NumPy inputs,
then train a small graph on NumPy arrays (docs/python.md).

    PYTHONPATH=build/python /usr/bin/python3 examples/python/quickstart.py
"""
import argparse
import pathlib

import numpy as np

import fusiongraph as fg

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Four features, two classes (1 when x0 + x1 > x2 + x3): examples/train_mlp's graph.
SMALL_GRAPH = """
name: quickstart_mlp
inputs:
  features: {shape: [4]}
nodes:
  - {name: hidden, op: dense, input: features, units: 16, activation: relu}
  - {name: classifier, op: dense, input: hidden, units: 2, activation: softmax}
outputs: [classifier]
training:
  loss: sparse_categorical_crossentropy
  optimizer: {name: adam, learning_rate: 0.01}
  metrics: [accuracy]
  batch_size: 32
  epochs: 5
  seed: 0
"""


def run_reference_graph(threads):
    model = fg.load(ROOT / "graphs" / "multimodal_fusion.yaml", threads=threads)  # init weights
    print(model)
    for spec in model.inputs:
        print(f"  input {spec.name}: shape {spec.shape}, {spec.dtype}")
    rng = np.random.default_rng(0)
    inputs = {  # batch 2; the null dims (text length, audio samples) are ours to choose
        "text": rng.integers(1, 1000, size=(2, 100), dtype=np.int32),
        "image": rng.random((2, 224, 224, 3), dtype=np.float32),
        "audio": rng.uniform(-1, 1, size=(2, 16000, 1)).astype(np.float32),
    }
    probs = model.run(inputs)["classifier"]  # [2, 10] float32
    for i, p in enumerate(probs):
        top = np.argsort(p)[::-1][:3]
        print(f"  sample {i}: " + ", ".join(f"class {c} p={p[c]:.4f}" for c in top))


def fit_small_graph(threads):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(1000, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > x[:, 2] + x[:, 3]).astype(np.int32)  # class ids
    model = fg.load_string(SMALL_GRAPH, threads=threads)
    history = model.fit(x, y, epochs=5, validation_split=0.2, verbose=2)
    print("  history:", {k: [round(v, 4) for v in vs] for k, vs in history.history.items()})
    x_test = rng.uniform(-1, 1, size=(200, 4)).astype(np.float32)
    y_test = (x_test[:, 0] + x_test[:, 1] > x_test[:, 2] + x_test[:, 3]).astype(np.int32)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"  test: loss {loss:.4f}, accuracy {accuracy:.4f}")
    predicted = model.predict(x_test[:5]).argmax(axis=1)
    print(f"  predicted {predicted.tolist()}, true {y_test[:5].tolist()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="OpenMP threads (0: all cores)")
    args = parser.parse_args()
    print(f"fusiongraph {fg.__version__}")
    print("1. the reference graph on random inputs")
    run_reference_graph(args.threads)
    print("2. a small graph trained on NumPy arrays")
    fit_small_graph(args.threads)


if __name__ == "__main__":
    main()
