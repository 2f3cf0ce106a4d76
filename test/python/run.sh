#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build the Python binding and run its pytest suite, the way doc/python.md installs it here:
# Debian's /usr/bin/python3 in a venv with --system-site-packages (cffi, setuptools, wheel, pytest,
# matplotlib, numpy, pandas come from apt: there is no PyPI), pip without build isolation (it
# would try to download the build requirements). The summary goes to DIR/pytest.txt; its closing
# line is pytest's ("N passed ... in Xs").
# Usage: bash test/python/run.sh [DIR]   (default build-py; AURAIO_BFFIO from build/ when present)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-build-py}
mkdir -p "$dir"
py=/usr/bin/python3
if [ ! -x "$dir/venv/bin/python" ]; then
  "$py" -m venv --system-site-packages "$dir/venv"
fi
"$dir/venv/bin/python" -m pip install -q --no-build-isolation --no-index ./python > "$dir/pip.txt" 2>&1 \
  || { cat "$dir/pip.txt"; echo "FAILED: pip install ./python"; exit 1; }
if [ -z "${AURAIO_BFFIO:-}" ] && [ -x build/bench/bffio/bffio ]; then
  export AURAIO_BFFIO=$PWD/build/bench/bffio/bffio
fi
rc=0
(cd python && "../$dir/venv/bin/python" -m pytest -q -p no:cacheprovider tests) > "$dir/pytest.txt" 2>&1 || rc=$?
grep -vE '^\.*( *\[ *[0-9]+%\])?$' "$dir/pytest.txt" || true
[ "$rc" -eq 0 ] || { echo "FAILED: python tests (pytest exit $rc)"; exit 1; }
