# SPDX-License-Identifier: Apache-2.0
"""Buffers outlive the I/O that uses them; threads submit and wait; the GIL is released."""
import gc
import os
import threading
import time
import weakref

import pytest

import auraio


class Buf(bytearray):
    """A bytearray that can be weakly referenced."""


def test_dropped_buffer_lives_until_the_callback(engine, pipe):
    b = Buf(8)
    ref = weakref.ref(b)
    seen = []
    engine.read(pipe[0], b, callback=lambda op: seen.append(ref() is not None))
    del b
    gc.collect()
    assert ref() is not None, "the buffer was freed while the kernel may still write it"
    os.write(pipe[1], b"ABCDEFGH")
    while engine.pending:
        engine.wait(5)
    assert seen == [True]
    gc.collect()
    assert ref() is None, "the engine kept the buffer after its completion"


def test_dropped_buffer_lives_through_a_cancel(engine, pipe):
    b = Buf(8)
    ref = weakref.ref(b)
    op = engine.read(pipe[0], b)
    del b
    assert op.cancel()
    gc.collect()
    assert ref() is not None  # cancel issued, kernel not back yet: still held
    with pytest.raises(auraio.CancelledError):
        op.result(5)
    del op
    gc.collect()
    assert ref() is None


def test_dropped_handle_and_buffer_live_until_close(pipe):
    e = auraio.Engine(ring_count=1)
    b = Buf(8)
    ref = weakref.ref(b)
    e.read(pipe[0], b)
    del b
    gc.collect()
    assert ref() is not None
    e.close()  # cancels and delivers: now it may go
    gc.collect()
    assert ref() is None


def test_vector_and_batch_buffers_are_held(engine, pipe):
    a, b = Buf(4), Buf(4)
    ra, rb = weakref.ref(a), weakref.ref(b)
    op = engine.readv(pipe[0], [a, b])
    c = Buf(16)
    rc = weakref.ref(c)
    bt = engine.read_batch(pipe[0], c, [0, 0], 8)
    del a, b, c
    gc.collect()
    assert ra() is not None and rb() is not None and rc() is not None
    op.cancel()
    bt.cancel()
    op.exception(5)
    bt.result(5)
    del op, bt
    gc.collect()
    assert ra() is None and rb() is None and rc() is None


def test_failed_submit_keeps_nothing(engine):
    b = Buf(8)
    ref = weakref.ref(b)
    with pytest.raises(OSError):
        engine.read(1 << 30, b, 0, fixed_file=True)  # ENOENT: no files registered
    del b
    gc.collect()
    assert ref() is None
    assert engine.pending == 0


def test_threads_submit_while_one_waits(data_file):
    path, content = data_file
    fd = os.open(path, os.O_RDONLY)
    e = auraio.Engine(ring_count=2)
    nthreads, per = 4, 200
    bufs = {}
    errors = []
    stop = threading.Event()

    def submitter(t):
        try:
            for i in range(per):
                off = ((t * per + i) * 4096) % len(content)
                b = bytearray(4096)
                while True:
                    try:
                        bufs[(t, i)] = (off, b, e.read(fd, b, off))
                        break
                    except BlockingIOError:  # every slot taken: the waiter frees them
                        time.sleep(0)
        except Exception as x:  # pragma: no cover - reported below
            errors.append(x)

    def waiter():
        while not stop.is_set() or e.pending:
            e.wait(0.05)

    w = threading.Thread(target=waiter)
    w.start()
    ts = [threading.Thread(target=submitter, args=(t,)) for t in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    stop.set()
    w.join(30)
    assert not w.is_alive() and not errors
    assert len(bufs) == nthreads * per
    for off, b, op in bufs.values():
        assert op.result(5) == 4096 and bytes(b) == content[off:off + 4096]
    e.close()
    os.close(fd)


def test_gil_is_released_while_waiting(engine, pipe):
    """The main thread sleeps in wait() on a pipe read that only another Python thread can
    satisfy: if the wait held the GIL, that thread could not run and the wait would time out."""
    op = engine.read(pipe[0], bytearray(5))
    t = threading.Thread(target=lambda: os.write(pipe[1], b"hello"))
    t.start()
    n = engine.wait(10)
    t.join()
    assert n == 1 and op.result(0) == 5


def test_result_from_another_thread(engine, pipe):
    op = engine.read(pipe[0], bytearray(3))
    out = []
    t = threading.Thread(target=lambda: out.append(op.result(10)))
    t.start()
    os.write(pipe[1], b"xyz")
    t.join(15)
    assert out == [3]
