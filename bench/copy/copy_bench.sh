#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# auraio-copy against cp and dd on the same file in the same run, page cache dropped before every
# copy (needs root for /proc/sys/vm/drop_caches), runs interleaved, medians and ratios printed.
# Every copy is made durable the same way: auraio-copy ends with fsync, dd uses conv=fsync, cp is
# followed by `sync FILE` (an fsync of the copy). Then the O_DIRECT pair: auraio-copy --direct
# against dd iflag=direct oflag=direct. Each auraio copy is checked with cmp.
#
#   flock /tmp/auraio-bench.lock bash bench/copy/copy_bench.sh BUILD/examples/auraio-copy [MIB] [RUNS] [DIR]
set -euo pipefail
copy=$1 mib=${2:-256} runs=${3:-5} dir=${4:-${TMPDIR:-/var/tmp}}
work=$(mktemp -d "$dir/auraio-copy-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/src
head -c $((mib * 1024 * 1024)) /dev/urandom > "$src"
sync

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# time_ms CMD...: wall time of the command in ms, after dropping the caches; the copy is removed.
time_ms() {
  rm -f "$work/dst"; drop
  local t0 t1; t0=$(date +%s%N)
  "$@" > /dev/null 2>&1
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

declare -A t
names=(auraio cp dd auraio_direct dd_direct)
one() { # one NAME: one timed copy of that kind
  case $1 in
    auraio) t[auraio]+="$(time_ms "$copy" "$src" "$work/dst") "; cmp "$src" "$work/dst" ;;
    cp) t[cp]+="$(time_ms sh -c "cp '$src' '$work/dst' && sync '$work/dst'") " ;;
    dd) t[dd]+="$(time_ms dd if="$src" of="$work/dst" bs=1M conv=fsync) " ;;
    auraio_direct) t[auraio_direct]+="$(time_ms "$copy" --direct "$src" "$work/dst") "; cmp "$src" "$work/dst" ;;
    dd_direct) t[dd_direct]+="$(time_ms dd if="$src" of="$work/dst" bs=1M iflag=direct oflag=direct conv=fsync) " ;;
  esac
}
# The order rotates each run, so no tool always goes first after the file was written.
for ((r = 0; r < runs; r++)); do
  for ((k = 0; k < ${#names[@]}; k++)); do
    one "${names[(k + r) % ${#names[@]}]}"
  done
done
echo "copy of a $mib MiB file, page cache dropped before each copy, $runs runs interleaved, order rotating (median ms, MiB/s):"
declare -A med
for n in "${names[@]}"; do
  med[$n]=$(tr ' ' '\n' <<< "${t[$n]}" | grep . | median)
  printf '  %-14s %8s ms  %7.1f MiB/s   runs: %s\n' "$n" "${med[$n]}" "$(echo "$mib * 1000 / ${med[$n]}" | bc -l)" "${t[$n]}"
done
printf 'ratios (time of the peer / time of auraio-copy, > 1: auraio faster):\n'
printf '  buffered: cp %.2f   dd %.2f\n' "$(echo "${med[cp]} / ${med[auraio]}" | bc -l)" "$(echo "${med[dd]} / ${med[auraio]}" | bc -l)"
printf '  O_DIRECT: dd %.2f\n' "$(echo "${med[dd_direct]} / ${med[auraio_direct]}" | bc -l)"
