/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-device admission in a ring (issue #16), white box on the ring layer with pipe reads (they
 * stay in the kernel until the test writes), each tagged with a device class as the engine tags
 * them: a device at its limit queues only its own requests; another device's submissions go to
 * the kernel at once, past that backlog; DEVICE_NONE is held by nothing but its own limit; a
 * completion of the slow device admits its backlog in order; the ring's pending count and the
 * tick's per-class windows (in flight, pending) say the same. A request's latency sample (the
 * controller's signal) starts when it leaves the backlog for the kernel; the wait before is
 * counted apart, per class.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include "clock.h"
#include "ring.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define SLOW 1u /* a device held at limit 1 */
#define FAST 2u /* a device with room */
#define QD 16

static _Atomic int order[QD], finished;

static void cb(auraio_request_t *req, ssize_t result, void *ud)
{
    (void)req;
    assert_int_equal(result, 1);
    order[finished++] = (int)(intptr_t)ud;
}

static uint64_t submit(struct ring *r, int fd, unsigned device, int id)
{
    static char buf[QD];
    struct request_plain p = {.callback = cb,
                              .user_data = (void *)(intptr_t)id,
                              .addr = (uint64_t)(uintptr_t)&buf[id],
                              .len = 1,
                              .fd = fd,
                              .op = REQ_READ,
                              .device = (uint8_t)device,
                              .sqe_opcode = ring_plain_opcode(REQ_READ)};
    uint64_t h = auraio__ring_submit_plain(r, &p, SUBMIT_ENTER_NOW);
    assert_true(h != 0);
    return h;
}

static int state_of(struct ring *r, uint64_t h)
{
    return r->reqs[handle_slot(h)].state;
}

/* Reap until @p n callbacks in total have run (bounded). */
static void reap_until(struct ring *r, int n)
{
    struct completion c[QD];
    uint64_t end = auraio__now_ns() + 5000000000ull;
    while (finished < n) {
        assert_true(auraio__now_ns() < end);
        bool took;
        int got = auraio__ring_reap(r, c, QD, auraio__now_ns(), &took);
        assert_true(got >= 0);
        for (int i = 0; i < got; i++)
            c[i].callback((auraio_request_t *)(uintptr_t)c[i].handle, c[i].result, c[i].user_data);
        if (got == 0)
            (void)auraio__ring_wait(r, 10);
    }
}

/* A ring of QD slots, every one of them admissible (the class limits do the holding back);
 * skips where io_uring is unavailable. */
static void ring_open(struct ring *r)
{
    struct ring_config cfg = {.queue_depth = QD, .initial_limit = QD, .max_limit = QD, .batch_threshold = 1,
                              .event_fd = -1};
    int rc = auraio__ring_init(r, 0, &cfg);
    if (rc == -ENOSYS || rc == -EPERM)
        skip();
    assert_int_equal(rc, 0);
}

static void test_slow_device_never_holds_back_another(void **state)
{
    (void)state;
    struct ring r;
    ring_open(&r);
    auraio__ring_add_classes(&r, 3);
    auraio__ring_set_class_limit(&r, SLOW, 1);
    auraio__ring_set_class_limit(&r, FAST, 4);
    auraio__ring_set_class_limit(&r, DEVICE_NONE, 2);
    int ps[2], pf[2], pn[2];
    assert_int_equal(pipe(ps), 0);
    assert_int_equal(pipe(pf), 0);
    assert_int_equal(pipe(pn), 0);

    /* The slow device: one in the kernel, two in its backlog. */
    uint64_t s0 = submit(&r, ps[0], SLOW, 0), s1 = submit(&r, ps[0], SLOW, 1), s2 = submit(&r, ps[0], SLOW, 2);
    assert_int_equal(state_of(&r, s0), REQ_INFLIGHT);
    assert_int_equal(state_of(&r, s1), REQ_BACKLOG);
    assert_int_equal(state_of(&r, s2), REQ_BACKLOG);
    /* The fast device goes past that backlog, up to its own limit, then queues its own. */
    uint64_t f[5];
    for (int i = 0; i < 5; i++)
        f[i] = submit(&r, pf[0], FAST, 3 + i);
    for (int i = 0; i < 4; i++)
        assert_int_equal(state_of(&r, f[i]), REQ_INFLIGHT);
    assert_int_equal(state_of(&r, f[4]), REQ_BACKLOG);
    /* DEVICE_NONE: its own limit only. */
    uint64_t n0 = submit(&r, pn[0], DEVICE_NONE, 8), n1 = submit(&r, pn[0], DEVICE_NONE, 9);
    assert_int_equal(state_of(&r, n0), REQ_INFLIGHT);
    assert_int_equal(state_of(&r, n1), REQ_INFLIGHT);
    assert_int_equal(ring_pending(&r), 10);

    /* What the tick sees per class: in flight and pending (backlog included). */
    struct ctl_ring_input in[3];
    auraio__ring_take_windows(&r, in, 3, 1, NULL);
    assert_int_equal(in[SLOW].in_flight, 1);
    assert_int_equal(in[SLOW].pending, 3);
    assert_int_equal(in[FAST].in_flight, 4);
    assert_int_equal(in[FAST].pending, 5);
    assert_int_equal(in[DEVICE_NONE].in_flight, 2);
    for (int k = 0; k < 3; k++)
        auraio__ctl_acc_reset(in[k].acc);

    /* Fast completions first: the fast backlog drains, the slow one stays where it is. */
    assert_int_equal(write(pf[1], "fffff", 5), 5);
    reap_until(&r, 5);
    assert_int_equal(state_of(&r, s1), REQ_BACKLOG);
    /* One slow completion admits the next slow request, in order. */
    assert_int_equal(write(ps[1], "s", 1), 1);
    reap_until(&r, 6);
    assert_int_equal(order[5], 0);
    assert_int_equal(state_of(&r, s1), REQ_INFLIGHT);
    assert_int_equal(state_of(&r, s2), REQ_BACKLOG);
    assert_int_equal(write(ps[1], "ss", 2), 2);
    assert_int_equal(write(pn[1], "nn", 2), 2);
    reap_until(&r, 10);
    /* The slow device's requests completed in submission order. */
    int seen = 0;
    for (int i = 0; i < 10; i++) {
        if (order[i] <= 2)
            assert_int_equal(order[i], seen++);
    }
    assert_int_equal(seen, 3);
    assert_int_equal(ring_pending(&r), 0);
    assert_true(auraio__ring_idle(&r));
    auraio__ring_destroy(&r);
    for (int i = 0; i < 2; i++) {
        close(ps[i]);
        close(pf[i]);
        close(pn[i]);
    }
}

/* The wait a request spends in its device's backlog is the application's (it submitted more than
 * the depth), which no depth removes: it must not be in the device's latency sample, and is
 * reported as the class's backlog wait instead. */
#define HELD_NS 30000000ull /* how long the first request holds the device */

static void test_backlog_wait_is_not_the_device_latency(void **state)
{
    (void)state;
    struct ring r;
    ring_open(&r);
    auraio__ring_add_classes(&r, 2);
    auraio__ring_set_class_limit(&r, SLOW, 1);
    finished = 0;
    int pa[2], pb[2];
    assert_int_equal(pipe(pa), 0);
    assert_int_equal(pipe(pb), 0);
    /* The second request's data is there before it is even submitted: once in the kernel it
     * completes at once. Only the backlog holds it. */
    assert_int_equal(write(pb[1], "b", 1), 1);
    uint64_t t0 = auraio__now_ns();
    uint64_t a = submit(&r, pa[0], SLOW, 0), b = submit(&r, pb[0], SLOW, 1);
    assert_int_equal(state_of(&r, a), REQ_INFLIGHT);
    assert_int_equal(state_of(&r, b), REQ_BACKLOG);
    while (auraio__now_ns() - t0 < HELD_NS)
        (void)auraio__ring_wait(&r, 5); /* nothing completes: the first read has no data */
    assert_int_equal(finished, 0);
    assert_int_equal(write(pa[1], "a", 1), 1);
    reap_until(&r, 1);
    struct ctl_ring_input in[2];
    struct ring_class_wait w[2] = {{0}};
    auraio__ring_take_windows(&r, in, 2, 1, w);
    /* The first: held HELD_NS in the kernel, all of it the device's. */
    assert_int_equal(in[SLOW].acc->n, 1);
    assert_true(in[SLOW].acc->lat_sum_ns >= HELD_NS);
    /* The second left the backlog after as long: that is its wait, told apart. */
    assert_int_equal(w[SLOW].n, 1);
    assert_true(w[SLOW].ns >= HELD_NS);
    auraio__ctl_acc_reset(in[SLOW].acc);
    reap_until(&r, 2);
    memset(w, 0, sizeof(w));
    auraio__ring_take_windows(&r, in, 2, 1, w);
    /* Its sample is the kernel's part only: microseconds, far below the wait before it. */
    assert_int_equal(in[SLOW].acc->n, 1);
    assert_true(in[SLOW].acc->lat_sum_ns < HELD_NS / 3);
    assert_int_equal(w[SLOW].n, 0);
    for (int k = 0; k < 2; k++)
        auraio__ctl_acc_reset(in[k].acc);
    auraio__ring_destroy(&r);
    for (int i = 0; i < 2; i++) {
        close(pa[i]);
        close(pb[i]);
    }
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_device_never_holds_back_another),
        cmocka_unit_test(test_backlog_wait_is_not_the_device_latency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
