"""Every error path of the Python API is a GraphError (a ValueError) with graph-runner's
message and its fields; wrong NumPy inputs name the input and what was expected; nothing
crashes the interpreter."""
import numpy as np
import pytest

import fusiongraph as fg
from conftest import TINY, graph_runner, tiny_data


def test_graph_error_is_a_value_error_with_the_cli_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("op: concatenate", "op: concatenat"))
    with pytest.raises(fg.GraphError) as e:
        fg.load(bad)
    err = e.value
    assert isinstance(err, ValueError)
    assert err.file == str(bad) and err.line == 11 and err.column is not None
    assert err.node == "fusion" and "concatenate" in (err.hint or "")
    cli = graph_runner("validate", bad, check=False)
    assert cli.returncode != 0
    assert str(err).strip() in cli.stderr


def test_load_string_names_the_text():
    with pytest.raises(fg.GraphError) as e:
        fg.load_string("name: x\ninputs: {a: {shape: [3]}}\nnodes:\n  - {name: d, op: dense, "
                       "input: a, units: -2}\noutputs: [d]\n", file="mine.yaml")
    assert e.value.file == "mine.yaml" and e.value.line == 4
    assert e.value.node == "d" and e.value.op == "dense"


def test_missing_weights_file_and_wrong_weights(tmp_path):
    with pytest.raises(fg.GraphError, match="nope.safetensors"):
        fg.load(TINY, weights=tmp_path / "nope.safetensors")
    other = fg.load_string("name: o\ninputs: {a: {shape: [13]}}\nnodes:\n  - {name: classifier, "
                           "op: dense, input: a, units: 3}\noutputs: [classifier]\n")
    other.save(tmp_path / "other.safetensors")
    with pytest.raises(fg.GraphError) as e:
        fg.load(TINY, weights=tmp_path / "other.safetensors")
    assert "classifier.kernel" in str(e.value)


@pytest.mark.parametrize("change, words", [
    (lambda x: x.pop("tokens"), ["'tokens'", "missing"]),
    (lambda x: x.update(tokenz=x.pop("tokens")), ["'tokenz'", "tokens"]),
    (lambda x: x.update(features=np.zeros((5, 12), np.float32)), ["'features'", "13", "12"]),
    (lambda x: x.update(features=np.zeros((4, 13), np.float32)), ["batch sizes", "'features'", "5", "4"]),
    (lambda x: x.update(tokens=x["tokens"] + 0.5), ["'tokens'", "int32", "whole"]),
    (lambda x: x.update(tokens=x["tokens"].astype(np.int64) + 2**40), ["'tokens'", "int32"]),
    (lambda x: x.update(features=np.array([["a"] * 13] * 5)), ["'features'", "float32"]),
    (lambda x: x.update(features="a.png"), ["'features'"]),
    (lambda x: x.update(features=np.zeros((5, 13), np.complex64)), ["'features'", "complex"]),
    (lambda x: x.update(tokens=np.full((5, 7), 50, np.int32)), ["50"]),
])
def test_bad_inputs(tiny, change, words):
    x, _ = tiny_data(5)
    change(x)
    with pytest.raises(fg.GraphError) as e:
        tiny.run(x)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_ragged_and_non_numeric_values_do_not_crash(tiny):
    x, _ = tiny_data(2)
    for bad in ([[1, 2], [3]], None, object(), {"a": 1}):
        with pytest.raises((fg.GraphError, ValueError, TypeError)):
            tiny.run({"tokens": x["tokens"], "features": bad})


def test_fit_errors(tiny, tmp_path):
    x, y = tiny_data(9)
    with pytest.raises(fg.GraphError, match="y"):
        tiny.fit(x, None, verbose=0)
    with pytest.raises(fg.GraphError, match="classifer|classifier"):
        tiny.fit(x, {"classifer": y["classifier"]}, verbose=0)
    with pytest.raises(fg.GraphError, match="'features'"):
        tiny.fit({**x, "features": x["features"][:, :5]}, y, verbose=0)
    with pytest.raises(fg.GraphError, match="different|length|samples"):
        tiny.fit({**x, "features": x["features"][:4]}, y, verbose=0)
    with pytest.raises(fg.GraphError, match="validation_split"):
        tiny.fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(fg.GraphError, match="epochs"):
        tiny.fit(x, y, epochs=0, verbose=0)
    with pytest.raises(fg.GraphError, match=str(tmp_path / "none")):
        tiny.fit(tmp_path / "none", verbose=0)
    no_training = fg.load_string("name: o\ninputs: {a: {shape: [3]}}\nnodes:\n  - {name: d, "
                                 "op: dense, input: a, units: 2}\noutputs: [d]\n")
    with pytest.raises(fg.GraphError, match="training"):
        no_training.fit({"a": np.zeros((4, 3), np.float32)}, {"d": np.zeros((4, 2), np.float32)})


def test_resume_from_a_file_that_is_not_a_checkpoint(tiny, tmp_path):
    x, y = tiny_data(8)
    tiny.save(tmp_path / "plain.safetensors")  # weights only, no training state
    with pytest.raises(fg.GraphError, match="checkpoint"):
        tiny.fit(x, y, resume=tmp_path / "plain.safetensors", verbose=0)
