#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install what the tests need (Debian 12), build with -Werror and run every test suite: the plain
# build, then ASan+UBSan and TSan builds. Fails on any skipped test when io_uring must work here.
# Usage: bash test/run-all.sh            (AURAIO_QUICK=1 skips the sanitizer builds)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(gcc g++ clang libclang-rt-14-dev meson ninja-build pkg-config libcmocka-dev valgrind
          liburing-dev fio git prometheus e2fsprogs
          python3-cffi python3-setuptools python3-wheel python3-pytest python3-venv python3-dev
          python3-matplotlib python3-numpy python3-pandas python3-uvloop)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Configure (or reconfigure) a build directory with the given options.
configure() {
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}

# Run meson test in a build dir; fail if anything was skipped (io_uring must work here).
ran=()
run_tests() {
  local dir=$1; shift
  ran+=("$dir")
  echo "== meson test -C $dir $*"
  local rc=0
  meson test -C "$dir" --print-errorlogs "$@" > "$dir/test-summary.txt" 2>&1 || rc=$?
  # Passing tests are one line each; show everything else (failures, logs, the summary).
  grep -vE '^ *[0-9]+/[0-9]+ .* OK ' "$dir/test-summary.txt" || true
  [ "$rc" -eq 0 ] || { echo "FAILED: tests in $dir (meson test exit $rc)"; exit 1; }
  if grep -qE '^Skipped: *[1-9]' "$dir/test-summary.txt"; then
    echo "FAILED: tests were skipped in $dir; io_uring must work on this machine"
    exit 1
  fi
}

echo "== style"
bash test/style.sh

configure build -Dwerror=true -Dbuildtype=debugoptimized
ninja -C build
# Every suite, the callgrind one included: library instructions per cached read against the
# budget in bench/core/meson.build (issue #11; a few seconds under valgrind).
run_tests build

# The Python binding (python/, doc/python.md): built into a venv of Debian's python3, then pytest.
echo "== python: test/python/run.sh build-py"
bash test/python/run.sh build-py

# bffio's job parser under libFuzzer for a bounded 30 s (a crash fails CI; see bench/bffio/fuzz).
echo "== fuzz: bffio job parser (30 s)"
bash bench/bffio/fuzz/run.sh 30 build-fuzz

# Five planted bugs (test/mutate/mutants.toml, ci = true; doc/testing.md) must each make a test
# fail: one that survives means a test stopped biting. About a minute, in a scratch copy.
echo "== mutants: python3 test/mutate/run.py --subset ci"
python3 test/mutate/run.py --subset ci

if [ "${AURAIO_QUICK:-0}" != 1 ]; then
  # Sanitizers: library, integration, fault and controller suites (the consumer suite only
  # rebuilds the same code; the devices suite measures IOPS ratios on real devices, which a
  # sanitizer's slowdown would measure instead, and its library code runs in the other suites).
  configure build-asan -Dwerror=true -Db_sanitize=address,undefined -Dbench=disabled -Dexamples=false
  ninja -C build-asan
  ASAN_OPTIONS=detect_leaks=1 run_tests build-asan --no-suite consumer --no-suite devices
  CC=clang configure build-tsan -Dwerror=true -Db_sanitize=thread -Db_lundef=false -Dbench=disabled -Dexamples=false
  ninja -C build-tsan
  TSAN_OPTIONS=halt_on_error=1 run_tests build-tsan --no-suite consumer --no-suite devices
fi
# One closing line over every build's summary: "N passed, N failed, N skipped".
passed=0 failed=0 skipped=0
for dir in "${ran[@]}"; do
  f=$dir/test-summary.txt
  ok=$(sed -n 's/^Ok: *\([0-9]*\)/\1/p' "$f"); xf=$(sed -n 's/^Expected Fail: *\([0-9]*\)/\1/p' "$f")
  fl=$(sed -n 's/^Fail: *\([0-9]*\)/\1/p' "$f"); up=$(sed -n 's/^Unexpected Pass: *\([0-9]*\)/\1/p' "$f")
  to=$(sed -n 's/^Timeout: *\([0-9]*\)/\1/p' "$f"); sk=$(sed -n 's/^Skipped: *\([0-9]*\)/\1/p' "$f")
  passed=$((passed + ${ok:-0} + ${xf:-0})); failed=$((failed + ${fl:-0} + ${up:-0} + ${to:-0}))
  skipped=$((skipped + ${sk:-0}))
done
# pytest's closing line: "N passed, N skipped in Xs" (or "N failed, ...").
line=$(tail -n 1 build-py/pytest.txt)
for kind in passed failed skipped error; do
  n=$(echo "$line" | grep -oE "[0-9]+ $kind" | grep -oE '^[0-9]+' || true)
  case $kind in
    passed) passed=$((passed + ${n:-0})) ;; skipped) skipped=$((skipped + ${n:-0})) ;;
    *) failed=$((failed + ${n:-0})) ;;
  esac
done
echo "All test suites passed."
echo "$passed passed, $failed failed, $skipped skipped"
