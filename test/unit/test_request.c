/* SPDX-License-Identifier: Apache-2.0 */
/* Request handles: slot, ring and generation round-trip; generations never produce a NULL handle
 * and a retired slot's old handle no longer matches. */
#include "request.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void test_handle_round_trip(void **state)
{
    (void)state;
    uint64_t h = request_make_handle(0x1234, 0x7fff, 0xabcdef);
    assert_int_equal(handle_generation(h), 0xabcdef);
    assert_int_equal(handle_ring(h), 0x1234);
    assert_int_equal(handle_slot(h), 0x7fff);
    assert_true(request_make_handle(0, 0, 1) != 0);
}

static void test_generation_wraps_past_zero(void **state)
{
    (void)state;
    struct request r = {.slot = 5, .state = REQ_INFLIGHT, .cancel_issued = true, .quick = true};
    r.handle = request_make_handle(2, 5, REQUEST_GENERATION_MASK);
    uint64_t old = r.handle;
    request_retire(&r);
    assert_int_equal(handle_generation(r.handle), 1); /* 0 is skipped: handle 0 marks library-internal SQEs */
    assert_false(r.quick);
    assert_int_equal(r.state, REQ_FREE);
    assert_false(r.cancel_issued);
    /* The cached handle follows the generation and keeps the ring and the slot. */
    assert_true(r.handle == request_make_handle(2, 5, 1));
    assert_true(r.handle != old);
    assert_int_equal(handle_slot(r.handle), handle_slot(old));
    assert_int_equal(handle_ring(r.handle), 2);
}

/* Below the mask a retire adds one to the generation and nothing else. */
static void test_generation_steps_by_one(void **state)
{
    (void)state;
    struct request r = {.slot = 0xfffe};
    r.handle = request_make_handle(0xffff, 0xfffe, 7);
    request_retire(&r);
    assert_true(r.handle == request_make_handle(0xffff, 0xfffe, 8));
    r.handle = request_make_handle(1, 3, REQUEST_GENERATION_MASK - 1);
    request_retire(&r);
    assert_true(r.handle == request_make_handle(1, 3, REQUEST_GENERATION_MASK));
    assert_int_equal(r.handle & USER_DATA_OWN_BITS, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handle_round_trip),
        cmocka_unit_test(test_generation_wraps_past_zero),
        cmocka_unit_test(test_generation_steps_by_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
