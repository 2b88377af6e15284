"""Inference from Python: load, describe, run, predict; results equal graph-runner's (the C++
API) bit for bit; inputs without copies; outputs that own their memory; threads."""
import json
import threading

import numpy as np
import pytest

import fusiongraph as fg
from conftest import SOURCE_DIR, TINY, graph_runner, tiny_data


def test_version_and_specs(tiny):
    assert fg.__version__.count(".") == 2
    ins = {i.name: i for i in tiny.inputs}
    assert list(ins) == ["tokens", "features"]
    assert ins["tokens"].shape == (None, 7) and ins["tokens"].dtype == np.int32
    assert ins["features"].shape == (None, 13) and ins["features"].dtype == np.float32
    (out,) = tiny.outputs
    assert out.name == "classifier" and out.shape == (None, 3) and out.dtype == np.float32
    assert "tiny_fusion" in repr(tiny)


def test_null_dims_are_none():
    m = fg.load(SOURCE_DIR / "graphs" / "multimodal_fusion.yaml", threads=1)
    shapes = {i.name: i.shape for i in m.inputs}
    assert shapes["audio"] == (None, None, 1)
    assert shapes["image"] == (None, 224, 224, 3)


def test_run_equals_graph_runner_bit_for_bit(tiny, tmp_path):
    x, _ = tiny_data(13, seed=1)
    np.save(tmp_path / "tokens.npy", x["tokens"])
    np.save(tmp_path / "features.npy", x["features"])
    tiny.save(tmp_path / "w.safetensors")
    graph_runner("run", TINY, "--weights", tmp_path / "w.safetensors",
                 "--input", f"tokens={tmp_path / 'tokens.npy'}",
                 "--input", f"features={tmp_path / 'features.npy'}",
                 "--output-dir", tmp_path / "out", "--threads", 2)
    expected = np.load(tmp_path / "out" / "classifier.npy")
    got = tiny.run(x)["classifier"]
    assert got.dtype == np.float32 and got.shape == (13, 3)
    assert np.array_equal(got, expected)
    # the same from a model loaded with those weights
    again = fg.load(TINY, weights=tmp_path / "w.safetensors").run(x)["classifier"]
    assert np.array_equal(again, expected)


def test_default_weights_are_graph_runner_init(tmp_path):
    # no weights: Keras-style initial values of training.seed (3), as `graph-runner init`
    graph_runner("init", TINY, "-o", tmp_path / "init.safetensors", "--seed", 3)
    a = fg.load(TINY).get_weights()
    b = fg.load(TINY, weights=tmp_path / "init.safetensors").get_weights()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    c = fg.load(TINY, init_seed=4).get_weights()
    assert not np.array_equal(a["classifier.kernel"], c["classifier.kernel"])


def test_contiguous_inputs_are_not_copied(tiny):
    x, _ = tiny_data(7)
    f = x["features"]
    assert tiny._impl.input_data_address("features", f) == f.ctypes.data
    t = x["tokens"]
    assert tiny._impl.input_data_address("tokens", t) == t.ctypes.data
    # a Fortran-order array, a strided view and float64 are copied, and still run
    fortran = np.asfortranarray(f)
    assert tiny._impl.input_data_address("features", fortran) != fortran.ctypes.data
    strided = np.repeat(f, 2, axis=1)[:, ::2]
    assert tiny._impl.input_data_address("features", strided) != strided.ctypes.data
    ref = tiny.run(x)["classifier"]
    for variant in (fortran, strided, f.astype(np.float64)):
        assert np.array_equal(tiny.run({"tokens": t, "features": variant})["classifier"], ref)
    for ids in (t.astype(np.int64), t.astype(np.uint8), t.astype(np.float32)):
        assert np.array_equal(tiny.run({"tokens": ids, "features": f})["classifier"], ref)


def test_outputs_own_their_memory(tiny):
    x, _ = tiny_data(5)
    a = tiny.run(x)["classifier"]
    b = tiny.run(x)["classifier"]
    assert a.flags.writeable and a.flags.c_contiguous
    assert not np.shares_memory(a, b)
    keep = b.copy()
    a[:] = 0  # writing one result changes no other
    assert np.array_equal(b, keep)
    del tiny  # the arrays outlive the model
    assert np.array_equal(b, keep)


def test_predict_batches_like_one_run(tiny):
    x, _ = tiny_data(13, seed=2)
    whole = tiny.run(x)["classifier"]
    pieces = tiny.predict(x, batch_size=4)
    assert isinstance(pieces, np.ndarray) and pieces.shape == (13, 3)
    np.testing.assert_allclose(pieces, whole, rtol=1e-6, atol=1e-7)
    by_list = tiny.predict([x["tokens"], x["features"]], batch_size=5)
    np.testing.assert_allclose(by_list, whole, rtol=1e-6, atol=1e-7)


def test_predict_progress_bar(tiny, capsys):
    x, _ = tiny_data(9)
    tiny.predict(x, batch_size=4, verbose=1)
    out = capsys.readouterr().out
    assert "3/3 [==============================]" in out and "/step" in out


def test_concurrent_runs_from_four_threads(tiny):
    batches = [tiny_data(7 + i, seed=i)[0] for i in range(4)]
    expected = [tiny.run(b)["classifier"] for b in batches]
    results, errors = [None] * 4, []

    def work(i):
        try:
            for _ in range(20):
                got = tiny.run(batches[i])["classifier"]
                if not np.array_equal(got, expected[i]):
                    errors.append(f"thread {i}: a different result")
            results[i] = got
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(np.array_equal(r, e) for r, e in zip(results, expected))


def test_summary_and_dot_match_graph_runner(tiny, capsys):
    tiny.summary()
    printed = capsys.readouterr().out
    cli = graph_runner("summary", TINY).stdout
    assert printed.strip() == cli.strip()
    d = tiny.summary_dict()
    assert d["total_params"] == 50 * 8 + 13 * 16 + 16 + 24 * 3 + 3
    assert [r["name"] for r in d["nodes"]][:2] == ["embed", "pool"]
    assert d == json.loads(graph_runner("summary", TINY, "--json").stdout)
    assert tiny.to_dot().strip() == graph_runner("dot", TINY).stdout.strip()


def test_validate(tmp_path):
    assert fg.validate(TINY) == []
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("units: 3", "units: three"))
    with pytest.raises(fg.GraphError) as e:
        fg.validate(bad)
    assert e.value.file == str(bad) and e.value.line == 12 and e.value.node == "classifier"


def test_reference_graph_equals_graph_runner_bit_for_bit(tmp_path, capsys):
    graph = SOURCE_DIR / "graphs" / "multimodal_fusion.yaml"
    model = fg.load(graph, threads=2)  # initial weights of seed 0, as graph-runner's default
    model.summary(batch=2, dims={"text": 100, "audio": 16000})
    cli = graph_runner("summary", graph, "--batch", 2, "--dim", "text=100", "--dim",
                       "audio=16000").stdout
    assert capsys.readouterr().out.strip() == cli.strip() and "?" not in cli
    rng = np.random.default_rng(7)
    x = {"text": rng.integers(1, 1000, (2, 100), dtype=np.int32),
         "image": rng.random((2, 224, 224, 3), dtype=np.float32),
         "audio": rng.random((2, 16000, 1), dtype=np.float32)}
    args = []
    for name, value in x.items():
        np.save(tmp_path / f"{name}.npy", value)
        args += ["--input", f"{name}={tmp_path / (name + '.npy')}"]
    graph_runner("run", graph, *args, "--output-dir", tmp_path / "out", "--threads", 2)
    expected = np.load(tmp_path / "out" / "classifier.npy")
    got = model.run(x)["classifier"]
    assert got.shape == (2, 10) and np.array_equal(got, expected)
