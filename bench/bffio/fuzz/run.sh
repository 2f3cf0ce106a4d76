#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fuzz bffio's job parser with libFuzzer (clang -fsanitize=fuzzer,address,undefined) for a bounded
# time, starting from the seed corpus in corpus/. A crash leaves its input as crash-* here; fix the
# bug and move the input into corpus/ so every build replays it (bffio_fuzz_corpus test).
# Usage: bash bench/bffio/fuzz/run.sh [seconds, default 30] [build dir, default build-fuzz]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-30}
# The build dir is relative to where the script was called from (the repository root in CI).
out=$(realpath -m "${2:-$here/../../../build-fuzz}")
cd "$here"
mkdir -p "$out" "$out/corpus"
cp corpus/* "$out/corpus/"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -std=c11 -I.. \
  fuzz_job_parser.c ../job_parser.c ../units.c -lm -o "$out/fuzz_job_parser"
# The working corpus grows in the build dir; the seeds in git stay small.
"$out/fuzz_job_parser" -max_total_time="$secs" -max_len=4096 -timeout=5 -artifact_prefix=./ \
  -print_final_stats=1 "$out/corpus" 2>&1 | tail -15
