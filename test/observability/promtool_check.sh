#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The exposition passes `promtool check metrics` (syntax and the Prometheus naming lint). promtool
# comes with Debian's `prometheus` package, which test/run-all.sh installs; skip (77) only when it
# is not installed. Usage: promtool_check.sh PROM_DUMP
set -euo pipefail
promtool=$(command -v promtool || true)
[ -n "$promtool" ] || { echo "promtool not installed (apt-get install prometheus)"; exit 77; }
doc=$(mktemp)
trap 'rm -f "$doc"' EXIT
"$1" > "$doc"
grep -q '^auraio_request_latency_seconds_bucket{ring="1",le="+Inf"}' "$doc" || { echo "no histogram in the dump"; exit 1; }
out=$("$promtool" check metrics < "$doc" 2>&1) || { echo "promtool check metrics failed:"; echo "$out"; exit 1; }
# promtool exits 0 on lint warnings in some versions: any output is a finding.
[ -z "$out" ] || { echo "promtool check metrics reported:"; echo "$out"; exit 1; }
echo "promtool check metrics: OK ($(grep -vc '^#' "$doc") samples)"
