#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Does the abi3 (limited API) build cost speed? The Python-bound paths of compare.py - per-op
reads with callbacks, asyncio reads, and read_batch with 32 reads per call (the per-call cost) -
in two installs of the binding, alternating, medians of --runs:

    AURAIO_NO_ABI3=1 /usr/bin/python3 -m venv --system-site-packages /tmp/venv-noabi3
    AURAIO_NO_ABI3=1 /tmp/venv-noabi3/bin/python -m pip install --no-build-isolation --no-index ./python
    flock /tmp/auraio-bench.lock /usr/bin/python3 bench/python/abi3_cost.py build-py/venv/bin/python \\
        /tmp/venv-noabi3/bin/python
"""
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def worker(path, seconds):
    sys.path.insert(0, HERE)
    import array
    import time

    import compare
    from auraio import _auraio

    def small_batches():
        offs = compare.offsets(os.path.getsize(path), 1 << 12, 4)
        chunks = [array.array("q", offs[i:i + 32]) for i in range(0, len(offs), 32)]
        fd = os.open(path, os.O_RDONLY)
        e = compare.engine_like_read_bench(32)
        buf = bytearray(32 * compare.BS)
        n, k = 0, 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            n += len(e.read_batch(fd, buf, chunks[k], compare.BS).result())
            k = (k + 1) % len(chunks)
        rate = n / (time.perf_counter() - t0)
        e.close()
        os.close(fd)
        return rate

    out = {"module": os.path.basename(_auraio.__file__),
           "op": compare.py_per_op(path, 32, seconds), "aio": compare.py_asyncio(path, 32, seconds),
           "batch32": small_batches()}
    print(json.dumps(out))


def main():
    if sys.argv[1] == "--worker":
        return worker(sys.argv[2], float(sys.argv[3]))
    pys = sys.argv[1:3]
    runs, seconds = 5, 1.5
    path = "/tmp/auraio-abi3-cost.dat"
    with open(path, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    res = {p: [] for p in pys}
    try:
        for r in range(runs):
            for p in (pys if r % 2 == 0 else pys[::-1]):
                out = subprocess.run([p, __file__, "--worker", path, str(seconds)], capture_output=True, text=True,
                                     check=True).stdout
                res[p].append(json.loads(out))
    finally:
        os.unlink(path)
    med = {}
    for p in pys:
        med[p] = {k: statistics.median(d[k] for d in res[p]) for k in ("op", "aio", "batch32")}
        print(f"{res[p][0]['module']:42} " + ", ".join(f"{k} {v:,.0f}" for k, v in med[p].items()))
    a, b = pys
    print("ratio first/second: " + ", ".join(f"{k} {med[a][k] / med[b][k]:.3f}" for k in med[a]))


if __name__ == "__main__":
    main()
