/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The controller's per-ring outputs, exact values by hand: how the group depth is split into
 * per-ring limits (rounded, at least 1, at most the ring's queue depth), each ring's batch
 * threshold (an eighth of its limit, 1..32), and the stats window's P50, P99, throughput and
 * histogram. The engine hands these to every ring and to auraio_get_ring_stats; a search scenario
 * only sees them through scores, so an off-by-one here passes every scenario.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller.h"

#define T0 1000000000ull
/* The stats window closes after 100 ms (CTL_STATS_NS in lib/controller.c) once its P99 is reliable. */
#define STATS_NS 100000000ull

static struct ctl_group *group(uint32_t rings, uint32_t ring_max, uint32_t w_init, uint32_t w_max)
{
    struct ctl_group *g = NULL;
    struct ctl_config cfg = {.ring_count = rings, .w_max = w_max, .w_init = w_init, .ring_max = ring_max, .seed = 1};
    assert_int_equal(auraio__ctl_group_init(&g, &cfg, T0), 0);
    return g;
}

static void test_split_rounds_and_bounds(void **state)
{
    (void)state;
    /* Depth 5 over two idle rings: 2.5 each, rounded to 3 (the sum may exceed the depth). */
    struct ctl_group *g = group(2, 256, 5, 0);
    assert_int_equal(auraio__ctl_group_depth(g), 5);
    assert_int_equal(auraio__ctl_ring_limit(g, 0), 3);
    assert_int_equal(auraio__ctl_ring_limit(g, 1), 3);
    auraio__ctl_group_destroy(g);
    /* Depth 1 over four rings: 0.25 each, but every ring keeps 1 so its first I/O shows demand. */
    g = group(4, 256, 1, 0);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(auraio__ctl_ring_limit(g, i), 1);
    auraio__ctl_group_destroy(g);
    /* A group depth above one ring's queue depth: the ring gets its queue depth. */
    g = group(1, 16, 100, 1000);
    assert_int_equal(auraio__ctl_group_depth(g), 100);
    assert_int_equal(auraio__ctl_ring_limit(g, 0), 16);
    auraio__ctl_group_destroy(g);
}

static void test_batch_is_an_eighth_of_the_limit(void **state)
{
    (void)state;
    static const struct {
        uint32_t limit, batch;
    } cases[] = {{4, 1}, {7, 1}, {8, 1}, {16, 2}, {128, 16}, {255, 31}, {256, 32}, {1024, 32}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctl_group *g = group(1, 4096, cases[i].limit, 0);
        assert_int_equal(auraio__ctl_ring_limit(g, 0), cases[i].limit);
        assert_int_equal(auraio__ctl_ring_batch(g, 0), cases[i].batch);
        struct ctl_ring_stats st;
        auraio__ctl_ring_stats(g, 0, &st);
        assert_int_equal(st.batch, cases[i].batch);
        assert_int_equal(st.limit, cases[i].limit);
        auraio__ctl_group_destroy(g);
    }
}

/* One window of 190 reads of 1 us and 10 of 1 ms, 4 KiB each, closed after exactly 100 ms. */
static void test_stats_window_exact(void **state)
{
    (void)state;
    struct ctl_group *g = group(1, 256, 4, 0);
    struct ctl_acc *a = calloc(1, sizeof(*a));
    for (int i = 0; i < 190; i++)
        auraio__ctl_acc_record(a, 1000, 4096);
    for (int i = 0; i < 10; i++)
        auraio__ctl_acc_record(a, 1000000, 4096);
    struct ctl_ring_input in[1] = {{a, 0, 0}};
    auraio__ctl_group_update(g, in, T0 + STATS_NS);
    struct ctl_ring_stats st;
    auraio__ctl_ring_stats(g, 0, &st);
    /* Nearest rank: P50 is sample 100 (1 us, bucket midpoint 1008 ns), P99 is sample 198 (1 ms,
     * midpoint 999424 ns; see test_histogram.c); 200 x 4096 B over 0.1 s. */
    assert_int_equal(st.p50_ns, 1008);
    assert_int_equal(st.p99_ns, 999424);
    assert_true(st.throughput_bps == 200.0 * 4096 / 0.1);
    const struct histogram *h = auraio__ctl_ring_histogram(g, 0);
    assert_non_null(h);
    assert_int_equal(h->total, 200);
    assert_int_equal(h->buckets[auraio__histogram_bucket(1000)], 190);
    assert_int_equal(h->buckets[auraio__histogram_bucket(1000000)], 10);
    assert_null(auraio__ctl_ring_histogram(g, 1));
    free(a);
    auraio__ctl_group_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_rounds_and_bounds),
        cmocka_unit_test(test_batch_is_an_eighth_of_the_limit),
        cmocka_unit_test(test_stats_window_exact),
    };
    return cmocka_run_group_tests_name("controller-rings", tests, NULL, NULL);
}
