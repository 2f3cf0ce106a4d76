# SPDX-License-Identifier: Apache-2.0
"""I/O calls on every kind of buffer, the ops, chains, deadlines, completion styles, errors."""
import array
import errno
import mmap
import os
import stat

import pytest

import auraio


def test_read_kinds_of_buffers(engine, rfd, data_file):
    content = data_file[1]
    ba = bytearray(4096)
    assert engine.read(rfd, ba, 4096).result() == 4096 and bytes(ba) == content[4096:8192]
    mv = memoryview(bytearray(8192))[1000:5096]
    assert engine.read(rfd, mv, 0).result() == 4096 and mv.tobytes() == content[:4096]
    mm = mmap.mmap(-1, 8192)
    assert engine.read(rfd, mm, 100).result() == 8192 and mm[:] == content[100:8292]
    ar = array.array("q", [0] * 512)
    assert engine.read(rfd, ar, 0).result() == 4096 and ar.tobytes() == content[:4096]
    part = bytearray(100)
    assert engine.read(rfd, part, 0, length=10).result() == 10 and part[:10] == content[:10] and part[10:] == bytes(90)
    mm.close()


def test_read_numpy(engine, rfd, data_file):
    np = pytest.importorskip("numpy")
    a = np.zeros(1024, dtype=np.uint32)
    assert engine.read(rfd, a, 0).result() == 4096
    assert a.tobytes() == data_file[1][:4096]


def test_write_then_read_back(engine, tmp_path):
    fd = os.open(tmp_path / "w", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert engine.write(fd, b"hello world", 0).result() == 11
        assert engine.write(fd, memoryview(b"XXworld")[2:], 6).result() == 5
        assert engine.writev(fd, [b"ab", bytearray(b"cd"), memoryview(b"ef")], 11).result() == 6
        assert engine.fsync(fd).result() == 0
        assert engine.fsync(fd, datasync=True).result() == 0
        a, b = bytearray(5), bytearray(12)
        assert engine.readv(fd, [a, b], 0).result() == 17
        assert bytes(a + b) == b"hello worldabcdef"
    finally:
        os.close(fd)


def test_short_read_at_end_of_file(engine, rfd):
    b = bytearray(8192)
    assert engine.read(rfd, b, (1 << 20) - 100).result() == 100
    assert engine.read(rfd, b, 1 << 21).result() == 0


@pytest.mark.parametrize("call, exc", [
    (lambda e, fd: e.read(fd, bytearray(8), -1), ValueError),
    (lambda e, fd: e.read(-1, bytearray(8), 0), ValueError),
    (lambda e, fd: e.read(fd, "text", 0), TypeError),
    (lambda e, fd: e.read(fd, b"readonly", 0), TypeError),
    (lambda e, fd: e.read(fd, bytearray(8), 0, length=9), ValueError),
    (lambda e, fd: e.read(fd, bytearray(0), 0), ValueError),
    (lambda e, fd: e.read(fd, bytearray(8), "0"), TypeError),
    (lambda e, fd: e.read(fd, bytearray(8), 0, deadline=-1), ValueError),
    (lambda e, fd: e.read(fd, bytearray(8), 0, link="soft"), ValueError),
    (lambda e, fd: e.readv(fd, [], 0), ValueError),
    (lambda e, fd: e.readv(fd, bytearray(8), 0), TypeError),
    (lambda e, fd: e.writev(fd, [b""], 0), ValueError),
    (lambda e, fd: e.openat("a\0b"), ValueError),
    (lambda e, fd: e.openat("x", mode=0o17777), ValueError),
    (lambda e, fd: e.fallocate(fd, 0, 0), ValueError),
    (lambda e, fd: e.ftruncate(fd, -1), ValueError),
    (lambda e, fd: e.sync_file_range(fd, 0, 1 << 33), ValueError),
    (lambda e, fd: e.madvise(bytearray(10), 0, length=11), ValueError),
    (lambda e, fd: e.timer(0), ValueError),
    (lambda e, fd: e.read_batch(fd, bytearray(4096), [0, 4096], 4096), ValueError),
    (lambda e, fd: e.read_batch(fd, bytearray(8192), [0, -1], 4096), ValueError),
])
def test_bad_arguments(engine, rfd, call, exc):
    with pytest.raises(exc):
        call(engine, rfd)
    assert engine.pending == 0


@pytest.mark.parametrize("make, exc, err", [
    (lambda e, d: e.openat(os.path.join(d, "missing")), FileNotFoundError, errno.ENOENT),
    (lambda e, d: e.openat(d, os.O_WRONLY), IsADirectoryError, errno.EISDIR),
    (lambda e, d: e.openat(os.path.join(d, "f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY), FileExistsError, errno.EEXIST),
    (lambda e, d: e.openat(os.path.join(d, "f", "x")), NotADirectoryError, errno.ENOTDIR),
    (lambda e, d: e.statx(os.path.join(d, "missing")), FileNotFoundError, errno.ENOENT),
])
def test_kernel_errors_map_to_oserror_subclasses(engine, tmp_path, make, exc, err):
    (tmp_path / "f").write_bytes(b"x")
    op = make(engine, str(tmp_path))
    with pytest.raises(exc) as ei:
        op.result(5)
    assert ei.value.errno == err and ei.value.strerror.startswith(os.strerror(err))
    assert isinstance(op.exception(), exc)


def test_error_mapping_table():
    from auraio._errors import error_from_errno
    assert type(error_from_errno(errno.EACCES)) is PermissionError
    assert type(error_from_errno(errno.EPERM)) is PermissionError
    assert type(error_from_errno(errno.EAGAIN)) is BlockingIOError
    assert type(error_from_errno(errno.ECANCELED)) is auraio.CancelledError
    assert isinstance(error_from_errno(errno.ETIME), TimeoutError)
    assert type(error_from_errno(errno.EIO)) is OSError
    assert error_from_errno(errno.EIO).errno == errno.EIO


def test_bad_fd_is_ebadf_from_the_kernel(engine, tmp_path):
    fd = os.open(tmp_path / "wo", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with pytest.raises(OSError) as ei:
            engine.read(fd, bytearray(8), 0).result(5)
        assert ei.value.errno == errno.EBADF
    finally:
        os.close(fd)


def test_metadata_ops(engine, tmp_path):
    path = str(tmp_path / "m")
    fd = engine.openat(path, os.O_RDWR | os.O_CREAT, 0o600).result(5)
    try:
        assert fd >= 0 and os.fstat(fd).st_mode & 0o777 == 0o600
        assert os.get_inheritable(fd) is False
        assert engine.fallocate(fd, 0, 65536).result(5) == 0
        st = engine.statx(path).result(5)
        assert isinstance(st, auraio.StatxResult) and st.st_size == 65536 and stat.S_ISREG(st.st_mode)
        assert st.st_ino == os.stat(path).st_ino and abs(st.st_mtime - os.stat(path).st_mtime) < 1e-6
        assert engine.statx(fd).result(5).st_size == 65536  # fstat form
        try:
            assert engine.ftruncate(fd, 100).result(5) == 0
            assert os.fstat(fd).st_size == 100
        except OSError as e:  # IORING_OP_FTRUNCATE is 6.9+
            assert e.errno == errno.EOPNOTSUPP
        assert engine.write(fd, b"z" * 4096, 0).result(5) == 4096
        assert engine.sync_file_range(fd, 0, 4096).result(5) == 0
        assert engine.fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED).result(5) == 0
        mm = mmap.mmap(-1, 8192)
        assert engine.madvise(mm, mmap.MADV_WILLNEED).result(5) == 0
        mm.close()
        pb = engine.buffer(8192)
        assert engine.madvise(pb, mmap.MADV_WILLNEED).result(5) == 0
    finally:
        assert engine.close_fd(fd).result(5) == 0
    with pytest.raises(OSError):
        os.fstat(fd)


def test_openat_direct_into_a_registered_slot(engine, data_file):
    engine.register_files([-1, -1])
    op = engine.openat(data_file[0], file_index=1)
    try:
        assert op.result(5) == 0
    except OSError as e:
        pytest.skip(f"openat_direct unsupported: {e}")
    b = bytearray(100)
    assert engine.read(1, b, 0, fixed_file=True).result(5) == 100 and bytes(b) == data_file[1][:100]
    assert engine.close_fd(1, fixed_file=True).result(5) == 0


def test_linked_chain_failure_cancels_the_rest(engine, tmp_path):
    fd = os.open(tmp_path / "c", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        bad = os.open(tmp_path / "ro", os.O_RDONLY | os.O_CREAT, 0o644)
        first = engine.write(bad, b"x", 0, link=True)  # EBADF: read-only fd
        second = engine.write(fd, b"never", 0)
        with pytest.raises(OSError) as ei:
            first.result(5)
        assert ei.value.errno == errno.EBADF
        with pytest.raises(auraio.CancelledError):
            second.result(5)
        assert os.pread(fd, 5, 0) == b""
        ok1 = engine.write(fd, b"abc", 0, link=True)
        ok2 = engine.fsync(fd, link="hard")
        ok3 = engine.write(fd, b"def", 3)
        assert [ok1.result(5), ok2.result(5), ok3.result(5)] == [3, 0, 3]
        assert os.pread(fd, 6, 0) == b"abcdef"
        os.close(bad)
    finally:
        os.close(fd)


def test_deadline_and_timer(engine, pipe):
    op = engine.read(pipe[0], bytearray(8), deadline=0.02)
    with pytest.raises(auraio.DeadlineExceeded) as ei:
        op.result(5)
    assert ei.value.errno == errno.ETIME
    t = engine.timer(0.01)
    assert t.result(5) == 0
    t2 = engine.timer(30)
    assert t2.cancel()
    with pytest.raises(auraio.CancelledError):
        t2.result(5)


def test_cancel_fd(engine, pipe):
    ops = [engine.read(pipe[0], bytearray(8)) for _ in range(3)]
    assert engine.cancel_fd(pipe[0]) == 3
    for o in ops:
        assert o.cancelled()  if o.done() else isinstance(o.exception(5), auraio.CancelledError)
    with pytest.raises(ValueError):
        engine.cancel_fd(-5)


def test_result_timeout_leaves_it_in_flight(engine, pipe):
    op = engine.read(pipe[0], bytearray(8))
    with pytest.raises(TimeoutError):
        op.result(timeout=0.05)
    assert not op.done() and engine.pending == 1
    os.write(pipe[1], b"12345678")
    assert op.result(5) == 8


def test_callbacks_run_once_with_the_handle(engine, rfd):
    seen = []
    ops = [engine.read(rfd, bytearray(512), i * 512, callback=seen.append) for i in range(20)]
    while engine.pending:
        engine.wait(5)
    assert sorted(map(id, seen)) == sorted(map(id, ops))
    assert all(o.result(0) == 512 for o in seen)


def test_callback_exception_propagates_after_the_batch(engine, rfd):
    delivered = []

    def boom(op):
        delivered.append(op)
        raise KeyError(f"from callback {len(delivered)}")

    # Cached reads complete while they are submitted, so one wait reaps all four: every callback
    # raises, and all of them must still run before the first exception propagates.
    ops = [engine.read(rfd, bytearray(16), i * 16, callback=boom) for i in range(4)]
    with pytest.raises(KeyError, match="from callback 1"):
        engine.wait(5)
    raised = 1
    while engine.pending:
        try:
            engine.wait(5)
        except KeyError:
            raised += 1
    assert len(delivered) == 4 and all(o.done() for o in ops)  # nothing swallowed, nobody skipped
    assert raised == 1, "the four completions were not one batch: the test lost its point"


def test_callback_may_submit_but_not_wait(engine, rfd):
    got = []

    def cb(op):
        got.append(op.result(0))
        if len(got) < 5:
            engine.read(rfd, bytearray(100), 0, callback=cb)
        with pytest.raises(RuntimeError):
            engine.wait(0)

    engine.read(rfd, bytearray(100), 0, callback=cb)
    while engine.pending:
        engine.wait(5)
    assert got == [100] * 5


def test_run_and_stop(engine, rfd):
    results = []

    def cb(op):
        results.append(op.result(0))
        if len(results) == 10:
            engine.stop()

    for i in range(10):
        engine.read(rfd, bytearray(64), i * 64, callback=cb)
    engine.run()
    assert results == [64] * 10


def test_batch_path(engine, rfd, data_file):
    n, size = 32, 4096
    offs = array.array("q", [((i * 7919) % 256) * size for i in range(n)])
    buf = bytearray(n * size)
    b = engine.read_batch(rfd, buf, offs, size)
    assert b.result(5) == [size] * n
    for i, o in enumerate(offs):
        assert buf[i * size:(i + 1) * size] == data_file[1][o:o + size]
    b2 = engine.read_batch(rfd, engine.buffer(2 * size), [0, 1 << 22], size)
    assert b2.result(5) == [size, 0]


def test_batch_cancel_on_pipe(engine, pipe):
    b = engine.read_batch(pipe[0], bytearray(16), [0, 0], 8)
    assert b.cancel()
    assert b.result(5) == [-errno.ECANCELED, -errno.ECANCELED]


def test_batch_window_keeps_depth_and_reads_everything(data_file, rfd):
    e = auraio.Engine(ring_count=1, queue_depth=64, initial_in_flight=4, max_in_flight=4, disable_adaptive=True)
    n, size = 300, 1024  # more members than request slots: the window must stay under them
    offs = array.array("q", [((i * 104729) % 1000) * size for i in range(n)])
    buf = bytearray(n * size)
    b = e.read_batch(rfd, buf, offs, size, depth=8)
    assert b.result(5) == [size] * n
    for i, o in enumerate(offs):
        assert buf[i * size:(i + 1) * size] == data_file[1][o:o + size]
    assert e.pending == 0 and e.metrics().ops["read"] == n
    e.close()


def test_batch_cancel_stops_the_rest(engine, pipe):
    b = engine.read_batch(pipe[0], bytearray(40), list(range(0, 40, 4)), 4, depth=2)
    assert engine.pending == 2  # the window
    assert b.cancel()
    assert b.result(5) == [-errno.ECANCELED] * 10
    assert engine.pending == 0


def test_refused_submit_leaves_no_deadline_armed(engine, pipe):
    with pytest.raises(OSError):
        engine.read(3, bytearray(8), 0, fixed_file=True, deadline=0.001)  # ENOENT: no files registered
    op = engine.read(pipe[0], bytearray(8))  # no deadline of its own
    with pytest.raises(TimeoutError):
        op.result(timeout=0.1)
    assert not op.done(), "the refused submission's deadline was used by the next request"
    op.cancel()
    with pytest.raises(auraio.CancelledError):
        op.result(5)


def test_write_batch_flush_and_pool_buffers_in_vectors(engine, tmp_path):
    fd = os.open(tmp_path / "wb", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        src = bytes(range(256)) * 64  # 16 KiB
        b = engine.write_batch(fd, src, [12288, 8192, 4096, 0], 4096, depth=2)
        assert b.result(5) == [4096] * 4
        assert b.exception() is None and b.done()
        assert os.pread(fd, 16384, 0) == src[12288:] + src[8192:12288] + src[4096:8192] + src[:4096]
        assert engine.flush() >= 0
        pb = engine.buffer(4096)
        head = bytearray(100)
        assert engine.readv(fd, [head, pb], 0).result(5) == 4196
        assert bytes(head) == src[12288:12388] and bytes(pb[:10]) == src[12388:12398]
        with pytest.raises(TypeError):
            engine.write_batch(fd, "text", [0], 4)
    finally:
        os.close(fd)


def test_operation_repr_and_exception(engine, rfd):
    op = engine.read(rfd, bytearray(8), 0)
    assert op.exception(5) is None and op.result(0) == 8 and "result=8" in repr(op)
    assert not op.cancel()  # already complete
    assert "rings=1" in repr(engine)
