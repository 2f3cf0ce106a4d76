/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What real I/O in a test cannot produce, put into the engine by hand (white box), checked where
 * the exports show it: a sample that overflowed the histogram (34 s or more) and two rings whose
 * windows have different P99s. auraio_get_metrics must count the overflow and report the worst
 * ring's P50/P99 for all rings; the Prometheus document must count the overflow in its +Inf
 * bucket (the checker requires +Inf == _count). Found by test/mutate (issue 17): both were
 * dropped by mutants that every other test passed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "expo_check.h"
#include "harness.h"

#include "clock.h"
#include "controller.h"
#include "engine.h"
#include "metrics.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Bucket midpoints of 1 us and 1 ms (see test/controller/test_histogram.c). */
#define MID_1US 1008u
#define MID_1MS 999424u

static struct expo doc_parsed;

static void test_overflow_and_worst_ring_reach_the_exports(void **state)
{
    (void)state;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 2;
    o.queue_depth = 16;
    o.ring_select = AURAIO_SELECT_ROUND_ROBIN;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    /* A device to put windows into: the groups are per device (issue #16), made at first use. */
    char path[] = "metrics_edges_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    uint32_t k = auraio__engine_device_resolve(e, fd);
    assert_int_equal(k, 1);
    struct ctl_group *g = e->dev[k].ctl;
    assert_non_null(g);

    /* One tick's windows as the engine hands them over, 200 ms on: ring 0 all 1 us, ring 1 with
     * 5% at 1 ms (its nearest-rank P99 is 1 ms). And one 34 s sample in ring 1's lifetime. */
    struct ctl_acc *acc = calloc(2, sizeof(*acc));
    assert_non_null(acc);
    for (int i = 0; i < 200; i++)
        auraio__ctl_acc_record(&acc[0], 1000, 4096);
    for (int i = 0; i < 190; i++)
        auraio__ctl_acc_record(&acc[1], 1000, 4096);
    for (int i = 0; i < 10; i++)
        auraio__ctl_acc_record(&acc[1], 1000000, 4096);
    struct ctl_ring_input in[2] = {{&acc[0], 0, 0}, {&acc[1], 0, 0}};
    pthread_mutex_lock(&e->tick_lock);
    auraio__ctl_group_update(g, in, auraio__now_ns() + 200000000ull);
    auraio__histogram_record(&e->rings[1].life.folded, AURAIO_HIST_MAX_NS);
    e->rings[1].life.folded_lat_sum_ns += AURAIO_HIST_MAX_NS;
    pthread_mutex_unlock(&e->tick_lock);

    auraio_metrics_t m;
    assert_int_equal(auraio_get_metrics(e, 0, &m), 0);
    assert_int_equal(m.p50_ns, MID_1US);
    assert_int_equal(m.p99_ns, MID_1US);
    assert_int_equal(m.latency_overflow, 0);
    assert_int_equal(auraio_get_metrics(e, 1, &m), 0);
    assert_int_equal(m.p99_ns, MID_1MS);
    assert_int_equal(m.latency_count, 1);
    assert_int_equal(m.latency_overflow, 1);
    assert_int_equal(auraio_get_metrics(e, AURAIO_ALL_RINGS, &m), 0);
    assert_int_equal(m.p50_ns, MID_1US);
    assert_int_equal(m.p99_ns, MID_1MS); /* the worst ring's */
    assert_int_equal(m.latency_count, 1);
    assert_int_equal(m.latency_overflow, 1);

    int need = auraio_metrics_prometheus(e, NULL, 0);
    assert_true(need > 0);
    char *doc = malloc((size_t)need + 1);
    assert_non_null(doc);
    assert_int_equal(auraio_metrics_prometheus(e, doc, (size_t)need + 1), need);
    const char *err = expo_parse_check(doc, &doc_parsed);
    if (err)
        fail_msg("%s\n%s", err, doc);
    const char *inf = expo_value(&doc_parsed, "auraio_request_latency_seconds_bucket", "ring=\"1\",le=\"+Inf\"");
    assert_non_null(inf);
    assert_string_equal(inf, "1");
    free(doc);
    free(acc);
    auraio_destroy(e);
    close(fd);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overflow_and_worst_ring_reach_the_exports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
