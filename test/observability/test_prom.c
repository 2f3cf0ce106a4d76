/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auraio_metrics_prometheus: the document passes the semantic checker (expo_check.c), its values
 * are exactly the engine's lifetime metrics (the `_sum` to the nanosecond, each `le` bucket the
 * exact count below its bound), counters never decrease across scrapes with I/O in between or
 * concurrent with it, and the buffer-too-small contract holds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "expo_check.h"
#include "harness.h"
#include "histogram.h"
#include "metrics_prom.h"

#include <errno.h>
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

static struct expo scrape_a, scrape_b;

static auraio_engine_t *make(int rings)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = rings;
    o.queue_depth = 128;
    o.ring_select = AURAIO_SELECT_ROUND_ROBIN;
    return auraio_create_with_options(&o);
}

/* The document, in a buffer sized by the contract's first call (plus slack for moving counters). */
static char *render(auraio_engine_t *e)
{
    for (;;) {
        int need = auraio_metrics_prometheus(e, NULL, 0);
        assert_true(need > 0);
        size_t len = (size_t)need + 4096;
        char *buf = malloc(len);
        assert_non_null(buf);
        int n = auraio_metrics_prometheus(e, buf, len);
        assert_true(n > 0);
        if ((size_t)n < len) {
            assert_int_equal(strlen(buf), (size_t)n);
            return buf;
        }
        free(buf);
    }
}

static void run_io(auraio_engine_t *e, int rfd, int wfd, int reads, int writes)
{
    static unsigned char bufs[NBLOCKS][BLOCK];
    struct recorder rec;
    struct recorder_ctx ctx[NBLOCKS * 2 + 1];
    recorder_init(&rec);
    int n = 0;
    for (int i = 0; i < reads; i++, n++) {
        ctx[n] = (struct recorder_ctx){&rec, n};
        assert_non_null(auraio_read(e, rfd, auraio_buf(bufs[i]), BLOCK, (int64_t)i * BLOCK, recorder_callback, &ctx[n]));
    }
    for (int i = 0; i < writes; i++, n++) {
        ctx[n] = (struct recorder_ctx){&rec, n};
        assert_non_null(auraio_write(e, wfd, auraio_buf(bufs[i]), BLOCK, (int64_t)i * BLOCK, recorder_callback, &ctx[n]));
    }
    ctx[n] = (struct recorder_ctx){&rec, n};
    assert_non_null(auraio_fsync(e, wfd, 0, recorder_callback, &ctx[n++]));
    assert_int_equal(harness_wait_for(e, &rec.total, n, 5000), 0);
}

static void test_bounds_are_histogram_boundaries(void **state)
{
    (void)state;
    static const double nominal_ns[AURAIO_PROM_BUCKETS] = {
        5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7, 2.5e7, 5e7, 1e8, 2.5e8, 5e8, 1e9, 2.5e9, 5e9, 1e10,
    };
    for (int i = 0; i < AURAIO_PROM_BUCKETS; i++) {
        uint64_t b = auraio__prom_bucket_bound_ns(i);
        /* A bucket starts exactly there, so "< bound" is a sum of whole internal buckets. */
        assert_int_equal(auraio__histogram_bucket_lower_ns((int)auraio__histogram_bucket(b)), b);
        double off = ((double)b - nominal_ns[i]) / nominal_ns[i];
        assert_true(off > -0.03 && off < 0.03);
        if (i > 0)
            assert_true(b > auraio__prom_bucket_bound_ns(i - 1));
    }
}

static uint64_t value_u64(const struct expo *x, const char *name, const char *labels)
{
    uint64_t v = 0;
    const char *t = expo_value(x, name, labels);
    if (!t || !expo_u64(t, &v))
        fail_msg("%s{%s}: missing or not an integer (%s)", name, labels, t ? t : "absent");
    return v;
}

/* Every value of the document against the engine's snapshot, taken with no I/O in between. */
static void check_against_snapshot(auraio_engine_t *e, const struct expo *x)
{
    static const char *const ops[] = {"read", "write", "fsync", "other"};
    char labels[160];
    for (int r = 0; r < auraio_get_ring_count(e); r++) {
        auraio_metrics_t m;
        assert_int_equal(auraio_get_metrics(e, r, &m), 0);
        for (int k = 0; k < AURAIO_OP_KIND_COUNT; k++) {
            snprintf(labels, sizeof(labels), "ring=\"%d\",op=\"%s\"", r, ops[k]);
            assert_int_equal(value_u64(x, "auraio_ops_total", labels), m.ops[k]);
            if (k <= AURAIO_OP_KIND_WRITE)
                assert_int_equal(value_u64(x, "auraio_bytes_total", labels), m.bytes[k]);
            snprintf(labels, sizeof(labels), "ring=\"%d\",op=\"%s\",class=\"other\"", r, ops[k]);
            assert_int_equal(value_u64(x, "auraio_errors_total", labels), m.errors[k][AURAIO_ERR_CLASS_OTHER]);
        }
        snprintf(labels, sizeof(labels), "ring=\"%d\"", r);
        assert_int_equal(value_u64(x, "auraio_request_latency_seconds_count", labels), m.latency_count);
        uint64_t sum_ns;
        assert_true(expo_seconds_to_ns(expo_value(x, "auraio_request_latency_seconds_sum", labels), &sum_ns));
        assert_int_equal(sum_ns, m.latency_sum_ns); /* exact, not bucket midpoints */
        assert_int_equal(value_u64(x, "auraio_in_flight_limit", labels), (uint64_t)m.in_flight_limit);
        assert_int_equal(value_u64(x, "auraio_queue_depth", labels), 128);
        /* Each cumulative bucket: exactly the samples below its bound, from the fine histogram. */
        for (int i = 0; i < AURAIO_PROM_BUCKETS; i++) {
            uint64_t bound = auraio__prom_bucket_bound_ns(i), below = 0;
            for (int b = 0; b < AURAIO_HISTOGRAM_BUCKETS; b++) {
                if (auraio_histogram_bucket_lower_ns(b) < bound)
                    below += m.latency_buckets[b];
            }
            uint64_t le_ns = 0;
            int found = 0;
            for (int j = 0; j < x->nsamples; j++) {
                const struct expo_sample *s = &x->samples[j];
                char want[32];
                snprintf(want, sizeof(want), "ring=\"%d\",le=\"", r);
                if (strcmp(s->name, "auraio_request_latency_seconds_bucket") || strncmp(s->labels, want, strlen(want)))
                    continue;
                char le[48];
                snprintf(le, sizeof(le), "%.*s", (int)(strlen(s->labels) - strlen(want) - 1), s->labels + strlen(want));
                if (!expo_seconds_to_ns(le, &le_ns) || le_ns != bound - 1)
                    continue;
                uint64_t v;
                assert_true(expo_u64(s->value, &v));
                assert_int_equal(v, below);
                found++;
            }
            assert_int_equal(found, 1);
        }
    }
    snprintf(labels, sizeof(labels), "version=\"%s\"", auraio_version());
    assert_int_equal(value_u64(x, "auraio_build_info", labels), 1);
}

static void test_document_is_exact_and_monotone(void **state)
{
    (void)state;
    auraio_engine_t *e = make(2);
    assert_non_null(e);
    int rfd = harness_pattern_file(BLOCK * NBLOCKS, 9);
    int wfd = harness_temp_file(0);
    assert_true(rfd >= 0 && wfd >= 0);
    void *pool_buf = auraio_buffer_alloc(e, 8192);
    assert_non_null(pool_buf);

    char *doc = render(e); /* before any I/O: zeros, still a valid document */
    const char *err = expo_parse_check(doc, &scrape_a);
    if (err)
        fail_msg("empty engine: %s\n%s", err, doc);
    free(doc);

    run_io(e, rfd, wfd, NBLOCKS, 16);
    doc = render(e);
    err = expo_parse_check(doc, &scrape_a);
    if (err)
        fail_msg("%s", err);
    check_against_snapshot(e, &scrape_a);
    assert_int_equal(value_u64(&scrape_a, "auraio_buffer_pool_allocated_buffers", ""), 1);
    assert_true(value_u64(&scrape_a, "auraio_buffer_pool_allocated_bytes", "") >= 8192);
    free(doc);

    run_io(e, rfd, wfd, NBLOCKS / 2, 8);
    doc = render(e);
    err = expo_parse_check(doc, &scrape_b);
    if (err)
        fail_msg("%s", err);
    check_against_snapshot(e, &scrape_b);
    err = expo_check_counters_monotone(&scrape_a, &scrape_b);
    if (err)
        fail_msg("%s", err);
    /* Not merely non-decreasing: the I/O in between shows. */
    uint64_t a = value_u64(&scrape_a, "auraio_ops_total", "ring=\"0\",op=\"read\"") +
                 value_u64(&scrape_a, "auraio_ops_total", "ring=\"1\",op=\"read\"");
    uint64_t b = value_u64(&scrape_b, "auraio_ops_total", "ring=\"0\",op=\"read\"") +
                 value_u64(&scrape_b, "auraio_ops_total", "ring=\"1\",op=\"read\"");
    assert_int_equal(b - a, NBLOCKS / 2);
    free(doc);
    assert_int_equal(auraio_buffer_free(e, pool_buf, 8192), 0);
    auraio_destroy(e);
    close(rfd);
    close(wfd);
}

static void test_buffer_too_small(void **state)
{
    (void)state;
    auraio_engine_t *e = make(3);
    assert_non_null(e);
    int n = auraio_metrics_prometheus(e, NULL, 0);
    assert_true(n > 1000);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    /* One byte short (no room for the NUL): the size again, and no truncated document. */
    memset(buf, 'x', (size_t)n + 1);
    assert_int_equal(auraio_metrics_prometheus(e, buf, (size_t)n), n);
    assert_int_equal(buf[0], '\0');
    memset(buf, 'x', (size_t)n + 1);
    assert_int_equal(auraio_metrics_prometheus(e, buf, 1), n);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(buf[1], 'x');
    /* The retry with the size asked for succeeds (an idle engine: nothing moves in between). */
    assert_int_equal(auraio_metrics_prometheus(e, buf, (size_t)n + 1), n);
    assert_int_equal(strlen(buf), (size_t)n);
    assert_null(expo_parse_check(buf, &scrape_a));
    assert_int_equal(auraio_metrics_prometheus(NULL, buf, (size_t)n + 1), -EINVAL);
    assert_int_equal(auraio_metrics_prometheus(e, NULL, 10), -EINVAL);
    free(buf);
    auraio_destroy(e);
}

/* The sample lines of a document: everything but comments. */
static char *samples_only(const char *doc)
{
    char *out = malloc(strlen(doc) + 1);
    assert_non_null(out);
    size_t o = 0;
    for (const char *p = doc; *p;) {
        size_t n = strcspn(p, "\n") + 1;
        if (*p != '#') {
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    out[o] = '\0';
    return out;
}

/* OpenMetrics: the same samples as the text format, families named without _total/_info, info
 * typed, "# EOF" last, the same size contract. */
static void test_openmetrics(void **state)
{
    (void)state;
    auraio_engine_t *e = make(2);
    assert_non_null(e);
    int rfd = harness_pattern_file(BLOCK * NBLOCKS, 9);
    int wfd = harness_temp_file(0);
    run_io(e, rfd, wfd, 16, 4);
    int n = auraio_metrics_openmetrics(e, NULL, 0);
    assert_true(n > 0);
    char *om = malloc((size_t)n + 1);
    assert_non_null(om);
    assert_int_equal(auraio_metrics_openmetrics(e, om, (size_t)n), n);
    assert_int_equal(om[0], '\0');
    assert_int_equal(auraio_metrics_openmetrics(e, om, (size_t)n + 1), n);
    const char *err = expo_parse_check(om, &scrape_a);
    if (err)
        fail_msg("openmetrics: %s", err);
    assert_true(scrape_a.eof);
    assert_int_equal(strcmp(om + n - 6, "# EOF\n"), 0);
    assert_non_null(strstr(om, "# TYPE auraio_ops counter\n"));
    assert_non_null(strstr(om, "# TYPE auraio_build info\n"));
    assert_null(strstr(om, "# TYPE auraio_ops_total"));
    for (int i = 0; i < scrape_a.nfamilies; i++) {
        size_t k = strlen(scrape_a.families[i].name);
        assert_false(k > 6 && !strcmp(scrape_a.families[i].name + k - 6, "_total"));
    }
    char *text = render(e); /* an idle engine: the samples must be the same, line for line */
    char *a = samples_only(om), *b = samples_only(text);
    assert_string_equal(a, b);
    assert_null(strstr(text, "# EOF"));
    free(a);
    free(b);
    free(text);
    free(om);
    assert_int_equal(auraio_metrics_openmetrics(NULL, NULL, 0), -EINVAL);
    auraio_destroy(e);
    close(rfd);
    close(wfd);
}

/* ---- scrapes concurrent with I/O ---- */

struct scraper {
    auraio_engine_t *e;
    _Atomic bool stop;
    _Atomic int scrapes;
    char error[256];
};

static void *scrape_loop(void *arg)
{
    struct scraper *s = arg;
    static struct expo docs[2];
    int cur = 0;
    while (!atomic_load(&s->stop)) {
        char *doc = render(s->e);
        const char *err = expo_parse_check(doc, &docs[cur]);
        if (!err && atomic_load(&s->scrapes) > 0)
            err = expo_check_counters_monotone(&docs[cur ^ 1], &docs[cur]);
        free(doc);
        if (err) {
            snprintf(s->error, sizeof(s->error), "%s", err);
            return NULL;
        }
        cur ^= 1;
        atomic_fetch_add(&s->scrapes, 1);
    }
    return NULL;
}

struct load {
    auraio_engine_t *e;
    int fd;
    long left;
    unsigned char (*bufs)[BLOCK];
};

static void reread(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct load *l = ud;
    assert_int_equal(res, BLOCK);
    if (l->left > 0) {
        l->left--;
        assert_non_null(auraio_read(l->e, l->fd, auraio_buf(l->bufs[l->left % 32]), BLOCK,
                                    (int64_t)(l->left % NBLOCKS) * BLOCK, reread, l));
    }
}

static void test_scrapes_during_io(void **state)
{
    (void)state;
    auraio_engine_t *e = make(2);
    assert_non_null(e);
    static unsigned char bufs[32][BLOCK];
    struct load l = {.e = e, .fd = harness_pattern_file(BLOCK * NBLOCKS, 4), .left = 100000, .bufs = bufs};
    assert_true(l.fd >= 0);
    struct scraper s = {.e = e};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, scrape_loop, &s), 0);
    for (int i = 0; i < 32; i++)
        assert_non_null(auraio_read(e, l.fd, auraio_buf(bufs[i]), BLOCK, (int64_t)i * BLOCK, reread, &l));
    for (int spins = 0; auraio_pending_count(e) > 0 && spins < 300000; spins++)
        assert_true(auraio_wait(e, 100) >= 0);
    /* At least two scrapes overlapped the I/O or followed it (monotonicity needs a pair). */
    while (atomic_load(&s.scrapes) < 2 && !s.error[0])
        usleep(1000);
    atomic_store(&s.stop, true);
    pthread_join(t, NULL);
    if (s.error[0])
        fail_msg("concurrent scrape: %s", s.error);
    print_message("%d scrapes during 100000 reads\n", atomic_load(&s.scrapes));
    auraio_destroy(e);
    close(l.fd);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds_are_histogram_boundaries),
        cmocka_unit_test(test_document_is_exact_and_monotone),
        cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_openmetrics),
        cmocka_unit_test(test_scrapes_during_io),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
