"""Raw inputs from Python: texts and image files for inputs that declare `preprocessing:`, class
names of category outputs; the same tensors and results as graph-runner."""
import numpy as np
import pytest

import fusiongraph as fg
from conftest import graph_runner

GRAPH = """\
name: raw_tiny
inputs:
  text: {shape: [6], dtype: int32, preprocessing: {type: text, vocabulary: vocab.txt, output_sequence_length: 6}}
  image: {shape: [5, 7, 1], preprocessing: {type: image, height: 5, width: 7, channels: 1, rescale: 0.00392156862745098}}
nodes:
  - {name: embed, op: embedding, input: text, input_dim: 10, output_dim: 4}
  - {name: pool, op: global_average_pooling1d, input: embed}
  - {name: flat, op: flatten, input: image}
  - {name: fusion, op: concatenate, inputs: [pool, flat]}
  - {name: label, op: dense, input: fusion, units: 3, activation: softmax}
outputs:
  label: {preprocessing: {type: category, classes: [cat, dog, bird]}}
"""


@pytest.fixture
def raw(tmp_path):
    (tmp_path / "vocab.txt").write_text("the\ncat\ndog\nsat\n")
    (tmp_path / "g.yaml").write_text(GRAPH)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.image
    pixels = (np.arange(35, dtype=np.float64).reshape(5, 7) * 7 % 256) / 255.0
    matplotlib.image.imsave(tmp_path / "x.png", pixels, cmap="gray", vmin=0, vmax=1)
    return tmp_path


def test_specs_and_class_names(raw):
    m = fg.load(raw / "g.yaml")
    assert [i.raw for i in m.inputs] == [True, True]
    assert m.outputs[0].classes == ("cat", "dog", "bird")
    assert m.class_names("label") == ["cat", "dog", "bird"]


def test_preprocess_text_as_keras_text_vectorization(raw):
    m = fg.load(raw / "g.yaml")
    ids = m.preprocess({"text": ["The cat sat!", "a dog"]})["text"]
    # the vocabulary file's line n gets id n + 1 (0 padding, 1 out of vocabulary)
    assert ids.dtype == np.int32 and ids.tolist() == [[2, 3, 5, 0, 0, 0], [1, 4, 0, 0, 0, 0]]


def test_run_on_raw_values_equals_graph_runner(raw):
    m = fg.load(raw / "g.yaml")
    m.save(raw / "w.safetensors")
    png = str(raw / "x.png")
    by_raw = m.run({"text": "the dog sat", "image": png})["label"]
    tensors = m.preprocess({"text": "the dog sat", "image": png})
    assert tensors["image"].shape == (1, 5, 7, 1)
    np.testing.assert_allclose(tensors["image"][0, 1, 2, 0], round(9 * 7 % 256) / 255.0,
                               atol=1 / 255.0)
    assert np.array_equal(m.run(tensors)["label"], by_raw)
    for name, value in tensors.items():
        np.save(raw / f"{name}.npy", value)
    graph_runner("run", raw / "g.yaml", "--weights", raw / "w.safetensors",
                 "--input", f"text={raw / 'text.npy'}", "--input", f"image={raw / 'image.npy'}",
                 "--output-dir", raw / "out")
    assert np.array_equal(np.load(raw / "out" / "label.npy"), by_raw)


def test_raw_errors_name_the_input_and_value(raw):
    m = fg.load(raw / "g.yaml")
    with pytest.raises(fg.GraphError) as e:
        m.run({"text": "a", "image": str(raw / "missing.png")})
    assert "missing.png" in str(e.value) and "image" in str(e.value)
    with pytest.raises(fg.GraphError, match="'text'"):
        m.run({"text": ["ok", 3], "image": [str(raw / "x.png")] * 2})
