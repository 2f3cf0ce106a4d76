# SPDX-License-Identifier: Apache-2.0
"""auraio: self-tuning asynchronous file I/O for Linux on io_uring.

    import auraio
    with auraio.Engine() as engine:
        op = engine.read(fd, bytearray(4096), 0)
        n = op.result()

auraio.Engine is the synchronous API (callbacks or future-like Operation handles), auraio.aio the
asyncio one, auraio.bench runs fio-compatible benchmark jobs in-process. See doc/python.md.
"""
from ._auraio import ffi as _ffi, lib as _lib
from ._core import (AT_FDCWD, Batch, Buffer, Engine, MetricsServer, Operation, RegisteredBuffer, StatxResult)
from ._errors import CancelledError, DeadlineExceeded
from ._stats import BufferStats, EngineStats, Histogram, Metrics, RingStats

__version__ = _ffi.string(_lib.auraio_version()).decode()
version_info = tuple(int(x) for x in __version__.split("."))

__all__ = ["Engine", "Operation", "Batch", "Buffer", "RegisteredBuffer", "StatxResult", "MetricsServer",
           "CancelledError", "DeadlineExceeded", "EngineStats", "RingStats", "Histogram", "BufferStats", "Metrics",
           "AT_FDCWD", "__version__", "version_info"]


def __getattr__(name: str):  # auraio.aio and auraio.bench load on first use (asyncio is not free)
    if name in ("aio", "bench"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'auraio' has no attribute {name!r}")
