/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cancellation, callbacks that resubmit, destroy with I/O in flight, stale handles, the event loop
 * (wait/run/stop, the poll fd) and backpressure (backlog beyond the limit, slot exhaustion).
 * Blocked reads come from pipes: they stay in flight until cancelled.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "configs.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static auraio_engine_t *engine_with(int rings, int depth, int limit)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = rings;
    o.queue_depth = depth;
    o.initial_in_flight = limit;
    o.disable_adaptive = true;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    return e;
}

static void test_cancel_blocked_pipe_read(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < TEST_CONFIG_COUNT; ci++) {
        auraio_engine_t *e = config_engine(&test_configs[ci]);
        assert_non_null(e);
        int p[2];
        assert_int_equal(pipe(p), 0);
        char buf[32];
        struct recorder rec;
        recorder_init(&rec);
        struct recorder_ctx c0 = {&rec, 0};
        auraio_request_t *r = auraio_read(e, p[0], auraio_buf(buf), sizeof(buf), 0, recorder_callback, &c0);
        assert_non_null(r);
        assert_int_equal(auraio_wait(e, 20), -ETIME);
        assert_int_equal(auraio_request_pending(e, r), 1);
        assert_int_equal(auraio_cancel(e, r), 0);
        /* A second cancel of the same request is refused, not issued twice. */
        int again = auraio_cancel(e, r);
        assert_true(again == -EINPROGRESS || again == -EALREADY);
        assert_int_equal(harness_wait_for(e, &rec.total, 1, 5000), 0);
        assert_int_equal(atomic_load(&rec.results[0]), -ECANCELED);
        assert_int_equal(auraio_request_pending(e, r), 0);
        /* The handle is stale now: cancelling it again must not touch a reused slot. */
        assert_int_equal(auraio_cancel(e, r), -EALREADY);
        assert_int_equal(auraio_pending_count(e), 0);
        auraio_destroy(e);
        recorder_assert_each_once(&rec, 1);
        close(p[0]);
        close(p[1]);
    }
}

/* Stale handle: after the slot is reused by a new request, cancelling the old handle must not
 * cancel the new one. One ring with one slot guarantees reuse. */
static void test_stale_handle_does_not_cancel_new_request(void **state)
{
    (void)state;
    auraio_engine_t *e = engine_with(1, 1, 1);
    int fd = harness_pattern_file(4096, 1);
    char buf[4096];
    struct recorder rec;
    recorder_init(&rec);
    struct recorder_ctx c0 = {&rec, 0}, c1 = {&rec, 1};
    auraio_request_t *old = auraio_read(e, fd, auraio_buf(buf), sizeof(buf), 0, recorder_callback, &c0);
    assert_non_null(old);
    assert_int_equal(harness_wait_for(e, &rec.total, 1, 5000), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    auraio_request_t *fresh = auraio_read(e, p[0], auraio_buf(buf), 8, 0, recorder_callback, &c1);
    assert_non_null(fresh);
    assert_ptr_not_equal(old, fresh);
    assert_int_equal(auraio_cancel(e, old), -EALREADY);
    assert_int_equal(auraio_request_pending(e, fresh), 1);
    assert_int_equal(auraio_wait(e, 20), -ETIME);
    /* The fresh read is still blocked: complete it with real data. */
    assert_int_equal(write(p[1], "abcdefgh", 8), 8);
    assert_int_equal(harness_wait_for(e, &rec.total, 2, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[1]), 8);
    assert_memory_equal(buf, "abcdefgh", 8);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 2);
    close(p[0]);
    close(p[1]);
    close(fd);
}

static void test_destroy_with_inflight(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < TEST_CONFIG_COUNT; ci++) {
        auraio_engine_t *e = config_engine(&test_configs[ci]);
        assert_non_null(e);
        enum { N = 16 };
        int p[N][2];
        char bufs[N][8];
        struct recorder rec;
        struct recorder_ctx ctx[N];
        recorder_init(&rec);
        int submitted = 0;
        for (int i = 0; i < N; i++) {
            assert_int_equal(pipe(p[i]), 0);
            ctx[i] = (struct recorder_ctx){&rec, i};
            if (auraio_read(e, p[i][0], auraio_buf(bufs[i]), 8, 0, recorder_callback, &ctx[i]))
                submitted++;
            else
                assert_int_equal(errno, EAGAIN); /* tiny-queue config runs out of slots */
        }
        assert_true(submitted >= 8);
        assert_int_equal(auraio_flush(e) >= 0, 1);
        assert_int_equal(auraio_pending_count(e), submitted);
        auraio_destroy(e);
        recorder_assert_each_once(&rec, submitted);
        for (int i = 0; i < submitted; i++)
            assert_int_equal(atomic_load(&rec.results[i]), -ECANCELED);
        for (int i = 0; i < N; i++) {
            close(p[i][0]);
            close(p[i][1]);
        }
    }
}

/* Callbacks run during destroy may try to submit: they get ESHUTDOWN and nothing leaks. */
struct resubmit_during_destroy {
    auraio_engine_t *e;
    int fd;
    char buf[8];
    int calls;
    int submit_errno;
};

static void submit_from_destroy_cb(auraio_request_t *r, ssize_t res, void *ud)
{
    (void)r;
    (void)res;
    struct resubmit_during_destroy *s = ud;
    s->calls++;
    errno = 0;
    if (!auraio_read(s->e, s->fd, auraio_buf(s->buf), 8, 0, submit_from_destroy_cb, s))
        s->submit_errno = errno;
}

static void test_submit_during_destroy_gets_eshutdown(void **state)
{
    (void)state;
    auraio_engine_t *e = engine_with(1, 8, 8);
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct resubmit_during_destroy s = {.e = e, .fd = p[0]};
    assert_non_null(auraio_read(e, p[0], auraio_buf(s.buf), 8, 0, submit_from_destroy_cb, &s));
    auraio_destroy(e);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.submit_errno, ESHUTDOWN);
    close(p[0]);
    close(p[1]);
}

/* A callback that resubmits: a chain of reads walking the file, each started from the previous
 * one's callback, all delivered, data checked. */
struct chain {
    auraio_engine_t *e;
    int fd;
    int next_block;
    int blocks;
    int done;
    int bad;
    unsigned char buf[4096];
};

static void chain_cb(auraio_request_t *r, ssize_t res, void *ud)
{
    (void)r;
    struct chain *c = ud;
    if (res != 4096 || harness_check_pattern(c->buf, 4096, (uint64_t)c->next_block * 4096, 9) != -1)
        c->bad++;
    c->done++;
    /* Polling from a callback is refused, not re-entered. */
    if (auraio_poll(c->e) != -EDEADLK || auraio_wait(c->e, 0) != -EDEADLK || auraio_run(c->e) != -EDEADLK)
        c->bad++;
    /* The request is delivered, so cancelling its own handle reports "already". */
    if (auraio_cancel(c->e, r) != -EALREADY)
        c->bad++;
    if (++c->next_block < c->blocks) {
        if (!auraio_read(c->e, c->fd, auraio_buf(c->buf), 4096, (int64_t)c->next_block * 4096, chain_cb, c))
            c->bad++;
    }
}

static void test_callback_resubmits(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < TEST_CONFIG_COUNT; ci++) {
        auraio_engine_t *e = config_engine(&test_configs[ci]);
        struct chain c = {.e = e, .blocks = 200};
        c.fd = harness_pattern_file(200 * 4096, 9);
        assert_true(c.fd >= 0);
        assert_non_null(auraio_read(e, c.fd, auraio_buf(c.buf), 4096, 0, chain_cb, &c));
        while (c.done < c.blocks)
            assert_true(auraio_wait(e, 5000) > 0);
        assert_int_equal(c.bad, 0);
        assert_int_equal(auraio_pending_count(e), 0);
        auraio_destroy(e);
        close(c.fd);
    }
}

static void test_backlog_beyond_limit_and_exhaustion(void **state)
{
    (void)state;
    /* One ring, 8 slots, limit 1: 1 goes to the kernel, 7 wait in the backlog, the 9th is EAGAIN.
     * (With more than one blocked pipe read in the kernel, which one gets a byte is the kernel's
     * choice, so order is only observable with one.) */
    auraio_engine_t *e = engine_with(1, 8, 1);
    int p[2];
    assert_int_equal(pipe(p), 0);
    char bufs[9][1];
    struct recorder rec;
    struct recorder_ctx ctx[9];
    recorder_init(&rec);
    assert_int_equal(auraio_capacity(e), 1);
    for (int i = 0; i < 8; i++) {
        ctx[i] = (struct recorder_ctx){&rec, i};
        assert_non_null(auraio_read(e, p[0], auraio_buf(bufs[i]), 1, 0, recorder_callback, &ctx[i]));
    }
    assert_int_equal(auraio_capacity(e), 0);
    ctx[8] = (struct recorder_ctx){&rec, 8};

    errno = 0;
    assert_null(auraio_read(e, p[0], auraio_buf(bufs[8]), 1, 0, recorder_callback, &ctx[8]));
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(auraio_pending_count(e), 8);
    auraio_ring_stats_t rs;
    assert_int_equal(auraio_get_ring_stats(e, 0, &rs), 0);
    assert_int_equal(rs.submissions_at_limit, 7);
    assert_int_equal(rs.in_flight_limit, 1);
    /* Feed the pipe one byte at a time: requests complete in submission order, which shows the
     * backlog is FIFO and refilled as completions free room. */
    for (int i = 0; i < 8; i++) {
        assert_int_equal(write(p[1], &"ABCDEFGH"[i], 1), 1);
        assert_int_equal(harness_wait_for(e, &rec.total, i + 1, 5000), 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(atomic_load(&rec.results[i]), 1);
        assert_int_equal(bufs[i][0], "ABCDEFGH"[i]);
    }
    assert_int_equal(auraio_capacity(e), 1);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 8);
    close(p[0]);
    close(p[1]);
}

static void test_cancel_in_backlog(void **state)
{
    (void)state;
    auraio_engine_t *e = engine_with(1, 4, 1);
    int p[2];
    assert_int_equal(pipe(p), 0);
    char b[3];
    struct recorder rec;
    struct recorder_ctx ctx[3] = {{&rec, 0}, {&rec, 1}, {&rec, 2}};
    recorder_init(&rec);
    auraio_request_t *r[3];
    for (int i = 0; i < 3; i++)
        assert_non_null(r[i] = auraio_read(e, p[0], auraio_buf(&b[i]), 1, 0, recorder_callback, &ctx[i]));
    /* r[1] never reached the kernel: cancelling it completes it on the next poll, -ECANCELED. */
    assert_int_equal(auraio_cancel(e, r[1]), 0);
    assert_int_equal(auraio_wait(e, 1000), 1);
    assert_int_equal(atomic_load(&rec.calls[1]), 1);
    assert_int_equal(atomic_load(&rec.results[1]), -ECANCELED);
    assert_int_equal(write(p[1], "xy", 2), 2);
    assert_int_equal(harness_wait_for(e, &rec.total, 3, 5000), 0);
    assert_int_equal(b[0], 'x');
    assert_int_equal(b[2], 'y');
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 3);
    close(p[0]);
    close(p[1]);
}

static void test_wait_results(void **state)
{
    (void)state;
    auraio_engine_t *e = engine_with(2, 8, 8);
    /* Nothing pending: returns 0 at once even with an infinite timeout. */
    assert_int_equal(auraio_wait(e, -1), 0);
    assert_int_equal(auraio_wait(e, 0), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    char b;
    struct recorder rec;
    struct recorder_ctx c0 = {&rec, 0};
    recorder_init(&rec);
    assert_non_null(auraio_read(e, p[0], auraio_buf(&b), 1, 0, recorder_callback, &c0));
    /* Pending and nothing completes: the timeout is told apart from "nothing pending". */
    assert_int_equal(auraio_wait(e, 0), -ETIME);
    assert_int_equal(auraio_wait(e, 30), -ETIME);
    /* And a timeout is never cut short, not even by the fraction of a millisecond left after the
     * first sleep (rounded down, it would return up to 1 ms early). Twenty short waits, so that a
     * sleep that overruns by chance on a loaded machine cannot hide it every time. */
    for (int i = 0; i < 20; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(auraio_wait(e, 2), -ETIME);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        int64_t waited_ns = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
        assert_true(waited_ns >= 2 * 1000000);
    }
    assert_int_equal(write(p[1], "z", 1), 1);
    assert_int_equal(auraio_wait(e, 5000), 1);
    assert_int_equal(b, 'z');
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 1);
    close(p[0]);
    close(p[1]);
}

static void test_poll_fd(void **state)
{
    (void)state;
    auraio_engine_t *e = engine_with(2, 8, 8);
    int efd = auraio_get_poll_fd(e);
    assert_true(efd >= 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    char b;
    struct recorder rec;
    struct recorder_ctx c0 = {&rec, 0};
    recorder_init(&rec);
    assert_non_null(auraio_read(e, p[0], auraio_buf(&b), 1, 0, recorder_callback, &c0));
    assert_true(auraio_flush(e) >= 0);
    struct pollfd pfd = {.fd = efd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0);
    assert_int_equal(write(p[1], "q", 1), 1);
    /* The fd becomes readable on its own: an external loop can sleep on it. */
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_int_equal(auraio_poll(e), 1);
    /* And auraio_poll drained it, so a level-triggered loop does not spin. */
    assert_int_equal(poll(&pfd, 1, 0), 0);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 1);
    close(p[0]);
    close(p[1]);
}

static void *stopper(void *arg)
{
    auraio_engine_t *e = arg;
    /* No sleep needed: run must return whether the stop lands before or after it starts. */
    auraio_stop(e);
    return NULL;
}

static void test_run_stop(void **state)
{
    (void)state;
    auraio_engine_t *e = engine_with(2, 8, 8);
    /* A stop before run is not lost: run returns after one pass. */
    assert_int_equal(auraio_stop(e), 0);
    assert_int_equal(auraio_run(e), 0);
    /* A stop from another thread ends a run with nothing pending and one with I/O pending. */
    for (int round = 0; round < 50; round++) {
        pthread_t t;
        int p[2] = {-1, -1};
        char b;
        struct recorder rec;
        struct recorder_ctx c0 = {&rec, 0};
        recorder_init(&rec);
        if (round % 2) {
            assert_int_equal(pipe(p), 0);
            assert_non_null(auraio_read(e, p[0], auraio_buf(&b), 1, 0, recorder_callback, &c0));
        }
        assert_int_equal(pthread_create(&t, NULL, stopper, e), 0);
        assert_int_equal(auraio_run(e), 0);
        pthread_join(t, NULL);
        if (round % 2) {
            assert_int_equal(auraio_cancel(e, NULL), -EINVAL);
            assert_int_equal(write(p[1], "r", 1), 1);
            assert_int_equal(harness_wait_for(e, &rec.total, 1, 5000), 0);
            close(p[0]);
            close(p[1]);
        }
    }
    auraio_destroy(e);
}

static void *stop_waiter(void *arg)
{
    auraio_engine_t *e = arg;
    auraio_stop(e);
    return NULL;
}

static void test_wait_forever_returns_on_stop(void **state)
{
    (void)state;
    auraio_engine_t *e = engine_with(1, 8, 8);
    int p[2];
    assert_int_equal(pipe(p), 0);
    char b;
    struct recorder rec;
    struct recorder_ctx c0 = {&rec, 0};
    recorder_init(&rec);
    assert_non_null(auraio_read(e, p[0], auraio_buf(&b), 1, 0, recorder_callback, &c0));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_waiter, e), 0);
    /* Whether the stop lands while we block or before we start, wait(-1) returns 0 and uses the
     * stop up: the next bounded wait times out instead of returning early. */
    assert_int_equal(auraio_wait(e, -1), 0);
    pthread_join(t, NULL);
    assert_int_equal(auraio_wait(e, 10), -ETIME);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 1);
    assert_int_equal(atomic_load(&rec.results[0]), -ECANCELED);
    close(p[0]);
    close(p[1]);
}

/* Destroy then create on the same thread: THREAD_LOCAL's cached ring index from a 4-ring engine
 * must not be used with a 1-ring engine (it would index past the rings). */
static void test_destroy_create_same_thread(void **state)
{
    (void)state;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_select = AURAIO_SELECT_THREAD_LOCAL;
    o.ring_count = 4;
    int fd = harness_pattern_file(4096, 2);
    char buf[4096];
    struct recorder rec;
    struct recorder_ctx c[8];
    recorder_init(&rec);
    for (int round = 0; round < 8; round++) {
        o.ring_count = round % 2 ? 1 : 4;
        auraio_engine_t *e = auraio_create_with_options(&o);
        assert_non_null(e);
        c[round] = (struct recorder_ctx){&rec, round};
        assert_non_null(auraio_read(e, fd, auraio_buf(buf), 4096, 0, recorder_callback, &c[round]));
        assert_int_equal(harness_wait_for(e, &rec.total, round + 1, 5000), 0);
        assert_int_equal(atomic_load(&rec.results[round]), 4096);
        auraio_destroy(e);
    }
    recorder_assert_each_once(&rec, 8);
    close(fd);
}

/* With a read blocked forever on ring 0, a completion on ring 1 must end the wait at once: wait
 * never sleeps on one ring while another has completions. */
static void test_wait_sees_every_ring(void **state)
{
    (void)state;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 2;
    o.ring_select = AURAIO_SELECT_ROUND_ROBIN;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    int p[2];
    assert_int_equal(pipe(p), 0);
    int fd = harness_pattern_file(4096, 3);
    char b1[8], b2[4096];
    struct recorder rec;
    struct recorder_ctx c[2] = {{&rec, 0}, {&rec, 1}};
    recorder_init(&rec);
    assert_non_null(auraio_read(e, p[0], auraio_buf(b1), 8, 0, recorder_callback, &c[0]));
    assert_non_null(auraio_read(e, fd, auraio_buf(b2), 4096, 0, recorder_callback, &c[1]));
    auraio_ring_stats_t r0, r1;
    assert_int_equal(auraio_wait(e, 10000), 1);
    assert_int_equal(atomic_load(&rec.calls[1]), 1);
    assert_int_equal(atomic_load(&rec.calls[0]), 0);
    assert_int_equal(auraio_get_ring_stats(e, 0, &r0), 0);
    assert_int_equal(auraio_get_ring_stats(e, 1, &r1), 0);
    assert_int_equal(r0.pending_count + r1.pending_count, 1);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 2);
    close(p[0]);
    close(p[1]);
    close(fd);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_blocked_pipe_read),
        cmocka_unit_test(test_stale_handle_does_not_cancel_new_request),
        cmocka_unit_test(test_destroy_with_inflight),
        cmocka_unit_test(test_submit_during_destroy_gets_eshutdown),
        cmocka_unit_test(test_callback_resubmits),
        cmocka_unit_test(test_backlog_beyond_limit_and_exhaustion),
        cmocka_unit_test(test_cancel_in_backlog),
        cmocka_unit_test(test_wait_results),
        cmocka_unit_test(test_poll_fd),
        cmocka_unit_test(test_run_stop),
        cmocka_unit_test(test_wait_forever_returns_on_stop),
        cmocka_unit_test(test_destroy_create_same_thread),
        cmocka_unit_test(test_wait_sees_every_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
