# SPDX-License-Identifier: Apache-2.0
"""How a negative errno from the library becomes a Python exception."""
import errno as _errno
import os

__all__ = ["CancelledError", "DeadlineExceeded", "error_from_errno"]


class CancelledError(OSError):
    """The request was cancelled (errno ECANCELED): cancel(), cancel_fd(), a cancelled asyncio task,
    or the engine closing with the request in flight."""


class DeadlineExceeded(TimeoutError):
    """The request's deadline passed first and the kernel cancelled it (errno ETIME)."""


_SPECIAL = {_errno.ECANCELED: CancelledError, _errno.ETIME: DeadlineExceeded}


def error_from_errno(err: int, what: str = "", filename: object = None) -> OSError:
    """An OSError for a positive errno value. OSError(errno, ...) itself picks the builtin subclass
    (FileNotFoundError for ENOENT, PermissionError for EACCES/EPERM, BlockingIOError for EAGAIN...)."""
    cls = _SPECIAL.get(err, OSError)
    msg = os.strerror(err)
    if what:
        msg = f"{msg} ({what})"
    if filename is not None:
        return cls(err, msg, filename)
    return cls(err, msg)
