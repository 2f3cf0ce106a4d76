#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Symbol hygiene, as dav1d's CI checks it: every global symbol of the static library starts with
# auraio_ (it exposes internals too), the shared library exports only the public auraio_* API
# (no auraio__ internals), and neither links or names liburing.
# Usage: symbols.sh STATIC_LIB SHARED_LIB HEADER
set -euo pipefail
static=$1 shared=$2 header=$3
bad=$(nm -g --defined-only "$static" | awk 'NF==3 {print $3}' | grep -v '^auraio_' || true)
[ -z "$bad" ] || { echo "global symbols without the auraio_ prefix in $static:"; echo "$bad"; exit 1; }
exported=$(nm -D --defined-only "$shared" | awk '{print $3}')
internal=$(grep "^auraio__" <<< "$exported" || true)
[ -z "$internal" ] || { echo "internal symbols exported from $shared:"; echo "$internal"; exit 1; }
# Every exported function is declared in the public header, and every declared one is exported.
for sym in $exported; do
  grep -qE "\\b$sym\\(" "$header" || { echo "$sym is exported but not in auraio.h"; exit 1; }
done
for sym in $(grep -oE '\bauraio_[a-z0-9_]+\(' "$header" | tr -d '(' | sort -u); do
  grep -qx "$sym" <<< "$exported" || { echo "$sym is declared in auraio.h but not exported"; exit 1; }
done
if ldd "$shared" | grep -q liburing; then echo "$shared links liburing"; exit 1; fi
echo "symbols OK: $(echo "$exported" | wc -l) exported functions"
