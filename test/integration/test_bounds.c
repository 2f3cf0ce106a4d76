/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Promises about *when*, which a suite checking only results cannot see (issue 17): each bug here
 * hides behind a fallback that still delivers every callback with the right result, later.
 *
 *  - A submission reaches the kernel without any later flush, poll or wait: the poll fd becomes
 *    readable on its own (an application sleeping on it in epoll must not wait forever), with the
 *    controller on (whose batch threshold starts at 1, so every submit flushes anyway) and with
 *    disable_adaptive (threshold 8), multi-threaded and single-issuer. The same for submissions
 *    made by callbacks, which may batch but must be entered when the batch of callbacks ends.
 *  - auraio_destroy with a read blocked on a pipe returns within DESTROY_BOUND_MS, half the 1 s
 *    re-cancel interval of lib/engine.c: its first cancel pass must take effect, not the retry.
 *  - A raised limit lets backlog in in submission order: a new submit never overtakes it.
 *
 * Waits are bounded polls of the poll fd (POLL_BOUND_MS): on the bug they time out and fail the
 * test, without the fix they return in microseconds. Nothing sleeps to synchronise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include "engine.h"

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* How long the poll fd may take to become readable: a completion that is posted at all is posted
 * within microseconds, so this is only a bound on a bug (and on a loaded CI machine). */
#define POLL_BOUND_MS 5000
/* Destroy's bound: half of DESTROY_RECANCEL_NS (1 s) in lib/engine.c, so a destroy that waits for
 * its re-cancel fails, while one whose first cancel works (well under 1 ms here, tens of ms under
 * valgrind) passes with room. */
#define DESTROY_BOUND_MS 500

struct engine_case {
    const char *name;
    int rings;
    bool single_issuer;
    bool adaptive;
};

static const struct engine_case cases[] = {
    {"fixed limit, 1 ring", 1, false, false},
    {"fixed limit, 2 rings", 2, false, false},
    {"fixed limit, single issuer", 1, true, false},
    {"controller, 1 ring", 1, false, true},
    {"controller, 2 rings", 2, false, true},
    {"controller, single issuer", 1, true, true},
};
#define CASE_COUNT (sizeof(cases) / sizeof(cases[0]))

static auraio_engine_t *engine_for(const struct engine_case *c)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = c->rings;
    o.queue_depth = 16;
    o.single_issuer = c->single_issuer;
    o.ring_select = AURAIO_SELECT_ROUND_ROBIN;
    o.disable_adaptive = !c->adaptive;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    return e;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* SQEs prepared in any ring and not yet handed to the kernel (white box: the internal header). */
static unsigned unentered_sqes(auraio_engine_t *e)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < e->ring_count; i++)
        n += auraio__uring_sq_pending(&e->rings[i].uring);
    return n;
}

/* A pipe holding @p bytes bytes, so a read of it completes as soon as it reaches the kernel. */
static void ready_pipe(int p[2], int bytes)
{
    assert_int_equal(pipe(p), 0);
    char data[8] = "abcdefgh";
    assert_true(bytes <= (int)sizeof(data));
    assert_int_equal(write(p[1], data, (size_t)bytes), bytes);
}

static void test_submit_reaches_poll_fd_without_flush(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < CASE_COUNT; ci++) {
        print_message("case: %s\n", cases[ci].name);
        auraio_engine_t *e = engine_for(&cases[ci]);
        int efd = auraio_get_poll_fd(e);
        int p[2];
        ready_pipe(p, 1);
        char b = 0;
        struct recorder rec;
        recorder_init(&rec);
        struct recorder_ctx c0 = {&rec, 0};
        assert_non_null(auraio_read(e, p[0], auraio_buf(&b), 1, 0, recorder_callback, &c0));
        /* No flush, poll or wait: the read's completion alone makes the poll fd readable... */
        struct pollfd pfd = {.fd = efd, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, POLL_BOUND_MS), 1);
        /* ...because the submit entered the kernel. */
        assert_int_equal(unentered_sqes(e), 0);
        assert_int_equal(auraio_poll(e), 1);
        assert_int_equal(atomic_load(&rec.results[0]), 1);
        assert_int_equal(b, 'a');
        auraio_destroy(e);
        recorder_assert_each_once(&rec, 1);
        close(p[0]);
        close(p[1]);
    }
}

/* A callback that submits one read of each pipe it is given (round-robin: one per ring). */
struct chain {
    auraio_engine_t *e;
    int fds[2];
    int nfds;
    char bufs[2];
    struct recorder *rec;
    struct recorder_ctx next[2];
    _Atomic int submitted;
};

static void chain_callback(auraio_request_t *req, ssize_t result, void *user_data)
{
    struct chain *c = user_data;
    (void)req;
    assert_int_equal(result, 1);
    recorder_callback(req, result, &(struct recorder_ctx){c->rec, 0});
    for (int i = 0; i < c->nfds; i++) {
        if (auraio_read(c->e, c->fds[i], auraio_buf(&c->bufs[i]), 1, 0, recorder_callback, &c->next[i]))
            atomic_fetch_add(&c->submitted, 1);
    }
}

static void test_callback_submit_reaches_poll_fd_without_flush(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < CASE_COUNT; ci++) {
        print_message("case: %s\n", cases[ci].name);
        auraio_engine_t *e = engine_for(&cases[ci]);
        int efd = auraio_get_poll_fd(e);
        int nfds = cases[ci].rings;
        /* Two rounds: with two rings the callback's two reads go to both rings (round-robin), in
         * one order in the first round and in the other in the second, so each ring is once the
         * one the callbacks used first. */
        for (int round = 0; round < 2; round++) {
            int first[2], p[2][2];
            ready_pipe(first, 1);
            struct recorder rec;
            recorder_init(&rec);
            struct chain c = {.e = e, .nfds = nfds, .rec = &rec};
            for (int i = 0; i < nfds; i++) {
                ready_pipe(p[i], 1);
                c.fds[i] = p[i][0];
                c.next[i] = (struct recorder_ctx){&rec, 1 + i};
            }
            char b;
            assert_non_null(auraio_read(e, first[0], auraio_buf(&b), 1, 0, chain_callback, &c));
            struct pollfd pfd = {.fd = efd, .events = POLLIN};
            assert_int_equal(poll(&pfd, 1, POLL_BOUND_MS), 1);
            assert_true(auraio_poll(e) >= 1);
            assert_int_equal(atomic_load(&c.submitted), nfds);
            /* The callbacks' batch has ended: what they submitted is in the kernel, every ring. */
            assert_int_equal(unentered_sqes(e), 0);
            /* And the poll fd wakes an embedding loop for those completions without another call
             * (unless this poll already delivered them all: later rings are reaped after). */
            if (atomic_load(&rec.total) < 1 + nfds)
                assert_int_equal(poll(&pfd, 1, POLL_BOUND_MS), 1);
            assert_int_equal(harness_wait_for(e, &rec.total, 1 + nfds, POLL_BOUND_MS), 0);
            for (int i = 0; i < nfds; i++)
                assert_int_equal(atomic_load(&rec.results[1 + i]), 1);
            recorder_assert_each_once(&rec, 1 + nfds);
            close(first[0]);
            close(first[1]);
            for (int i = 0; i < nfds; i++) {
                close(p[i][0]);
                close(p[i][1]);
            }
        }
        auraio_destroy(e);
    }
}

static void test_destroy_with_blocked_read_is_prompt(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < CASE_COUNT; ci++) {
        print_message("case: %s\n", cases[ci].name);
        auraio_engine_t *e = engine_for(&cases[ci]);
        int p[2];
        assert_int_equal(pipe(p), 0);
        char b;
        struct recorder rec;
        recorder_init(&rec);
        struct recorder_ctx c0 = {&rec, 0};
        auraio_request_t *r = auraio_read(e, p[0], auraio_buf(&b), 1, 0, recorder_callback, &c0);
        assert_non_null(r);
        /* In the kernel, blocked: nothing will complete it but a cancel. */
        assert_int_equal(auraio_flush(e) >= 0, 1);
        assert_int_equal(unentered_sqes(e), 0);
        assert_int_equal(auraio_request_pending(e, r), 1);
        uint64_t t0 = now_ms();
        auraio_destroy(e);
        uint64_t took = now_ms() - t0;
        print_message("destroy took %llu ms (bound %d ms)\n", (unsigned long long)took, DESTROY_BOUND_MS);
        assert_true(took < DESTROY_BOUND_MS);
        recorder_assert_each_once(&rec, 1);
        assert_int_equal(atomic_load(&rec.results[0]), -ECANCELED);
        close(p[0]);
        close(p[1]);
    }
}

/* A raised limit admits the backlog at the next reap; a submit before that reap must queue
 * behind the backlog, not overtake it into the kernel (white box: the request's state). */
static void test_submit_never_overtakes_backlog(void **state)
{
    (void)state;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    o.queue_depth = 8;
    o.initial_in_flight = 1;
    o.disable_adaptive = true;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    int p[2];
    assert_int_equal(pipe(p), 0);
    char bufs[3];
    struct recorder rec;
    recorder_init(&rec);
    struct recorder_ctx ctx[3] = {{&rec, 0}, {&rec, 1}, {&rec, 2}};
    auraio_request_t *r[3];
    for (int i = 0; i < 2; i++) {
        r[i] = auraio_read(e, p[0], auraio_buf(&bufs[i]), 1, 0, recorder_callback, &ctx[i]);
        assert_non_null(r[i]);
    }
    struct ring *ring = &e->rings[0];
    /* Without the controller every request is DEVICE_NONE's: its limit is the one that binds. */
    auraio__ring_set_class_limit(ring, DEVICE_NONE, 2);
    r[2] = auraio_read(e, p[0], auraio_buf(&bufs[2]), 1, 0, recorder_callback, &ctx[2]);
    assert_non_null(r[2]);
    uint64_t h1 = (uint64_t)(uintptr_t)r[1], h2 = (uint64_t)(uintptr_t)r[2];
    assert_int_equal(ring->reqs[handle_slot(h1)].state, REQ_BACKLOG);
    assert_int_equal(ring->reqs[handle_slot(h2)].state, REQ_BACKLOG);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 3);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_reaches_poll_fd_without_flush),
        cmocka_unit_test(test_callback_submit_reaches_poll_fd_without_flush),
        cmocka_unit_test(test_destroy_with_blocked_read_is_prompt),
        cmocka_unit_test(test_submit_never_overtakes_backlog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
