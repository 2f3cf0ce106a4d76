#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's first command: install the build tools (Debian 12), build, and run auraio-demo on a
# temporary file: random 4 KiB reads with the depth controller choosing the depth.
# Usage: bash bench/demo.sh [auraio-demo arguments]
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
[ -f build-demo/build.ninja ] || meson setup build-demo --buildtype=release -Dtests=disabled -Dbench=disabled >/dev/null
ninja -C build-demo examples/auraio-demo >/dev/null
exec ./build-demo/examples/auraio-demo "$@"
