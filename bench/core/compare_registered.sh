#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Cached 4 KiB random reads at 32 in flight through auraio, plain against registered buffers,
# registered file and both, in the same run: RUNS rounds, the variants' order rotating each round,
# medians and ratios to the plain variant. Usage: compare_registered.sh READ_BENCH [RUNS] [SECONDS]
set -euo pipefail
bench=$1 runs=${2:-5} secs=${3:-2}
dir=${TMPDIR:-/var/tmp}
file=$(mktemp "$dir/auraio-reg-XXXXXX")
trap 'rm -f "$file"' EXIT
head -c $((256 << 20)) /dev/urandom > "$file"
cat "$file" > /dev/null # into the page cache: this compares CPU cost per read, not the disk
variants=("" "--fixed-buffers" "--fixed-files" "--fixed-buffers --fixed-files")
names=(plain buffers files both)
declare -A res
for ((r = 0; r < runs; r++)); do
  for ((k = 0; k < 4; k++)); do
    v=$(((k + r) % 4))
    # shellcheck disable=SC2086
    iops=$("$bench" --file "$file" --depth 32 --seconds "$secs" ${variants[$v]} | sed -n 's/^RESULT iops=\([0-9]*\).*/\1/p')
    [ -n "$iops" ] || { echo "read_bench failed for ${names[$v]}"; exit 1; }
    res[${names[$v]}]+="$iops "
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
base=$(echo "${res[plain]}" | median)
printf "%-8s %12s %8s   (runs: IOPS)\n" variant "median IOPS" "x plain"
for n in "${names[@]}"; do
  m=$(echo "${res[$n]}" | median)
  printf "%-8s %12.0f %8.3f   (%s)\n" "$n" "$m" "$(echo "$m / $base" | bc -l)" "${res[$n]% }"
done
