/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lifetime metrics (auraio_get_metrics): exact counts by op kind and error class, per ring and
 * summed; and, while the controller swaps its windows every few milliseconds, every latency
 * sample counted exactly once, with snapshots taken concurrently never going backwards.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "controller.h"
#include "harness.h"
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define BLOCK 4096
#define NBLOCKS 64

static auraio_engine_t *make(int rings, auraio_ring_select_t sel, bool fixed, int limit)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = rings;
    o.queue_depth = 128;
    o.ring_select = sel;
    o.disable_adaptive = fixed;
    o.initial_in_flight = limit;
    return auraio_create_with_options(&o);
}

static uint64_t bucket_sum(const auraio_metrics_t *m)
{
    uint64_t n = m->latency_overflow;
    for (int b = 0; b < AURAIO_HISTOGRAM_BUCKETS; b++)
        n += m->latency_buckets[b];
    return n;
}

/* Reads (one past EOF, one on a closed fd), writes and fsyncs over two rings: each counted once in
 * its kind, bytes exact, the bad fd an error of class "other", and the rings add up to the total. */
static void test_counts_by_kind(void **state)
{
    (void)state;
    auraio_engine_t *e = make(2, AURAIO_SELECT_ROUND_ROBIN, false, 0);
    assert_non_null(e);
    int rfd = harness_pattern_file(BLOCK * NBLOCKS, 3);
    int wfd = harness_temp_file(0);
    assert_true(rfd >= 0 && wfd >= 0);
    int closed = dup(rfd);
    assert_true(closed >= 0);
    close(closed);
    static unsigned char bufs[NBLOCKS + 2][BLOCK];
    struct recorder rec;
    struct recorder_ctx ctx[NBLOCKS + 32];
    recorder_init(&rec);
    int n = 0;
    for (int i = 0; i < NBLOCKS; i++, n++) {
        ctx[n] = (struct recorder_ctx){&rec, n};
        assert_non_null(auraio_read(e, rfd, auraio_buf(bufs[i]), BLOCK, (int64_t)i * BLOCK, recorder_callback, &ctx[n]));
    }
    ctx[n] = (struct recorder_ctx){&rec, n};
    assert_non_null(auraio_read(e, rfd, auraio_buf(bufs[NBLOCKS]), BLOCK, (int64_t)NBLOCKS * BLOCK, recorder_callback,
                                &ctx[n++])); /* at EOF: 0 bytes, not an error */
    ctx[n] = (struct recorder_ctx){&rec, n};
    assert_non_null(auraio_read(e, closed, auraio_buf(bufs[NBLOCKS + 1]), BLOCK, 0, recorder_callback, &ctx[n++]));
    for (int i = 0; i < 10; i++, n++) {
        ctx[n] = (struct recorder_ctx){&rec, n};
        assert_non_null(auraio_write(e, wfd, auraio_buf(bufs[i]), BLOCK, (int64_t)i * BLOCK, recorder_callback, &ctx[n]));
    }
    assert_int_equal(harness_wait_for(e, &rec.total, n, 5000), 0);
    for (int i = 0; i < 3; i++, n++) {
        ctx[n] = (struct recorder_ctx){&rec, n};
        assert_non_null(auraio_fsync(e, wfd, 0, recorder_callback, &ctx[n]));
    }
    /* Timers are not operations: counted nowhere (the rings count them under their own op and the
     * readers leave that op out). */
    const int timers = 2, first_timer = n;
    for (int i = 0; i < timers; i++, n++) {
        ctx[n] = (struct recorder_ctx){&rec, n};
        assert_non_null(auraio_timeout(e, 1000, recorder_callback, &ctx[n]));
    }
    assert_int_equal(harness_wait_for(e, &rec.total, n, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[NBLOCKS + 1]), -EBADF);
    for (int i = 0; i < timers; i++)
        assert_int_equal(atomic_load(&rec.results[first_timer + i]), 0);

    auraio_metrics_t all, r0, r1;
    assert_int_equal(auraio_get_metrics(e, AURAIO_ALL_RINGS, &all), 0);
    assert_int_equal(all.ops[AURAIO_OP_KIND_READ], NBLOCKS + 2);
    assert_int_equal(all.bytes[AURAIO_OP_KIND_READ], (uint64_t)NBLOCKS * BLOCK);
    assert_int_equal(all.errors[AURAIO_OP_KIND_READ][AURAIO_ERR_CLASS_OTHER], 1);
    assert_int_equal(all.errors[AURAIO_OP_KIND_READ][AURAIO_ERR_CLASS_CANCELED], 0);
    assert_int_equal(all.ops[AURAIO_OP_KIND_WRITE], 10);
    assert_int_equal(all.bytes[AURAIO_OP_KIND_WRITE], 10 * BLOCK);
    assert_int_equal(all.ops[AURAIO_OP_KIND_FSYNC], 3);
    assert_int_equal(all.bytes[AURAIO_OP_KIND_FSYNC], 0);
    assert_int_equal(all.ops[AURAIO_OP_KIND_OTHER], 0);
    /* Reads and writes that reached the kernel are latency samples; fsyncs are not. */
    assert_int_equal(all.latency_count, NBLOCKS + 2 + 10);
    assert_int_equal(bucket_sum(&all), all.latency_count);
    assert_true(all.latency_sum_ns > 0);
    assert_int_equal(all.in_flight, 0);
    assert_int_equal(all.backlog_length, 0);
    assert_int_equal(all.queue_depth, 256);

    assert_int_equal(auraio_get_metrics(e, 0, &r0), 0);
    assert_int_equal(auraio_get_metrics(e, 1, &r1), 0);
    for (int k = 0; k < AURAIO_OP_KIND_COUNT; k++) {
        assert_int_equal(r0.ops[k] + r1.ops[k], all.ops[k]);
        assert_int_equal(r0.bytes[k] + r1.bytes[k], all.bytes[k]);
    }
    assert_true(r0.ops[AURAIO_OP_KIND_READ] > 0 && r1.ops[AURAIO_OP_KIND_READ] > 0); /* round robin */
    assert_int_equal(r0.latency_count + r1.latency_count, all.latency_count);
    assert_int_equal(r0.latency_sum_ns + r1.latency_sum_ns, all.latency_sum_ns);
    assert_int_equal(r0.queue_depth, 128);

    /* The legacy stats agree with the lifetime counters. */
    auraio_stats_t st;
    assert_int_equal(auraio_get_stats(e, &st), 0);
    assert_int_equal(st.ops_completed, (uint64_t)(n - timers));
    assert_int_equal(st.bytes_transferred, (uint64_t)(NBLOCKS + 10) * BLOCK);

    assert_int_equal(auraio_get_metrics(NULL, 0, &all), -EINVAL);
    assert_int_equal(auraio_get_metrics(e, 0, NULL), -EINVAL);
    assert_int_equal(auraio_get_metrics(e, 2, &all), -ERANGE);
    assert_int_equal(auraio_get_metrics(e, -2, &all), -ERANGE);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, n);
    close(rfd);
    close(wfd);
}

/* Cancellations: one in the kernel (a latency sample), one still in the backlog (not a sample:
 * it never reached the kernel), both of class "canceled"; the backlog entry counted at the limit. */
static void test_cancel_classes(void **state)
{
    (void)state;
    auraio_engine_t *e = make(1, AURAIO_SELECT_ADAPTIVE, true, 1);
    assert_non_null(e);
    int p[2];
    assert_int_equal(pipe(p), 0);
    char b1[1], b2[1];
    struct recorder rec;
    struct recorder_ctx c1 = {&rec, 0}, c2 = {&rec, 1};
    recorder_init(&rec);
    auraio_request_t *q1 = auraio_read(e, p[0], auraio_buf(b1), 1, 0, recorder_callback, &c1);
    auraio_request_t *q2 = auraio_read(e, p[0], auraio_buf(b2), 1, 0, recorder_callback, &c2);
    assert_non_null(q1);
    assert_non_null(q2);
    auraio_metrics_t m;
    assert_int_equal(auraio_get_metrics(e, 0, &m), 0);
    assert_int_equal(m.in_flight, 1);
    assert_int_equal(m.backlog_length, 1);
    assert_int_equal(m.in_flight_limit, 1);
    assert_int_equal(m.submissions_at_limit, 1);
    assert_int_equal(m.phase, AURAIO_CTL_PHASE_FIXED);
    assert_int_equal(auraio_cancel(e, q2), 0);
    assert_int_equal(auraio_cancel(e, q1), 0);
    assert_int_equal(harness_wait_for(e, &rec.total, 2, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[0]), -ECANCELED);
    assert_int_equal(atomic_load(&rec.results[1]), -ECANCELED);
    assert_int_equal(auraio_get_metrics(e, AURAIO_ALL_RINGS, &m), 0);
    assert_int_equal(m.ops[AURAIO_OP_KIND_READ], 2);
    assert_int_equal(m.errors[AURAIO_OP_KIND_READ][AURAIO_ERR_CLASS_CANCELED], 2);
    assert_int_equal(m.errors[AURAIO_OP_KIND_READ][AURAIO_ERR_CLASS_OTHER], 0);
    assert_int_equal(m.bytes[AURAIO_OP_KIND_READ], 0);
    assert_int_equal(m.latency_count, 1);
    assert_int_equal(m.in_flight + m.backlog_length, 0);
    auraio_destroy(e);
    close(p[0]);
    close(p[1]);
}

static void test_error_classes(void **state)
{
    (void)state;
    assert_int_equal(auraio__metrics_err_class(-ECANCELED), AURAIO_ERR_CLASS_CANCELED);
    assert_int_equal(auraio__metrics_err_class(-ETIME), AURAIO_ERR_CLASS_TIMEDOUT);
    assert_int_equal(auraio__metrics_err_class(-ETIMEDOUT), AURAIO_ERR_CLASS_TIMEDOUT);
    assert_int_equal(auraio__metrics_err_class(-EIO), AURAIO_ERR_CLASS_OTHER);
    assert_int_equal(auraio__metrics_op_kind(REQ_READV), AURAIO_OP_KIND_READ);
    assert_int_equal(auraio__metrics_op_kind(REQ_WRITEV), AURAIO_OP_KIND_WRITE);
    assert_int_equal(auraio__metrics_op_kind(REQ_FSYNC), AURAIO_OP_KIND_FSYNC);
    assert_int_equal(auraio__metrics_op_kind(REQ_OP_COUNT), AURAIO_OP_KIND_OTHER);
}

/* Folding keeps the exact latency sum, not a bucket estimate. */
static void test_fold_is_exact(void **state)
{
    (void)state;
    static struct ring_lifetime l;
    static struct ctl_acc a;
    memset(&l, 0, sizeof(l));
    auraio__ctl_acc_reset(&a);
    const uint64_t lat[] = {1, 999, 1001, 123457, 98765432, (uint64_t)1 << 36};
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof(lat) / sizeof(lat[0]); i++) {
        auraio__ctl_acc_record(&a, lat[i], 0);
        sum += lat[i];
    }
    auraio__metrics_fold(&l, &a);
    auraio__metrics_fold(&l, &a); /* twice: a window folded twice counts twice, as it should */
    assert_int_equal(l.folded_lat_sum_ns, 2 * sum);
    assert_int_equal(l.folded.total, 12);
    assert_int_equal(l.folded.overflow, 2);
}

/* ---- concurrency: the controller's window swaps against concurrent snapshots ---- */

struct watcher {
    auraio_engine_t *e;
    _Atomic bool stop;
    _Atomic int snapshots;
    _Atomic int violations;
    char what[128];
};

static void *watch(void *arg)
{
    struct watcher *w = arg;
    static auraio_metrics_t prev, cur;
    memset(&prev, 0, sizeof(prev));
    while (!atomic_load(&w->stop)) {
        if (auraio_get_metrics(w->e, AURAIO_ALL_RINGS, &cur) != 0) {
            snprintf(w->what, sizeof(w->what), "get_metrics failed");
            atomic_fetch_add(&w->violations, 1);
            break;
        }
        const char *bad = NULL;
        if (cur.latency_count < prev.latency_count)
            bad = "latency_count went backwards";
        else if (cur.latency_sum_ns < prev.latency_sum_ns)
            bad = "latency_sum went backwards";
        else if (cur.ops[AURAIO_OP_KIND_READ] < prev.ops[AURAIO_OP_KIND_READ])
            bad = "ops went backwards";
        else if (bucket_sum(&cur) != cur.latency_count)
            bad = "buckets disagree with the count";
        /* A read's sample and its op count are both taken in one hold of the ring's lock, and
         * the snapshot reads them in one hold too: with only reads running they must agree. */
        else if (cur.latency_count != cur.ops[AURAIO_OP_KIND_READ])
            bad = "latency samples and reads disagree";
        for (int b = 0; !bad && b < AURAIO_HISTOGRAM_BUCKETS; b++) {
            if (cur.latency_buckets[b] < prev.latency_buckets[b])
                bad = "a bucket went backwards";
        }
        if (bad) {
            snprintf(w->what, sizeof(w->what), "%s", bad);
            atomic_fetch_add(&w->violations, 1);
            break;
        }
        prev = cur;
        atomic_fetch_add(&w->snapshots, 1);
    }
    return NULL;
}

struct loop {
    auraio_engine_t *e;
    int fd;
    long target;
    _Atomic long done;
    long submitted;
    unsigned char (*bufs)[BLOCK];
};

static void on_read(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct loop *l = ud;
    if (res == BLOCK)
        atomic_fetch_add(&l->done, 1);
    else
        atomic_fetch_add(&l->done, 1000000000L); /* fails the exact-count asserts loudly */
    if (l->submitted < l->target) {
        long i = l->submitted++;
        if (!auraio_read(l->e, l->fd, auraio_buf(l->bufs[i % 64]), BLOCK, (int64_t)(i % NBLOCKS) * BLOCK, on_read, l))
            l->submitted--;
    }
}

static void test_exact_across_window_swaps(void **state)
{
    (void)state;
    auraio_engine_t *e = make(2, AURAIO_SELECT_ROUND_ROBIN, false, 0);
    assert_non_null(e);
    static unsigned char bufs[64][BLOCK];
    struct loop l = {.e = e, .fd = harness_pattern_file(BLOCK * NBLOCKS, 5), .target = 200000, .bufs = bufs};
    assert_true(l.fd >= 0);
    struct watcher w = {.e = e};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, watch, &w), 0);
    for (int i = 0; i < 32; i++) {
        long k = l.submitted++;
        assert_non_null(auraio_read(e, l.fd, auraio_buf(bufs[k]), BLOCK, (int64_t)k * BLOCK, on_read, &l));
    }
    /* Bounded: 200000 cached reads take well under a second; 30 s means something is stuck. */
    for (int spins = 0; auraio_pending_count(e) > 0 && spins < 300000; spins++)
        assert_true(auraio_wait(e, 100) >= 0);
    atomic_store(&w.stop, true);
    pthread_join(t, NULL);
    assert_int_equal(auraio_pending_count(e), 0);
    if (atomic_load(&w.violations))
        fail_msg("concurrent snapshot: %s", w.what);
    assert_true(atomic_load(&w.snapshots) >= 2);
    auraio_metrics_t m;
    assert_int_equal(auraio_get_metrics(e, AURAIO_ALL_RINGS, &m), 0);
    assert_int_equal(atomic_load(&l.done), l.submitted);
    /* Every read, once: in the counters and in the histogram, across many window swaps. */
    assert_int_equal(m.ops[AURAIO_OP_KIND_READ], (uint64_t)l.submitted);
    assert_int_equal(m.latency_count, (uint64_t)l.submitted);
    assert_int_equal(bucket_sum(&m), (uint64_t)l.submitted);
    /* The controller did swap windows meanwhile (its last window holds samples). */
    auraio_histogram_t h;
    assert_int_equal(auraio_get_histogram(e, 0, &h), 0);
    assert_true(h.total_count > 0 && h.total_count < (uint64_t)l.submitted);
    print_message("%ld reads, %d concurrent snapshots\n", l.submitted, atomic_load(&w.snapshots));
    auraio_destroy(e);
    close(l.fd);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_classes),
        cmocka_unit_test(test_fold_is_exact),
        cmocka_unit_test(test_counts_by_kind),
        cmocka_unit_test(test_cancel_classes),
        cmocka_unit_test(test_exact_across_window_swaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
