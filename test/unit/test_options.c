/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Options and version, no kernel needed: defaults, every invalid field refused with EINVAL before
 * any ring is made, reserved bytes and struct_size checked, version macros match run time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "auraio.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"

static void test_defaults(void **state)
{
    (void)state;
    auraio_options_t o;
    memset(&o, 0xff, sizeof(o));
    auraio_options_init(&o);
    assert_int_equal(o.struct_size, sizeof(o));
    assert_int_equal(o.ring_count, 0);
    assert_int_equal(o.queue_depth, 0);
    assert_int_equal(o.ring_select, AURAIO_SELECT_ADAPTIVE);
    assert_false(o.disable_adaptive);
    assert_false(o.enable_sqpoll);
    for (size_t i = 0; i < sizeof(o.reserved); i++)
        assert_int_equal(o.reserved[i], 0);
    auraio_options_init(NULL); /* documented no-op */
}

#define EXPECT_EINVAL(mutate)                                                                         \
    do {                                                                                            \
        auraio_options_t o;                                                                         \
        auraio_options_init(&o);                                                                    \
        mutate;                                                                                     \
        errno = 0;                                                                                  \
        assert_null(auraio_create_with_options(&o));                                                \
        assert_int_equal(errno, EINVAL);                                                            \
    } while (0)

static void test_invalid_options(void **state)
{
    (void)state;
    errno = 0;
    assert_null(auraio_create_with_options(NULL));
    assert_int_equal(errno, EINVAL);
    EXPECT_EINVAL(o.struct_size = 0);
    EXPECT_EINVAL(o.struct_size = sizeof(o) + 8);
    EXPECT_EINVAL(o.reserved[63] = 1);
    EXPECT_EINVAL(o.ring_count = -1);
    EXPECT_EINVAL(o.ring_count = 5000);
    EXPECT_EINVAL(o.queue_depth = -1);
    EXPECT_EINVAL(o.queue_depth = 32769);
    EXPECT_EINVAL(o.max_in_flight = -1);
    EXPECT_EINVAL((o.queue_depth = 16, o.max_in_flight = 17));
    EXPECT_EINVAL(o.max_in_flight = 257); /* default queue depth is 256 */
    EXPECT_EINVAL(o.initial_in_flight = -3);
    EXPECT_EINVAL((o.max_in_flight = 8, o.initial_in_flight = 9));
    /* ...while every bound itself is a valid value. */
    auraio_options_t edge;
    auraio_options_init(&edge);
    edge.max_in_flight = 8;
    edge.initial_in_flight = 8;
    edge.ring_select = AURAIO_SELECT_THREAD_LOCAL;
    edge.queue_depth = 32768;
    edge.ring_count = 4096;
    assert_int_equal(auraio__options_validate(&edge), 0);
    EXPECT_EINVAL(o.max_p99_latency_ms = -0.5);
    EXPECT_EINVAL(o.max_p99_latency_ms = NAN);
    EXPECT_EINVAL(o.max_p99_latency_ms = INFINITY);
    EXPECT_EINVAL(o.ring_select = (auraio_ring_select_t)9);
    EXPECT_EINVAL(o.sqpoll_idle_ms = -1);
}

static void test_version(void **state)
{
    (void)state;
    assert_string_equal(auraio_version(), AURAIO_VERSION_STRING);
    assert_int_equal(auraio_version_int(), AURAIO_VERSION_INT);
    char expect[32];
    snprintf(expect, sizeof(expect), "%d.%d.%d", AURAIO_VERSION_MAJOR, AURAIO_VERSION_MINOR, AURAIO_VERSION_PATCH);
    assert_string_equal(auraio_version(), expect);
    assert_int_equal(AURAIO_VERSION_INT, AURAIO_VERSION_MAJOR * 10000 + AURAIO_VERSION_MINOR * 100 + AURAIO_VERSION_PATCH);
}

static void test_buffer_descriptors(void **state)
{
    (void)state;
    char x;
    auraio_buf_t b = auraio_buf(&x);
    assert_int_equal(b.type, AURAIO_BUF_UNREGISTERED);
    assert_ptr_equal(b.ptr, &x);
    auraio_buf_t f = auraio_buf_fixed(3, 4096);
    assert_int_equal(f.type, AURAIO_BUF_REGISTERED);
    assert_int_equal(f.index, 3);
    assert_int_equal(f.offset, 4096);
    assert_null(f.ptr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_invalid_options),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_buffer_descriptors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
