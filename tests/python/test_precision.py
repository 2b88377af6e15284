"""Reduced precision from Python: load(..., precision="bf16") runs the bf16 plan, whose outputs
stay within bf16's roundings of f32's (exactly f32's where the CPU has no native bf16 and the
model says so in its warnings); evaluate runs in it; a bad name raises GraphError listing the
choices. Bounds: docs/performance.md, "Accuracy of reduced precision"."""
import numpy as np
import pytest

import fusiongraph as fg
from conftest import SOURCE_DIR, TINY, tiny_data

REFERENCE = SOURCE_DIR / "graphs" / "multimodal_fusion.yaml"


def relative_error(got, want, floor=1e-3):
    """|got - want| / max(|want|, floor) per value, graph-runner evaluate --against's."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return np.abs(got - want) / np.maximum(np.abs(want), floor)


def runs_in_f32(model):
    """True when a bf16 model fell back to f32 (no native bf16, e.g. ONEDNN_MAX_CPU_ISA=AVX2)."""
    return any("no native bf16" in w for w in model.warnings)


def test_precision_names_and_property():
    names = fg.precision_names()
    assert names[:2] == ["f32", "bf16"]
    assert fg.load(TINY, threads=1).precision == "f32"
    assert fg.load(TINY, threads=1, precision="bf16").precision == "bf16"
    assert fg.load_string(TINY.read_text(), precision="bf16").precision == "bf16"


def test_bad_precision_raises_with_the_choices():
    with pytest.raises(fg.GraphError) as info:
        fg.load(TINY, precision="f16")
    message = str(info.value)
    assert "'f16'" in message
    for name in fg.precision_names():
        assert name in message
    with pytest.raises(fg.GraphError, match="bf16"):
        fg.load_string(TINY.read_text(), precision="BF16")


def test_bf16_outputs_close_to_f32_on_the_tiny_graph():
    x, _ = tiny_data(31, seed=2)
    f32 = fg.load(TINY, threads=2, init_seed=5)
    bf16 = fg.load(TINY, threads=2, init_seed=5, precision="bf16")
    want = f32.run(x)["classifier"]
    got = bf16.run(x)["classifier"]
    assert got.dtype == np.float32 and got.shape == want.shape
    err = relative_error(got, want)
    if runs_in_f32(bf16):
        assert np.array_equal(got, want)
        return
    # Two bf16 dense layers (13 -> 16 -> 3): a few rounding units (2^-9 = 0.2 %) per probability.
    assert 0 < err.max() <= 0.02
    assert err.mean() <= 0.005
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 29 / 31


def test_bf16_outputs_close_to_f32_on_the_reference_graph():
    f32 = fg.load(REFERENCE, threads=2, init_seed=1)
    bf16 = fg.load(REFERENCE, threads=2, init_seed=1, precision="bf16")
    rng = np.random.default_rng(5)
    x = {"text": rng.integers(1, 1000, (2, 100)).astype(np.int32),
         "image": rng.random((2, 224, 224, 3), dtype=np.float32),
         "audio": rng.random((2, 16000, 1), dtype=np.float32)}
    want = f32.run(x)["classifier"]
    got = bf16.run(x)["classifier"]
    if runs_in_f32(bf16):
        assert np.array_equal(got, want)
        return
    # Five bf16 layers deep on the image branch: each probability within 2 % (the C++ test
    # tests/engine/test_precision_error.cpp bounds every node).
    err = relative_error(got, want)
    assert 0 < err.max() <= 0.02


def test_evaluate_runs_in_the_models_precision():
    x, y = tiny_data(40, seed=3)
    f32 = fg.load(TINY, threads=2, init_seed=5)
    bf16 = fg.load(TINY, threads=2, init_seed=5, precision="bf16")
    loss32, acc32 = f32.evaluate(x, y, verbose=0)
    loss16, acc16 = bf16.evaluate(x, y, verbose=0)
    if runs_in_f32(bf16):
        assert (loss16, acc16) == (loss32, acc32)
        return
    assert loss16 != loss32  # it did run in bf16
    assert abs(loss16 - loss32) <= 0.01 * loss32
    assert abs(acc16 - acc32) <= 2 / 40
