#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's C example must compile warning-free against the built library and run.
# Usage: readme.sh SOURCE_ROOT BUILD_LIB_DIR WORK_DIR
set -euo pipefail
src=$1 libdir=$2 work=$3
mkdir -p "$work"
awk '/^```c$/{on=1; next} /^```$/{if(on) exit} on' "$src/README.md" > "$work/readme_example.c"
[ -s "$work/readme_example.c" ] || { echo "no C example found in README.md" >&2; exit 1; }
cc -std=c11 -Wall -Wextra -Wpedantic -Werror -I"$src/include" "$work/readme_example.c" \
  -L"$libdir" -Wl,-rpath,"$libdir" -lauraio -o "$work/readme_example"
"$work/readme_example" | grep -E '^read [0-9]+ bytes$'
