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
    struct request r = {.generation = 0xabcdef, .slot = 0x7fff};
    uint64_t h = request_handle(0x1234, &r);
    assert_int_equal(handle_generation(h), 0xabcdef);
    assert_int_equal(handle_ring(h), 0x1234);
    assert_int_equal(handle_slot(h), 0x7fff);
    r.generation = 1;
    r.slot = 0;
    assert_true(request_handle(0, &r) != 0);
}

static void test_generation_wraps_past_zero(void **state)
{
    (void)state;
    struct request r = {.generation = UINT32_MAX, .slot = 5, .state = REQ_INFLIGHT, .cancel_issued = true};
    uint64_t old = request_handle(2, &r);
    request_retire(&r);
    assert_int_equal(r.generation, 1); /* 0 is skipped: handle 0 marks library-internal SQEs */
    assert_int_equal(r.state, REQ_FREE);
    assert_false(r.cancel_issued);
    assert_true(request_handle(2, &r) != old);
    assert_int_equal(handle_slot(request_handle(2, &r)), handle_slot(old));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handle_round_trip),
        cmocka_unit_test(test_generation_wraps_past_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
