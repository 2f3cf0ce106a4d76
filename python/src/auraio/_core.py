# SPDX-License-Identifier: Apache-2.0
"""auraio.Engine: the synchronous API (callbacks or future-like handles) over the C library.

How a completion reaches Python: the C callback of every request only appends a preallocated
entry to a list owned by the thread running callbacks (python/csrc/pyauraio.c); poll/wait/run hand
that list back once the C call returned, and Engine._deliver turns each entry into the result of
its Operation, releases the buffers the Operation held, and runs its Python callback. So the GIL is
released for the whole C call (cffi releases it around every call), and Python callbacks never run
inside the C library.
"""
import errno as _errno
import os
import threading
import time
import weakref
from typing import Any, Callable, List, Optional, Sequence, Union

from ._auraio import ffi, lib
from ._errors import error_from_errno
from ._stats import BufferStats, EngineStats, Histogram, Metrics, RingStats

__all__ = ["Engine", "Operation", "Batch", "Buffer", "RegisteredBuffer", "StatxResult", "MetricsServer"]

_RING_SELECT = {
    "adaptive": lib.AURAIO_SELECT_ADAPTIVE,
    "cpu_local": lib.AURAIO_SELECT_CPU_LOCAL,
    "round_robin": lib.AURAIO_SELECT_ROUND_ROBIN,
    "thread_local": lib.AURAIO_SELECT_THREAD_LOCAL,
}
_INT_OPTIONS = ("ring_count", "queue_depth", "initial_in_flight", "max_in_flight", "sqpoll_idle_ms")
_BOOL_OPTIONS = ("disable_adaptive", "single_issuer", "enable_sqpoll")
_DEFAULT_QUEUE_DEPTH = 256  # the library's default (include/auraio.h)
_RESULT_SLICE_S = 0.01  # Operation.result() waits in slices: another thread may deliver it
_PENDING = object()
_MAX_SLOTS = 1 << 20  # requests one engine holds at once from Python (the C limit is rings x depth)
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
STATX_BASIC_STATS = 0x7FF
STATX_BTIME = 0x800
_MAX_LEN = 0x7FFFFFFF  # INT_MAX: the library's limit on one read or write
_Callback = Callable[["Operation"], Any]


def _index(value: Any, name: str, minimum: int = 0) -> int:
    """An int argument (anything with __index__, not bool) checked against a lower bound."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    v = value.__index__()
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def _fd(fd: Any) -> int:
    if hasattr(fd, "fileno") and not hasattr(fd, "__index__"):
        fd = fd.fileno()
    return _index(fd, "fd")


def _ns(seconds: Optional[float], name: str) -> int:
    if seconds is None:
        return 0
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{name} must be a number of seconds")
    if not seconds > 0:
        raise ValueError(f"{name} must be > 0 seconds")
    return max(1, int(seconds * 1e9))


def _link_flags(link: Union[bool, str]) -> int:
    if link is False or link is None:
        return 0
    if link is True:
        return lib.AURAIO_LINK
    if link == "hard":
        return lib.AURAIO_HARDLINK
    raise ValueError("link must be True, False or 'hard'")


def _wait_ms(timeout: Optional[float]) -> int:
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a number of seconds or None")
    if timeout < 0:
        raise ValueError("timeout must be >= 0 or None")
    return int(min(timeout * 1000.0 + 0.999, 2**31 - 1))


class StatxResult:
    """What statx(2) returned: st_* names as os.stat_result has them, times as float seconds and
    integer nanoseconds (st_mtime_ns...), plus st_birthtime when the file system reports it."""

    __slots__ = ("mask", "st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size", "st_blocks",
                 "st_blksize", "st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_birthtime_ns", "st_dev_major",
                 "st_dev_minor", "attributes")

    def __init__(self, sx: Any) -> None:
        self.mask = sx.stx_mask
        self.st_mode = sx.stx_mode
        self.st_ino = sx.stx_ino
        self.st_nlink = sx.stx_nlink
        self.st_uid = sx.stx_uid
        self.st_gid = sx.stx_gid
        self.st_size = sx.stx_size
        self.st_blocks = sx.stx_blocks
        self.st_blksize = sx.stx_blksize
        self.attributes = sx.stx_attributes
        ts = lambda t: t.tv_sec * 1_000_000_000 + t.tv_nsec  # noqa: E731
        self.st_atime_ns = ts(sx.stx_atime)
        self.st_mtime_ns = ts(sx.stx_mtime)
        self.st_ctime_ns = ts(sx.stx_ctime)
        self.st_birthtime_ns = ts(sx.stx_btime) if sx.stx_mask & STATX_BTIME else None
        self.st_dev_major = sx.stx_dev_major
        self.st_dev_minor = sx.stx_dev_minor

    st_atime = property(lambda self: self.st_atime_ns / 1e9)
    st_mtime = property(lambda self: self.st_mtime_ns / 1e9)
    st_ctime = property(lambda self: self.st_ctime_ns / 1e9)
    st_birthtime = property(lambda self: None if self.st_birthtime_ns is None else self.st_birthtime_ns / 1e9)

    def __repr__(self) -> str:
        return f"StatxResult(st_mode={oct(self.st_mode)}, st_size={self.st_size}, st_ino={self.st_ino})"


class Operation:
    """A submitted request: a future-like handle.

    done() tells whether its completion was delivered; result(timeout) waits for it (driving the
    engine's event loop on the calling thread) and returns the kernel's result - bytes transferred,
    a new fd for openat, a StatxResult for statx, 0 for the others - or raises the OSError the kernel
    returned (CancelledError after a cancel, DeadlineExceeded after a deadline). The buffers given to
    the request are held by the handle until the kernel is done with them, whatever the caller drops.
    """

    __slots__ = ("_engine", "_req", "_result", "_keep", "_cbufs", "_callback", "_fut", "_conv", "_what",
                 "_filename", "__weakref__")

    def __init__(self, engine: "Engine", keep: Any, cbufs: Any, callback: Optional[_Callback], conv: Any = None,
                 what: str = "") -> None:
        self._engine = engine
        self._req = None
        self._result = _PENDING
        self._keep = keep
        self._cbufs = cbufs
        self._callback = callback
        self._fut = None
        self._conv = conv
        self._what = what
        self._filename = None

    def _complete(self, result: int) -> None:
        self._result = result
        # The kernel is done with the memory: let the Python objects go.
        cbufs = self._cbufs
        if cbufs is not None:
            self._cbufs = None
            if type(cbufs) is list:
                for c in cbufs:
                    ffi.release(c)
            else:
                ffi.release(cbufs)
        fut = self._fut
        if fut is not None:
            self._fut = None
            if not fut.done():
                try:
                    if result < 0:
                        fut.set_exception(error_from_errno(-result, self._what, self._filename))
                    else:
                        fut.set_result(self._value())
                except RuntimeError:
                    pass  # its event loop is closed: nobody can await it any more
        cb = self._callback
        if cb is not None:
            self._callback = None
            try:
                cb(self)
            finally:
                self._keep = None  # the buffer stays alive through its callback
        else:
            self._keep = None

    def _value(self) -> Any:
        conv = self._conv
        return self._result if conv is None else conv(self._result)

    def done(self) -> bool:
        """True once the completion was delivered (result() will not block)."""
        return self._result is not _PENDING

    def cancelled(self) -> bool:
        """True when the request completed with ECANCELED."""
        return self._result is not _PENDING and self._result == -_errno.ECANCELED

    def result(self, timeout: Optional[float] = None) -> Any:
        """Wait up to timeout seconds (None: no limit) for the completion and return the result.

        Raises TimeoutError when the time ran out (the request stays in flight), or the request's
        OSError. Runs the event loop of the engine on this thread meanwhile, so other requests'
        callbacks may run here too."""
        if self._result is _PENDING:
            self._engine._wait_for(self, timeout)
        r = self._result
        if r < 0:
            raise error_from_errno(-r, self._what, self._filename)
        return self._value()

    def exception(self, timeout: Optional[float] = None) -> Optional[OSError]:
        """Like result(), but returns the error instead of raising it (None on success)."""
        if self._result is _PENDING:
            self._engine._wait_for(self, timeout)
        r = self._result
        return error_from_errno(-r, self._what, self._filename) if r < 0 else None

    def cancel(self) -> bool:
        """Ask the kernel to cancel the request. Never blocks. The completion still arrives (with
        CancelledError, or the operation's own result if it finished first), and the buffers stay
        held until it does. Returns True when a cancel was issued or already under way."""
        if self._result is not _PENDING or self._req is None:
            return False
        eng = self._engine
        if eng._pe is None:
            return False
        rc = lib.auraio_cancel(eng._raw, self._req)
        return rc == 0 or rc == -_errno.EINPROGRESS

    def __repr__(self) -> str:
        state = "pending" if self._result is _PENDING else f"result={self._result}"
        return f"<auraio.Operation {self._what or ''} {state}>"


class Batch(Operation):
    """Many reads or writes submitted in one call (Engine.read_batch / write_batch), completed as
    one: result() returns the list of the members' results (bytes, or -errno per member)."""

    __slots__ = ("_batch", "_n")

    def _value(self) -> List[int]:
        return ffi.unpack(lib.pya_batch_results(self._batch), self._n)

    def result(self, timeout: Optional[float] = None) -> List[int]:
        if self._result is _PENDING:
            self._engine._wait_for(self, timeout)
        return self._value()

    def cancel(self) -> bool:
        if self._result is not _PENDING or self._engine._pe is None:
            return False
        return lib.pya_batch_cancel(self._engine._pe, self._batch) > 0


class Buffer:
    """A buffer from the engine's pool: 4096-byte aligned (fit for O_DIRECT), zero-copy.

    Use it wherever a buffer is taken, or its memory through .view (a writable memoryview; also
    numpy.frombuffer(buf.view, ...)). Returned to the pool by free(), by garbage collection, or
    when the engine closes - after which .view and anything made from it must not be used."""

    __slots__ = ("_engine", "_ptr", "_size", "_view", "__weakref__")

    def __init__(self, engine: "Engine", ptr: Any, size: int) -> None:
        self._engine = engine
        self._ptr = ptr
        self._size = size
        self._view = memoryview(ffi.buffer(ptr, size))

    @property
    def view(self) -> memoryview:
        if self._ptr is None:
            raise ValueError("buffer was freed")
        return self._view

    @property
    def address(self) -> int:
        """The buffer's address (for checking alignment)."""
        if self._ptr is None:
            raise ValueError("buffer was freed")
        return int(ffi.cast("uintptr_t", self._ptr))

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key: Any) -> Any:
        return self.view[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.view[key] = value

    def __bytes__(self) -> bytes:
        return self.view.tobytes()

    def __buffer__(self, flags: int) -> memoryview:  # Python 3.12+
        return self.view

    def free(self) -> None:
        """Return the memory to the pool now (idempotent). Not while an I/O uses it: the engine
        holds the Buffer for every request given it, so this is only reachable by calling it."""
        ptr, self._ptr = self._ptr, None
        if ptr is None:
            return
        try:
            self._view.release()
        except BufferError:
            pass
        eng = self._engine
        if eng._pe is not None:
            lib.auraio_buffer_free(eng._raw, ptr, self._size)
            eng._buffers.discard(self)

    def _forget(self) -> None:
        """The engine closed: its pool (and this memory) is gone."""
        self._ptr = None
        try:
            self._view.release()
        except BufferError:
            pass

    def __del__(self) -> None:
        try:
            self.free()
        except Exception:
            pass


class RegisteredBuffer:
    """A buffer registered with Engine.register_buffers (its kernel-pinned index). Reads and writes
    given one use READ_FIXED/WRITE_FIXED; slice(start, length) names part of it."""

    __slots__ = ("_engine", "index", "offset", "length", "_obj")

    def __init__(self, engine: "Engine", index: int, offset: int, length: int, obj: Any) -> None:
        self._engine = engine
        self.index = index
        self.offset = offset
        self.length = length
        self._obj = obj

    def slice(self, start: int, length: int) -> "RegisteredBuffer":
        start = _index(start, "start")
        length = _index(length, "length", 1)
        if start + length > self.length:
            raise ValueError("slice beyond the registered buffer")
        return RegisteredBuffer(self._engine, self.index, self.offset + start, length, self._obj)

    def __len__(self) -> int:
        return self.length


class MetricsServer:
    """An embedded Prometheus /metrics endpoint (Engine.serve_metrics)."""

    def __init__(self, engine: "Engine", server: Any) -> None:
        self._engine = engine
        self._server = server
        self.port = lib.auraio_metrics_server_port(server)

    def stop(self) -> None:
        """Stop serving (idempotent; the engine's close stops it too)."""
        s, self._server = self._server, None
        if s is not None and self._engine._pe is not None:
            lib.auraio_metrics_server_stop(s)
            self._engine._server = None


class _Out(threading.local):
    """Per-thread arrays the completions of one poll/wait/run are copied into."""

    def __init__(self) -> None:
        self.arrays = {}


class Engine:
    """An auraio engine: io_uring rings with self-tuned depth, as a context manager.

    Options (all keyword, 0 / False meaning "the library chooses", see include/auraio.h):
    ring_count, queue_depth, initial_in_flight, max_in_flight, max_p99_latency_ms (P99 target
    in ms, 0 = find the knee), ring_select ("adaptive", "cpu_local", "round_robin",
    "thread_local"), disable_adaptive, single_issuer, enable_sqpoll, sqpoll_idle_ms.

    Threads: submissions may come from any thread; poll/wait/run from any thread, several at
    once (each completion is delivered once, by the thread that reaped it, which runs its callback).
    close() must not overlap any other call on the engine and must not be called from a callback.
    Python callbacks are not called inside the C library: poll/wait/run deliver them after the C
    call returns, with the GIL held; waiting itself releases the GIL.
    """

    def __init__(self, *, ring_count: int = 0, queue_depth: int = 0, initial_in_flight: int = 0,
                 max_in_flight: int = 0, max_p99_latency_ms: float = 0.0, ring_select: str = "adaptive",
                 disable_adaptive: bool = False, single_issuer: bool = False, enable_sqpoll: bool = False,
                 sqpoll_idle_ms: int = 0) -> None:
        self._pe = None
        opts = ffi.new("auraio_options_t *")
        lib.auraio_options_init(opts)
        values = dict(ring_count=ring_count, queue_depth=queue_depth, initial_in_flight=initial_in_flight,
                      max_in_flight=max_in_flight, sqpoll_idle_ms=sqpoll_idle_ms)
        for name in _INT_OPTIONS:
            setattr(opts, name, _index(values[name], name))
        for name, v in (("disable_adaptive", disable_adaptive), ("single_issuer", single_issuer),
                        ("enable_sqpoll", enable_sqpoll)):
            if not isinstance(v, bool):
                raise TypeError(f"{name} must be a bool")
            setattr(opts, name, v)
        if isinstance(max_p99_latency_ms, bool) or not isinstance(max_p99_latency_ms, (int, float)):
            raise TypeError("max_p99_latency_ms must be a number")
        if not (max_p99_latency_ms >= 0 and max_p99_latency_ms != float("inf")):
            raise ValueError("max_p99_latency_ms must be a finite number >= 0")
        opts.max_p99_latency_ms = float(max_p99_latency_ms)
        if ring_select not in _RING_SELECT:
            raise ValueError(f"ring_select must be one of {sorted(_RING_SELECT)}")
        opts.ring_select = _RING_SELECT[ring_select]
        rings = ring_count or os.cpu_count() or 1
        # One Python slot per request slot of the library (rings * queue_depth), plus room for the
        # rings the library may add; a submission finding none free fails with EAGAIN as C does.
        slots = min((rings + 1) * (queue_depth or _DEFAULT_QUEUE_DEPTH), _MAX_SLOTS)
        pe = lib.pya_create(opts, slots)
        if pe == ffi.NULL:
            raise error_from_errno(ffi.errno, "auraio_create")
        self._pe = pe
        self._raw = lib.pya_raw(pe)
        self._slots = slots
        self._ops: List[Optional[Operation]] = [None] * slots
        self._free = list(range(slots - 1, -1, -1))
        self._out = _Out()
        self._buffers: "weakref.WeakSet[Buffer]" = weakref.WeakSet()
        self._registered: List[Any] = []
        self._reg_files = False
        self._server: Optional[MetricsServer] = None
        self._stopped = False
        self._delivering = threading.local()
        self.options = dict(values, max_p99_latency_ms=float(max_p99_latency_ms), ring_select=ring_select,
                            disable_adaptive=disable_adaptive, single_issuer=single_issuer,
                            enable_sqpoll=enable_sqpoll)

    # ---------------------------------------------------------------------------------------
    # Lifecycle

    def __enter__(self) -> "Engine":
        self._check()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._pe is None

    def _check(self) -> None:
        if self._pe is None:
            raise ValueError("the engine is closed")

    def close(self) -> None:
        """Cancel what is in flight, deliver every outstanding completion (callbacks run here, with
        CancelledError where the cancel took effect), then free the engine, its pool buffers and
        registrations. Idempotent. Raises the first exception a callback raised, after all of them
        ran and the engine is gone."""
        pe = self._pe
        if pe is None:
            return
        if getattr(self._delivering, "active", False):
            raise RuntimeError("Engine.close() called from a completion callback")
        self._pe = None
        for b in list(self._buffers):
            b._forget()
        self._server = None
        self._raw = ffi.NULL  # calls from the callbacks destroy runs get EINVAL, never freed memory
        lib.pya_destroy(pe)
        self._pe = pe  # completions delivered by destroy still name slots of this engine
        try:
            idx, res = self._arrays()
            exc = None
            while True:
                n = lib.pya_drain(idx, res, self._slots)
                if n == 0:
                    break
                try:
                    self._deliver(n, idx, res)
                except BaseException as e:  # deliver them all, raise the first
                    exc = exc or e
        finally:
            self._pe = None
            lib.pya_free(pe)
            self._registered = []
        if exc is not None:
            raise exc

    def __del__(self) -> None:
        try:
            if self._pe is not None and not getattr(self._delivering, "active", False):
                self.close()
        except Exception:
            pass

    # ---------------------------------------------------------------------------------------
    # Completion delivery

    def _arrays(self) -> Any:
        a = self._out.arrays.get(self._slots)
        if a is None:
            a = (ffi.new("uint32_t[]", self._slots), ffi.new("int64_t[]", self._slots))
            self._out.arrays[self._slots] = a
        return a

    def _deliver(self, n: int, idx: Any, res: Any) -> None:
        """Complete n operations; every one is delivered even if a callback raises, and then the
        first exception propagates (later ones are dropped after running: one exception per call)."""
        ops = self._ops
        free = self._free
        exc = None
        d = self._delivering
        d.active = True
        try:
            for k, r in zip(ffi.unpack(idx, n), ffi.unpack(res, n)):
                op = ops[k]
                ops[k] = None
                free.append(k)
                try:
                    op._complete(r)
                except BaseException as e:
                    if exc is None:
                        exc = e
        finally:
            d.active = False
        if exc is not None:
            raise exc

    def _loop_call(self, fn: Any, *args: Any) -> int:
        if getattr(self._delivering, "active", False):
            raise RuntimeError("poll/wait/run cannot be called from a completion callback")
        pe = self._pe
        if pe is None:
            raise ValueError("the engine is closed")
        idx, res = self._arrays()
        rc = self._rc()
        n = fn(pe, *args, idx, res, self._slots, rc)
        total = n
        if n:
            self._deliver(n, idx, res)
        r = rc[0]
        if r < 0 and r not in (-_errno.ETIME,) and total == 0:
            raise error_from_errno(-r)
        return total

    def _rc(self) -> Any:
        out = self._out
        rc = getattr(out, "rc", None)
        if rc is None:
            rc = out.rc = ffi.new("int *")
        return rc

    def poll(self) -> int:
        """Deliver completed requests without blocking. Returns how many were delivered."""
        return self._loop_call(lib.pya_poll)

    def wait(self, timeout: Optional[float] = None) -> int:
        """Block up to timeout seconds (None: no limit) until at least one completion was delivered;
        returns how many were (0: nothing was pending, the time ran out, or stop() was called). The
        GIL is released while waiting."""
        return self._loop_call(lib.pya_wait, _wait_ms(timeout))

    def run(self) -> None:
        """Deliver completions until stop() is called, also while nothing is pending."""
        self._stopped = False
        while True:
            self._loop_call(lib.pya_run)
            if self._stopped:
                self._stopped = False
                return

    def stop(self) -> None:
        """End one run() (or wait()), waking it if it sleeps. Callable from any thread or callback."""
        self._check()
        self._stopped = True
        lib.auraio_stop(self._raw)

    def flush(self) -> int:
        """Hand every queued submission to the kernel now; returns the SQEs submitted."""
        self._check()
        rc = lib.auraio_flush(self._raw)
        if rc < 0:
            raise error_from_errno(-rc)
        return rc

    def _wait_for(self, op: Operation, timeout: Optional[float]) -> None:
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while op._result is _PENDING:
            if self._pe is None:
                raise ValueError("the engine is closed")
            if deadline is None:
                step = _RESULT_SLICE_S
            else:
                step = deadline - time.monotonic()
                if step <= 0:
                    raise TimeoutError("the operation did not complete in time")
                step = min(step, _RESULT_SLICE_S)
            if self.wait(step) == 0 and op._result is _PENDING and self.pending == 0:
                # Reaped by another thread that has not delivered it yet: let it run.
                time.sleep(0)

    def fileno(self) -> int:
        """The engine's pollable fd (an eventfd): readable when completions are ready; call poll()."""
        self._check()
        return lib.auraio_get_poll_fd(self._raw)

    @property
    def pending(self) -> int:
        """Requests submitted and not yet completed."""
        self._check()
        return lib.auraio_pending_count(self._raw)

    @property
    def capacity(self) -> int:
        """How many more requests would go to the kernel right away (not wait in a backlog)."""
        self._check()
        return lib.auraio_capacity(self._raw)

    @property
    def ring_count(self) -> int:
        self._check()
        return lib.auraio_get_ring_count(self._raw)

    # ---------------------------------------------------------------------------------------
    # Submission

    def _slot(self) -> int:
        try:
            return self._free.pop()
        except IndexError:
            raise error_from_errno(_errno.EAGAIN, "every request slot is taken; poll() to free some") from None

    def _submit(self, op: Operation, k: int, req: Any) -> Operation:
        if req == ffi.NULL:
            err = ffi.errno
            self._ops[k] = None
            self._free.append(k)
            op._cbufs = None  # released by garbage collection; no I/O uses them
            op._keep = None
            raise error_from_errno(err, op._what, op._filename)
        op._req = req
        return op

    def _flags(self, link: Union[bool, str], fixed_file: bool) -> int:
        f = _link_flags(link)
        if fixed_file:
            f |= lib.AURAIO_FIXED_FILE
        return f

    def read(self, fd: Any, buf: Any, offset: int = 0, *, length: Optional[int] = None,
             callback: Optional[_Callback] = None, deadline: Optional[float] = None, link: Union[bool, str] = False,
             fixed_file: bool = False) -> Operation:
        """Read into buf (any writable buffer: bytearray, memoryview, mmap, numpy array, a pool
        Buffer, a RegisteredBuffer) at offset of fd. length defaults to len(buf). callback(op)
        runs on the thread delivering the completion; the handle also works as a future.
        deadline: seconds from when the kernel starts it (DeadlineExceeded past it). link: True
        or "hard" makes this thread's next request depend on this one. fixed_file: fd is an index
        into the registered files."""
        return self._rw(True, fd, buf, offset, length, callback, deadline, link, fixed_file)

    def write(self, fd: Any, buf: Any, offset: int = 0, *, length: Optional[int] = None,
              callback: Optional[_Callback] = None, deadline: Optional[float] = None, link: Union[bool, str] = False,
              fixed_file: bool = False) -> Operation:
        """Write buf (any buffer: bytes, bytearray, memoryview, mmap, numpy, Buffer,
        RegisteredBuffer) at offset of fd. Same keywords as read()."""
        return self._rw(False, fd, buf, offset, length, callback, deadline, link, fixed_file)

    def _rw(self, is_read: bool, fd: Any, buf: Any, offset: int, length: Optional[int], callback: Any,
            deadline: Optional[float], link: Any, fixed_file: bool, fut: Any = None) -> Operation:
        pe = self._pe
        if pe is None:
            raise ValueError("the engine is closed")
        if type(fd) is not int or fd < 0:
            fd = _fd(fd)
        if type(offset) is not int or offset < 0:
            offset = _index(offset, "offset")
        flags = self._flags(link, fixed_file) if (link or fixed_file) else 0
        tns = _ns(deadline, "deadline") if deadline is not None else 0
        what = "read" if is_read else "write"
        if type(buf) is RegisteredBuffer:
            if buf._engine is not self:
                raise ValueError("the buffer is registered with another engine")
            n = buf.length if length is None else _index(length, "length", 1)
            if n > buf.length:
                raise ValueError("length beyond the registered buffer")
            op = Operation(self, buf, None, callback, None, what)
            op._fut = fut
            k = self._slot()
            self._ops[k] = op
            fn = lib.pya_read_fixed if is_read else lib.pya_write_fixed
            return self._submit(op, k, fn(pe, k, tns, fd, buf.index, buf.offset, n, offset, flags))
        if type(buf) is Buffer:
            if buf._engine is not self:
                raise ValueError("the buffer belongs to another engine")
            ptr = buf._ptr
            if ptr is None:
                raise ValueError("buffer was freed")
            size = buf._size
            cbuf = None
        else:
            try:
                cbuf = ffi.from_buffer(buf, require_writable=is_read)
            except (TypeError, BufferError):
                raise _not_buffer(buf, is_read) from None
            ptr = cbuf
            size = len(cbuf)
        if length is None:
            n = size
        else:
            n = _index(length, "length", 1)
            if n > size:
                raise ValueError(f"length {n} is beyond the buffer's {size} bytes")
        if n == 0:
            raise ValueError("an empty buffer cannot be read into or written from")
        if n > _MAX_LEN:
            raise ValueError("length over INT_MAX bytes")
        op = Operation(self, buf, cbuf, callback, None, what)
        op._fut = fut
        k = self._slot()
        self._ops[k] = op
        fn = lib.pya_read if is_read else lib.pya_write
        return self._submit(op, k, fn(pe, k, tns, fd, ptr, n, offset, flags))

    def _iov(self, bufs: Sequence[Any], writable: bool) -> Any:
        if isinstance(bufs, (bytes, bytearray, memoryview)) or not hasattr(bufs, "__len__"):
            raise TypeError("buffers must be a sequence of buffers")
        if len(bufs) == 0:
            raise ValueError("at least one buffer is needed")
        if len(bufs) > 1024:
            raise ValueError("at most 1024 (IOV_MAX) buffers")
        iov = ffi.new("struct iovec[]", len(bufs))
        cbufs = []
        for i, b in enumerate(bufs):
            if type(b) is Buffer:
                if b._ptr is None:
                    raise ValueError("buffer was freed")
                iov[i].iov_base = b._ptr
                iov[i].iov_len = b._size
                continue
            try:
                c = ffi.from_buffer(b, require_writable=writable)
            except (TypeError, BufferError):
                raise _not_buffer(b, writable) from None
            if len(c) == 0:
                raise ValueError("empty buffer in the vector")
            cbufs.append(c)
            iov[i].iov_base = c
            iov[i].iov_len = len(c)
        return iov, cbufs

    def readv(self, fd: Any, buffers: Sequence[Any], offset: int = 0, *, callback: Optional[_Callback] = None,
              deadline: Optional[float] = None, link: Union[bool, str] = False, fixed_file: bool = False,
              _fut: Any = None) -> Operation:
        """Vectored read into a sequence of writable buffers, filled in order."""
        return self._vec(True, fd, buffers, offset, callback, deadline, link, fixed_file, _fut)

    def writev(self, fd: Any, buffers: Sequence[Any], offset: int = 0, *, callback: Optional[_Callback] = None,
               deadline: Optional[float] = None, link: Union[bool, str] = False, fixed_file: bool = False,
               _fut: Any = None) -> Operation:
        """Vectored write of a sequence of buffers, in order."""
        return self._vec(False, fd, buffers, offset, callback, deadline, link, fixed_file, _fut)

    def _vec(self, is_read: bool, fd: Any, buffers: Any, offset: int, callback: Any, deadline: Any, link: Any,
             fixed_file: bool, fut: Any) -> Operation:
        self._check()
        fd = _fd(fd)
        offset = _index(offset, "offset")
        flags = self._flags(link, fixed_file)
        tns = _ns(deadline, "deadline")
        iov, cbufs = self._iov(buffers, is_read)
        op = Operation(self, (list(buffers), iov), cbufs, callback, None, "readv" if is_read else "writev")
        op._fut = fut
        k = self._slot()
        self._ops[k] = op
        fn = lib.pya_readv if is_read else lib.pya_writev
        return self._submit(op, k, fn(self._pe, k, tns, fd, iov, len(buffers), offset, flags))

    def _simple(self, what: str, keep: Any, callback: Any, fut: Any, conv: Any, fn: Any, *args: Any,
                filename: Any = None) -> Operation:
        self._check()
        op = Operation(self, keep, None, callback, conv, what)
        op._fut = fut
        op._filename = filename
        k = self._slot()
        self._ops[k] = op
        return self._submit(op, k, fn(self._pe, k, *args))

    def fsync(self, fd: Any, *, datasync: bool = False, callback: Optional[_Callback] = None,
              deadline: Optional[float] = None, link: Union[bool, str] = False, fixed_file: bool = False,
              _fut: Any = None) -> Operation:
        """fsync(2) (fdatasync with datasync=True). A failed fsync breaks its chain."""
        fd = _fd(fd)
        flags = self._flags(link, fixed_file) | (lib.AURAIO_FSYNC_DATASYNC if datasync else 0)
        return self._simple("fsync", None, callback, _fut, None, lib.pya_fsync, _ns(deadline, "deadline"), fd, flags)

    def openat(self, path: Union[str, bytes, "os.PathLike[Any]"], flags: int = os.O_RDONLY, mode: int = 0o644, *,
               dir_fd: Optional[int] = None, file_index: Optional[int] = None, callback: Optional[_Callback] = None,
               deadline: Optional[float] = None, link: Union[bool, str] = False, _fut: Any = None) -> Operation:
        """openat(2): the result is the new file descriptor (the caller's to close). With
        file_index, the file goes straight into that registered-file slot (result 0; one-ring
        engines only). flags are os.O_* (O_CLOEXEC is added unless file_index is given)."""
        p = os.fsencode(path)
        if b"\0" in p:
            raise ValueError("embedded NUL in path")
        flags = _index(flags, "flags")
        mode = _index(mode, "mode")
        if mode > 0o7777:
            raise ValueError("mode must be within 0..0o7777")
        dfd = AT_FDCWD if dir_fd is None else _fd(dir_fd)
        fi = -1 if file_index is None else _index(file_index, "file_index")
        if fi < 0:
            flags |= os.O_CLOEXEC
        cpath = ffi.new("char[]", p)
        return self._simple("openat", cpath, callback, _fut, None, lib.pya_openat, _ns(deadline, "deadline"), dfd,
                            cpath, flags, mode, fi, _link_flags(link), filename=path)

    def close_fd(self, fd: int, *, fixed_file: bool = False, callback: Optional[_Callback] = None,
                 deadline: Optional[float] = None, link: Union[bool, str] = False, _fut: Any = None) -> Operation:
        """close(2) through the ring (with fixed_file, empty that registered-file slot)."""
        fd = _fd(fd)
        return self._simple("close", None, callback, _fut, None, lib.pya_close, _ns(deadline, "deadline"), fd,
                            self._flags(link, fixed_file))

    def statx(self, path: Union[str, bytes, "os.PathLike[Any]", int], *, dir_fd: Optional[int] = None,
              flags: int = 0, mask: int = STATX_BASIC_STATS | STATX_BTIME, callback: Optional[_Callback] = None,
              deadline: Optional[float] = None, link: Union[bool, str] = False, _fut: Any = None) -> Operation:
        """statx(2); the result is a StatxResult. An int path means that open file (fstat)."""
        if isinstance(path, int) and not isinstance(path, bool):
            dfd, p, flags = _fd(path), b"", _index(flags, "flags") | AT_EMPTY_PATH
        else:
            p = os.fsencode(path)
            if b"\0" in p:
                raise ValueError("embedded NUL in path")
            dfd = AT_FDCWD if dir_fd is None else _fd(dir_fd)
            flags = _index(flags, "flags")
        mask = _index(mask, "mask")
        cpath = ffi.new("char[]", p)
        sx = ffi.new("struct statx *")
        return self._simple("statx", (cpath, sx), callback, _fut, lambda r: StatxResult(sx), lib.pya_statx,
                            _ns(deadline, "deadline"), dfd, cpath, flags, mask, sx, _link_flags(link),
                            filename=None if isinstance(path, int) else path)

    def fallocate(self, fd: Any, offset: int, length: int, mode: int = 0, *, callback: Optional[_Callback] = None,
                  deadline: Optional[float] = None, link: Union[bool, str] = False, fixed_file: bool = False,
                  _fut: Any = None) -> Operation:
        """fallocate(2) over [offset, offset + length) with mode (0, FALLOC_FL_KEEP_SIZE...)."""
        fd = _fd(fd)
        return self._simple("fallocate", None, callback, _fut, None, lib.pya_fallocate, _ns(deadline, "deadline"), fd,
                            _index(mode, "mode"), _index(offset, "offset"), _index(length, "length", 1),
                            self._flags(link, fixed_file))

    def ftruncate(self, fd: Any, length: int, *, callback: Optional[_Callback] = None,
                  deadline: Optional[float] = None, link: Union[bool, str] = False, fixed_file: bool = False,
                  _fut: Any = None) -> Operation:
        """ftruncate(2) (kernel 6.9+; EOPNOTSUPP before)."""
        fd = _fd(fd)
        return self._simple("ftruncate", None, callback, _fut, None, lib.pya_ftruncate, _ns(deadline, "deadline"), fd,
                            _index(length, "length"), self._flags(link, fixed_file))

    def sync_file_range(self, fd: Any, offset: int = 0, nbytes: int = 0, flags: int = 0x2, *,
                        callback: Optional[_Callback] = None, deadline: Optional[float] = None,
                        link: Union[bool, str] = False, fixed_file: bool = False, _fut: Any = None) -> Operation:
        """sync_file_range(2); flags default SYNC_FILE_RANGE_WRITE (2); nbytes 0: to the end."""
        fd = _fd(fd)
        nbytes = _index(nbytes, "nbytes")
        if nbytes > 0xFFFFFFFF:
            raise ValueError("nbytes must fit 32 bits")
        return self._simple("sync_file_range", None, callback, _fut, None, lib.pya_sync_file_range,
                            _ns(deadline, "deadline"), fd, _index(offset, "offset"), nbytes, _index(flags, "flags"),
                            self._flags(link, fixed_file))

    def fadvise(self, fd: Any, offset: int, length: int, advice: int, *, callback: Optional[_Callback] = None,
                deadline: Optional[float] = None, link: Union[bool, str] = False, fixed_file: bool = False,
                _fut: Any = None) -> Operation:
        """posix_fadvise(2) with os.POSIX_FADV_* advice; length 0: to the end of the file."""
        fd = _fd(fd)
        return self._simple("fadvise", None, callback, _fut, None, lib.pya_fadvise, _ns(deadline, "deadline"), fd,
                            _index(offset, "offset"), _index(length, "length"), _index(advice, "advice"),
                            self._flags(link, fixed_file))

    def madvise(self, buf: Any, advice: int, *, length: Optional[int] = None, callback: Optional[_Callback] = None,
                deadline: Optional[float] = None, link: Union[bool, str] = False, _fut: Any = None) -> Operation:
        """madvise(2) on the memory of buf (an mmap, a pool Buffer...) with mmap.MADV_* advice."""
        if type(buf) is Buffer:
            ptr, size, keep, cbuf = buf._ptr, buf._size, buf, None
            if ptr is None:
                raise ValueError("buffer was freed")
        else:
            cbuf = ffi.from_buffer(buf)
            ptr, size, keep = cbuf, len(cbuf), buf
        n = size if length is None else _index(length, "length", 1)
        if n == 0 or n > size:
            raise ValueError("length must be within 1..len(buf)")
        self._check()
        op = Operation(self, keep, cbuf, callback, None, "madvise")
        op._fut = _fut
        k = self._slot()
        self._ops[k] = op
        return self._submit(op, k, lib.pya_madvise(self._pe, k, _ns(deadline, "deadline"), ptr, n,
                                                   _index(advice, "advice"), _link_flags(link)))

    def timer(self, seconds: float, *, callback: Optional[_Callback] = None, _fut: Any = None) -> Operation:
        """A timer: completes with 0 after seconds (CancelledError when cancelled)."""
        return self._simple("timer", None, callback, _fut, None, lib.pya_timer, _ns(seconds, "seconds"))

    def cancel_fd(self, fd: Any) -> int:
        """Cancel every request on fd (in the kernel, in a backlog, in open chains); returns how
        many. Use before closing a file that still has I/O outstanding."""
        self._check()
        rc = lib.auraio_cancel_fd(self._raw, _fd(fd))
        if rc < 0:
            raise error_from_errno(-rc, "cancel_fd")
        return rc

    def read_batch(self, fd: Any, buf: Any, offsets: Sequence[int], size: int, *, depth: int = 0,
                   callback: Optional[_Callback] = None) -> Batch:
        """Read len(offsets) blocks of size bytes in one call: read i goes to buf[i*size:(i+1)*size]
        from offsets[i] (a list, array('q') or int64 numpy array). depth: at most that many in
        flight (0: all at once); each completion submits the next read in C, so no Python runs
        per read. One completion for the batch; result() returns every read's result (bytes, or
        -errno for a failed one)."""
        return self._batch(False, fd, buf, offsets, size, depth, callback)

    def write_batch(self, fd: Any, buf: Any, offsets: Sequence[int], size: int, *, depth: int = 0,
                    callback: Optional[_Callback] = None) -> Batch:
        """Like read_batch, writing buf[i*size:(i+1)*size] at offsets[i]."""
        return self._batch(True, fd, buf, offsets, size, depth, callback)

    def _batch(self, write: bool, fd: Any, buf: Any, offsets: Any, size: int, depth: int, callback: Any) -> Batch:
        self._check()
        fd = _fd(fd)
        size = _index(size, "size", 1)
        depth = _index(depth, "depth")
        if type(buf) is Buffer:
            ptr, blen, cbuf = buf._ptr, buf._size, None
        else:
            try:
                cbuf = ffi.from_buffer(buf, require_writable=not write)
            except (TypeError, BufferError):
                raise _not_buffer(buf, not write) from None
            ptr, blen = cbuf, len(cbuf)
        n = len(offsets)
        if n == 0:
            raise ValueError("no offsets")
        if n * size > blen:
            raise ValueError(f"{n} x {size} bytes do not fit the buffer's {blen}")
        try:
            coffs = ffi.from_buffer("int64_t[]", offsets)
        except TypeError:
            coffs = ffi.new("int64_t[]", [_index(o, "offset") for o in offsets])
        if n > 0xFFFFFFFF:
            raise ValueError("fewer than 2**32 offsets")
        op = Batch(self, (buf, offsets), [cbuf, coffs] if cbuf is not None else coffs, callback, None,
                   "write_batch" if write else "read_batch")
        op._n = n
        k = self._slot()
        self._ops[k] = op
        done = ffi.new("int *")
        b = lib.pya_batch_submit(self._pe, k, int(write), fd, ffi.cast("char *", ptr), size, size, coffs, n, depth,
                                 done)
        if b == ffi.NULL:
            err = ffi.errno
            self._ops[k] = None
            self._free.append(k)
            if err == _errno.ERANGE:
                raise ValueError("offsets must be >= 0")
            raise error_from_errno(err, op._what)
        op._batch = ffi.gc(b, lib.pya_batch_free)
        op._req = b
        if done[0]:
            self._ops[k] = None
            self._free.append(k)
            op._complete(0)
        return op

    # ---------------------------------------------------------------------------------------
    # Buffers and registration

    def buffer(self, size: int) -> Buffer:
        """A pool buffer of size bytes, 4096-byte aligned (fit for O_DIRECT)."""
        self._check()
        size = _index(size, "size", 1)
        p = lib.auraio_buffer_alloc(self._raw, size)
        if p == ffi.NULL:
            raise error_from_errno(ffi.errno, "buffer")
        b = Buffer(self, p, size)
        self._buffers.add(b)
        return b

    def register_buffers(self, buffers: Sequence[Any]) -> List[RegisteredBuffer]:
        """Register writable buffers with the kernel (pinned); returns one RegisteredBuffer each,
        to pass to read()/write(). The engine holds the buffers until unregister_buffers() or close."""
        self._check()
        iov, cbufs = self._iov(buffers, True)
        rc = lib.auraio_register_buffers(self._raw, iov, len(buffers))
        if rc < 0:
            raise error_from_errno(-rc, "register_buffers")
        self._registered = [list(buffers), iov, cbufs]
        return [RegisteredBuffer(self, i, 0, int(iov[i].iov_len), b) for i, b in enumerate(buffers)]

    def unregister_buffers(self) -> None:
        """Unregister the buffers (BlockingIOError-free: OSError EBUSY while I/O uses them)."""
        self._check()
        rc = lib.auraio_unregister(self._raw, lib.AURAIO_REG_BUFFERS)
        if rc < 0:
            raise error_from_errno(-rc, "unregister_buffers")
        self._registered = []

    def register_files(self, fds: Sequence[int]) -> None:
        """Register file descriptors (-1: an empty slot) for fixed_file=True requests."""
        self._check()
        vals = [-1 if f == -1 else _fd(f) for f in fds]
        if not vals:
            raise ValueError("at least one fd")
        rc = lib.auraio_register_files(self._raw, ffi.new("int[]", vals), len(vals))
        if rc < 0:
            raise error_from_errno(-rc, "register_files")

    def update_file(self, index: int, fd: int) -> None:
        """Put fd (-1: none) in registered-file slot index."""
        self._check()
        rc = lib.auraio_update_file(self._raw, _index(index, "index"), -1 if fd == -1 else _fd(fd))
        if rc < 0:
            raise error_from_errno(-rc, "update_file")

    def unregister_files(self) -> None:
        self._check()
        rc = lib.auraio_unregister(self._raw, lib.AURAIO_REG_FILES)
        if rc < 0:
            raise error_from_errno(-rc, "unregister_files")

    # ---------------------------------------------------------------------------------------
    # Observability and control

    def set_max_p99_latency(self, ms: float) -> None:
        """Change the controller's P99 target (ms) at run time; 0 removes it."""
        self._check()
        if isinstance(ms, bool) or not isinstance(ms, (int, float)):
            raise TypeError("ms must be a number")
        if not (ms >= 0 and ms != float("inf")):
            raise ValueError("ms must be a finite number >= 0")
        rc = lib.auraio_set_max_p99_latency(self._raw, float(ms))
        if rc < 0:
            raise error_from_errno(-rc)

    def stats(self) -> EngineStats:
        self._check()
        s = ffi.new("auraio_stats_t *")
        lib.auraio_get_stats(self._raw, s)
        return EngineStats(s.ops_completed, s.bytes_transferred, s.submissions_at_limit, s.adaptive_spills,
                           s.pending_count, s.in_flight_limit, s.throughput_bps, s.p99_latency_ms)

    def ring_stats(self, ring: int) -> RingStats:
        self._check()
        s = ffi.new("auraio_ring_stats_t *")
        rc = lib.auraio_get_ring_stats(self._raw, _index(ring, "ring"), s)
        if rc < 0:
            raise IndexError(f"no ring {ring}")
        return RingStats(ring, s.ops_completed, s.bytes_transferred, s.submissions_at_limit, s.pending_count,
                         s.in_flight_limit, s.batch_threshold, s.queue_depth, _phase(s.phase), bool(s.target_infeasible),
                         s.p99_latency_ms, s.p50_latency_ms, s.throughput_bps)

    def histogram(self, ring: int) -> Histogram:
        self._check()
        h = ffi.new("auraio_histogram_t *")
        if lib.auraio_get_histogram(self._raw, _index(ring, "ring"), h) < 0:
            raise IndexError(f"no ring {ring}")
        return Histogram(ring, h.total_count, h.overflow_count, tuple(h.buckets), _bounds())

    def buffer_stats(self) -> BufferStats:
        self._check()
        s = ffi.new("auraio_buffer_stats_t *")
        lib.auraio_get_buffer_stats(self._raw, s)
        return BufferStats(s.total_allocated_bytes, s.total_buffers, s.cached_bytes, s.cached_buffers, s.shard_count)

    def metrics(self, ring: Optional[int] = None) -> Metrics:
        """Lifetime metrics of one ring, or of all rings (ring=None)."""
        self._check()
        r = lib.AURAIO_ALL_RINGS if ring is None else _index(ring, "ring")
        m = ffi.new("auraio_metrics_t *")
        if lib.auraio_get_metrics(self._raw, r, m) < 0:
            raise IndexError(f"no ring {ring}")
        kinds = ("read", "write", "fsync", "other")
        classes = ("canceled", "timedout", "other")
        return Metrics(
            -1 if ring is None else r, {k: m.ops[i] for i, k in enumerate(kinds)},
            {k: m.bytes[i] for i, k in enumerate(kinds)},
            {(k, c): m.errors[i][j] for i, k in enumerate(kinds) for j, c in enumerate(classes)},
            m.submissions_at_limit, m.adaptive_spills, m.latency_count, m.latency_sum_ns, m.latency_overflow,
            tuple(m.latency_buckets), m.backlog_length, m.in_flight, m.in_flight_limit, m.queue_depth, _phase(m.phase),
            bool(m.target_infeasible), m.p50_ns, m.p99_ns, m.target_p99_ns, _bounds())

    def metrics_prometheus(self) -> str:
        """The metrics in Prometheus text format 0.0.4 (doc/observability.md)."""
        return self._render(lib.auraio_metrics_prometheus)

    def metrics_openmetrics(self) -> str:
        """The metrics in OpenMetrics 1.0.0 text format."""
        return self._render(lib.auraio_metrics_openmetrics)

    def _render(self, fn: Any) -> str:
        self._check()
        need = fn(self._raw, ffi.NULL, 0)
        while True:
            if need < 0:
                raise error_from_errno(-need, "metrics")
            buf = ffi.new("char[]", need + 1024)
            got = fn(self._raw, buf, need + 1024)
            if 0 <= got < need + 1024:
                return ffi.string(buf, got).decode()
            need = got

    def serve_metrics(self, port: int = 0, bind: Optional[str] = None) -> MetricsServer:
        """Serve GET /metrics on bind (default 127.0.0.1) and port (0: a free one; see .port)."""
        self._check()
        s = lib.auraio_metrics_server_start(self._raw, ffi.NULL if bind is None else bind.encode(),
                                            _index(port, "port"))
        if s == ffi.NULL:
            raise error_from_errno(ffi.errno, "serve_metrics")
        self._server = MetricsServer(self, s)
        return self._server

    def __repr__(self) -> str:
        return "<auraio.Engine closed>" if self._pe is None else f"<auraio.Engine rings={self.ring_count}>"


def _not_buffer(obj: Any, writable: bool) -> TypeError:
    kind = "a writable bytes-like object" if writable else "a bytes-like object"
    return TypeError(f"{kind} is required, not {type(obj).__name__}")


def _phase(p: int) -> str:
    return ffi.string(lib.auraio_phase_name(p)).decode()


_BOUNDS: Optional[tuple] = None


def _bounds() -> tuple:
    global _BOUNDS
    if _BOUNDS is None:
        _BOUNDS = tuple(lib.auraio_histogram_bucket_lower_ns(i) for i in range(lib.AURAIO_HISTOGRAM_BUCKETS))
    return _BOUNDS
