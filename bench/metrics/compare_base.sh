#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Per-completion cost of the lifetime counters: read_bench (cached 4 KiB reads, QD32, one ring,
# controller off) from two builds, interleaved ABAB in one run on one file, median IOPS of each.
# Usage: compare_base.sh BASE_READ_BENCH NEW_READ_BENCH [ROUNDS] [SECONDS]
set -euo pipefail
base=$1 new=$2 rounds=${3:-5} secs=${4:-3}
dir=${TMPDIR:-/tmp}
file=$(mktemp "$dir/auraio-cmp-XXXXXX")
trap 'rm -f "$file"' EXIT
head -c $((256 << 20)) /dev/zero > "$file"
a=() b=()
for ((i = 0; i < rounds; i++)); do
  for side in base new; do
    bin=$base; [ $side = new ] && bin=$new
    iops=$("$bin" --file "$file" --depth 32 --seconds "$secs" | sed -n 's/^RESULT iops=\([0-9]*\).*/\1/p')
    echo "round $i $side $iops"
    if [ $side = base ]; then a+=("$iops"); else b+=("$iops"); fi
  done
done
med() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ma=$(med "${a[@]}") mb=$(med "${b[@]}")
echo "RESULT base_iops=$ma new_iops=$mb ratio=$(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.4f", b / a}')"
