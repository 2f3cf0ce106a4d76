#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The Python binding against its peers, in one run (issue #15's "Checked by"):

  1. cached 4 KiB random reads, 32 in flight: the per-op Python path (a callback resubmits each
     read) and the batch path (Engine.read_batch: 4096 reads per call, 32 in flight) against the C read_bench at
     the same depth, ring count and controller setting; the batch path must reach >= 0.5x C.
  2. the same reads from 32 asyncio tasks: auraio.aio against asyncio.to_thread(os.pread) with
     the same 32 tasks; auraio must reach >= 3x.
  3. auraio.bench.run against the bffio command on the same job file: IOPS ratio in 0.95-1.05.

Each case runs --runs times (default 5), next to its peer and in alternating order so drift hits
both; the verdict uses the median of the per-run ratios (the ratio of the medians is printed too). The C peers must be built as the extension is (Python's CFLAGS: -O2
-DNDEBUG; a debugoptimized build keeps the library's debug checks and is ~10% slower), so:

    meson setup build-rel -Dbuildtype=release -Db_ndebug=true -Dtests=disabled -Dexamples=false
    ninja -C build-rel bench/bffio/bffio bench/core/read_bench
    flock /tmp/auraio-bench.lock build-py/venv/bin/python bench/python/compare.py

with the interpreter the binding is installed in (test/python/run.sh makes build-py/venv).
--cases c,batch (say) runs only some of: c op batch aio thread bench bffio.

Exit status 0 when every ratio meets its bar, 1 otherwise, 2 on a setup problem.
"""
import argparse
import array
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

import auraio
from auraio import aio, bench

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BS = 4096
DEPTH = 32


def engine_like_read_bench(depth):
    # read_bench's engine: one ring, the controller off, the limit pinned at the depth.
    return auraio.Engine(ring_count=1, queue_depth=max(256, depth * 2), initial_in_flight=depth,
                         max_in_flight=depth, disable_adaptive=True)


def offsets(size, n, seed):
    rng = random.Random(seed)
    blocks = size // BS
    return [rng.randrange(blocks) * BS for _ in range(n)]


def c_read_bench(exe, path, depth, seconds):
    out = subprocess.run([exe, "--file", path, "--depth", str(depth), "--seconds", str(seconds)],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"RESULT iops=(\d+)", out)
    if not m:
        raise SystemExit(f"compare: no RESULT line from read_bench:\n{out}")
    return float(m.group(1))


def py_per_op(path, depth, seconds):
    """One Operation per read; each completion's callback submits the next read."""
    size = os.path.getsize(path)
    offs = offsets(size, 1 << 16, 1)
    mask = len(offs) - 1
    fd = os.open(path, os.O_RDONLY)
    e = engine_like_read_bench(depth)
    state = {"i": 0, "n": 0, "run": True}

    def make(buf):
        def cb(op):
            if op._result != BS:
                raise OSError(f"read returned {op._result}")
            state["n"] += 1
            if state["run"]:
                i = state["i"] = (state["i"] + 1) & mask
                e.read(fd, buf, offs[i], callback=cb)
        return cb

    for k in range(depth):
        buf = bytearray(BS)
        e.read(fd, buf, offs[k], callback=make(buf))
    t0 = time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        e.wait(0.1)
    n = state["n"]
    elapsed = time.perf_counter() - t0
    state["run"] = False
    while e.pending:
        e.wait(1)
    e.close()
    os.close(fd)
    return n / elapsed


def py_batch(path, depth, seconds):
    """read_batch: 4096 reads per call, 32 in flight (each completion submits the next in C)."""
    size = os.path.getsize(path)
    per_call = 4096
    offs = offsets(size, 1 << 16, 2)
    chunks = [array.array("q", offs[i:i + per_call]) for i in range(0, len(offs), per_call)]
    fd = os.open(path, os.O_RDONLY)
    e = engine_like_read_bench(depth)
    buf = bytearray(per_call * BS)
    n = 0
    k = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        res = e.read_batch(fd, buf, chunks[k], BS, depth=depth).result()
        k = (k + 1) % len(chunks)
        n += len(res)
    elapsed = time.perf_counter() - t0
    if res != [BS] * per_call:
        raise SystemExit(f"compare: batch read results {res[:4]}...")
    e.close()
    os.close(fd)
    return n / elapsed


async def _tasks(path, tasks, seconds, read_one):
    size = os.path.getsize(path)
    offs = offsets(size, 1 << 16, 3)
    mask = len(offs) - 1
    fd = os.open(path, os.O_RDONLY)
    stop = False
    counts = [0] * tasks

    async def worker(t):
        nonlocal stop
        buf = bytearray(BS)
        i = t
        while not stop:
            got = await read_one(fd, buf, offs[i & mask])
            if got != BS:
                raise OSError(f"read returned {got}")
            counts[t] += 1
            i += tasks

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    workers = [asyncio.ensure_future(worker(t)) for t in range(tasks)]
    await asyncio.sleep(seconds)
    n = sum(counts)
    elapsed = loop.time() - t0
    stop = True
    await asyncio.gather(*workers)
    os.close(fd)
    return n / elapsed


def py_asyncio(path, tasks, seconds):
    async def main():
        async with aio.Engine(ring_count=1) as e:
            return await _tasks(path, tasks, seconds, e.read)
    return asyncio.run(main())


def py_to_thread(path, tasks, seconds):
    async def read_one(fd, buf, off):
        data = await asyncio.to_thread(os.pread, fd, BS, off)
        buf[:len(data)] = data
        return len(data)

    async def main():
        return await _tasks(path, tasks, seconds, read_one)
    return asyncio.run(main())


def job_text(path, seconds):
    return (f"[cmp]\nfilename={path}\nrw=randread\nbs=4k\niodepth={DEPTH}\nruntime={seconds}s\ntime_based\n"
            f"randrepeat=1\n")


def run_bench(jobfile):
    return bench.run(jobfile, progress=False).iops


def run_bffio(exe, jobfile):
    out = subprocess.run([exe, "--output-format=json", jobfile], capture_output=True, text=True, check=True).stdout
    return float(json.loads(out)["jobs"][0]["read"]["iops"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build-rel"),
                    help="meson build dir (release, b_ndebug=true) with read_bench and bffio")
    ap.add_argument("--cases", default="c,op,batch,aio,thread,bench,bffio")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--size", type=int, default=256, help="file size in MiB (page cache)")
    a = ap.parse_args()
    read_bench = os.path.join(a.build, "bench", "core", "read_bench")
    bffio = os.path.join(a.build, "bench", "bffio", "bffio")
    for exe in (read_bench, bffio):
        if not os.access(exe, os.X_OK):
            print(f"compare: {exe} missing: build it first (ninja -C {a.build})", file=sys.stderr)
            return 2
    tmp = tempfile.mkdtemp(prefix="auraio-pycmp-")
    path = os.path.join(tmp, "data")
    with open(path, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(a.size):
            f.write(chunk)
    with open(path, "rb") as f:  # into the page cache
        while f.read(1 << 24):
            pass
    jobfile = os.path.join(tmp, "cmp.fio")
    with open(jobfile, "w") as f:
        f.write(job_text(path, a.seconds))
    print(f"auraio {auraio.__version__}, Python {sys.version.split()[0]} ({sys.executable}), "
          f"{os.cpu_count()} CPUs, {a.size} MiB cached file, {a.runs} runs x {a.seconds:g} s, depth {DEPTH}")
    res = {k: [] for k in ("c", "op", "batch", "aio", "thread", "bench", "bffio")}
    try:
        for r in range(a.runs):
            pairs = [("c", lambda: c_read_bench(read_bench, path, DEPTH, a.seconds)),
                     ("op", lambda: py_per_op(path, DEPTH, a.seconds)),
                     ("batch", lambda: py_batch(path, DEPTH, a.seconds)),
                     ("aio", lambda: py_asyncio(path, DEPTH, a.seconds)),
                     ("thread", lambda: py_to_thread(path, DEPTH, a.seconds)),
                     ("bench", lambda: run_bench(jobfile)),
                     ("bffio", lambda: run_bffio(bffio, jobfile))]
            cases = a.cases.split(",")
            pairs = [p for p in pairs if p[0] in cases]
            if r % 2:
                pairs.reverse()
            for k, fn in pairs:
                res[k].append(fn())
            print(f"run {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in res.items() if v), flush=True)
    finally:
        os.unlink(path)
        os.unlink(jobfile)
        os.rmdir(tmp)
    med = {k: statistics.median(v) for k, v in res.items() if v}
    checks = [
        ("per-op Python path / C read_bench", "op", "c", None),
        ("batch path / C read_bench", "batch", "c", (0.5, None)),
        ("asyncio auraio / asyncio.to_thread(os.pread)", "aio", "thread", (3.0, None)),
        ("auraio.bench / bffio (same job)", "bench", "bffio", (0.95, 1.05)),
    ]
    # Judged on the median of the per-run ratios: each pair ran back to back, so a load swing
    # between runs (other work on a shared machine) moves both sides; the ratio of the medians
    # is printed too.
    checks = [(name, statistics.median(a_ / b_ for a_, b_ in zip(res[x], res[y])), med[x] / med[y], bar)
              for name, x, y, bar in checks if x in med and y in med]
    print("\nmedian IOPS: " + ", ".join(f"{k} {v:,.0f}" for k, v in med.items()))
    ok = True
    for name, ratio, of_medians, bar in checks:
        verdict = ""
        if bar:
            lo, hi = bar
            good = ratio >= lo and (hi is None or ratio <= hi)
            ok &= good
            verdict = f"  {'PASS' if good else 'FAIL'} (bar {lo}{'' if hi is None else f'-{hi}'})"
        print(f"{name}: {ratio:.2f}x (ratio of medians {of_medians:.2f}x){verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
