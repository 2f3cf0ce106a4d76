# SPDX-License-Identifier: Apache-2.0
"""Engine lifecycle, every option, argument checks, stats, metrics, registration."""
import dataclasses
import errno
import os
import re

import pytest

import auraio
from conftest import open_fds


def test_version_matches_header():
    here = os.path.dirname(os.path.abspath(__file__))
    for hdr in (os.path.join(here, "..", "..", "include", "auraio.h"), os.path.join(here, "..", "_vendor", "include", "auraio.h")):
        if os.path.exists(hdr):
            m = re.search(r'AURAIO_VERSION_STRING "([^"]+)"', open(hdr).read())
            assert auraio.__version__ == m.group(1)
            break
    else:
        pytest.skip("no header next to the tests")
    assert auraio.version_info == tuple(int(x) for x in auraio.__version__.split("."))


@pytest.mark.parametrize("opts", [
    dict(ring_count=2), dict(queue_depth=64), dict(initial_in_flight=8), dict(max_in_flight=16, queue_depth=32),
    dict(max_p99_latency_ms=2.5), dict(ring_select="adaptive"), dict(ring_select="cpu_local"),
    dict(ring_select="round_robin"), dict(ring_select="thread_local"), dict(disable_adaptive=True, initial_in_flight=4),
    dict(single_issuer=True), dict(enable_sqpoll=True, sqpoll_idle_ms=10), dict(sqpoll_idle_ms=5),
])
def test_every_option_creates_a_working_engine(opts, rfd, data_file):
    with auraio.Engine(**opts) as e:
        assert e.options[next(iter(opts))] == next(iter(opts.values()))
        if "ring_count" in opts:
            assert e.ring_count == opts["ring_count"]
        if "queue_depth" in opts:
            assert e.ring_stats(0).queue_depth == opts["queue_depth"]
        b = bytearray(4096)
        assert e.read(rfd, b, 8192).result(timeout=5) == 4096
        assert bytes(b) == data_file[1][8192:12288]
        if opts.get("disable_adaptive"):
            assert e.ring_stats(0).in_flight_limit == opts["initial_in_flight"]


@pytest.mark.parametrize("opts, exc", [
    (dict(ring_count=-1), ValueError), (dict(queue_depth="8"), TypeError), (dict(ring_count=1.5), TypeError),
    (dict(max_p99_latency_ms=-1), ValueError), (dict(max_p99_latency_ms=float("nan")), ValueError),
    (dict(max_p99_latency_ms="1"), TypeError), (dict(ring_select="fastest"), ValueError),
    (dict(single_issuer=1), TypeError), (dict(queue_depth=True), TypeError),
])
def test_bad_options_raise_before_c(opts, exc):
    with pytest.raises(exc):
        auraio.Engine(**opts)


def test_library_refusal_is_oserror():
    with pytest.raises(OSError) as ei:
        auraio.Engine(queue_depth=1 << 20)  # over the library's 32768
    assert ei.value.errno == errno.EINVAL


def test_unknown_option_is_typeerror():
    with pytest.raises(TypeError):
        auraio.Engine(queue_dpeth=8)


def test_close_is_idempotent_and_use_after_close_raises(rfd):
    e = auraio.Engine(ring_count=1)
    e.close()
    e.close()
    assert e.closed
    for call in (lambda: e.read(rfd, bytearray(8)), lambda: e.poll(), lambda: e.wait(0), lambda: e.stats(),
                 lambda: e.buffer(4096), lambda: e.fsync(rfd), lambda: e.metrics_prometheus(), lambda: e.fileno()):
        with pytest.raises(ValueError, match="closed"):
            call()
    with pytest.raises(ValueError):
        with e:
            pass


def test_no_fd_or_request_leaks_after_close(rfd, pipe):
    before = open_fds()
    for _ in range(3):
        with auraio.Engine(ring_count=2) as e:
            ops = [e.read(rfd, bytearray(4096), i * 4096) for i in range(16)]
            stuck = e.read(pipe[0], bytearray(8))  # still in flight at close
            assert e.pending >= 1
        assert all(o.done() for o in ops)
        assert isinstance(stuck.exception(), auraio.CancelledError)
    assert open_fds() == before


def test_stats_are_dataclasses(engine, rfd):
    for i in range(10):
        engine.read(rfd, bytearray(4096), i * 4096).result()
    s = engine.stats()
    assert dataclasses.is_dataclass(s)
    assert s.ops_completed == 10 and s.bytes_transferred == 40960 and s.pending_count == 0
    r = engine.ring_stats(0)
    assert r.ops_completed == 10 and isinstance(r.phase, str) and r.queue_depth == 256
    with pytest.raises(IndexError):
        engine.ring_stats(5)
    h = engine.histogram(0)
    assert len(h.buckets) == len(h.bounds_ns) == 512
    b = engine.buffer_stats()
    assert b.total_buffers == 0
    m = engine.metrics()
    assert m.ops["read"] == 10 and m.bytes["read"] == 40960 and m.errors[("read", "other")] == 0
    assert m.latency_count == 10 and sum(m.latency_buckets) + m.latency_overflow == 10
    assert engine.metrics(0).ops["read"] == 10


def test_metrics_prometheus_and_server(engine, rfd):
    engine.read(rfd, bytearray(4096), 0).result()
    text = engine.metrics_prometheus()
    assert re.search(r'^auraio_ops_total\{[^}]*op="read"[^}]*\} 1$', text, re.M), text[:2000]
    assert engine.metrics_openmetrics().rstrip().endswith("# EOF")
    srv = engine.serve_metrics(0)
    assert srv.port > 0
    import urllib.request
    body = urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=5).read().decode()
    assert "auraio_ops_total" in body
    srv.stop()
    srv.stop()


def test_set_max_p99_latency(engine):
    engine.set_max_p99_latency(3.0)
    assert engine.metrics().target_p99_ns == 3_000_000
    engine.set_max_p99_latency(0)
    assert engine.metrics().target_p99_ns == 0
    with pytest.raises(ValueError):
        engine.set_max_p99_latency(-1)
    with pytest.raises(TypeError):
        engine.set_max_p99_latency("2")


def test_pool_buffer_aligned_and_freed(engine, rfd, data_file):
    b = engine.buffer(10000)
    assert b.address % 4096 == 0 and len(b) == 10000
    assert engine.buffer_stats().total_buffers == 1
    assert engine.read(rfd, b, 0).result() == 10000
    assert bytes(b) == data_file[1][:10000]
    b.free()
    b.free()
    assert engine.buffer_stats().total_buffers == 0
    with pytest.raises(ValueError):
        b.view
    c = engine.buffer(4096)
    del c
    assert engine.buffer_stats().total_buffers == 0  # garbage collection returned it
    d = engine.buffer(4096)
    engine.close()
    with pytest.raises(ValueError):
        d.view  # the engine's close freed it
    with pytest.raises(ValueError):
        engine.buffer(0)


def test_registered_buffers_and_files(engine, rfd, data_file):
    bufs = [bytearray(8192), bytearray(8192)]
    regs = engine.register_buffers(bufs)
    assert [r.index for r in regs] == [0, 1]
    assert engine.read(rfd, regs[1], 4096).result() == 8192
    assert bytes(bufs[1]) == data_file[1][4096:12288]
    assert engine.read(rfd, regs[0].slice(4096, 4096), 0).result() == 4096
    assert bytes(bufs[0][4096:]) == data_file[1][:4096]
    with pytest.raises(ValueError):
        regs[0].slice(8000, 4096)
    with pytest.raises(OSError) as ei:
        engine.register_buffers([bytearray(4096)])
    assert ei.value.errno == errno.EBUSY
    engine.unregister_buffers()
    with pytest.raises(FileNotFoundError):
        engine.unregister_buffers()  # ENOENT: nothing registered
    engine.register_files([rfd, -1])
    b = bytearray(4096)
    assert engine.read(0, b, 0, fixed_file=True).result() == 4096 and bytes(b) == data_file[1][:4096]
    engine.update_file(1, rfd)
    assert engine.read(1, b, 4096, fixed_file=True).result() == 4096
    with pytest.raises(OSError) as ei:
        engine.read(5, b, 0, fixed_file=True)
    assert ei.value.errno == errno.EBADF
    engine.unregister_files()


def test_fileno_is_the_poll_fd(engine, pipe):
    import select
    fd = engine.fileno()
    op = engine.read(pipe[0], bytearray(4))
    os.write(pipe[1], b"abcd")
    assert select.select([fd], [], [], 5)[0] == [fd]
    assert engine.poll() == 1 and op.result(0) == 4


def test_capacity_and_pending(engine, pipe):
    cap = engine.capacity
    assert cap > 0 and engine.pending == 0
    op = engine.read(pipe[0], bytearray(4))
    assert engine.pending == 1 and engine.capacity == cap - 1
    op.cancel()
    with pytest.raises(auraio.CancelledError):
        op.result(5)
