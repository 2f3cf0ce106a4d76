# SPDX-License-Identifier: Apache-2.0
"""asyncio: thousands of reads, cancellation, timeouts, the loop closing with I/O pending."""
import asyncio
import errno
import gc
import os
import weakref

import pytest

import auraio
from auraio import aio


class Buf(bytearray):
    pass


async def drained(e, within=5.0):
    """Every request of the engine completed (delivered through the loop) within `within` s."""
    async def wait():
        while e.sync.pending:
            await asyncio.sleep(0.001)
    await asyncio.wait_for(wait(), within)


def test_thousand_concurrent_reads_verified(data_file):
    path, content = data_file

    async def main():
        fd = os.open(path, os.O_RDONLY)
        async with aio.Engine(ring_count=1, queue_depth=64) as e:  # 1000 tasks > 64 slots: they queue
            bufs = [bytearray(1024) for _ in range(1000)]
            offs = [(i * 7919 * 1024) % (len(content) - 1024) for i in range(1000)]
            rs = await asyncio.wait_for(asyncio.gather(*(e.read(fd, b, o) for b, o in zip(bufs, offs))), 30)
            assert rs == [1024] * 1000
            for b, o in zip(bufs, offs):
                assert b == content[o:o + 1024]
            assert e.sync.pending == 0
        os.close(fd)

    asyncio.run(main())


def test_cancellation_cancels_the_io_and_keeps_the_buffer(pipe):
    async def main():
        async with aio.Engine(ring_count=1) as e:
            b = Buf(8)
            ref = weakref.ref(b)
            task = asyncio.ensure_future(e.read(pipe[0], b))
            await asyncio.sleep(0)  # let it submit
            del b
            assert e.sync.pending == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            gc.collect()
            assert ref() is not None or e.sync.pending == 0
            await drained(e)  # the kernel's -ECANCELED comes back through the loop
            gc.collect()
            assert ref() is None
            # the pipe is untouched: a later read gets the data
            os.write(pipe[1], b"12345678")
            b2 = bytearray(8)
            assert await e.read(pipe[0], b2) == 8 and b2 == b"12345678"

    asyncio.run(main())


def test_timeouts(pipe):
    async def main():
        async with aio.Engine(ring_count=1) as e:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(e.read(pipe[0], bytearray(8)), 0.05)
            with pytest.raises(auraio.DeadlineExceeded):
                await e.read(pipe[0], bytearray(8), deadline=0.02)
            if hasattr(asyncio, "timeout"):
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await e.read(pipe[0], bytearray(8))
            await drained(e)

    asyncio.run(main())


def test_loop_closing_with_io_pending_then_engine_close(pipe):
    e = aio.Engine(ring_count=1)
    loop = asyncio.new_event_loop()
    fut_holder = []

    async def start():
        fut_holder.append(asyncio.ensure_future(e.read(pipe[0], bytearray(8))))
        await asyncio.sleep(0)

    loop.run_until_complete(start())
    assert e.sync.pending == 1
    loop.close()  # the task never finished; its loop is gone
    e.close()  # cancels in the kernel, delivers, leaves the dead loop alone: no crash
    assert e.sync.closed


def test_asyncio_run_cancels_leftover_tasks_cleanly(pipe):
    e = aio.Engine(ring_count=1)

    async def main():
        asyncio.ensure_future(e.read(pipe[0], bytearray(8)))
        await asyncio.sleep(0)

    asyncio.run(main())  # cancels the leftover task: its I/O is cancelled
    e.close()


def test_async_file(tmp_path):
    p = tmp_path / "af"

    async def main():
        async with aio.open(p, "wb") as f:
            assert await f.write(b"hello ") == 6
            assert await f.write(b"world") == 5
            assert f.tell() == 11
            await f.fsync()
        async with aio.open(p, "rb") as f:
            assert await f.read() == b"hello world"
            assert await f.read(5, 6) == b"world"
            f.seek(0)
            assert await f.read(5) == b"hello" and f.tell() == 5
            assert (await f.stat()).st_size == 11
        f = await aio.open(p, "ab")
        await f.write(b"!")
        await f.close()
        with pytest.raises(ValueError):
            await f.read(1)
        with pytest.raises(FileNotFoundError):
            await aio.open(tmp_path / "missing", "rb")
        with pytest.raises(ValueError):
            aio.open(p, "r+t")

    asyncio.run(main())
    assert p.read_bytes() == b"hello world!"


def test_other_ops_and_batch(tmp_path, data_file):
    async def main():
        async with aio.Engine(ring_count=1) as e:
            fd = await e.openat(data_file[0])
            st = await e.statx(fd)
            assert st.st_size == len(data_file[1])
            assert await e.pread(fd, 10, 5) == data_file[1][5:15]
            buf = bytearray(8192)
            assert await e.read_batch(fd, buf, [0, 4096], 4096) == [4096, 4096]
            assert bytes(buf) == data_file[1][:8192]
            await e.sleep(0.001)
            await e.close_fd(fd)

    asyncio.run(main())


def test_engine_bound_to_one_loop():
    e = aio.Engine(ring_count=1)

    async def use():
        await e.sleep(0.001)

    asyncio.run(use())
    asyncio.run(use())  # the first loop is closed: the engine moves to the new one
    loop = asyncio.new_event_loop()
    loop.run_until_complete(use())

    async def other():
        with pytest.raises(RuntimeError):
            await e.sleep(0.001)

    asyncio.run(other())
    loop.close()
    e.close()


def test_uvloop(data_file):
    uvloop = pytest.importorskip("uvloop")
    path, content = data_file

    async def main():
        async with aio.Engine(ring_count=1, queue_depth=32) as e:
            fd = os.open(path, os.O_RDONLY)
            bufs = [bytearray(4096) for _ in range(200)]
            rs = await asyncio.wait_for(asyncio.gather(*(e.read(fd, b, i * 4096) for i, b in enumerate(bufs))), 30)
            assert rs == [4096] * 200 and all(b == content[i * 4096:(i + 1) * 4096] for i, b in enumerate(bufs))
            r, w = os.pipe()
            task = asyncio.ensure_future(e.read(r, bytearray(4)))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await drained(e)
            os.close(fd)
            os.close(r)
            os.close(w)

    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_every_async_op(tmp_path):
    p = str(tmp_path / "ops")

    async def main():
        async with aio.Engine(ring_count=1) as e:
            fd = await e.openat(p, os.O_RDWR | os.O_CREAT, 0o600)
            assert await e.writev(fd, [b"ab", b"cd"], 0) == 4
            assert await e.write(fd, b"ef", 4) == 2
            a, b = bytearray(3), bytearray(3)
            assert await e.readv(fd, [a, b], 0) == 6 and a + b == b"abcdef"
            assert await e.fsync(fd) == 0 and await e.fsync(fd, datasync=True) == 0
            assert await e.fallocate(fd, 0, 8192) == 0
            assert await e.sync_file_range(fd) == 0
            assert await e.fadvise(fd, 0, 0, os.POSIX_FADV_NORMAL) == 0
            try:
                assert await e.ftruncate(fd, 6) == 0
            except OSError as x:
                assert x.errno == errno.EOPNOTSUPP
            pb = e.buffer(4096)
            assert await e.madvise(pb, 3) == 0  # MADV_WILLNEED
            assert await e.read(fd, pb, 0) >= 6 and bytes(pb[:6]) == b"abcdef"
            assert e.cancel_fd(fd) == 0
            await e.close_fd(fd)

    asyncio.run(main())
