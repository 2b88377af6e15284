#!/usr/bin/python3
"""Synthetic stand-ins for the peers' artifacts/ (for testing fusiongraph_peer.py without
running run_peers.sh): Keras-layout weights with index.json, raw batch-32 inputs, and, with
--refs, reference outputs ref_{probs,text,image,audio}_b8.bin computed by the peers' own
independent numpy forward pass (check_keras_weights.forward, imported from --peers-dir).

Usage: /usr/bin/python3 make_test_artifacts.py OUTDIR [--refs] [--peers-dir ../shared/bench/peers]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fusiongraph_peer import INPUTS, WEIGHT_MAP, FILE_BATCH  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--refs", action="store_true")
    ap.add_argument("--peers-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                        "..", "..", "..", "shared", "bench", "peers"))
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    wdir = os.path.join(a.out, "keras_weights")
    os.makedirs(wdir, exist_ok=True)
    index, w = {}, {}
    for name, (_, shape) in WEIGHT_MAP.items():
        if len(shape) == 1:
            v = rng.uniform(-0.1, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[:-1]))
            lim = np.sqrt(6.0 / (fan_in + shape[-1]))
            v = rng.uniform(-lim, lim, shape)
        v = v.astype(np.float32)
        v.tofile(os.path.join(wdir, name + ".bin"))
        index[name] = shape
        w[name] = v
    json.dump(index, open(os.path.join(wdir, "index.json"), "w"), indent=1)
    x = {}
    for name, (fname, dtype, shape) in INPUTS.items():
        if name == "text":
            v = rng.integers(0, 1000, size=[FILE_BATCH] + shape, dtype=np.int32)
        elif name == "image":
            v = rng.random([FILE_BATCH] + shape, dtype=np.float32)
        else:
            v = (rng.random([FILE_BATCH] + shape, dtype=np.float32) * 2 - 1).astype(np.float32)
        v.tofile(os.path.join(a.out, fname))
        x[name] = v
    if a.refs:
        sys.path.insert(0, os.path.abspath(a.peers_dir))
        from check_keras_weights import forward  # the peers' independent numpy Keras forward
        outs = {"probs": [], "text": [], "image": [], "audio": []}
        for s in range(8):
            p, h, img, aud = forward(w, x["text"][s], x["image"][s], x["audio"][s])
            for k, v in zip(("probs", "text", "image", "audio"), (p, h, img, aud)):
                outs[k].append(v)
        for k, v in outs.items():
            np.asarray(v, dtype=np.float32).tofile(os.path.join(a.out, f"ref_{k}_b8.bin"))
    print(f"wrote synthetic artifacts to {a.out}")


if __name__ == "__main__":
    main()
