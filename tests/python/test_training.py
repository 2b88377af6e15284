"""Training from Python: fit / evaluate / save / resume as Keras users expect, and the same
numbers as `graph-runner train` on the same data and seed."""
import csv
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fusiongraph as fg
from conftest import SOURCE_DIR, TINY, graph_runner, save_folder, tiny_data


def weights_equal(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_fit_lowers_the_loss_and_returns_keras_history():
    model = fg.load(TINY, threads=2)
    x, y = tiny_data(61)
    history = model.fit(x, y, epochs=6, validation_split=0.2, verbose=0)
    assert isinstance(history, fg.History) and model.history is history
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history.epoch == list(range(6))
    loss = history.history["loss"]
    assert len(loss) == 6 and loss[-1] < 0.6 * loss[0]
    assert history.history["accuracy"][-1] > 0.8
    assert model.epochs_done == 6
    # the model now predicts with the trained weights
    xt, yt = tiny_data(40, seed=9)
    predicted = model.predict(xt).argmax(axis=1)
    assert (predicted == yt["classifier"].argmax(axis=1)).mean() > 0.8


def test_fit_on_arrays_equals_graph_runner_train_on_the_folder(tmp_path):
    x, y = tiny_data(13)
    folder = save_folder(tmp_path / "train", x, y)
    graph_runner("train", TINY, "--data", folder, "--epochs", 3, "--threads", 2,
                 "--save", tmp_path / "cli.safetensors", "--log", tmp_path / "cli.csv")
    model = fg.load(TINY, threads=2)
    history = model.fit(x, y, epochs=3, verbose=0)
    cli = fg.load(TINY, weights=tmp_path / "cli.safetensors").get_weights()
    assert weights_equal(model.get_weights(), cli)
    with open(tmp_path / "cli.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == history.epoch
    for name in ("loss", "accuracy"):
        np.testing.assert_allclose([float(r[name]) for r in rows], history.history[name],
                                   rtol=1e-6)
    # the folder's path gives the same model as its arrays
    by_path = fg.load(TINY, threads=2)
    by_path.fit(folder, epochs=3, verbose=0)
    assert weights_equal(by_path.get_weights(), cli)


def test_converted_arrays_train_as_the_npy_files(tmp_path):
    x, y = tiny_data(11)
    a = fg.load(TINY, threads=1)
    a.fit(x, y, epochs=1, verbose=0)
    b = fg.load(TINY, threads=1)
    b.fit({"tokens": x["tokens"].astype(np.int64), "features": x["features"].astype(np.float64)},
          {"classifier": np.asfortranarray(y["classifier"])}, epochs=1, verbose=0)
    assert weights_equal(a.get_weights(), b.get_weights())
    # dtypes a data folder does not hold (uint8 ids, bool one-hot, big-endian floats) too
    c = fg.load(TINY, threads=1)
    c.fit({"tokens": x["tokens"].astype(np.uint8), "features": x["features"].astype(">f4")},
          {"classifier": y["classifier"].astype(bool)}, epochs=1, verbose=0)
    assert weights_equal(a.get_weights(), c.get_weights())


def test_second_fit_continues_like_one_longer_fit():
    x, y = tiny_data(17)
    once = fg.load(TINY, threads=1)
    once.fit(x, y, epochs=4, verbose=0)
    twice = fg.load(TINY, threads=1)
    twice.fit(x, y, epochs=2, verbose=0)
    h = twice.fit(x, y, epochs=2, verbose=0)
    assert h.epoch == [2, 3] and twice.epochs_done == 4
    assert weights_equal(once.get_weights(), twice.get_weights())


def test_pipeline_options_per_call_keep_the_epochs(tmp_path):
    x, y = tiny_data(12)
    folder = save_folder(tmp_path / "train", x, y)
    model = fg.load(TINY, threads=1)
    model.fit(folder, epochs=2, verbose=0)
    h = model.fit(folder, epochs=1, workers=1, verbose=0)
    assert h.epoch == [2] and model.epochs_done == 3
    with pytest.raises(fg.GraphError, match="workers"):
        model.fit(folder, epochs=1, workers=-1, verbose=0)
    assert model.evaluate(folder, workers=2, verbose=0, return_dict=True).keys() == {"loss",
                                                                                     "accuracy"}


def test_validation_data_and_evaluate():
    x, y = tiny_data(20)
    xv, yv = tiny_data(9, seed=5)
    model = fg.load(TINY, threads=1)
    h = model.fit(x, y, epochs=2, validation_data=(xv, yv), verbose=0)
    assert h.history["val_loss"][-1] == pytest.approx(model.evaluate(xv, yv, verbose=0)[0],
                                                      rel=1e-6)
    logs = model.evaluate(xv, yv, verbose=0, return_dict=True)
    assert list(logs) == ["loss", "accuracy"]
    # accuracy by hand from predict
    acc = (model.predict(xv).argmax(1) == yv["classifier"].argmax(1)).mean()
    assert logs["accuracy"] == pytest.approx(acc, abs=1e-6)


def test_callbacks_and_stop_training():
    calls = []

    class Recorder(fg.Callback):
        def on_train_begin(self, logs=None):
            calls.append("begin")

        def on_epoch_end(self, epoch, logs=None):
            calls.append((epoch, sorted(logs)))
            if epoch == 1:
                self.model.stop_training = True

        def on_train_batch_end(self, batch, logs=None):
            calls.append(("batch", batch))

    x, y = tiny_data(8)
    model = fg.load(TINY, threads=1)
    h = model.fit(x, y, epochs=5, batch_size=4, callbacks=[Recorder()], verbose=0)
    assert h.epoch == [0, 1] and model.epochs_done == 2
    assert calls == ["begin", ("batch", 0), ("batch", 1), (0, ["accuracy", "loss"]),
                     ("batch", 0), ("batch", 1), (1, ["accuracy", "loss"])]


def test_save_load_and_resume_continue_exactly(tmp_path):
    x, y = tiny_data(15)
    straight = fg.load(TINY, threads=1)
    straight.fit(x, y, epochs=3, verbose=0)
    first = fg.load(TINY, threads=1)
    first.fit(x, y, epochs=1, checkpoint=tmp_path / "ckpt.safetensors", verbose=0)
    resumed = fg.load(TINY, threads=1)
    h = resumed.fit(x, y, epochs=3, resume=tmp_path / "ckpt.safetensors", verbose=0)
    assert h.epoch == [1, 2]
    assert weights_equal(resumed.get_weights(), straight.get_weights())
    resumed.save(tmp_path / "final.safetensors")
    loaded = fg.load(TINY, weights=tmp_path / "final.safetensors")
    assert np.array_equal(loaded.predict(x), resumed.predict(x))


def test_progress_output(capfd):
    x, y = tiny_data(8)
    model = fg.load(TINY, threads=1)
    model.fit(x, y, epochs=2, verbose=0)
    assert capfd.readouterr().out == ""
    model.fit(x, y, epochs=2, verbose=2)
    out = capfd.readouterr().out
    assert "Epoch 3/4" in out and "Epoch 4/4" in out and "loss:" in out


INTERRUPT = textwrap.dedent("""
    import os, shutil, signal, sys
    sys.path.insert(0, {tests!r})
    import fusiongraph as fg
    from conftest import TINY, tiny_data
    x, y = tiny_data(40)
    ckpt, copy = sys.argv[1], sys.argv[2]
    class Interrupt(fg.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                shutil.copy(ckpt, copy)   # the checkpoint after epoch 1
        def on_train_batch_end(self, batch, logs=None):
            if self.model.epochs_done >= 0 and len(self.model.history.epoch) == 1 and batch == 2:
                os.kill(os.getpid(), signal.SIGINT)
    model = fg.load(TINY, threads=1)
    try:
        model.fit(x, y, epochs=3, batch_size=4, checkpoint=ckpt, callbacks=[Interrupt()],
                  verbose=0)
    except KeyboardInterrupt:
        print("interrupted", len(model.history.epoch))
        sys.exit(0)
    print("not interrupted")
    sys.exit(1)
""")


def test_ctrl_c_stops_at_a_batch_and_keeps_the_checkpoint(tmp_path):
    script = tmp_path / "interrupt.py"
    script.write_text(INTERRUPT.format(tests=str(pathlib.Path(__file__).parent)))
    ckpt, copy = tmp_path / "ckpt.safetensors", tmp_path / "epoch1.safetensors"
    proc = subprocess.run([sys.executable, str(script), str(ckpt), str(copy)],
                          capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "interrupted 1"
    assert ckpt.read_bytes() == copy.read_bytes()
    # and the checkpoint resumes
    x, y = tiny_data(40)
    model = fg.load(TINY, threads=1)
    h = model.fit(x, y, epochs=2, batch_size=4, resume=ckpt, verbose=0)
    assert h.epoch == [1]
