#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""auraio in one page: an engine, a read as a future, reads with callbacks, a pool buffer, stats.

    python quickstart.py [FILE]      (default: this script)
"""
import os
import sys

import auraio

path = sys.argv[1] if len(sys.argv) > 1 else __file__
fd = os.open(path, os.O_RDONLY)

with auraio.Engine() as engine:  # a ring per CPU, depth self-tuned; close() on exit
    # 1. A read as a future: result() waits (the GIL is released while it does).
    buf = bytearray(64)
    n = engine.read(fd, buf, 0).result()
    print(f"read {n} bytes: {bytes(buf[:n])!r}")

    # 2. Many reads with callbacks, delivered by wait(); the buffers are held until each is done.
    sizes = []
    for i in range(8):
        engine.read(fd, bytearray(128), i * 128, callback=lambda op: sizes.append(op.result()))
    while engine.pending:
        engine.wait()
    print(f"8 reads of 128 bytes returned {sizes}")

    # 3. A 4 KiB-aligned buffer from the engine's pool (what O_DIRECT needs), and file metadata.
    block = engine.buffer(4096)
    st = engine.statx(path).result()
    got = engine.read(fd, block, 0).result()
    print(f"{path}: {st.st_size} bytes; pool buffer at 0x{block.address:x} got {got}")

    # 4. Errors are OSError subclasses.
    try:
        engine.openat("/no/such/file").result()
    except FileNotFoundError as e:
        print(f"as expected: {e}")

    s = engine.stats()
    print(f"{s.ops_completed} operations, {s.bytes_transferred} bytes; in-flight limit now {s.in_flight_limit}")
os.close(fd)
