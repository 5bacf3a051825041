#!/usr/bin/env bash
# Start-up benchmark of the wasm tier, side by side with native python3 (and the namespace
# tier when BRIG_BIN names a brig binary). Needs python.wasm for the Python rows
# (scripts/install-python-wasm.sh). BENCH_QUICK=1 runs a tenth of the iterations.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/brig-wasm-target}"
exec cargo bench -p brig-wasm --bench wasm "$@"
