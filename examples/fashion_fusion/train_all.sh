#!/bin/bash
# Builds the Fashion-MNIST three-modality data set (if not there yet), trains every
# graphs/fashion_*.yaml model on it, evaluates each on the test set and writes a markdown table:
# model, test accuracy, time per epoch, margin over the best single modality.
#
#   examples/fashion_fusion/train_all.sh [DIR]          # DIR defaults to fashion-data
#
# Environment:
#   MODELS   the models to train, in order (default: all; single modalities first)
#   EPOCHS   epochs per model (default: each graph's training.epochs)
#   FROM     csv: train from the raw files through the tables (train.csv, ...); npy: from the
#            preprocessed .npy folders (DIR/npy/...), the same data. Default: csv when
#            graph-runner's train takes tables, else npy
#   RUNNER   graph-runner (default build/graph-runner)
#   PYTHON   a python3 with numpy (default /usr/bin/python3)
#   THREADS  --threads of graph-runner (default 0: all cores)
#   CACHE    csv only: the preprocessed cache folder (default DIR/cache; "none" decodes the raw
#            files in every epoch). The fusion models share one cache (same inputs); a model with
#            other inputs rebuilds it (docs/data.md, "Cache").
# Run from the repository's root. Writes DIR/runs/<model>.{txt,csv,safetensors} and
# DIR/results.md (also printed).
set -euo pipefail
DIR=${1:-fashion-data}
RUNNER=${RUNNER:-build/graph-runner}
PYTHON=${PYTHON:-/usr/bin/python3}
FROM=${FROM:-}
THREADS=${THREADS:-0}
MODELS=${MODELS:-"image audio text concat weighted_average gated film cross_attention low_rank_fusion tensor_fusion"}
HERE=$(dirname "$0")

if [ ! -f "$DIR/test.csv" ] || [ ! -f "$DIR/npy/test/label.npy" ]; then
  echo "building the data set in $DIR"
  start=$(date +%s)
  "$PYTHON" "$HERE/make_dataset.py" --out "$DIR" --npy
  echo "data set built in $(( $(date +%s) - start )) s"
fi

# Tables need a graph-runner whose train reads them (the raw-data pipeline, docs/data.md);
# else the npy folders, which hold the same data preprocessed.
if [ -z "$FROM" ]; then
  if "$RUNNER" train --help 2>&1 | grep -qiE 'table|[.]csv'; then FROM=csv; else FROM=npy; fi
fi

case $FROM in
  csv) train_data="$DIR/train.csv"; val_data="$DIR/validation.csv"; test_data="$DIR/test.csv" ;;
  npy) train_data="$DIR/npy/train"; val_data="$DIR/npy/validation"; test_data="$DIR/npy/test" ;;
  *) echo "FROM must be csv or npy, not '$FROM'" >&2; exit 1 ;;
esac

mkdir -p "$DIR/runs"
for model in $MODELS; do
  graph=graphs/fashion_$model.yaml
  out=$DIR/runs/$model
  echo "== $model ($graph, from $FROM)"
  set -- --data "$train_data" --validation-data "$val_data" --save "$out.safetensors" \
      --log "$out.csv" --threads "$THREADS"
  if [ -n "${EPOCHS:-}" ]; then set -- "$@" --epochs "$EPOCHS"; fi
  if [ "$FROM" = csv ] && [ "${CACHE:-}" != none ]; then set -- "$@" --cache "${CACHE:-$DIR/cache}"; fi
  rm -f "$out.safetensors" "$out.csv"
  rm -f "$out.json"
  if ! "$RUNNER" train "$graph" "$@" 2>&1 | tee "$out.txt"; then
    echo "training $model failed: the table says so"   # and the other models still run
    continue
  fi
  "$RUNNER" evaluate "$graph" --weights "$out.safetensors" --data "$test_data" \
      --threads "$THREADS" --json > "$out.json"
  cat "$out.json"
done

"$PYTHON" "$HERE/results_table.py" "$DIR/runs" $MODELS | tee "$DIR/results.md"
