# SPDX-License-Identifier: Apache-2.0
"""asyncio on auraio, without a helper thread.

    async with auraio.aio.Engine() as engine:
        n = await engine.read(fd, buf, offset)

    async with auraio.aio.open(path, "rb") as f:
        data = await f.read(4096, 0)

The engine's pollable fd (an eventfd the rings signal) is registered with loop.add_reader; when
it becomes readable the loop calls Engine.poll(), which delivers every completion to its future.
Submissions enter the kernel before the awaiting coroutine suspends. Cancelling the awaiting task
cancels the I/O in the kernel; the buffer stays referenced by the engine until the kernel has
returned it. Works with any loop that implements add_reader (the default selector loop, uvloop).
"""
import asyncio
import collections
import os
import weakref
from typing import Any, Optional, Sequence, Union

from . import _core
from ._core import StatxResult

__all__ = ["Engine", "AsyncFile", "open", "get_engine"]

_POLL_ROUNDS = 16  # poll() passes per wake-up before yielding to the loop's other callbacks


async def _await(op: _core.Operation, fut: "asyncio.Future[Any]") -> Any:
    try:
        return await fut
    except asyncio.CancelledError:
        # The task was cancelled: cancel the I/O too. The operation keeps its buffers until the
        # kernel's completion arrives (delivered by a later poll, or by close()).
        op.cancel()
        raise


class Engine:
    """An auraio engine driven by the running asyncio loop. Options as auraio.Engine's; or wrap an
    existing one with Engine(engine=sync_engine). Bound to the first loop that uses it."""

    def __init__(self, engine: Optional[_core.Engine] = None, **options: Any) -> None:
        if engine is not None and options:
            raise TypeError("pass either an engine or options, not both")
        self.sync = engine if engine is not None else _core.Engine(**options)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._fd = -1
        # Tasks waiting for a free request slot (every slot taken: EAGAIN), woken in order as
        # completions free slots, so any number of tasks may await I/O at once.
        self._room: "collections.deque[asyncio.Future[None]]" = collections.deque()

    def _attach(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return loop
        if self.sync.closed:
            raise ValueError("the engine is closed")
        if self._loop is not None and not self._loop.is_closed():
            raise RuntimeError("this engine is attached to another event loop")
        self._fd = self.sync.fileno()
        loop.add_reader(self._fd, self._on_ready)
        self._loop = loop
        return loop

    def _on_ready(self) -> None:
        eng = self.sync
        if eng.closed:
            return
        freed = 0
        try:
            for _ in range(_POLL_ROUNDS):
                n = eng.poll()
                freed += n
                if n == 0:
                    return
            # Still delivering: the library bounds one pass; continue after the loop's other work.
            loop = self._loop
            if loop is not None:
                loop.call_soon(self._on_ready)
        finally:
            room = self._room
            while freed > 0 and room:
                w = room.popleft()
                if not w.done():
                    w.set_result(None)
                    freed -= 1

    async def _submit(self, loop: asyncio.AbstractEventLoop, submit: Any, fut: Any) -> Any:
        """submit() the operation; while every request slot is taken, wait for one to free."""
        while True:
            try:
                op = submit()
                break
            except BlockingIOError:
                if self.sync.pending == 0:
                    raise
                w = loop.create_future()
                self._room.append(w)
                try:
                    await w
                except asyncio.CancelledError:
                    # Pass our turn on: a slot may have been freed for us.
                    if w.done() and not w.cancelled() and self._room:
                        nxt = self._room.popleft()
                        if not nxt.done():
                            nxt.set_result(None)
                    raise
        return await _await(op, fut)

    def _detach(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            try:
                loop.remove_reader(self._fd)
            except (RuntimeError, ValueError, OSError):
                pass

    def close(self) -> None:
        """Stop watching the loop and close the engine: I/O still in flight is cancelled and its
        futures get CancelledError (futures of a closed loop are left alone). Idempotent."""
        self._detach()
        self.sync.close()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> "Engine":
        self._attach()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def _call(self, method: Any, *args: Any, **kw: Any) -> Any:
        loop = self._attach()
        fut = loop.create_future()
        return await self._submit(loop, lambda: method(*args, _fut=fut, **kw), fut)

    async def read(self, fd: Any, buf: Any, offset: int = 0, *, length: Optional[int] = None,
                   deadline: Optional[float] = None, fixed_file: bool = False) -> int:
        """Read into buf at offset; returns the bytes read (0 at end of file)."""
        loop = self._attach()
        fut = loop.create_future()
        try:
            op = self.sync._rw(True, fd, buf, offset, length, None, deadline, False, fixed_file, fut)
        except BlockingIOError:
            return await self._submit(
                loop, lambda: self.sync._rw(True, fd, buf, offset, length, None, deadline, False, fixed_file, fut), fut)
        return await _await(op, fut)

    async def write(self, fd: Any, buf: Any, offset: int = 0, *, length: Optional[int] = None,
                    deadline: Optional[float] = None, fixed_file: bool = False) -> int:
        """Write buf at offset; returns the bytes written."""
        loop = self._attach()
        fut = loop.create_future()
        try:
            op = self.sync._rw(False, fd, buf, offset, length, None, deadline, False, fixed_file, fut)
        except BlockingIOError:
            return await self._submit(
                loop, lambda: self.sync._rw(False, fd, buf, offset, length, None, deadline, False, fixed_file, fut),
                fut)
        return await _await(op, fut)

    async def pread(self, fd: Any, n: int, offset: int = 0) -> bytes:
        """Read up to n bytes at offset into a new bytes object (short at end of file)."""
        buf = bytearray(n)
        got = await self.read(fd, buf, offset)
        del buf[got:]
        return bytes(buf)

    async def readv(self, fd: Any, buffers: Sequence[Any], offset: int = 0, **kw: Any) -> int:
        return await self._call(self.sync.readv, fd, buffers, offset, **kw)

    async def writev(self, fd: Any, buffers: Sequence[Any], offset: int = 0, **kw: Any) -> int:
        return await self._call(self.sync.writev, fd, buffers, offset, **kw)

    async def fsync(self, fd: Any, *, datasync: bool = False, **kw: Any) -> int:
        return await self._call(self.sync.fsync, fd, datasync=datasync, **kw)

    async def openat(self, path: Any, flags: int = os.O_RDONLY, mode: int = 0o644, **kw: Any) -> int:
        """openat(2) through the ring; returns the new fd."""
        return await self._call(self.sync.openat, path, flags, mode, **kw)

    async def close_fd(self, fd: Any, **kw: Any) -> int:
        return await self._call(self.sync.close_fd, fd, **kw)

    async def statx(self, path: Any, **kw: Any) -> StatxResult:
        return await self._call(self.sync.statx, path, **kw)

    async def fallocate(self, fd: Any, offset: int, length: int, mode: int = 0, **kw: Any) -> int:
        return await self._call(self.sync.fallocate, fd, offset, length, mode, **kw)

    async def ftruncate(self, fd: Any, length: int, **kw: Any) -> int:
        return await self._call(self.sync.ftruncate, fd, length, **kw)

    async def sync_file_range(self, fd: Any, offset: int = 0, nbytes: int = 0, flags: int = 0x2, **kw: Any) -> int:
        return await self._call(self.sync.sync_file_range, fd, offset, nbytes, flags, **kw)

    async def fadvise(self, fd: Any, offset: int, length: int, advice: int, **kw: Any) -> int:
        return await self._call(self.sync.fadvise, fd, offset, length, advice, **kw)

    async def madvise(self, buf: Any, advice: int, **kw: Any) -> int:
        return await self._call(self.sync.madvise, buf, advice, **kw)

    async def sleep(self, seconds: float) -> None:
        """An io_uring timer (mostly for tests and demos; asyncio.sleep is the loop's own)."""
        await self._call(self.sync.timer, seconds)

    async def read_batch(self, fd: Any, buf: Any, offsets: Sequence[int], size: int) -> list:
        """Engine.read_batch, awaited: the list of each read's result."""
        loop = self._attach()
        fut = loop.create_future()
        op = self.sync.read_batch(fd, buf, offsets, size)
        if op.done():
            return op.result()
        op._fut = fut
        return await _await(op, fut)

    def cancel_fd(self, fd: Any) -> int:
        return self.sync.cancel_fd(fd)

    def buffer(self, size: int) -> _core.Buffer:
        return self.sync.buffer(size)


_engines: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Engine]" = weakref.WeakKeyDictionary()


def get_engine() -> Engine:
    """The running loop's default engine (created on first use, never at import: a ring does not
    survive fork)."""
    loop = asyncio.get_running_loop()
    eng = _engines.get(loop)
    if eng is None or eng.sync.closed:
        eng = Engine()
        _engines[loop] = eng
    return eng


_MODES = {
    "r": os.O_RDONLY, "r+": os.O_RDWR, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "w+": os.O_RDWR | os.O_CREAT | os.O_TRUNC, "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "a+": os.O_RDWR | os.O_CREAT | os.O_APPEND, "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
    "x+": os.O_RDWR | os.O_CREAT | os.O_EXCL,
}


class AsyncFile:
    """A file opened with auraio.aio.open: binary, positional or streaming.

    read(n, offset) / write(data, offset) at an offset leave the position alone; without an offset
    they use and advance it, like a file object's read/write. read() resubmits short reads until n
    bytes or the end of the file, write() until everything is written."""

    def __init__(self, engine: Engine, fd: int, name: Any, mode: str) -> None:
        self.engine = engine
        self.fd = fd
        self.name = name
        self.mode = mode
        self._pos = 0
        self.closed = False

    def fileno(self) -> int:
        return self.fd

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self._pos = offset
        elif whence == os.SEEK_CUR:
            self._pos += offset
        else:
            raise ValueError("whence must be SEEK_SET or SEEK_CUR (use stat() for the size)")
        if self._pos < 0:
            raise ValueError("negative position")
        return self._pos

    def _check(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    async def read(self, n: int = -1, offset: Optional[int] = None) -> bytes:
        """Read n bytes (-1: to the end of the file) at offset, or at the position."""
        self._check()
        pos = self._pos if offset is None else offset
        if n is None or n < 0:
            n = max(0, (await self.stat()).st_size - pos)
        buf = bytearray(n)
        got = 0
        view = memoryview(buf)
        while got < n:
            r = await self.engine.read(self.fd, view[got:], pos + got)
            if r == 0:
                break
            got += r
        view.release()
        del buf[got:]
        if offset is None:
            self._pos += got
        return bytes(buf)

    async def readinto(self, buf: Any, offset: Optional[int] = None) -> int:
        self._check()
        pos = self._pos if offset is None else offset
        r = await self.engine.read(self.fd, buf, pos)
        if offset is None:
            self._pos += r
        return r

    async def write(self, data: Any, offset: Optional[int] = None) -> int:
        """Write all of data at offset, or at the position; returns len(data)."""
        self._check()
        pos = self._pos if offset is None else offset
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            done += await self.engine.write(self.fd, view[done:], pos + done)
        if offset is None:
            self._pos += done
        return done

    async def fsync(self, datasync: bool = False) -> None:
        self._check()
        await self.engine.fsync(self.fd, datasync=datasync)

    async def truncate(self, size: Optional[int] = None) -> int:
        self._check()
        size = self._pos if size is None else size
        await self.engine.ftruncate(self.fd, size)
        return size

    async def stat(self) -> StatxResult:
        self._check()
        return await self.engine.statx(self.fd)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.engine.close_fd(self.fd)

    async def __aenter__(self) -> "AsyncFile":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<auraio.aio.AsyncFile name={self.name!r} mode={self.mode!r} fd={self.fd}>"


class _Opener:
    """What open() returns: await it, or use it with async with."""

    def __init__(self, path: Any, mode: str, engine: Optional[Engine]) -> None:
        m = mode.replace("b", "")
        if "t" in m or m not in _MODES:
            raise ValueError(f"invalid or text mode {mode!r} (binary modes only: 'rb', 'wb', 'ab', 'r+b', ...)")
        self._args = (path, mode, _MODES[m], engine)
        self._file: Optional[AsyncFile] = None

    async def _open(self) -> AsyncFile:
        path, mode, flags, engine = self._args
        eng = engine or get_engine()
        fd = await eng.openat(path, flags, 0o666)
        f = AsyncFile(eng, fd, path, mode)
        if flags & os.O_APPEND:
            f._pos = (await f.stat()).st_size
        return f

    def __await__(self) -> Any:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncFile:
        self._file = await self._open()
        return self._file

    async def __aexit__(self, *exc: Any) -> None:
        if self._file is not None:
            await self._file.close()


def open(path: Union[str, bytes, "os.PathLike[Any]"], mode: str = "rb", *, engine: Optional[Engine] = None) -> _Opener:
    """Open a file through the ring (openat), binary modes only: `async with open(p, "rb") as f`
    or `f = await open(p, "wb")`. engine: default, the running loop's (get_engine())."""
    return _Opener(path, mode, engine)
