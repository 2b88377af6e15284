#!/usr/bin/python3
"""FusionGraph as a peer of the shared peer benchmark (../shared/bench/peers, README.md there).

Run from the peers' work folder (PEERS_WORKDIR, default /tmp/fusiongraph-peers), e.g. through

    PEERS_EXTRA_CMD="/usr/bin/python3 /path/to/repo/bench/peers/fusiongraph_peer.py" \
        bash ../shared/bench/peers/run_peers.sh

or by hand after run_peers.sh has written artifacts/:

    cd /tmp/fusiongraph-peers && /usr/bin/python3 /path/to/repo/bench/peers/fusiongraph_peer.py

What it does:
  1. converts artifacts/keras_weights/*.bin (Keras layout, shapes in index.json) into
     FusionGraph safetensors files keyed "<node>.<param>" (the whole graph, and one per branch),
     checking every name, shape and file size against the reference graph;
  2. converts artifacts/input_{text,image,audio}_b32.bin into .npy;
  3. checks FusionGraph's output against ref_probs_b8.bin / ref_<branch>_b8.bin (when present)
     with `graph-runner run` (a wrong conversion would make the timings meaningless);
  4. runs `graph-runner bench --json` for batch 1, 8 and 32 and, at batch 1, on each branch
     alone (a sub-graph with that input, ending at the branch's dense layer), in rounds;
  5. writes out/peer_fusiongraph.json in the peers' raw-block schema
     {"peer", "label", "raw": {variant: {"b1"|"b8"|"b32"|"image"|"audio"|"text": [block...]}}},
     block = {"times": [seconds...], "foreign": share of CPU used by other processes}.

Converted files go to fusiongraph/ in the work folder (reused while newer than index.json).
Use /usr/bin/python3 (Debian's, with numpy and PyYAML).
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Keras-layout file name in artifacts/keras_weights -> (FusionGraph key, Keras shape).
WEIGHT_MAP = {
    "embedding": ("text_embedding.embeddings", [1000, 64]),
    "lstm_kernel": ("text_lstm.kernel", [64, 128]),
    "lstm_recurrent_kernel": ("text_lstm.recurrent_kernel", [32, 128]),
    "lstm_bias": ("text_lstm.bias", [128]),
    "image_conv1_kernel": ("image_conv1.kernel", [3, 3, 3, 64]),
    "image_conv1_bias": ("image_conv1.bias", [64]),
    "image_conv2_kernel": ("image_conv2.kernel", [3, 3, 64, 128]),
    "image_conv2_bias": ("image_conv2.bias", [128]),
    "image_conv3_kernel": ("image_conv3.kernel", [3, 3, 128, 256]),
    "image_conv3_bias": ("image_conv3.bias", [256]),
    "image_dense_kernel": ("image_dense.kernel", [26 * 26 * 256, 256]),
    "image_dense_bias": ("image_dense.bias", [256]),
    "audio_conv1_kernel": ("audio_conv1.kernel", [3, 1, 64]),
    "audio_conv1_bias": ("audio_conv1.bias", [64]),
    "audio_conv2_kernel": ("audio_conv2.kernel", [3, 64, 128]),
    "audio_conv2_bias": ("audio_conv2.bias", [128]),
    "audio_conv3_kernel": ("audio_conv3.kernel", [3, 128, 256]),
    "audio_conv3_bias": ("audio_conv3.bias", [256]),
    "audio_dense_kernel": ("audio_dense.kernel", [256, 256]),
    "audio_dense_bias": ("audio_dense.bias", [256]),
    "head_kernel": ("classifier.kernel", [32 + 256 + 256, 10]),
    "head_bias": ("classifier.bias", [10]),
}

# graph input -> (raw file, dtype, per-sample shape); batch 32 in the files
INPUTS = {
    "text": ("input_text_b32.bin", np.int32, [100]),
    "image": ("input_image_b32.bin", np.float32, [224, 224, 3]),
    "audio": ("input_audio_b32.bin", np.float32, [16000, 1]),
}
FILE_BATCH = 32
BRANCHES = ("image", "audio", "text")


def log(msg):
    print(f"[fusiongraph] {msg}", flush=True)


class PeerError(Exception):
    pass


def write_atomic(path, write):
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict key -> float32 numpy array. F32, little-endian, sorted keys, contiguous."""
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    offset = 0
    keys = sorted(tensors)
    for k in keys:
        n = tensors[k].nbytes
        header[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [offset, offset + n]}
        offset += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)  # data starts 8-byte aligned

    def write(f):
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for k in keys:
            f.write(np.ascontiguousarray(tensors[k], dtype="<f4").tobytes())

    write_atomic(path, write)


def load_keras_weights(art):
    wdir = os.path.join(art, "keras_weights")
    index_path = os.path.join(wdir, "index.json")
    if not os.path.exists(index_path):
        raise PeerError(f"{index_path} not found: run run_peers.sh once (it exports artifacts/)")
    index = json.load(open(index_path))
    problems = []
    for name in index:
        if name not in WEIGHT_MAP:
            problems.append(f"unknown weight '{name}' in index.json (not mapped to a FusionGraph node)")
    out = {}
    for name, (key, shape) in WEIGHT_MAP.items():
        if name not in index:
            problems.append(f"index.json lacks '{name}' (for {key})")
            continue
        if list(index[name]) != shape:
            problems.append(f"'{name}': index.json says shape {index[name]}, {key} needs the Keras shape {shape}")
            continue
        path = os.path.join(wdir, name + ".bin")
        want = 4 * int(np.prod(shape))
        if not os.path.exists(path) or os.path.getsize(path) != want:
            got = os.path.getsize(path) if os.path.exists(path) else "no file"
            problems.append(f"{path}: expected {want} bytes (float32 {shape}), found {got}")
            continue
        out[key] = np.fromfile(path, dtype="<f4").reshape(shape)
    if problems:
        raise PeerError("Keras weights do not match the reference graph:\n  " + "\n  ".join(problems))
    return out


def branch_graphs(graph_path, workdir):
    """One YAML per graph input: the nodes that descend from that input only, ending at the node
    the fusion consumes. Returns {input: (yaml path, [node names])}."""
    g = yaml.safe_load(open(graph_path))
    nodes = g["nodes"]

    def ins_of(n):
        ins = n.get("inputs", n.get("input"))
        return [ins] if isinstance(ins, str) else list(ins or [])

    origin = {name: {name} for name in g["inputs"]}
    for n in nodes:
        origin[n["name"]] = set().union(*(origin[i] for i in ins_of(n)))
    out = {}
    for inp in g["inputs"]:
        members = [n for n in nodes if origin[n["name"]] == {inp}]
        names = {n["name"] for n in members}
        outside = [m for m in nodes if m["name"] not in names]
        consumed_outside = [n["name"] for n in members
                            if any(n["name"] in ins_of(m) for m in outside) or n["name"] in g["outputs"]]
        if not members or len(consumed_outside) != 1:
            raise PeerError(f"cannot cut the '{inp}' branch out of {graph_path}")
        sub = {"name": f"{g['name']}_{inp}", "inputs": {inp: g["inputs"][inp]}, "nodes": members,
               "outputs": consumed_outside}
        path = os.path.join(workdir, f"branch_{inp}.yaml")
        text = yaml.safe_dump(sub, sort_keys=False).encode()
        write_atomic(path, lambda f: f.write(text))
        out[inp] = (path, sorted(names))
    return out


def fresh(target, source):
    return os.path.exists(target) and os.path.getmtime(target) >= os.path.getmtime(source)


def prepare(args, workdir):
    art = args.artifacts
    os.makedirs(workdir, exist_ok=True)
    index_path = os.path.join(art, "keras_weights", "index.json")
    full_w = os.path.join(workdir, "weights.safetensors")
    branches = branch_graphs(args.graph, workdir)
    branch_w = {b: os.path.join(workdir, f"weights_{b}.safetensors") for b in branches}
    if os.path.exists(index_path) and all(fresh(p, index_path) for p in [full_w] + list(branch_w.values())):
        log(f"weights: reusing {workdir}/*.safetensors")
    else:
        log("converting Keras-layout weights to safetensors")
        w = load_keras_weights(art)
        meta = {"source": os.path.abspath(os.path.join(art, "keras_weights")), "format": "pt"}
        write_safetensors(full_w, w, meta)
        for b, (_, names) in branches.items():
            write_safetensors(branch_w[b], {k: v for k, v in w.items() if k.split(".")[0] in names}, meta)
    npys = {}
    for name, (fname, dtype, shape) in INPUTS.items():
        src = os.path.join(art, fname)
        if not os.path.exists(src):
            raise PeerError(f"{src} not found: run run_peers.sh once (it exports artifacts/)")
        want = np.dtype(dtype).itemsize * FILE_BATCH * int(np.prod(shape))
        if os.path.getsize(src) != want:
            raise PeerError(f"{src}: expected {want} bytes ({np.dtype(dtype).name} {[FILE_BATCH] + shape}), "
                            f"found {os.path.getsize(src)}")
        for b in (FILE_BATCH, 8):
            dst = os.path.join(workdir, f"input_{name}_b{b}.npy")
            if not fresh(dst, src):
                x = np.fromfile(src, dtype=np.dtype(dtype).newbyteorder("<")).reshape([FILE_BATCH] + shape)[:b]
                write_atomic(dst, lambda f, x=x: np.save(f, np.ascontiguousarray(x)))
            npys[(name, b)] = dst
    return full_w, branches, branch_w, npys


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if r.returncode != 0:
        raise PeerError(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}{r.stdout}")
    return r.stdout


def check_outputs(args, workdir, full_w, branches, branch_w, npys):
    """Compare FusionGraph's batch-8 outputs with the PyTorch reference of export_onnx.py."""
    res = {}
    jobs = [("probs", args.graph, full_w, list(INPUTS), "classifier")]
    for b, (path, _) in branches.items():
        out_name = yaml.safe_load(open(path))["outputs"][0]
        jobs.append((b, path, branch_w[b], [b], out_name))
    for tag, graph, weights, inputs, out_name in jobs:
        ref_path = os.path.join(args.artifacts, f"ref_{tag}_b8.bin")
        if not os.path.exists(ref_path):
            res[tag] = "no reference"
            continue
        odir = os.path.join(workdir, f"check_{tag}")
        cmd = [args.runner, "run", graph, "--weights", weights, "--threads", str(args.threads),
               "--output-dir", odir]
        for i in inputs:
            cmd += ["--input", f"{i}={npys[(i, 8)]}"]
        run(cmd)
        got = np.load(os.path.join(odir, out_name + ".npy"))
        ref = np.fromfile(ref_path, dtype="<f4").reshape(got.shape)
        err = float(np.max(np.abs(got - ref)))
        scale = float(np.max(np.abs(ref))) or 1.0
        res[tag] = {"max_abs_diff": err, "max_abs_ref": scale}
        ok = err <= 1e-3 * scale + 1e-5
        log(f"check {tag}: max |fusiongraph - torch| = {err:.3g} (max |ref| {scale:.3g}) {'ok' if ok else 'MISMATCH'}")
        if not ok:
            raise PeerError(f"FusionGraph's {tag} output differs from the PyTorch reference by {err:.3g}: "
                            f"the weight conversion or an op is wrong, timings would be meaningless")
    return res


def wait_quiet():
    # sysload.py sits next to us in the peers' work folder (run_peers.sh copies it there)
    try:
        sys.path.insert(0, os.getcwd())
        import sysload  # noqa: E402
        return sysload.wait_quiet()[0]
    except ImportError:
        return 0.0


def bench_block(args, graph, weights, inputs, batch, iterations, warmup, per_node=False):
    wait_quiet()
    cmd = [args.runner, "bench", graph, "--weights", weights, "--threads", str(args.threads),
           "--batch", str(batch), "--iterations", str(iterations), "--warmup", str(warmup), "--json"]
    if per_node:
        cmd.append("--per-node")
    for name, path in inputs.items():
        cmd += ["--input", f"{name}={path}"]
    d = json.loads(run(cmd))
    if d.get("schema") != "fusiongraph-bench/1":
        raise PeerError(f"unexpected bench schema {d.get('schema')!r}")
    return d


def find_runner():
    env = os.environ.get("FG_GRAPH_RUNNER")
    if env:
        return env
    cands = [p for p in glob.glob(os.path.join(REPO, "build*", "graph-runner")) if os.access(p, os.X_OK)]
    if not cands:
        return None
    return max(cands, key=os.path.getmtime)


def git_label():
    try:
        rev = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout.strip()
    except OSError:
        rev = ""
    return f"FusionGraph {rev}".strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runner", default=find_runner(), help="graph-runner binary (default: newest build*/graph-runner "
                    "of the repo, or $FG_GRAPH_RUNNER)")
    ap.add_argument("--graph", default=os.path.join(REPO, "graphs", "multimodal_fusion.yaml"))
    ap.add_argument("--artifacts", default="artifacts")
    ap.add_argument("--out", default="out")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("FG_PEER_THREADS", "2")))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n1", type=int, default=20, help="timed batch-1 runs per round (also per branch)")
    ap.add_argument("--n8", type=int, default=4)
    ap.add_argument("--n32", type=int, default=3)
    ap.add_argument("--batches", default="1,8,32", help="subset of 1,8,32 to measure (others get no blocks)")
    ap.add_argument("--no-branches", action="store_true", help="skip the per-branch timings")
    ap.add_argument("--no-check", action="store_true", help="skip the comparison with the PyTorch outputs")
    ap.add_argument("--quick", action="store_true", help="1 round, 5/1/1 runs")
    ap.add_argument("--variant", default="bench")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.n1, a.n8, a.n32 = 1, 5, 1, 1
    if not a.runner or not os.access(a.runner, os.X_OK):
        raise PeerError("graph-runner not found: build the repo (cmake --build build-...) or pass --runner")
    t0 = time.time()
    workdir = os.path.abspath("fusiongraph")
    full_w, branches, branch_w, npys = prepare(a, workdir)
    check = {} if a.no_check else check_outputs(a, workdir, full_w, branches, branch_w, npys)

    counts = {1: a.n1, 8: a.n8, 32: a.n32}
    batches = [int(b) for b in a.batches.split(",")]
    for b in batches:
        if b not in counts:
            raise PeerError(f"--batches: {b} is not one of 1, 8, 32")
    raw = {k: [] for k in ("b1", "b8", "b32", "image", "audio", "text")}
    details = {"batches": {}, "branches": {}}
    full_inputs = {name: npys[(name, FILE_BATCH)] for name in INPUTS}
    for r in range(a.rounds):
        for b in batches:
            d = bench_block(a, a.graph, full_w, full_inputs, b, counts[b], 2 if b == 1 else 1,
                            per_node=(r == 0 and b == 1))
            res = d["batches"][0]
            raw[f"b{b}"].append({"times": [t / 1e3 for t in res["times_ms"]], "foreign": round(res["foreign_cpu"], 3)})
            details["batches"].setdefault(f"b{b}", []).append(d)
            log(f"round {r + 1}/{a.rounds} batch {b}: median {res['median_ms']:.1f} ms, "
                f"{res['samples_per_s']:.2f} samples/s, {res['gflops']:.1f} GFLOP/s "
                f"({100 * res['peak_fraction']:.0f}% of the {d['peak']['gflops']:.0f} GFLOP/s FMA peak), "
                f"foreign CPU {100 * res['foreign_cpu']:.0f}%")
        if not a.no_branches:
            for br in BRANCHES:
                path, _ = branches[br]
                d = bench_block(a, path, branch_w[br], {br: npys[(br, FILE_BATCH)]}, 1, a.n1, 2)
                res = d["batches"][0]
                raw[br].append({"times": [t / 1e3 for t in res["times_ms"]], "foreign": round(res["foreign_cpu"], 3)})
                details["branches"].setdefault(br, []).append(d)
                log(f"round {r + 1}/{a.rounds} branch {br}: median {res['median_ms']:.2f} ms")
    # report.py expects every key; blocks that were not measured stay empty lists only if asked
    missing = [k for k, v in raw.items() if not v]
    if missing:
        log(f"not measured: {', '.join(missing)} (report.py needs all six; only a partial run)")
    first = details["batches"][f"b{batches[0]}"][0]
    info = {"graph": os.path.abspath(a.graph), "runner": os.path.abspath(a.runner), "threads": a.threads,
            "rounds": a.rounds, "n1": a.n1, "n8": a.n8, "n32": a.n32, "check": check,
            "peak": first["peak"], "cold_start": first["cold_start"], "memory": first["memory"],
            "elapsed_s": round(time.time() - t0, 1)}
    if "b1" in details["batches"] and "per_branch" in details["batches"]["b1"][0]["batches"][0]:
        info["per_branch_b1_in_graph"] = details["batches"]["b1"][0]["batches"][0]["per_branch"]
        info["per_node_b1"] = details["batches"]["b1"][0]["batches"][0]["per_node"]
    doc = {"peer": "fusiongraph", "label": git_label(), "info": info, "raw": {a.variant: raw}}
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "peer_fusiongraph.json")
    text = json.dumps(doc, indent=1).encode()
    write_atomic(path, lambda f: f.write(text))
    log(f"wrote {path} ({time.time() - t0:.0f}s)")
    for k in ("b1", "b8", "b32", "image", "audio", "text"):
        if raw[k]:
            ts = [t for blk in raw[k] for t in blk["times"]]
            log(f"  {k:5s} median {1e3 * statistics.median(ts):8.2f} ms over {len(ts)} runs")


if __name__ == "__main__":
    try:
        main()
    except PeerError as e:
        print(f"fusiongraph_peer: error: {e}", file=sys.stderr)
        sys.exit(1)
