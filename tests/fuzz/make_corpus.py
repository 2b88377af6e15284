#!/usr/bin/env python3
"""Seed corpora and dictionaries for the fuzz targets (docs/fuzzing.md), made from the source tree.

    tests/fuzz/make_corpus.py OUT_DIR [TARGET...]

writes, for each target (default: all), OUT_DIR/seeds/<target>/ (small files, regenerated on
every call) and OUT_DIR/<target>.dict (a libFuzzer -dict= file). Nothing is downloaded; the
tree stays untouched.

graph seeds        tests/malformed/*.yaml, graphs/*.yaml, examples/**/*.yaml, the ```yaml blocks
                   of docs/, and every C++ raw string in tests/ that holds a graph (`nodes:`)
safetensors seeds  files for the graph fg::fuzz::safetensors_file validates against
                   (kValidateGraph in tests/fuzz/fuzz_entry_points.cpp): F32, F16, BF16, aligned
                   and not, with metadata, and ones that miss, add or transpose a tensor
npy seeds          numpy's own np.save output for each dtype the reader accepts and some it
                   refuses, format versions 1.0, 2.0 and 3.0
"""

import hashlib
import io
import json
import pathlib
import re
import shutil
import struct
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]


def write_seeds(folder, blobs):
    """Writes each blob under its SHA-1, as libFuzzer names corpus files."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for blob in blobs:
        (folder / hashlib.sha1(blob).hexdigest()).write_bytes(blob)
    return len(set(blobs))


def write_dict(path, words):
    """A libFuzzer dictionary: one quoted token a line, bytes outside printable ASCII as \\xNN."""
    lines = []
    for word in sorted(set(words)):
        escaped = "".join(c if " " <= c <= "~" and c not in '"\\' else f"\\x{ord(c):02X}"
                          for c in word)
        lines.append(f'"{escaped}"')
    path.write_text("\n".join(lines) + "\n")


# ---- graphs -------------------------------------------------------------------------------------

RAW_STRING = re.compile(r'R"([^()\\ ]{0,16})\((.*?)\)\1"', re.S)
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)


def graph_seeds():
    blobs = []
    for pattern in ("tests/malformed/*.yaml", "graphs/*.yaml", "examples/**/*.yaml"):
        blobs += [p.read_bytes() for p in sorted(ROOT.glob(pattern))]
    for doc in sorted(ROOT.glob("docs/**/*.md")):
        blobs += [m.group(1).encode() for m in YAML_BLOCK.finditer(doc.read_text())]
    for source in sorted(ROOT.glob("tests/**/*.cpp")):
        for m in RAW_STRING.finditer(source.read_text()):
            if "nodes:" in m.group(2):
                blobs.append(m.group(2).encode())
    return blobs


def graph_words():
    """The graph language: top-level and input keys, op names, attribute names, activations."""
    words = ["name", "description", "inputs", "nodes", "outputs", "shape", "dtype",
             "default_shape", "op", "input", "float32", "int32", "null", "true", "false",
             "- {name: ", ", op: ", ", input: ", "inputs: [", "{shape: [", "&a", "*a", "<<",
             "---", "...", "!!str", "!!int", "~", "[]", "{}", "- ", ": ", "\n  ", "\n  - "]
    layers = "\n".join(p.read_text() for p in sorted(ROOT.glob("layers/*.cpp")))
    ops = (ROOT / "layers/registry.cpp").read_text()
    words += re.findall(r"OpInfo ([a-z0-9_]+)_op\(\);", ops)  # OpInfo dense_op(); -> dense
    words += re.findall(r'attrs\.[a-z_]+\("([a-z0-9_]+)"', layers)
    attrs = (ROOT / "framework/attrs.cpp").read_text()
    words += re.findall(r'"([a-z_]+)"', attrs)  # activations, paddings, ...
    words += ["-1", "0", "1", "3", "7", "13", "127", "0.5", "2147483647", "2147483648",
              "9223372036854775807", "4611686018427387904", "1e308", ".nan", ".inf"]
    return words


# ---- safetensors --------------------------------------------------------------------------------

# The weights of kValidateGraph (tests/fuzz/fuzz_entry_points.cpp), Keras shapes.
WEIGHTS = {
    "d.kernel": (8, 4), "d.bias": (4,),
    "bn.gamma": (4,), "bn.beta": (4,), "bn.moving_mean": (4,), "bn.moving_variance": (4,),
    "e.embeddings": (10, 3),
    "c.kernel": (3, 3, 2), "c.bias": (2,),
    "head.kernel": (6, 2), "head.bias": (2,),
}
DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None}


def tensor_bytes(values, dtype):
    if dtype == "BF16":  # the upper half of each float32
        return (values.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
    return values.astype(np.dtype(DTYPES[dtype]).newbyteorder("<")).tobytes()


def safetensors(tensors, dtype_of=lambda name: "F32", metadata=None, align=8):
    """A safetensors file; `align` pads the header (8 keeps F32 data 4-byte aligned: borrowed)."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, values in tensors.items():
        dtype = dtype_of(name)
        blob = tensor_bytes(values, dtype)
        header[name] = {"dtype": dtype, "shape": list(values.shape),
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((align - len(text) % align) % align)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    rng = np.random.default_rng(14)
    weights = {k: rng.uniform(-1, 1, s).astype(np.float32) for k, s in WEIGHTS.items()}
    weights["bn.moving_variance"] += np.float32(1.5)  # a variance, so positive
    blobs = [safetensors(weights, metadata={"format": "pt"})]
    for dtype in DTYPES:
        blobs.append(safetensors(weights, lambda n, d=dtype: d))
    blobs.append(safetensors(weights, lambda n: "F16" if "kernel" in n else "F32", align=1))
    blobs.append(safetensors(weights, lambda n: "BF16" if "bias" in n else "F32", align=3))
    missing = dict(weights)
    del missing["c.bias"]
    blobs.append(safetensors(missing))
    blobs.append(safetensors({**weights, "d.kernel_extra": np.zeros((2, 2), np.float32)}))
    blobs.append(safetensors({**weights, "d.kernel": weights["d.kernel"].T.copy()}))
    blobs.append(safetensors({}))
    blobs.append(safetensors({"scalar": np.float32(1.5).reshape(()),
                              "empty": np.zeros((0, 3), np.float32)}, metadata={}))
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 6.1e-5, 1e-45], np.float32)
    blobs.append(safetensors({"special": special}, lambda n: "F16"))
    return blobs


def safetensors_words():
    return ['"dtype"', '"shape"', '"data_offsets"', '"__metadata__"', '"F32"', '"F16"', '"BF16"',
            '"F64"', '"I32"', ":[", "],", "{}", "[]", "\\u0000", "\\ud800", "1e400", "-0",
            "18446744073709551616", "9223372036854775807"] + [f'"{k}"' for k in WEIGHTS]


# ---- npy ----------------------------------------------------------------------------------------

def npy(array, version=None):
    out = io.BytesIO()
    if version is None:
        np.save(out, array)
    else:
        np.lib.format.write_array(out, array, version=version)
    return out.getvalue()


def npy_seeds():
    rng = np.random.default_rng(14)
    blobs = []
    for dtype in ("<f4", "<f8", "<i4", "<i8", ">f4", "|u1", "<f2", "?"):
        for shape in ((), (0,), (7,), (2, 3), (1, 13, 2)):
            blobs.append(npy((rng.uniform(-9, 9, shape)).astype(dtype)))
    blobs.append(npy(np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3))))
    blobs.append(npy(np.arange(6, dtype="<i4").reshape(3, 2), version=(2, 0)))
    blobs.append(npy(np.arange(4, dtype="<f8"), version=(3, 0)))
    blobs.append(npy(np.array([2**40, -(2**40)], dtype="<i8")))
    return blobs


def npy_words():
    return ["\x93NUMPY", "'descr'", "'fortran_order'", "'shape'", "True", "False", "'<f4'",
            "'<f8'", "'<i4'", "'<i8'", "'>f4'", "'|u1'", "'=f4'", "(", ")", ",)", "L",
            "9223372036854775807", "4611686018427387904"]


def main():
    makers = {"graph": (graph_seeds, graph_words),
              "safetensors": (safetensors_seeds, safetensors_words),
              "npy": (npy_seeds, npy_words)}
    if len(sys.argv) < 2 or any(t not in makers for t in sys.argv[2:]):
        sys.exit("usage: tests/fuzz/make_corpus.py OUT_DIR [graph|safetensors|npy ...]")
    out = pathlib.Path(sys.argv[1])
    for target in sys.argv[2:] or makers:
        seeds, words = makers[target]
        count = write_seeds(out / "seeds" / target, seeds())
        write_dict(out / f"{target}.dict", words())
        print(f"make_corpus: {count} {target} seeds in {out / 'seeds' / target}")


if __name__ == "__main__":
    main()
