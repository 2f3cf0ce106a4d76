#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's first command: install the build tools (Debian 12), build, and run bffio's default
# job: random 4 KiB O_DIRECT reads on a temporary 256 MiB file for 5 s, with auraio's controller
# choosing the depth; the report ends with the IOPS and P99 next to the depth it converged to.
# Usage: bash bench/demo.sh [bffio arguments, e.g. --runtime=10 --target-p99=2ms or a fio job file]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for p in gcc meson ninja-build pkg-config; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ -f build-demo/build.ninja ]; then
  meson configure build-demo -Dbench=enabled >/dev/null
else
  meson setup build-demo --buildtype=release -Dtests=disabled -Dbench=enabled >/dev/null
fi
ninja -C build-demo bench/bffio/bffio >/dev/null
exec ./build-demo/bench/bffio/bffio "$@"
