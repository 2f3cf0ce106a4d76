/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CQ budget (lib/ring.c): every slot in flight, every one cancelled, so the CQ is exactly full
 * (one CQE for each request and one for each cancel), and then a wake NOP is asked for. It must be
 * refused: a CQ that overflows is a kernel-side list and an EBUSY on the next submit. Run with a
 * power-of-two depth (the CQ has exactly 2 * depth entries) and a depth the kernel rounds up.
 * Reaches into the ring through the internal headers: the public API cannot see the CQ.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "engine.h"
#include "harness.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void fill_cq(int depth)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    o.queue_depth = depth;
    o.disable_adaptive = true;
    o.initial_in_flight = depth;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    struct ring *r = &e->rings[0];
    int p[2];
    assert_int_equal(pipe(p), 0);
    char buf[64];
    struct recorder rec;
    struct recorder_ctx c[64];
    auraio_request_t *req[64];
    recorder_init(&rec);
    for (int i = 0; i < depth; i++) {
        c[i] = (struct recorder_ctx){&rec, i};
        req[i] = auraio_read(e, p[0], auraio_buf(&buf[i]), 1, 0, recorder_callback, &c[i]);
        assert_non_null(req[i]);
    }
    for (int i = 0; i < depth; i++)
        assert_int_equal(auraio_cancel(e, req[i]), 0);
    /* Nothing reaped yet: 2 * depth CQEs are posted or about to be. */
    auraio__ring_wake(r);
    assert_int_equal(uring_load_relaxed(r->uring.ksq_flags) & IORING_SQ_CQ_OVERFLOW, 0);
    assert_true(auraio__uring_cq_ready(&r->uring) <= r->uring.cq_entries);
    assert_int_equal(harness_wait_for(e, &rec.total, depth, 5000), 0);
    for (int i = 0; i < depth; i++)
        assert_int_equal(atomic_load(&rec.results[i]), -ECANCELED);
    assert_int_equal(uring_load_relaxed(r->uring.ksq_flags) & IORING_SQ_CQ_OVERFLOW, 0);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, depth);
    close(p[0]);
    close(p[1]);
}

static void test_full_cq_power_of_two_depth(void **state)
{
    (void)state;
    fill_cq(4);
    fill_cq(32);
}

static void test_full_cq_rounded_depth(void **state)
{
    (void)state;
    fill_cq(5);
    fill_cq(33);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_cq_power_of_two_depth),
        cmocka_unit_test(test_full_cq_rounded_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
