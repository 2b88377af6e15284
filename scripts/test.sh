#!/usr/bin/env bash
# Test job: set up, build, and run the whole test suite (ctest: the C++ tests and the Python
# module's pytest suite, the test `python`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
ctest --test-dir build --output-on-failure -j"$(nproc)"
