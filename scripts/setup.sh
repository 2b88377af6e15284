#!/usr/bin/env bash
# Installs the Debian 12 packages FusionGraph needs (only the missing ones) and builds it.
# Usage: scripts/setup.sh [BUILD_DIR] [extra cmake args...]   (default build dir: build, Release)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake make libdnnl-dev ocl-icd-opencl-dev libyaml-cpp-dev libeigen3-dev libfmt-dev
          doctest-dev libcli11-dev python3-numpy nlohmann-json3-dev)
# raw data (engine/data/): image and audio decoders, resampler, FFT
packages+=(libpng-dev libjpeg62-turbo-dev libsndfile1-dev libsamplerate0-dev libfftw3-dev)
# the Python module (python/): pybind11 against Debian's python3, its tests and the example's plots
packages+=(pybind11-dev python3-dev python3-pytest python3-matplotlib)
# Keras import (engine/import/): HDF5 and zip
packages+=(libhdf5-dev libzip-dev)
# the three-modality example (examples/fashion_fusion/): the data set and the speech synthesizer
packages+=(dataset-fashion-mnist espeak-ng)
# for scripts/fuzz.sh: clang with libFuzzer, the sanitizer runtimes, and llvm-14's symbolizer
# (file:line in the stacks)
packages+=(clang libfuzzer-14-dev libclang-rt-14-dev llvm-14)
# for tests/fuzz/make_corpus.py: the seed JPEGs (cjpeg) and FLAC / OGG / AIFF / AU sounds (sox)
packages+=(libjpeg-turbo-progs sox)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build_dir=${1:-build}
shift || true
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
fi
cmake --build "$build_dir" -j"$(nproc)"
