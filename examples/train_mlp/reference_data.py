# reference_data.py DIR N: a synthetic data folder for graphs/multimodal_fusion.yaml (and its
# fusion variants; no numpy). Text (N, 100) int32, image (N, 224, 224, 3), audio (N, 16000, 1)
# float32, classifier (N, 10) one-hot float32.
# The class of sample i is i % 10; its text tokens come from that class's block of 100 ids.
import array, os, random, struct, sys

def save_npy(path, dtype, shape, values):          # dtype '<f4' or '<i4'; values: an array
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        dtype, "".join("%d, " % d for d in shape))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"   # pad to a multiple of 64 bytes
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(values.tobytes())                  # little-endian on x86 and ARM

out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
rng = random.Random(0)
labels = [i % 10 for i in range(n)]
save_npy(f"{out}/text.npy", "<i4", (n, 100),
         array.array("i", (c * 100 + rng.randrange(100) for c in labels for _ in range(100))))
image = array.array("f", bytes(4 * 224 * 224 * 3 * n))    # zeros, one bright row per class
for i, c in enumerate(labels):
    start = (i * 224 + c * 20) * 224 * 3
    image[start:start + 224 * 3] = array.array("f", [1.0]) * (224 * 3)
save_npy(f"{out}/image.npy", "<f4", (n, 224, 224, 3), image)
save_npy(f"{out}/audio.npy", "<f4", (n, 16000, 1),
         array.array("f", (rng.gauss(0, 0.1) for _ in range(16000 * n))))
save_npy(f"{out}/classifier.npy", "<f4", (n, 10),
         array.array("f", (float(c == k) for c in labels for k in range(10))))
