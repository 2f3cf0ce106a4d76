#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Copy many files concurrently with asyncio and auraio (no thread pool): every open, read, write,
fsync and close goes through io_uring; the engine is driven by the event loop's poll on its fd.

    python async_copy.py SRC_DIR DST_DIR [--jobs 64] [--chunk 1M]
"""
import argparse
import asyncio
import os
import time

from auraio import aio


async def copy_file(engine, src, dst, chunk):
    async with aio.open(src, "rb", engine=engine) as fin, aio.open(dst, "wb", engine=engine) as fout:
        buf = bytearray(chunk)
        view = memoryview(buf)
        offset = 0
        while True:
            n = await engine.read(fin.fd, buf, offset)
            if n == 0:
                break
            await fout.write(view[:n], offset)
            offset += n
        await fout.fsync()
    return offset


async def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--jobs", type=int, default=64, help="files copied at once")
    ap.add_argument("--chunk", default="1M", help="bytes per read (k/M suffix)")
    a = ap.parse_args()
    chunk = int(a.chunk[:-1]) * {"k": 1024, "M": 1 << 20}[a.chunk[-1]] if a.chunk[-1] in "kM" else int(a.chunk)
    os.makedirs(a.dst, exist_ok=True)
    names = sorted(n for n in os.listdir(a.src) if os.path.isfile(os.path.join(a.src, n)))
    limit = asyncio.Semaphore(a.jobs)
    t0 = time.perf_counter()
    async with aio.Engine() as engine:
        async def one(name):
            async with limit:
                return await copy_file(engine, os.path.join(a.src, name), os.path.join(a.dst, name), chunk)

        sizes = await asyncio.gather(*(one(n) for n in names))
    dt = time.perf_counter() - t0
    total = sum(sizes)
    print(f"copied {len(names)} files, {total / 1e6:.1f} MB in {dt:.2f} s ({total / 1e6 / max(dt, 1e-9):.0f} MB/s)")


if __name__ == "__main__":
    asyncio.run(main())
