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
    struct request r = {.state = REQ_INFLIGHT, .cancel_issued = true, .quick = true, .cqes_left = 1};
    r.handle = request_make_handle(2, 5, REQUEST_GENERATION_MASK);
    uint64_t old = r.handle;
    request_retire(&r);
    assert_int_equal(handle_generation(r.handle), 1); /* 0 is skipped: handle 0 marks library-internal SQEs */
    assert_false(r.quick);
    assert_int_equal(r.state, REQ_FREE);
    assert_false(r.cancel_issued);
    assert_int_equal(r.cqes_left, 0);
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
    struct request r = {.state = REQ_DONE};
    r.handle = request_make_handle(0xffff, 0xfffe, 7);
    request_retire(&r);
    assert_true(r.handle == request_make_handle(0xffff, 0xfffe, 8));
    r.handle = request_make_handle(1, 3, REQUEST_GENERATION_MASK - 1);
    request_retire(&r);
    assert_true(r.handle == request_make_handle(1, 3, REQUEST_GENERATION_MASK));
    assert_int_equal(r.handle & USER_DATA_OWN_BITS, 0);
}

/* A free slot's shape (request_reshape_free): what the plain submit leaves unwritten. */
static void test_free_shape(void **state)
{
    (void)state;
    struct request other;
    struct request r = {.args = {.callback = NULL, .fd = 7, .len = 4096, .offset = 8192}};
    request_reshape_free(&r);
    assert_true(request_free_shaped(&r));
    assert_int_equal(r.args.fd, 7); /* the plain prefix is left alone */
    assert_int_equal(r.args.len, 4096);
    assert_true(r.args.offset == 8192);
    /* Each part of the shape counts on its own. */
    r.args.fixed_file = 1;
    assert_false(request_free_shaped(&r));
    request_reshape_free(&r);
    r.args.timeout_ns = 1; /* the tail's last field */
    assert_false(request_free_shaped(&r));
    request_reshape_free(&r);
    r.chain_head = &other;
    assert_false(request_free_shaped(&r));
    request_reshape_free(&r);
    r.chain_next = &other;
    assert_false(request_free_shaped(&r));
    request_reshape_free(&r);
    r.chain_len = 2;
    assert_false(request_free_shaped(&r));
    request_reshape_free(&r);
    assert_true(request_free_shaped(&r));
    assert_true(r.chain_head == &r);
}

/* request_start_quick's four bytes, request_quick_inflight's one compare, request_retire undoing
 * both. */
static void test_start_quick(void **state)
{
    (void)state;
    struct request r = {.state = REQ_FREE};
    request_retire(&r);
    assert_false(request_quick_inflight(&r));
    request_start_quick(&r);
    assert_int_equal(r.state, REQ_INFLIGHT);
    assert_true(r.quick);
    assert_int_equal(r.cqes_left, 1);
    assert_false(r.cancel_issued);
    assert_false(r.split);
    assert_false(r.finish_slow);
    assert_true(request_quick_inflight(&r));
    r.state = REQ_DONE; /* failed locally: the quick path must not take it */
    assert_false(request_quick_inflight(&r));
    r.state = REQ_INFLIGHT;
    r.quick = false; /* in flight the general way */
    assert_false(request_quick_inflight(&r));
    r.quick = true;
    r.cancel_issued = true; /* the flag bits are no part of the compare */
    assert_true(request_quick_inflight(&r));
    request_retire(&r);
    assert_false(request_quick_inflight(&r));
    assert_int_equal(r.state, REQ_FREE);
    assert_false(r.quick);
    assert_false(r.cancel_issued);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handle_round_trip),
        cmocka_unit_test(test_generation_wraps_past_zero),
        cmocka_unit_test(test_generation_steps_by_one),
        cmocka_unit_test(test_free_shape),
        cmocka_unit_test(test_start_quick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
