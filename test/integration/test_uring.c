/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The raw ring layer on its own: mapping, wraparound far past the ring size, the full-ring rule
 * (tail - head == entries), batched reaping, the opcode probe and flag fallback results.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"
#include "uring.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

static void test_nop_wraparound(void **state)
{
    (void)state;
    struct uring u;
    assert_int_equal(auraio__uring_init(&u, 8, 0, 0), 0);
    assert_int_equal(u.sq_entries, 8);
    assert_true(u.cq_entries >= 16);
    /* 10x+ the ring size, in uneven batches so head/tail wrap at every offset. */
    uint64_t next_id = 1, expect_id = 1;
    unsigned total = 0;
    for (unsigned round = 0; total < 8 * 40; round++) {
        unsigned batch = 1 + round % 8;
        for (unsigned i = 0; i < batch; i++) {
            struct io_uring_sqe *sqe = auraio__uring_get_sqe(&u);
            assert_non_null(sqe);
            auraio__uring_prep_nop(sqe, next_id++);
        }
        assert_int_equal(auraio__uring_submit(&u, batch), (int)batch);
        struct uring_cqe cqes[8];
        unsigned got = 0;
        while (got < batch) {
            unsigned n = auraio__uring_reap(&u, cqes, 3); /* small reap batches wrap the CQ too */
            for (unsigned i = 0; i < n; i++) {
                assert_int_equal(cqes[i].res, 0);
                assert_int_equal(cqes[i].user_data, expect_id++);
            }
            got += n;
            if (n == 0)
                assert_true(auraio__uring_submit(&u, 1) >= 0);
        }
        total += batch;
    }
    assert_int_equal(auraio__uring_cq_ready(&u), 0);
    assert_int_equal(auraio__uring_sq_pending(&u), 0);
    auraio__uring_exit(&u);
}

static void test_ring_full(void **state)
{
    (void)state;
    struct uring u;
    assert_int_equal(auraio__uring_init(&u, 4, 0, 0), 0);
    for (int i = 0; i < 4; i++) {
        struct io_uring_sqe *sqe = auraio__uring_get_sqe(&u);
        assert_non_null(sqe);
        auraio__uring_prep_nop(sqe, (uint64_t)i + 1);
    }
    /* Full means tail - head == entries: all 4 slots usable, the 5th refused. */
    assert_null(auraio__uring_get_sqe(&u));
    assert_int_equal(auraio__uring_sq_pending(&u), 4);
    assert_int_equal(auraio__uring_submit(&u, 4), 4);
    assert_non_null(auraio__uring_get_sqe(&u)); /* room again once the kernel consumed them */
    auraio__uring_prep_nop(&u.sqes[(u.sqe_tail - 1) & u.sq_mask], 99);
    assert_int_equal(auraio__uring_submit(&u, 1), 1);
    struct uring_cqe c[8];
    assert_int_equal(auraio__uring_reap(&u, c, 8), 5);
    auraio__uring_exit(&u);
}

static void test_probe(void **state)
{
    (void)state;
    struct uring u;
    assert_int_equal(auraio__uring_init(&u, 4, 0, 0), 0);
    assert_true(u.probed);
    assert_false(auraio__uring_op_missing(&u, IORING_OP_NOP));
    assert_false(auraio__uring_op_missing(&u, IORING_OP_READ));
    assert_false(auraio__uring_op_missing(&u, IORING_OP_ASYNC_CANCEL));
    /* An opcode number no kernel has. */
    assert_true(auraio__uring_op_missing(&u, 250));
    auraio__uring_exit(&u);
}

static void test_flags_granted(void **state)
{
    (void)state;
    struct uring u;
    unsigned want = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN |
                    IORING_SETUP_TASKRUN_FLAG;
    assert_int_equal(auraio__uring_init(&u, 4, want, 0), 0);
    /* Whatever was dropped was dropped as a group: never COOP without DEFER. */
    if (u.flags & IORING_SETUP_COOP_TASKRUN)
        assert_true(u.flags & IORING_SETUP_DEFER_TASKRUN);
    print_message("granted flags 0x%x features 0x%x\n", u.flags, u.features);
    auraio__uring_exit(&u);
    /* An unknown flag bit alone is refused and falls through every group to the kernel's EINVAL. */
    assert_int_equal(auraio__uring_init(&u, 4, 1u << 30, 0), -EINVAL);
    assert_int_equal(u.fd, -1);
}

static void test_eventfd_registration(void **state)
{
    (void)state;
    struct uring u;
    assert_int_equal(auraio__uring_init(&u, 4, 0, 0), 0);
    int efd = eventfd(0, EFD_CLOEXEC);
    assert_true(efd >= 0);
    assert_int_equal(auraio__uring_register_eventfd(&u, efd), 0);
    assert_int_equal(auraio__uring_register_eventfd(&u, efd), -EBUSY);
    struct io_uring_sqe *sqe = auraio__uring_get_sqe(&u);
    auraio__uring_prep_nop(sqe, 1);
    assert_int_equal(auraio__uring_submit(&u, 1), 1);
    uint64_t v = 0;
    assert_int_equal(read(efd, &v, sizeof(v)), (ssize_t)sizeof(v));
    assert_true(v >= 1);
    assert_int_equal(auraio__uring_unregister_eventfd(&u), 0);
    auraio__uring_exit(&u);
    close(efd);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nop_wraparound),
        cmocka_unit_test(test_ring_full),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_flags_granted),
        cmocka_unit_test(test_eventfd_registration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
