#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the examples against real files: auraio-copy (buffered, small blocks, O_DIRECT where the
# temp filesystem has it, an empty file) judged by cmp; auraio-scan over a tree judged by find and
# a per-file hash computed here. Exit 77 only where io_uring is unavailable.
# Usage: run_examples.sh AURAIO_COPY AURAIO_SCAN
set -euo pipefail
copy=$1 scan=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/auraio-examples-XXXXXX")
trap 'rm -rf "$dir"' EXIT

run() { # run CMD...: on failure, skip if the kernel has no io_uring, else fail
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  if [ $rc -ne 0 ]; then
    if grep -qE 'auraio_create: (Function not implemented|Operation not permitted)' <<< "$out" &&
       [ "${AURAIO_REQUIRE_IO_URING:-0}" != 1 ]; then
      echo "SKIP: io_uring unavailable: $out"; exit 77
    fi
    echo "FAIL ($rc): $*"; echo "$out"; exit 1
  fi
  echo "$out"
}

head -c $((3 * 1024 * 1024 + 17)) /dev/urandom > "$dir/src"
: > "$dir/empty"
run "$copy" "$dir/src" "$dir/dst1"
cmp "$dir/src" "$dir/dst1"
run "$copy" --prealloc --block 64 --depth 3 "$dir/src" "$dir/dst2"
cmp "$dir/src" "$dir/dst2"
run "$copy" "$dir/empty" "$dir/dst3"
cmp "$dir/empty" "$dir/dst3"
if dd if="$dir/src" of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null; then
  run "$copy" --direct --prealloc --block 128 "$dir/src" "$dir/dst4"
  cmp "$dir/src" "$dir/dst4"
else
  echo "O_DIRECT not supported in $dir: the --direct copy is not run"
fi
# A missing source fails cleanly.
if "$copy" "$dir/missing" "$dir/dst5" 2>/dev/null; then echo "FAIL: copy of a missing file succeeded"; exit 1; fi

# A tree: sizes around the chunk (128 KiB) and block boundaries, empty files, nesting.
tree=$dir/tree
mkdir -p "$tree/a/b/c" "$tree/d" "$tree/empty-dir"
i=0
for size in 0 1 4095 4096 131071 131072 131073 262144 1000000; do
  for sub in "" a a/b/c d; do
    head -c "$size" /dev/urandom > "$tree/$sub/f$i"
    i=$((i + 1))
  done
done
ln -s "$tree/d/f3" "$tree/link" # not a regular file: skipped, as find -type f does
out=$(run "$scan" --files 5 --chunk 128 "$tree")
echo "$out"
files=$(find "$tree" -type f | wc -l)
bytes=$(find "$tree" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
sum=$(python3 - "$tree" <<'PY'
import os, sys
total = 0
for root, _, names in os.walk(sys.argv[1]):
    for n in names:
        p = os.path.join(root, n)
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        h = 0
        for b in open(p, 'rb').read():
            h = (h * 31 + b) & 0xffffffffffffffff
        total = (total + h) & 0xffffffffffffffff
print('%016x' % total)
PY
)
grep -q "^files $files bytes $bytes checksum $sum " <<< "$out" ||
  { echo "FAIL: expected files $files bytes $bytes checksum $sum"; exit 1; }
echo "examples OK"
