#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Cheap style gate (dav1d's style job): no trailing whitespace or tabs in sources, every C file
# starts with its SPDX line, and nothing in lib/ or include/ uses liburing.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' '*.cpp' 'meson.build' '*/meson.build' '*.sh' '*.md' 2>/dev/null)
bad=0
if grep -nE '[[:space:]]+$' $files; then echo "trailing whitespace (above)"; bad=1; fi
if grep -nP '\t' $(git ls-files '*.c' '*.h' '*.cpp'); then echo "tabs in C sources (above)"; bad=1; fi
for f in $(git ls-files '*.c' '*.h'); do
  head -1 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0' || { echo "$f: missing SPDX line"; bad=1; }
done
if grep -rIlE '#[[:space:]]*include[[:space:]]*[<"]liburing|-luring' lib include; then echo "liburing in the library"; bad=1; fi
exit $bad
