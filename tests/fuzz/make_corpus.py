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
image seeds        PNGs written here with zlib (grey 1/4/8/16-bit, grey+alpha, RGB 8/16-bit,
                   RGBA, palette with and without tRNS, Adam7 interlaced), JPEGs from Debian's
                   cjpeg when it is installed (baseline, progressive, grey, arithmetic,
                   restart markers, 4:2:0 and 4:4:4, one with an EXIF orientation)
audio seeds        WAVs (PCM 8/16/24-bit, float, mono and stereo, odd rates) written here, and
                   FLAC, OGG/Vorbis, AIFF and AU files from sox when it is installed
table seeds        CSV, TSV and JSON lines snippets: quotes, "" escapes, newlines in quotes, CRLF,
                   a BOM, unicode, empty cells, nulls, keys seen late
"""

import hashlib
import io
import json
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
import zlib

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


# ---- images -------------------------------------------------------------------------------------

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
         (1, 0, 2, 1))  # (first row, first column, row step, column step) of each pass


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_scanline(samples, depth):
    """One row of samples (ints) packed at `depth` bits, filter type 0 first."""
    if depth == 16:
        return b"\x00" + b"".join(struct.pack(">H", v) for v in samples)
    if depth == 8:
        return b"\x00" + bytes(samples)
    per_byte = 8 // depth
    out = bytearray()
    for i in range(0, len(samples), per_byte):
        byte = 0
        for k, v in enumerate(samples[i:i + per_byte]):
            byte |= v << (8 - depth * (k + 1))
        out.append(byte)
    return b"\x00" + bytes(out)


def png(height, width, colour, depth=8, interlaced=False, palette=None, trns=None, seed=0):
    channels = PNG_CHANNELS[colour]
    top = (len(palette) if palette else 1 << depth) - 1
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, top + 1, (height, width, channels)).tolist()
    raw = b""
    for row0, col0, row_step, col_step in (ADAM7 if interlaced else ((0, 0, 1, 1),)):
        for r in range(row0, height, row_step):
            cols = range(col0, width, col_step)
            if len(cols):
                raw += png_scanline([v for c in cols for v in pixels[r][c]], depth)
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, int(interlaced))
    out = PNG_MAGIC + png_chunk(b"IHDR", header)
    if palette:
        out += png_chunk(b"PLTE", b"".join(bytes(c) for c in palette))
    if trns:
        out += png_chunk(b"tRNS", bytes(trns))
    return out + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")


def cjpeg(height, width, grey, options):
    """A JPEG from Debian's cjpeg (libjpeg-turbo-progs); None when it is not installed."""
    if shutil.which("cjpeg") is None:
        return None
    rng = np.random.default_rng(height * 31 + width)
    y, x = np.mgrid[0:height, 0:width]
    base = (x * 255 // max(width - 1, 1) + y * 7) % 256
    planes = 1 if grey else 3
    pixels = np.stack([(base + 60 * k + rng.integers(0, 9, base.shape)) % 256
                       for k in range(planes)], axis=-1).astype(np.uint8)
    header = f"P{5 if grey else 6}\n{width} {height}\n255\n".encode()
    result = subprocess.run(["cjpeg", *options], input=header + pixels.tobytes(),
                            capture_output=True, check=True)
    return result.stdout


def exif_app1(orientation):
    """An APP1 segment with a big-endian EXIF IFD0 holding only the orientation tag."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def image_seeds():
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (9, 9, 9), (200, 100, 50)]
    blobs = [png(7, 5, 0), png(1, 1, 0), png(13, 3, 0, depth=1), png(5, 7, 0, depth=4),
             png(6, 4, 0, depth=16), png(5, 5, 4), png(7, 13, 2), png(3, 4, 2, depth=16),
             png(4, 7, 6), png(5, 3, 6, depth=16), png(6, 6, 3, palette=palette),
             png(6, 5, 3, depth=4, palette=palette, trns=[0, 128]),
             png(9, 11, 2, interlaced=True), png(8, 8, 0, interlaced=True, depth=16),
             png(3, 5, 6, interlaced=True)]
    jpeg_options = [[], ["-progressive"], ["-grayscale"], ["-arithmetic"], ["-restart", "1"],
                    ["-sample", "1x1"], ["-sample", "2x2", "-quality", "30"],
                    ["-progressive", "-grayscale", "-optimize"]]
    for k, options in enumerate(jpeg_options):
        grey = "-grayscale" in options
        jpeg = cjpeg(9 + k, 16 - k, grey and k % 2 == 0, options)
        if jpeg is not None:
            blobs.append(jpeg)
    jpeg = cjpeg(8, 5, False, [])
    if jpeg is not None:
        blobs += [jpeg[:2] + exif_app1(6) + jpeg[2:], jpeg[:2] + exif_app1(3) + jpeg[2:]]
    return blobs


def image_words():
    png_words = ["\x89PNG\r\n\x1a\n", "IHDR", "PLTE", "IDAT", "IEND", "tRNS", "gAMA", "sBIT",
                 "sRGB", "iCCP", "pHYs", "tEXt", "zTXt", "\x00\x00\x00\x0dIHDR", "\x78\x9c",
                 "\x78\xda", "\x00\x00\x00\x00IEND\xae\x42\x60\x82"]
    jpeg_markers = {"SOI": 0xD8, "SOF0": 0xC0, "SOF1": 0xC1, "SOF2": 0xC2, "SOF9": 0xC9,
                    "SOF10": 0xCA, "DHT": 0xC4, "DAC": 0xCC, "DQT": 0xDB, "DRI": 0xDD,
                    "SOS": 0xDA, "EOI": 0xD9, "RST0": 0xD0, "APP0": 0xE0, "APP1": 0xE1,
                    "APP14": 0xEE, "COM": 0xFE}
    jpeg_words = ["\xff" + chr(code) for code in jpeg_markers.values()]
    jpeg_words += ["\xff\xd8\xff", "JFIF\x00", "Exif\x00\x00", "Adobe", "II*\x00", "MM\x00*",
                   "\x01\x12\x00\x03", "\x12\x01\x03\x00", "\xff\x00", "\x11\x00", "\x22\x00"]
    return png_words + jpeg_words + ["\xff\xff", "\x7f\xff", "\x00\x00\x00\x00", "\x00\x01"]


# ---- audio --------------------------------------------------------------------------------------

def wav_pcm(rate, channels, sample_width, frames, seed=0):
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(sample_width)
        w.setframerate(rate)
        w.writeframes(rng.integers(0, 256, frames * channels * sample_width, np.uint8).tobytes())
    return out.getvalue()


def wav_float(rate, channels, values):
    """An IEEE-float WAV (format tag 3), which Python's wave module does not write."""
    data = np.asarray(values, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * channels * 4, channels * 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"fact" + struct.pack("<II", 4, len(values) // channels)
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def sox(extension, rate, channels, seconds, *effect):
    """A sound synthesised by sox (FLAC, OGG, AIFF, AU); None when sox is not installed."""
    if shutil.which("sox") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / f"seed.{extension}"
        subprocess.run(["sox", "-n", "-r", str(rate), "-c", str(channels), str(path), "synth",
                        str(seconds), *effect], capture_output=True, check=True)
        return path.read_bytes()


def audio_seeds():
    t = np.arange(101) / 8000.0
    blobs = [wav_pcm(8000, 1, 2, 127), wav_pcm(44100, 2, 2, 64, seed=1), wav_pcm(11025, 1, 1, 13),
             wav_pcm(16000, 1, 3, 31), wav_pcm(22050, 3, 2, 7), wav_pcm(7, 1, 2, 5),
             wav_float(8000, 1, np.sin(2 * np.pi * 440 * t)),
             wav_float(48000, 2, np.tile([0.5, -0.25], 50)), wav_float(8000, 1, [0.0])]
    blobs.append(blobs[0][:60])  # the data chunk cut short (truncated)
    for extension, rate, channels, seconds, effect in (
            ("flac", 8000, 1, 0.05, ("sine", "440")), ("flac", 16000, 2, 0.02, ("noise",)),
            ("ogg", 8000, 1, 0.1, ("sine", "300")), ("ogg", 22050, 2, 0.05, ("square", "200")),
            ("aiff", 8000, 1, 0.01, ("sine", "100")), ("au", 11025, 1, 0.01, ("noise",))):
        blob = sox(extension, rate, channels, seconds, *effect)
        if blob is not None:
            blobs.append(blob)
    return blobs


def audio_words():
    return ["RIFF", "RIFX", "RF64", "WAVE", "fmt ", "data", "fact", "LIST", "INFO", "ds64",
            "cue ", "smpl", "PEAK", "fLaC", "OggS", "\x01vorbis", "\x03vorbis", "\x05vorbis",
            "FORM", "AIFF", "AIFC", "COMM", "SSND", ".snd", "caff", "desc", "\x01\x00",
            "\x03\x00", "\xfe\xff", "\x40\x1f\x00\x00", "\x44\xac\x00\x00", "\x10\x00",
            "\x20\x00", "\xff\xff\xff\xff", "\x00\x00\x00\x00", "\x7f\xff\xff\xff"]


# ---- tables -------------------------------------------------------------------------------------

def table_seeds():
    texts = [
        "image,label\na.png,cat\nb.png,dog\n",
        'path,text,label\r\n"a, b.wav","said ""hi""\r\nthen left",1\r\nc.wav,,0\r\n',
        "\ufeffname,value\ncaf\u00e9,3.5\n\u732b,-1e3\n",
        "a,b,c\n1,2\n",  # a row with too few cells
        'a\n"unterminated\n',
        "x\n\n",
        "a,a\n1,2\n",
        "image\tlabel\ta b\nx.png\t3\t\"q\"\n",
        "one\n" + "v\n" * 20,
        '{"image": "a.png", "label": "cat", "score": 0.5}\n{"image": "b.png", "label": null}\n',
        '{"text": "caf\\u00e9 \\"x\\"", "n": 1e400, "ok": true}\r\n\r\n{"text": "y", "extra": 3}\n',
        '{"a": 1}\n[1, 2]\n',
        '{"a": {"nested": 1}}\n',
        '{"": 1}\n',
        '{"a": "\\ud800"}\n',
    ]
    return [t.encode("utf-8") for t in texts] + [b"a,b\n\xff\xfe,\x00\n"]


def table_words():
    return [",", "\t", '"', '""', "\r\n", "\n", '","', "\xef\xbb\xbf", "{", "}", "[", "]", ":",
            '": ', '", "', "null", "true", "false", "\\u0000", "\\ud800", "\\\"", "1e400", "-0",
            "0.5", "9223372036854775808", '{"image": ', '"label"', '"text"', "image,label\n"]


def main():
    makers = {"graph": (graph_seeds, graph_words),
              "safetensors": (safetensors_seeds, safetensors_words),
              "npy": (npy_seeds, npy_words),
              "image": (image_seeds, image_words),
              "audio": (audio_seeds, audio_words),
              "table": (table_seeds, table_words)}
    if len(sys.argv) < 2 or any(t not in makers for t in sys.argv[2:]):
        sys.exit("usage: tests/fuzz/make_corpus.py OUT_DIR "
                 "[graph|safetensors|npy|image|audio|table ...]")
    out = pathlib.Path(sys.argv[1])
    for target in sys.argv[2:] or makers:
        seeds, words = makers[target]
        count = write_seeds(out / "seeds" / target, seeds())
        write_dict(out / f"{target}.dict", words())
        print(f"make_corpus: {count} {target} seeds in {out / 'seeds' / target}")


if __name__ == "__main__":
    main()
