#!/usr/bin/python3
"""strip_preprocessing.py OUT_DIR GRAPH...: copies of the graphs without their `preprocessing:`
keys, for a graph-runner built before the raw-data pipeline (train_all.sh uses it then, with
the npy folders, which hold the preprocessed data)."""
import os
import re
import sys

KEY = ", preprocessing: {"
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out, i = [], 0
    while (j := text.find(KEY, i)) >= 0:
        out.append(text[i:j])
        k, depth = j + len(KEY), 1
        while depth:
            depth += {"{": 1, "}": -1}.get(text[k], 0)
            k += 1
        i = k
    text = re.sub(r"outputs:\n  label: \{preprocessing: .*\n", "outputs: [label]\n",
                  "".join(out) + text[i:])
    with open(os.path.join(sys.argv[1], os.path.basename(path)), "w", encoding="utf-8") as f:
        f.write(text)
