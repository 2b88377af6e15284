#!/usr/bin/env python3
"""Writes a small learnable data folder for a graph's inputs and trained output (no numpy).

Every sample gets a class c in [0, classes); each input carries it weakly, so a model can learn
it from any one modality:
  float inputs  values uniform in [0, 1) plus 0.04 * c on the first channel (last axis)
  int32 inputs  token ids uniform in [1, 100) plus 100 * c, below --vocab
  targets       one-hot rows of c (categorical_crossentropy), float32

  python3 scripts/make_training_data.py --out data/train --samples 256 \
      --input text=int32:100 --input image=float32:224,224,3 --input audio=float32:16000,1 \
      --output classifier=10

Writes DIR/<input>.npy and DIR/<output>.npy (numpy's .npy format 1.0, C order).
"""
import argparse
import os
import random
import struct


def write_npy(path, descr, shape, values):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else ""))
    header += " " * (64 - (10 + len(header) + 1) % 64) + "\n"
    with open(path + ".tmp", "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%d%s" % (len(values), "f" if descr == "<f4" else "i"), *values))
    os.replace(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vocab", type=int, default=1000)
    p.add_argument("--input", action="append", default=[], help="NAME=float32|int32:D1,D2,...")
    p.add_argument("--output", required=True, help="NAME=CLASSES")
    a = p.parse_args()
    rng = random.Random(a.seed)
    out_name, classes = a.output.split("=")
    classes = int(classes)
    labels = [i % classes for i in range(a.samples)]
    rng.shuffle(labels)
    os.makedirs(a.out, exist_ok=True)
    for spec in a.input:
        name, rest = spec.split("=")
        dtype, dims = rest.split(":")
        shape = [int(d) for d in dims.split(",")]
        per = 1
        for d in shape:
            per *= d
        last = shape[-1]
        values = []
        for c in labels:
            if dtype == "int32":
                values += [min(a.vocab - 1, 1 + rng.randrange(99) + 100 * c) for _ in range(per)]
            else:
                values += [rng.random() + (0.04 * c if k % last == 0 else 0.0) for k in range(per)]
        write_npy(os.path.join(a.out, name + ".npy"), "<i4" if dtype == "int32" else "<f4",
                  [a.samples] + shape, values)
    onehot = []
    for c in labels:
        onehot += [1.0 if k == c else 0.0 for k in range(classes)]
    write_npy(os.path.join(a.out, out_name + ".npy"), "<f4", [a.samples, classes], onehot)
    print("wrote %d samples to %s" % (a.samples, a.out))


if __name__ == "__main__":
    main()
