#!/usr/bin/env bash
# Main job: set up, build, and run the reference graph (built-in default weights and inputs).
# Extra arguments go to `graph-runner run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/graph-runner run graphs/multimodal_fusion.yaml "$@"
