#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Consumer test: build a throwaway project that uses auraio (1) as a Meson subproject through
# dependency('auraio') and a wrap, (2) through pkg-config after `meson install` into a prefix.
# Usage: run.sh SOURCE_ROOT WORK_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
work=$2
rm -rf "$work"
mkdir -p "$work/sub/subprojects" "$work/pc"

# (1) Subproject: a copy of the tree (as a wrap-file or wrap-git would unpack it).
proj=$work/sub
cp "$src/test/consumer/main.c" "$proj/"
cat > "$proj/meson.build" <<'M'
project('consumer', 'c', default_options: ['c_std=c11', 'warning_level=3', 'werror=true'])
executable('consumer', 'main.c', dependencies: dependency('auraio'))
M
mkdir -p "$proj/subprojects/auraio"
(cd "$src" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$proj/subprojects/auraio")
cat > "$proj/subprojects/auraio.wrap" <<'W'
[wrap-file]
directory = auraio

[provide]
dependency_names = auraio
W
meson setup "$proj/build" "$proj" >/dev/null
ninja -C "$proj/build" >/dev/null
"$proj/build/consumer"
# The subproject's own tests must not leak into the consumer's test list.
if meson test -C "$proj/build" --list 2>/dev/null | grep -q .; then
  echo "auraio tests leaked into the consumer's meson test" >&2
  exit 1
fi

# (2) pkg-config after install into a private prefix.
meson setup "$work/pc/build" "$src" --prefix="$work/pc/prefix" -Dtests=disabled -Dbench=disabled >/dev/null
ninja -C "$work/pc/build" install >/dev/null
pcdir=$(dirname "$(find "$work/pc/prefix" -name auraio.pc | head -1)")
export PKG_CONFIG_PATH=$pcdir
cc -std=c11 -Wall -Wextra -Werror "$src/test/consumer/main.c" $(pkg-config --cflags --libs auraio) \
  -Wl,-rpath,"$(pkg-config --variable=libdir auraio)" -o "$work/pc/consumer"
"$work/pc/consumer"
# Static link through pkg-config too.
cc -std=c11 "$src/test/consumer/main.c" $(pkg-config --cflags auraio) \
  "$(pkg-config --variable=libdir auraio)/libauraio.a" $(pkg-config --libs-only-other --static auraio) -lpthread \
  -o "$work/pc/consumer-static"
"$work/pc/consumer-static"
echo "consumer: subproject and pkg-config builds OK"
