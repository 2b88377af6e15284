#!/usr/bin/python3
"""Builds the Fashion-MNIST three-modality data set: image + spoken attributes + written text.

    /usr/bin/python3 examples/fashion_fusion/make_dataset.py --out fashion [--seed 0]
        [--train 54000] [--validation 6000] [--test 10000] [--pool 3000] [--npy]
        [--npy-audio mel|raw]

Reads the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/*.gz, idx
files; --source DIR for another place). Writes, under --out:

    images/{train,validation,test}/NNNNN.png    28x28 8-bit grey PNG per sample
    audio/pool/PPPP.wav                         the pool of spoken clips, 16 kHz mono 16-bit, 1 s
    train.csv, validation.csv, test.csv         image, audio, text, label (one row per sample)
    npy/{train,validation,test}/*.npy           with --npy: the same data, preprocessed as the
                                                graphs declare (image.npy, audio.npy, text.npy,
                                                label.npy)

The design (why each modality alone is weak, and how) is in README.md beside this file; the
constants below are that design. Everything is deterministic from --seed (the pool's clips are
synthesized by espeak-ng, which is deterministic too).
"""
import argparse
import csv
import gzip
import multiprocessing
import os
import re
import struct
import subprocess
import sys
import time
import zlib

import numpy as np

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]

# --- the attributes: per class, a distribution over values of three attributes ---------------
# "shape" and "material" are written in the text; "fastening" is spoken in the audio. No value
# names the class; most values are shared by two or more classes (see README.md).
SHAPE = [
    {"short sleeves": .8, "sleeveless": .2},                        # T-shirt/top
    {"long legs": .5, "straight cut": .5},                          # Trouser
    {"long sleeves": .85, "high neck": .15},                        # Pullover
    {"sleeveless": .35, "short sleeves": .25, "knee length": .4},   # Dress
    {"long sleeves": .6, "a collar": .2, "knee length": .2},        # Coat
    {"open toe": .6, "a flat sole": .4},                            # Sandal
    {"long sleeves": .5, "short sleeves": .3, "a collar": .2},      # Shirt
    {"a flat sole": .6, "a low top": .4},                           # Sneaker
    {"handles": .6, "a shoulder strap": .4},                        # Bag
    {"ankle height": .6, "a heel": .4},                             # Ankle boot
]
MATERIAL = [
    {"cotton": .6, "jersey": .4},
    {"denim": .6, "cotton": .4},
    {"knit": .5, "wool": .5},
    {"silk": .5, "cotton": .3, "jersey": .2},
    {"wool": .5, "leather": .3, "denim": .2},
    {"leather": .6, "rubber": .4},
    {"cotton": .6, "denim": .2, "silk": .2},
    {"canvas": .5, "leather": .3, "rubber": .2},
    {"leather": .6, "canvas": .4},
    {"leather": .8, "suede": .2},
]
FASTENING = [
    {"none": .9, "buttons": .1},
    {"zip": .5, "buttons": .5},
    {"none": .85, "zip": .15},
    {"zip": .5, "none": .5},
    {"buttons": .6, "zip": .4},
    {"straps": .9, "none": .1},
    {"buttons": .95, "none": .05},
    {"laces": .85, "none": .15},
    {"zip": .6, "straps": .4},
    {"zip": .5, "laces": .5},
]
FASTENINGS = ["none", "buttons", "zip", "laces", "straps"]

# --- how often each modality fails -------------------------------------------------------------
IMAGE_DEGRADED = 0.35        # occlusion, heavy noise, low contrast or low resolution
TEXT_MISSING = 0.15          # no attribute at all
TEXT_ONE_ATTRIBUTE = 0.15    # only one of shape / material
TEXT_CONTRADICTING = 0.08    # the attributes of another class
TEXT_TYPO = 0.10             # per attribute word
AUDIO_MISSING = 0.20         # a filler phrase or noise only
AUDIO_WRONG = 0.08           # the fastening of another class
TEST_POOL_FRACTION = 0.2     # pool clips kept for validation and test (never heard in training)

# --- the words ---------------------------------------------------------------------------------
SHAPE_SYNONYMS = {
    "short sleeves": ["short sleeves", "short-sleeved", "half sleeves"],
    "long sleeves": ["long sleeves", "long-sleeved", "full-length sleeves"],
    "sleeveless": ["sleeveless", "no sleeves"],
    "high neck": ["a high neck", "a turtle neck"],
    "a collar": ["a collar", "a pointed collar"],
    "knee length": ["knee length", "knee-length cut"],
    "long legs": ["long legs", "full-length legs"],
    "straight cut": ["a straight cut", "straight legs"],
    "open toe": ["an open toe", "open toes"],
    "a flat sole": ["a flat sole", "a flat rubber sole"],
    "a low top": ["a low top", "a low ankle"],
    "handles": ["handles", "two handles"],
    "a shoulder strap": ["a shoulder strap", "a long strap"],
    "ankle height": ["ankle height", "an ankle-high shaft"],
    "a heel": ["a heel", "a block heel"],
}
MATERIAL_SYNONYMS = {
    "cotton": ["cotton"], "jersey": ["jersey", "stretch jersey"], "denim": ["denim", "jeans cloth"],
    "knit": ["knit", "knitted yarn"], "wool": ["wool", "woollen cloth"], "silk": ["silk", "satin"],
    "leather": ["leather"], "rubber": ["rubber", "plastic"], "canvas": ["canvas"],
    "suede": ["suede"],
}
NOUNS = ["item", "piece", "article", "product", "thing"]
COLOURS = ["black", "white", "grey", "blue", "red", "green", "brown", "beige", "navy", "pink"]
TEXT_TWO = [  # {s}: shape, {m}: material, {c}: colour, {n}: noun
    "a {c} {n} in {m} with {s}",
    "{m}, {s}, {c}",
    "this {n} has {s} and is made of {m}",
    "made of {m}; {s}. colour: {c}",
    "{c} {m} {n}, {s}",
    "with {s}, in {c} {m}",
    "our {n}: {s}, {m}",
]
TEXT_ONE = ["a {c} {n} with {s}", "{c} {n} in {m}", "{n} made of {m}", "{s}, {c}"]
TEXT_NONE = ["a {c} {n}", "nice {n} in {c}", "{n} from the catalogue", "new in: {c} {n}",
             "great value {n}"]
SPOKEN = {
    "none": ["no fastening", "pull on", "nothing to fasten"],
    "buttons": ["buttons", "with buttons", "buttoned"],
    "zip": ["zip", "with a zipper", "zipped"],
    "laces": ["laces", "lace up", "with laces"],
    "straps": ["straps", "with straps", "strappy"],
}
SPOKEN_FILLER = ["item", "hello", "no details", "okay", "next one"]
VOICES = ["en", "en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4"]
SAMPLE_RATE, CLIP = 16000, 16000

# --- mel spectrogram, as the graphs declare it (Keras MelSpectrogram's definition) -------------
MEL = {"frame_length": 400, "frame_step": 160, "fft_length": 512, "n_mels": 40,
       "min_freq": 20.0, "max_freq": 8000.0}


def draw(rng, dist):
    keys = list(dist)
    return keys[rng.choice(len(keys), p=np.array([dist[k] for k in keys]))]


# --- files -------------------------------------------------------------------------------------
def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    rank = magic & 0xFF
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(dims)


def png_bytes(grey):
    """An 8-bit greyscale PNG (colour type 0), filter 0 on every row."""
    h, w = grey.shape
    raw = b"".join(b"\x00" + grey[r].tobytes() for r in range(h))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def wav_bytes(samples_int16):
    body = samples_int16.astype("<i2").tobytes()
    return (b"RIFF" + struct.pack("<I", 36 + len(body)) + b"WAVE" +
            b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16) +
            b"data" + struct.pack("<I", len(body)) + body)


def read_wav_pcm16(data):
    """The samples of a 16-bit PCM WAV (as sox writes it), as float in [-1, 1]."""
    pos = 12
    while pos + 8 <= len(data):
        kind, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if kind == b"data":
            end = min(len(data), pos + 8 + size)
            n = (end - pos - 8) // 2
            return np.frombuffer(data, "<i2", count=n, offset=pos + 8).astype(np.float32) / 32768
        pos += 8 + size + (size & 1)
    raise RuntimeError("no data chunk in espeak-ng/sox output")


def save_npy(path, array):
    np.save(path, np.ascontiguousarray(array))


# --- images ------------------------------------------------------------------------------------
def degrade_image(img, rng):
    """One of four degradations, each keeping only a coarse view of the garment."""
    x = img.astype(np.float32)
    kind = rng.integers(4)
    if kind == 0:    # occlusion: a grey block over half of the picture or more
        h, w = rng.integers(16, 23), rng.integers(16, 23)
        r, c = rng.integers(0, 29 - h), rng.integers(0, 29 - w)
        x[r:r + h, c:c + w] = rng.uniform(60, 200)
    elif kind == 1:  # heavy noise
        x = x + rng.normal(0, 110, x.shape)
    elif kind == 2:  # low contrast, plus noise
        x = x.mean() + (x - x.mean()) * 0.12 + rng.normal(0, 12, x.shape)
    else:            # low resolution: 7x7 blocks, plus noise
        x = x.reshape(7, 4, 7, 4).mean(axis=(1, 3)).repeat(4, 0).repeat(4, 1)
        x = x + rng.normal(0, 25, x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


# --- audio pool --------------------------------------------------------------------------------
def pool_phrases():
    return [(p, f) for f in FASTENINGS for p in SPOKEN[f]] + [(p, None) for p in SPOKEN_FILLER]


def pool_plan(size, rng):
    """(phrase, fastening or None, voice, speed, pitch, snr_db, offset, noise seed) per clip."""
    phrases = pool_phrases()
    plan = []
    for i in range(size):
        phrase, fastening = phrases[i % len(phrases)]   # every phrase as often as the others
        if fastening is not None and rng.random() < 0.5:
            phrase = f"{COLOURS[rng.integers(len(COLOURS))]}, {phrase}"
        voice = f"{VOICES[rng.integers(len(VOICES))]}+{VARIANTS[rng.integers(len(VARIANTS))]}"
        plan.append((phrase, fastening, voice, int(rng.integers(150, 261)),
                     int(rng.integers(20, 81)), float(rng.uniform(-3, 20)),
                     int(rng.integers(0, 2400)), int(rng.integers(1 << 30))))
    # the clips with noise only (no speech at all) count as fillers
    for i in range(0, size, 50):
        plan[i] = ("", None) + plan[i][2:]
    return plan


def synthesize(entry):
    phrase, _, voice, speed, pitch, snr_db, offset, noise_seed = entry
    speech = np.zeros(0, np.float32)
    if phrase:
        for attempt in range(4):
            out = subprocess.run(
                f"espeak-ng -v {voice} -s {speed} -p {pitch} --stdout \"{phrase}\" | "
                f"sox -t wav - -r {SAMPLE_RATE} -c 1 -b 16 -t wav -", shell=True, check=True,
                capture_output=True).stdout
            speech = read_wav_pcm16(out)
            loud = np.nonzero(np.abs(speech) > 0.02)[0]
            speech = speech[loud[0]:loud[-1] + 1] if len(loud) else speech[:0]
            if len(speech) + offset <= CLIP:
                break
            speed = int(speed * 1.25)   # too long for 1 s: say it faster
        speech = speech[:CLIP - offset] / max(1e-3, np.abs(speech).max()) * 0.7
    rng = np.random.default_rng(noise_seed)
    clip = np.zeros(CLIP, np.float32)
    clip[offset:offset + len(speech)] = speech
    # noise: white noise low-passed in the frequency domain at a random corner (200 Hz: rumble,
    # 8 kHz: hiss), at snr_db below the speech's power (noise-only clips: at a random level)
    spectrum = np.fft.rfft(rng.normal(0, 1, CLIP))
    corner = rng.uniform(200, 8000)
    spectrum /= np.sqrt(1 + (np.fft.rfftfreq(CLIP, 1 / SAMPLE_RATE) / corner) ** 2)
    noise = np.fft.irfft(spectrum, CLIP).astype(np.float32)
    speech_power = float(np.mean(speech ** 2)) if len(speech) else 0.01
    noise *= np.sqrt(speech_power / 10 ** (snr_db / 10) / max(1e-12, float(np.mean(noise ** 2))))
    mixed = np.clip(clip + noise, -1, 1)
    return (np.rint(mixed * 32767)).astype(np.int16)


def mel_filters():
    """tf.signal.linear_to_mel_weight_matrix (HTK mel scale), [fft_length/2 + 1, n_mels]."""
    bins = MEL["fft_length"] // 2 + 1
    hz_to_mel = lambda f: 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)
    spec_mel = hz_to_mel(np.linspace(0, SAMPLE_RATE / 2, bins))[1:]
    edges = np.linspace(hz_to_mel(MEL["min_freq"]), hz_to_mel(MEL["max_freq"]), MEL["n_mels"] + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lo = (spec_mel[:, None] - lower) / (center - lower)
    hi = (upper - spec_mel[:, None]) / (upper - center)
    weights = np.maximum(0, np.minimum(lo, hi))
    return np.vstack([np.zeros((1, MEL["n_mels"])), weights])


def mel_spectrogram(samples, filters):
    """Keras MelSpectrogram: centred STFT (reflect padding fft_length / 2), periodic Hann window
    of frame_length zero-padded to fft_length, power, mel, 10 log10(max(p, 1e-10)), floored at
    the sample's maximum - 80 dB (Keras's top_db, taken per sample as docs/data.md says)."""
    n_fft, step, win_len = MEL["fft_length"], MEL["frame_step"], MEL["frame_length"]
    x = np.pad(samples.astype(np.float64), n_fft // 2, mode="reflect")
    frames = 1 + (len(x) - n_fft) // step
    window = np.zeros(n_fft)
    left = (n_fft - win_len) // 2
    window[left:left + win_len] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_len) / win_len)
    idx = np.arange(n_fft)[None, :] + step * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(x[idx] * window, axis=1)) ** 2
    db = 10 * np.log10(np.maximum(power @ filters, 1e-10))
    return np.maximum(db, db.max() - 80.0).astype(np.float32)   # top_db 80, per sample


# --- text --------------------------------------------------------------------------------------
def typo(word, rng):
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = rng.integers(3)
    if kind == 0:
        return word[:i] + word[i + 1:]                       # a letter dropped
    if kind == 1:
        return word[:i - 1] + word[i] + word[i - 1] + word[i + 1:]   # two letters swapped
    return word[:i] + word[i] + word[i:]                     # a letter doubled


def phrase_words(phrase, rng):
    return " ".join(typo(w, rng) if rng.random() < TEXT_TYPO else w for w in phrase.split(" "))


def make_text(label, rng):
    source = label
    if rng.random() < TEXT_CONTRADICTING:
        source = (label + 1 + int(rng.integers(9))) % 10
    shape, material = draw(rng, SHAPE[source]), draw(rng, MATERIAL[source])
    s = phrase_words(SHAPE_SYNONYMS[shape][rng.integers(len(SHAPE_SYNONYMS[shape]))], rng)
    m = phrase_words(MATERIAL_SYNONYMS[material][rng.integers(len(MATERIAL_SYNONYMS[material]))],
                     rng)
    fill = {"s": s, "m": m, "c": COLOURS[rng.integers(len(COLOURS))],
            "n": NOUNS[rng.integers(len(NOUNS))]}
    u = rng.random()
    if u < TEXT_MISSING:
        templates = TEXT_NONE
    elif u < TEXT_MISSING + TEXT_ONE_ATTRIBUTE:
        templates = TEXT_ONE
    else:
        templates = TEXT_TWO
    text = templates[rng.integers(len(templates))].format(**fill)
    return text[0].upper() + text[1:] + ("." if rng.random() < 0.5 else "")


PUNCTUATION = re.compile(r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~\']')


def standardize(text):   # Keras TextVectorization's lower_and_strip_punctuation
    return PUNCTUATION.sub("", text.lower())


def adapt_vocabulary(texts, max_tokens):
    """Keras's adapt: by descending count, ties by descending token (np.lexsort(...)[::-1]),
    max_tokens - 2 entries (ids 0 and 1 are padding and out-of-vocabulary)."""
    counts = {}
    for t in texts:
        for w in standardize(t).split():
            counts[w] = counts.get(w, 0) + 1
    tokens = sorted(counts, key=lambda w: (counts[w], w.encode()), reverse=True)
    return {w: i + 2 for i, w in enumerate(tokens[:max_tokens - 2])}


def vectorize(texts, vocabulary, length):
    ids = np.zeros((len(texts), length), np.int32)
    for r, t in enumerate(texts):
        words = standardize(t).split()[:length]
        ids[r, :len(words)] = [vocabulary.get(w, 1) for w in words]
    return ids


# --- the samples -------------------------------------------------------------------------------
def make_split(name, images, labels, pool, pool_ids_by_fastening, fillers, rng, out):
    """Writes the split's PNGs and rows; returns (rows, image array, clip ids, texts)."""
    os.makedirs(f"{out}/images/{name}", exist_ok=True)
    rows, pixels, clips, texts = [], np.empty_like(images), [], []
    for i, (img, label) in enumerate(zip(images, labels)):
        label = int(label)
        if rng.random() < IMAGE_DEGRADED:
            img = degrade_image(img, rng)
        pixels[i] = img
        path = f"images/{name}/{i:05d}.png"
        with open(f"{out}/{path}", "wb") as f:
            f.write(png_bytes(img))
        u = rng.random()
        if u < AUDIO_MISSING:
            clip = int(fillers[rng.integers(len(fillers))])
        else:
            source = label if u >= AUDIO_MISSING + AUDIO_WRONG else int(rng.integers(10))
            candidates = pool_ids_by_fastening[draw(rng, FASTENING[source])]
            clip = int(candidates[rng.integers(len(candidates))])
        clips.append(clip)
        text = make_text(label, rng)
        texts.append(text)
        rows.append({"image": path, "audio": f"audio/pool/{clip:04d}.wav", "text": text,
                     "label": CLASSES[label]})
    with open(f"{out}/{name}.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["image", "audio", "text", "label"],
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return pixels, np.array(clips, np.int64), texts


def held_out_clips(size):
    """Every fifth round over the phrases (TEST_POOL_FRACTION = 1/5 of the pool, each phrase
    held out as often as the others): the clips of validation and test."""
    rounds = np.arange(size) // len(pool_phrases())
    return rounds % round(1 / TEST_POOL_FRACTION) == round(1 / TEST_POOL_FRACTION) - 1


def index_pool(plan, clip_ids):
    by_fastening = {f: [] for f in FASTENINGS}
    fillers = []
    for c in clip_ids:
        (fillers if plan[c][1] is None else by_fastening[plan[c][1]]).append(c)
    return {f: np.array(v) for f, v in by_fastening.items()}, np.array(fillers)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--source", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=54000)
    ap.add_argument("--validation", type=int, default=6000)
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--pool", type=int, default=3000, help="distinct audio clips")
    ap.add_argument("--npy", action="store_true", help="also write npy/{train,validation,test}")
    ap.add_argument("--npy-audio", choices=["mel", "raw"], default="mel")
    ap.add_argument("--max-tokens", type=int, default=1000)
    ap.add_argument("--sequence-length", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="processes synthesizing the pool")
    args = ap.parse_args()
    if args.train + args.validation > 60000 or args.test > 10000 or args.pool < 5 * len(pool_phrases()):
        sys.exit(f"at most 60000 train + validation and 10000 test samples, a pool of "
                 f"{5 * len(pool_phrases())} clips or more (5 of each phrase)")
    start = time.time()
    rng = np.random.default_rng(args.seed)
    train_x = read_idx(f"{args.source}/train-images-idx3-ubyte.gz")
    train_y = read_idx(f"{args.source}/train-labels-idx1-ubyte.gz")
    test_x = read_idx(f"{args.source}/t10k-images-idx3-ubyte.gz")
    test_y = read_idx(f"{args.source}/t10k-labels-idx1-ubyte.gz")
    order = rng.permutation(60000)
    val_ids = order[:6000][:args.validation]
    train_ids = order[6000:][:args.train]
    test_ids = rng.permutation(10000)[:args.test]

    out = args.out
    os.makedirs(f"{out}/audio/pool", exist_ok=True)
    plan = pool_plan(args.pool, rng)
    with multiprocessing.Pool(args.workers) as workers:
        clips = workers.map(synthesize, plan, chunksize=16)
    for c, samples in enumerate(clips):
        with open(f"{out}/audio/pool/{c:04d}.wav", "wb") as f:
            f.write(wav_bytes(samples))
    print(f"pool: {len(clips)} clips in {time.time() - start:.0f} s", flush=True)
    held_out = held_out_clips(args.pool)
    train_pool = index_pool(plan, np.nonzero(~held_out)[0])
    test_pool = index_pool(plan, np.nonzero(held_out)[0])

    splits = {}
    for name, x, y, ids, pool in [("train", train_x, train_y, train_ids, train_pool),
                                  ("validation", train_x, train_y, val_ids, test_pool),
                                  ("test", test_x, test_y, test_ids, test_pool)]:
        pixels, clip_ids, texts = make_split(name, x[ids], y[ids], plan, pool[0], pool[1], rng, out)
        splits[name] = (pixels, clip_ids, texts, y[ids].astype(np.int32))
        print(f"{name}: {len(ids)} samples ({time.time() - start:.0f} s)", flush=True)
    if args.npy:
        write_npy(out, splits, clips, args)
    print(f"done in {time.time() - start:.0f} s: {out}/{{train,validation,test}}.csv")


def write_npy(out, splits, clips, args):
    if args.npy_audio == "mel":
        filters = mel_filters()
        pool_audio = np.stack([mel_spectrogram(c.astype(np.float32) / 32768, filters)
                               for c in clips])
    else:
        pool_audio = (np.stack(clips).astype(np.float32) / 32768)[:, :, None]
    vocabulary = adapt_vocabulary(splits["train"][2], args.max_tokens)
    for name, (pixels, clip_ids, texts, labels) in splits.items():
        d = f"{out}/npy/{name}"
        os.makedirs(d, exist_ok=True)
        save_npy(f"{d}/image.npy", (pixels.astype(np.float32) / 255.0)[:, :, :, None])
        save_npy(f"{d}/audio.npy", pool_audio[clip_ids])
        save_npy(f"{d}/text.npy", vectorize(texts, vocabulary, args.sequence_length))
        save_npy(f"{d}/label.npy", labels)
    with open(f"{out}/npy/vocabulary.txt", "w", encoding="utf-8") as f:
        f.write("".join(w + "\n" for w in sorted(vocabulary, key=vocabulary.get)))


if __name__ == "__main__":
    main()
