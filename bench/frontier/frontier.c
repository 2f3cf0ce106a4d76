/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real-device demonstration of issue #3: random 4 KiB O_DIRECT reads on one file, first at a
 * grid of fixed depths (the frontier: IOPS, P50, P99 per depth), then with the controller choosing
 * the depth, and a verdict on the check: the controller's IOPS >= 0.95x the best fixed
 * depth's and its P99 <= 1.25x the P99 of the knee (the smallest fixed depth within 5% of the best).
 *
 * Every run, fixed or adaptive, uses the same application loop: one thread, a pool of buffers, and
 * "submit while auraio_capacity() > 0" (also from callbacks), so the application never builds a
 * backlog inside the library and the only thing that differs between runs is who sets the limit.
 * Latency is measured here, from just before auraio_read to the start of the callback, never taken
 * from the library's stats (those are what is being judged). Runs are done in a shuffled order per
 * repeat (seeded), so drift of this shared, host-cache-backed disk hits every point alike.
 *
 * Exit status: 0 ran (whatever the verdict; --strict makes FAIL exit 4), 1 I/O or setup error,
 * 2 usage, 3 a run completed no I/O, 77 io_uring or O_DIRECT unavailable.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "auraio.h"
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>


#define BS 4096u
#define MAX_DEPTHS 64
#define SAMPLE_NS 50000000ull /* limit/phase trace period (the brief's 50 ms) */
#define NEVER (-1.0)


static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (copied, the input keeps its order). NEVER (-1) sorts as +infinity, so a
 * median of convergence times with "never" in the upper half is itself "never". */
static double median(const double *v, int n)
{
    double tmp[256];
    if (n <= 0 || n > 256)
        return 0.0;
    for (int i = 0; i < n; i++)
        tmp[i] = v[i] < 0 ? INFINITY : v[i];
    qsort(tmp, (size_t)n, sizeof(*tmp), cmp_double);
    double m = n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2.0;
    return isinf(m) ? NEVER : m;
}

/* ------------------------------------------------------------------------------------------- */
/* Latency histogram: exact below 128 ns, then 64 sub-buckets per power of two (1.6%), so a P99 per
 * 100 ms window costs no sort and no per-sample memory. */
#define HIST_SUB 64
#define HIST_BUCKETS (128 + 64 * HIST_SUB)

struct hist {
    uint64_t count[HIST_BUCKETS];
    uint64_t total;
};

static void hist_add(struct hist *h, uint64_t v)
{
    unsigned idx;
    if (v < 128) {
        idx = (unsigned)v;
    } else {
        unsigned e = (unsigned)(63 - __builtin_clzll(v)) - 6;
        idx = 64 * e + (unsigned)(v >> e);
        if (idx >= HIST_BUCKETS)
            idx = HIST_BUCKETS - 1;
    }
    h->count[idx]++;
    h->total++;
}

/* @p p-quantile (0..1) in microseconds, bucket midpoint. */
static double hist_quantile_us(const struct hist *h, double p)
{
    if (h->total == 0)
        return 0.0;
    uint64_t rank = (uint64_t)ceil(p * (double)h->total);
    if (rank == 0)
        rank = 1;
    uint64_t cum = 0;
    unsigned i;
    for (i = 0; i < HIST_BUCKETS - 1; i++) {
        cum += h->count[i];
        if (cum >= rank)
            break;
    }
    if (i < 128)
        return i / 1000.0;
    unsigned e = i / 64 - 1;
    uint64_t m = i % 64 + 64;
    return ((double)(m << e) + (double)((m + 1) << e)) / 2.0 / 1000.0;
}

/* ------------------------------------------------------------------------------------------- */
/* One run */

struct cfg {
    const char *file;
    double warmup_s, seconds, window_s;
    int ctl_rings;       /* 0 = the library's default (one per CPU) */
    int fixed_rings;     /* rings for the fixed-depth runs */
    double p99_ms;       /* controller target, 0 = none */
    int single_issuer;
    int slack;           /* requests the app keeps queued beyond the limit (0: exactly capacity) */
    int stand_in;        /* > 0: the "controller" runs are this fixed depth (the check's own noise) */
};

struct sample {
    double t;        /* seconds since the run started */
    int limit;       /* sum of the rings' in-flight limits */
    int pending;     /* requests outstanding (the app keeps this at the limit) */
    int phase;       /* ring 0's controller phase (one controller per device group) */
    bool infeasible;
    uint64_t at_limit, completed; /* cumulative: how often a submission found or left a ring full */
};

struct result {
    int depth;          /* fixed depth, 0 = controller */
    int rings;
    uint64_t ops;       /* completions inside the measurement window */
    double iops, p50_us, p99_us;
    double iops_all;    /* controller: IOPS from t = 0, convergence included */
    int nwin;           /* windows of window_s from t = 0 to the end of the measurement */
    double *win_iops, *win_p99;
    int nsamp;
    struct sample *samp;
    double load1;       /* 1-minute load average when the run started */
    double full_share;  /* submissions that left auraio_capacity() at 0, per submission */
    double per_wait;    /* completions delivered per auraio_wait */
};

struct slot {
    struct bench *b;
    uint64_t submit_ns;
    void *buf;
};

struct bench {
    auraio_engine_t *e;
    int fd;
    uint64_t blocks;
    uint64_t rng;
    struct slot *slots;
    int *free_stack;
    int nfree;
    bool stopping;
    int error;
    uint64_t t0, meas_start, meas_end, win_ns;
    struct hist meas, all, win;
    uint64_t meas_ops, all_ops;
    int cur_win;
    struct result *r;
    int outstanding;     /* submitted by us, callback not yet run */
    int slack, last_limit;
    uint64_t subs, subs_full, waits; /* app-side view of how often the limit binds */
};

static void on_read(auraio_request_t *req, ssize_t result, void *user_data);

/* Keep the library full and no fuller: submit while it says a request would go straight to the
 * kernel. This is how a real application lets the library pick the depth. */
static void fill(struct bench *b)
{
    while (!b->stopping && b->nfree > 0 &&
           (auraio_capacity(b->e) > 0 || (b->slack > 0 && b->outstanding < b->last_limit + b->slack))) {
        struct slot *s = &b->slots[b->free_stack[--b->nfree]];
        int64_t off = (int64_t)(bench_splitmix64(&b->rng) % b->blocks * BS);
        s->submit_ns = bench_now_ns();
        if (!auraio_read(b->e, b->fd, auraio_buf(s->buf), BS, off, on_read, s)) {
            b->free_stack[b->nfree++] = (int)(s - b->slots);
            if (errno != EAGAIN) {
                b->error = errno;
                b->stopping = true;
            }
            return;
        }
        b->outstanding++;
        b->subs++;
        b->subs_full += auraio_capacity(b->e) == 0;
    }
}

static void close_windows(struct bench *b, int upto)
{
    struct result *r = b->r;
    while (b->cur_win < upto && b->cur_win < r->nwin) {
        r->win_iops[b->cur_win] = (double)b->win.total / ((double)b->win_ns / 1e9);
        r->win_p99[b->cur_win] = hist_quantile_us(&b->win, 0.99);
        memset(&b->win, 0, sizeof(b->win));
        b->cur_win++;
    }
}

static void on_read(auraio_request_t *req, ssize_t result, void *user_data)
{
    struct slot *s = user_data;
    struct bench *b = s->b;
    uint64_t now = bench_now_ns();
    (void)req;
    b->free_stack[b->nfree++] = (int)(s - b->slots);
    b->outstanding--;
    if (result != (ssize_t)BS) {
        if (!b->error)
            b->error = result < 0 ? (int)-result : EIO;
        b->stopping = true;
        return;
    }
    if (now >= b->meas_end) {
        b->stopping = true;
        return;
    }
    uint64_t lat = now - s->submit_ns;
    int w = (int)((now - b->t0) / b->win_ns);
    if (w != b->cur_win)
        close_windows(b, w);
    hist_add(&b->win, lat);
    hist_add(&b->all, lat);
    b->all_ops++;
    if (now >= b->meas_start) {
        hist_add(&b->meas, lat);
        b->meas_ops++;
    }
    fill(b);
}

static double loadavg1(void)
{
    double l = -1.0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1.0;
        fclose(f);
    }
    return l;
}

/* depth > 0: the limit pinned at depth (split over cfg->fixed_rings); depth 0: the controller. */
static int run_one(const struct cfg *c, struct bench *b, int depth, uint64_t seed, struct result *r)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.single_issuer = c->single_issuer != 0;
    /* A stand-in is scored as the controller (r->depth stays 0) but pinned like a fixed run. */
    int pinned = depth > 0 ? depth : c->stand_in;
    if (pinned > 0) {
        int rings = c->fixed_rings;
        int per = (pinned + rings - 1) / rings;
        o.ring_count = rings;
        o.disable_adaptive = true;
        o.initial_in_flight = per;
        o.max_in_flight = per;
        o.queue_depth = per > 256 ? per : 0;
    } else {
        o.ring_count = c->ctl_rings;
        o.max_p99_latency_ms = c->p99_ms;
    }
    b->e = auraio_create_with_options(&o);
    if (!b->e) {
        int err = errno;
        fprintf(stderr, "auraio_create_with_options: %s\n", strerror(err));
        return err == ENOSYS || err == EPERM ? 77 : 1;
    }
    memset(r, 0, sizeof(*r));
    r->depth = depth;
    r->rings = auraio_get_ring_count(b->e);
    r->load1 = loadavg1();

    /* One buffer per request slot of every ring: the most the library could ever take. */
    int nslots = 0;
    for (int i = 0; i < r->rings; i++) {
        auraio_ring_stats_t rs;
        auraio_get_ring_stats(b->e, i, &rs);
        nslots += rs.queue_depth;
    }
    uint64_t total_ns = (uint64_t)((c->warmup_s + c->seconds) * 1e9);
    b->win_ns = (uint64_t)(c->window_s * 1e9);
    r->nwin = (int)(total_ns / b->win_ns);
    r->win_iops = calloc((size_t)r->nwin + 1, sizeof(double));
    r->win_p99 = calloc((size_t)r->nwin + 1, sizeof(double));
    int samp_max = (int)(total_ns / SAMPLE_NS) + 2;
    r->samp = calloc((size_t)samp_max, sizeof(*r->samp));
    b->slots = calloc((size_t)nslots, sizeof(*b->slots));
    b->free_stack = calloc((size_t)nslots, sizeof(int));
    void *pool = NULL;
    int status = 1;
    if (!r->win_iops || !r->win_p99 || !r->samp || !b->slots || !b->free_stack ||
        posix_memalign(&pool, 4096, (size_t)nslots * BS) != 0) {
        pool = NULL;
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    memset(pool, 0, (size_t)nslots * BS); /* fault the pages in now, not during the run */
    b->nfree = 0;
    for (int i = nslots - 1; i >= 0; i--) {
        b->slots[i].b = b;
        b->slots[i].buf = (char *)pool + (size_t)i * BS;
        b->free_stack[b->nfree++] = i;
    }
    b->rng = seed;
    b->stopping = false;
    b->error = 0;
    b->r = r;
    b->cur_win = 0;
    b->outstanding = 0;
    b->subs = b->subs_full = b->waits = 0;
    b->slack = c->slack;
    {
        auraio_stats_t st0;
        auraio_get_stats(b->e, &st0);
        b->last_limit = st0.in_flight_limit;
    }
    b->meas_ops = b->all_ops = 0;
    memset(&b->meas, 0, sizeof(b->meas));
    memset(&b->all, 0, sizeof(b->all));
    memset(&b->win, 0, sizeof(b->win));

    b->t0 = bench_now_ns();
    b->meas_start = b->t0 + (uint64_t)(c->warmup_s * 1e9);
    b->meas_end = b->t0 + (uint64_t)r->nwin * b->win_ns;
    uint64_t next_sample = b->t0;
    fill(b);
    while (!b->stopping) {
        uint64_t now = bench_now_ns();
        /* Sampled from the main loop, not a thread: the stats calls take the tick lock, and a
         * second thread would compete with the one this benchmark has for the 2 CPUs. */
        while (now >= next_sample && r->nsamp < samp_max) {
            auraio_stats_t st;
            auraio_ring_stats_t rs;
            auraio_get_stats(b->e, &st);
            auraio_get_ring_stats(b->e, 0, &rs);
            r->samp[r->nsamp++] = (struct sample){(double)(next_sample - b->t0) / 1e9, st.in_flight_limit,
                                                  st.pending_count, rs.phase, rs.target_infeasible,
                                                  st.submissions_at_limit, st.ops_completed};
            b->last_limit = st.in_flight_limit;
            next_sample += SAMPLE_NS;
        }
        if (now >= b->meas_end)
            break;
        int rc = auraio_wait(b->e, 20);
        b->waits++;
        if (rc < 0 && rc != -ETIME) {
            fprintf(stderr, "auraio_wait: %s\n", strerror(-rc));
            b->error = -rc;
            break;
        }
        fill(b);
    }
    b->stopping = true;
    while (auraio_pending_count(b->e) > 0) {
        int rc = auraio_wait(b->e, 1000);
        if (rc < 0 && rc != -ETIME)
            break;
    }
    close_windows(b, r->nwin);
    if (b->error) {
        fprintf(stderr, "frontier: I/O error: %s\n", strerror(b->error));
        goto out;
    }
    r->ops = b->meas_ops;
    r->iops = (double)b->meas_ops / c->seconds;
    r->iops_all = (double)b->all_ops / ((double)(b->meas_end - b->t0) / 1e9);
    r->full_share = b->subs ? (double)b->subs_full / (double)b->subs : 0.0;
    r->per_wait = b->waits ? (double)b->all_ops / (double)b->waits : 0.0;
    r->p50_us = hist_quantile_us(&b->meas, 0.50);
    r->p99_us = hist_quantile_us(&b->meas, 0.99);
    status = r->ops > 0 ? 0 : 3;
out:
    auraio_destroy(b->e);
    b->e = NULL;
    free(pool);
    free(b->slots);
    free(b->free_stack);
    b->slots = NULL;
    b->free_stack = NULL;
    return status;
}

/* ------------------------------------------------------------------------------------------- */
/* The frontier and the band */

struct point {
    int depth;
    double iops, p50, p99; /* medians over repeats */
};

struct frontier {
    struct point pt[MAX_DEPTHS];
    int n;
    double best_iops;
    int best, knee; /* indices */
    double p99_knee;
};

static void frontier_finish(struct frontier *f)
{
    f->best = 0;
    for (int i = 1; i < f->n; i++)
        if (f->pt[i].iops > f->pt[f->best].iops)
            f->best = i;
    f->best_iops = f->pt[f->best].iops;
    f->knee = f->best;
    for (int i = 0; i < f->n; i++)
        if (f->pt[i].iops >= 0.95 * f->best_iops && f->pt[i].depth < f->pt[f->knee].depth)
            f->knee = i;
    f->p99_knee = f->pt[f->knee].p99;
}

static bool in_band(const struct frontier *f, double iops, double p99)
{
    return iops >= 0.95 * f->best_iops && p99 <= 1.25 * f->p99_knee;
}

/* Is holding depth @p w in the band, judged by the fixed-depth frontier (piecewise linear in log
 * depth between grid points)? The grid is sorted by depth. */
static bool depth_in_band(const struct frontier *f, int w)
{
    if (w <= 0)
        return false;
    if (w <= f->pt[0].depth)
        return in_band(f, f->pt[0].iops, f->pt[0].p99) && w == f->pt[0].depth;
    for (int i = 1; i < f->n; i++) {
        if (w <= f->pt[i].depth) {
            const struct point *a = &f->pt[i - 1], *b = &f->pt[i];
            double t = (log(w) - log(a->depth)) / (log(b->depth) - log(a->depth));
            return in_band(f, a->iops + t * (b->iops - a->iops), a->p99 + t * (b->p99 - a->p99));
        }
    }
    const struct point *l = &f->pt[f->n - 1];
    return w == l->depth && in_band(f, l->iops, l->p99);
}

/* Start of the first window after which every window until the end is in the band, NEVER if the
 * last one is not. */
static double ttc_windows(const struct frontier *f, const struct result *r, double window_s)
{
    int last_bad = -1;
    for (int i = 0; i < r->nwin; i++)
        if (!in_band(f, r->win_iops[i], r->win_p99[i]))
            last_bad = i;
    if (last_bad == r->nwin - 1)
        return NEVER;
    return (last_bad + 1) * window_s;
}

/* The same on the 50 ms limit trace: from when on did the controller hold a depth that the fixed
 * runs say is in the band. Per-window P99 is noisy on this disk (the fixed knee depth itself fails
 * some windows), so this is the test that says where it settled, the window test how it fared. */
static double ttc_depth(const struct frontier *f, const struct result *r)
{
    int last_bad = -1;
    for (int i = 0; i < r->nsamp; i++)
        if (!depth_in_band(f, r->samp[i].limit))
            last_bad = i;
    if (last_bad == r->nsamp - 1)
        return NEVER;
    return last_bad < 0 ? 0.0 : r->samp[last_bad + 1].t;
}

static double share_windows_in_band(const struct frontier *f, const struct result *r, double from_s,
                                    double window_s)
{
    int n = 0, ok = 0;
    for (int i = 0; i < r->nwin; i++) {
        if (i * window_s + 1e-9 < from_s)
            continue;
        n++;
        ok += in_band(f, r->win_iops[i], r->win_p99[i]);
    }
    return n ? (double)ok / n : 0.0;
}

/* The depth it settled at: the median limit over the measurement window. */
static double settled_limit(const struct result *r, double from_s, int *lo, int *hi)
{
    double v[256]; /* the median of the last 256 samples (12.8 s) at most */
    int n = 0;
    *lo = 1 << 30;
    *hi = 0;
    for (int i = r->nsamp > 256 ? r->nsamp - 256 : 0; i < r->nsamp; i++) {
        if (r->samp[i].t + 1e-9 < from_s)
            continue;
        v[n++] = r->samp[i].limit;
        if (r->samp[i].limit < *lo)
            *lo = r->samp[i].limit;
        if (r->samp[i].limit > *hi)
            *hi = r->samp[i].limit;
    }
    return median(v, n);
}

static void print_trace(const struct result *r, const struct cfg *c)
{
    printf("  limit every 50 ms (sum over %d ring%s; one line per second):\n", r->rings, r->rings > 1 ? "s" : "");
    for (int i = 0; i < r->nsamp; i++) {
        if (i % 20 == 0)
            printf("   %5.2fs:", r->samp[i].t);
        printf(" %d", r->samp[i].limit);
        if (i % 20 == 19 || i == r->nsamp - 1)
            printf("\n");
    }
    /* The controller calls a ring app-limited (COAST: no growth) when fewer than 1/16 of an
     * epoch's submissions found or left it at its limit and it had no backlog. The library's
     * public counter counts only backlogged submissions; the app's side shows how often a
     * submission used up the last of auraio_capacity() (all rings full), and how many callbacks
     * each auraio_wait delivered (a refill after a batch of n fills the ring once per n). */
    printf("  app: %.3f of submissions left auraio_capacity() at 0, %.1f completions per auraio_wait; "
           "backlogged submissions per completion, each second:",
           r->full_share, r->per_wait);
    for (int i = 20; i < r->nsamp + 19; i += 20) {
        int j = i < r->nsamp ? i : r->nsamp - 1;
        const struct sample *a = &r->samp[i - 20], *z = &r->samp[j];
        uint64_t n = z->completed - a->completed;
        printf(" %.3f", n ? (double)(z->at_limit - a->at_limit) / (double)n : 0.0);
    }
    printf("\n  phases:");
    for (int i = 0; i < r->nsamp; i++)
        if (i == 0 || r->samp[i].phase != r->samp[i - 1].phase)
            printf(" %.2fs %s%s", r->samp[i].t, auraio_phase_name(r->samp[i].phase),
                   r->samp[i].infeasible ? "(infeasible)" : "");
    printf("\n  windows of %.0f ms (kIOPS/P99 us):", c->window_s * 1000);
    for (int i = 0; i < r->nwin; i++) {
        if (i % 10 == 0)
            printf("\n   %5.2fs:", i * c->window_s);
        printf(" %.1f/%.0f", r->win_iops[i] / 1000, r->win_p99[i]);
    }
    printf("\n");
}

/* ------------------------------------------------------------------------------------------- */
/* Files */

/* One full sequential O_DIRECT read (what `dd iflag=direct bs=1M` does): the disk is a host file,
 * and without this the first runs would read from the host's disk and the later ones from its
 * page cache, which is an order-of-magnitude difference that has nothing to do with depth. */
static int warm_file(int fd, uint64_t size, double *secs)
{
    void *buf;
    if (posix_memalign(&buf, 4096, 1u << 20) != 0)
        return -ENOMEM;
    uint64_t t = bench_now_ns();
    for (uint64_t off = 0; off < size; off += 1u << 20) {
        if (pread(fd, buf, 1u << 20, (off_t)off) < 0) {
            int err = errno;
            free(buf);
            return -err;
        }
    }
    *secs = (double)(bench_now_ns() - t) / 1e9;
    free(buf);
    return 0;
}

static void free_result(struct result *r)
{
    free(r->win_iops);
    free(r->win_p99);
    free(r->samp);
    memset(r, 0, sizeof(*r));
}

/* The verdict's measurement. The device this was built on drifts by +-20% over tens of seconds
 * (the same fixed depth read 140 K and 240 K IOPS 30 s apart), far more than the few percent that
 * separate the depths near the knee, so comparing medians of runs minutes apart mostly compares
 * moments. Each round runs the controller, the best depth and the knee depth back to back (about
 * 12 s, order shuffled so no one is always first) and takes the ratios within the round; the
 * verdict is their median over @p pairs rounds. */
static int paired_rounds(const struct cfg *c, struct bench *b, const struct frontier *f, int pairs, uint64_t seed,
                         int *run_no, double *iops_ratio, double *p99_ratio)
{
    double xr[101], pr[101];
    int who[3] = {-1, f->best, f->knee}; /* -1 = the controller */
    int n = f->knee == f->best ? 2 : 3;
    uint64_t rng = seed ^ 0x9e3779b97f4a7c15ull;
    printf("\nPAIRED ROUNDS (controller, best depth %d%s%.0d back to back, shuffled; ratios within each round)\n",
           f->pt[f->best].depth, n == 3 ? " and knee depth " : "", n == 3 ? f->pt[f->knee].depth : 0);
    for (int k = 0; k < pairs; k++) {
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(bench_splitmix64(&rng) % (uint64_t)(i + 1));
            int t = who[i];
            who[i] = who[j];
            who[j] = t;
        }
        struct result r[3];
        double iops_ctl = 0, p99_ctl = 0, iops_best = 0, p99_knee = 0, held = 0;
        for (int i = 0; i < n; i++) {
            int depth = who[i] < 0 ? 0 : f->pt[who[i]].depth;
            int rc = run_one(c, b, depth, seed * 1000003u + (uint64_t)++*run_no, &r[i]);
            if (rc) {
                for (int j = 0; j < i; j++)
                    free_result(&r[j]);
                return rc;
            }
            if (who[i] < 0) {
                int lo, hi;
                iops_ctl = r[i].iops;
                p99_ctl = r[i].p99_us;
                held = settled_limit(&r[i], c->warmup_s, &lo, &hi);
            }
            if (who[i] == f->best)
                iops_best = r[i].iops;
            if (who[i] == f->knee)
                p99_knee = r[i].p99_us;
        }
        for (int i = 0; i < n; i++)
            free_result(&r[i]);
        xr[k] = iops_best > 0 ? iops_ctl / iops_best : 0;
        pr[k] = p99_knee > 0 ? p99_ctl / p99_knee : 1e9;
        printf("round %d: controller %7.0f IOPS p99 %7.1f us (held %.0f); best %7.0f IOPS; knee p99 %7.1f us: "
               "IOPS %.3f x, P99 %.3f x\n",
               k + 1, iops_ctl, p99_ctl, held, iops_best, p99_knee, xr[k], pr[k]);
        fflush(stdout);
    }
    *iops_ratio = median(xr, pairs);
    *p99_ratio = median(pr, pairs);
    printf("paired medians over %d rounds: IOPS %.3f x best, P99 %.3f x knee's\n", pairs, *iops_ratio, *p99_ratio);
    return 0;
}

static int parse_depths(const char *s, int *out)
{
    int n = 0;
    char *copy = strdup(s), *save = NULL;
    if (!copy)
        return -1;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int d = atoi(tok);
        if (d < 1 || d > 32768 || n >= MAX_DEPTHS) {
            free(copy);
            return -1;
        }
        out[n++] = d;
    }
    free(copy);
    /* Sorted and unique: the band test interpolates between neighbours. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || out[m - 1] != out[i])
            out[m++] = out[i];
    return m;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s (--file PATH | --temp-size SIZE) [options]\n"
            "  --file PATH        read this file (O_DIRECT, its whole size)\n"
            "  --temp-size SIZE   create a file of SIZE (e.g. 1G) filled with data, read it, delete it\n"
            "  --temp-dir DIR     where (must support O_DIRECT; default $TMPDIR or /var/tmp)\n"
            "  --no-warm          skip the full O_DIRECT read of the file before the runs\n"
            "  --depths LIST      fixed depths (default 1,2,4,8,16,32,48,64,96,128,192,256)\n"
            "  --seconds S        measured time per run (default 3)\n"
            "  --warmup S         time before the measurement in every run (default 1)\n"
            "  --repeats R        runs per point, medians reported (default 1)\n"
            "  --pairs N          verdict rounds: the controller, the best and the knee depth back to back\n"
            "                     in shuffled order, N times; the verdict takes the medians of the\n"
            "                     per-round ratios (default 5; 0 = compare the separate medians)\n"
            "  --seed N           order and offsets (default 1)\n"
            "  --rings N          controller run's ring_count (default 0 = one per CPU)\n"
            "  --fixed-rings N    fixed runs' ring_count, depth split evenly (default 1)\n"
            "  --p99-ms T         controller P99 target (default none: find the knee)\n"
            "  --window-ms MS     window for the convergence test (default 100)\n"
            "  --single-issuer    set single_issuer in every run\n"
            "  --slack N          keep up to N requests queued beyond the limit (default 0: submit only\n"
            "                     while auraio_capacity() > 0); a diagnostic, see doc/frontier.md\n"
            "  --quiet            no per-run traces\n"
            "  --strict           exit 4 when the verdict is FAIL\n"
            "  --stand-in D       run fixed depth D wherever the controller would run: how often\n"
            "                     the check passes a depth chosen in advance (its own noise)\n",
            argv0);
}

int main(int argc, char **argv)
{
    struct cfg c = {.warmup_s = 1.0, .seconds = 3.0, .window_s = 0.1, .fixed_rings = 1};
    uint64_t temp_size = 0, seed = 1;
    const char *temp_dir = NULL;
    int depths[MAX_DEPTHS], ndepths;
    int repeats = 1;
    int pairs = 5;
    bool warm = true, quiet = false, strict = false;
    ndepths = parse_depths("1,2,4,8,16,32,48,64,96,128,192,256", depths);
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'},      {"temp-size", required_argument, NULL, 't'},
        {"temp-dir", required_argument, NULL, 'T'},  {"no-warm", no_argument, NULL, 'W'},
        {"depths", required_argument, NULL, 'd'},    {"seconds", required_argument, NULL, 's'},
        {"warmup", required_argument, NULL, 'w'},    {"repeats", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 'x'},      {"rings", required_argument, NULL, 'R'},
        {"fixed-rings", required_argument, NULL, 'F'}, {"p99-ms", required_argument, NULL, 'p'},
        {"window-ms", required_argument, NULL, 'm'}, {"single-issuer", no_argument, NULL, 'S'},
        {"slack", required_argument, NULL, 'k'},     {"quiet", no_argument, NULL, 'q'},           {"strict", no_argument, NULL, 'X'},
        {"stand-in", required_argument, NULL, 'I'},
        {"pairs", required_argument, NULL, 'P'},     {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'f': c.file = optarg; break;
        case 't': temp_size = bench_parse_size(optarg); break;
        case 'T': temp_dir = optarg; break;
        case 'W': warm = false; break;
        case 'd': ndepths = parse_depths(optarg, depths); break;
        case 's': c.seconds = atof(optarg); break;
        case 'w': c.warmup_s = atof(optarg); break;
        case 'r': repeats = atoi(optarg); break;
        case 'P': pairs = atoi(optarg); break;
        case 'I':
            c.stand_in = atoi(optarg);
            if (c.stand_in < 1 || c.stand_in > 4096) {
                fprintf(stderr, "--stand-in: expected a depth of 1-4096, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'x': seed = strtoull(optarg, NULL, 0); break;
        case 'R': c.ctl_rings = atoi(optarg); break;
        case 'F': c.fixed_rings = atoi(optarg); break;
        case 'p': c.p99_ms = atof(optarg); break;
        case 'm': c.window_s = atof(optarg) / 1000.0; break;
        case 'S': c.single_issuer = 1; break;
        case 'k': c.slack = atoi(optarg); break;
        case 'q': quiet = true; break;
        case 'X': strict = true; break;
        case 'h': usage(argv[0]); return 0;
        default: usage(argv[0]); return 2;
        }
    }
    if ((!c.file) == (!temp_size) || ndepths < 1 || !(c.seconds > 0) || !(c.warmup_s >= 0) || repeats < 1 ||
        repeats > 101 || pairs < 0 || pairs > 101 || c.slack < 0 || c.ctl_rings < 0 || c.fixed_rings < 1 || !(c.p99_ms >= 0) || !(c.window_s >= 0.001) ||
        c.window_s > c.seconds || (temp_size && temp_size < (1u << 20))) {
        usage(argv[0]);
        return 2;
    }

    char temp_path[4096] = "";
    if (temp_size) {
        if (bench_make_random_temp(temp_dir, "auraio-frontier", temp_size, temp_path, sizeof(temp_path)) < 0)
            return 1;
        c.file = temp_path;
    }

    int status = 1;
    int npoints = ndepths + 1; /* index ndepths = the controller */
    struct result *res = NULL;
    struct bench b = {.fd = -1};
    b.fd = open(c.file, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (temp_path[0] && b.fd >= 0) {
        /* Gone from the directory now, so a run stopped by a signal leaves no 1 GiB file behind;
         * the open descriptor keeps the data until exit. */
        unlink(temp_path);
        temp_path[0] = '\0';
    }
    if (b.fd < 0) {
        int err = errno;
        fprintf(stderr, "open %s with O_DIRECT: %s\n", c.file, strerror(err));
        status = err == EINVAL ? 77 : 1; /* e.g. an old tmpfs: nothing to measure here */
        goto out;
    }
    struct stat st;
    if (fstat(b.fd, &st) < 0 || (uint64_t)st.st_size < BS) {
        fprintf(stderr, "%s: not a file of at least %u bytes\n", c.file, BS);
        goto out;
    }
    b.blocks = (uint64_t)st.st_size / BS;
    double warm_s = 0;
    if (warm) {
        int rc = warm_file(b.fd, (uint64_t)st.st_size, &warm_s);
        if (rc < 0) {
            fprintf(stderr, "warming %s: %s\n", c.file, strerror(-rc));
            status = rc == -EINVAL ? 77 : 1;
            goto out;
        }
    }

    struct utsname un;
    uname(&un);
    printf("auraio frontier: build %s (optimized: %s), auraio %s, kernel %s, %ld CPUs\n", AURAIO_BENCH_BUILDTYPE,
           AURAIO_BENCH_OPTIMIZED, auraio_version(), un.release, sysconf(_SC_NPROCESSORS_ONLN));
    printf("file: %s, %llu MiB, 4 KiB random reads, O_DIRECT, warmed: %s",
           temp_size ? "(temp file)" : c.file, (unsigned long long)((uint64_t)st.st_size >> 20), warm ? "yes" : "no");
    if (warm)
        printf(" (full O_DIRECT read, %.1f s, %.0f MB/s)", warm_s,
               warm_s > 0 ? (double)st.st_size / warm_s / 1e6 : 0.0);
    printf("\nplan: %d fixed depths + the controller, %d repeat%s, shuffled order (seed %llu); per run %.2f s "
           "warm-up (excluded) + %.2f s measured\n",
           ndepths, repeats, repeats > 1 ? "s" : "", (unsigned long long)seed, c.warmup_s, c.seconds);
    printf("fixed: disable_adaptive, %d ring%s, limit = depth%s; controller: ring_count %d%s, target %s\n",
           c.fixed_rings, c.fixed_rings > 1 ? "s" : "", c.fixed_rings > 1 ? " split evenly" : "", c.ctl_rings,
           c.ctl_rings ? "" : " (one per CPU)", c.p99_ms > 0 ? "set" : "none (knee)");
    if (c.p99_ms > 0)
        printf("target: %.3f ms\n", c.p99_ms);
    if (c.stand_in)
        printf("STAND-IN: every CONTROLLER run below is fixed depth %d (no controller runs at all)\n", c.stand_in);
    if (c.slack)
        printf("app: one thread, submits while auraio_capacity() > 0 or fewer than limit + %d are outstanding; "
               "latency = submit to callback, measured here\n", c.slack);
    else
        printf("app: one thread, submits while auraio_capacity() > 0; latency = submit to callback, measured here\n");
    printf("load average at start: %.2f\n\n", loadavg1());
    fflush(stdout);

    res = calloc((size_t)npoints * (size_t)repeats, sizeof(*res));
    if (!res)
        goto out;
    uint64_t order_rng = seed;
    int order[MAX_DEPTHS + 1];
    int run_no = 0;
    for (int rep = 0; rep < repeats; rep++) {
        for (int i = 0; i < npoints; i++)
            order[i] = i;
        for (int i = npoints - 1; i > 0; i--) { /* Fisher-Yates */
            int j = (int)(bench_splitmix64(&order_rng) % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int k = 0; k < npoints; k++) {
            int p = order[k];
            struct result *r = &res[p * repeats + rep];
            int depth = p < ndepths ? depths[p] : 0;
            int rc = run_one(&c, &b, depth, seed * 1000003u + (uint64_t)++run_no, r);
            if (rc) {
                status = rc;
                goto out;
            }
            if (depth)
                printf("run %3d rep %d depth %4d: %7.0f IOPS  p50 %7.1f us  p99 %7.1f us  (load %.2f)\n", run_no,
                       rep + 1, depth, r->iops, r->p50_us, r->p99_us, r->load1);
            else
                printf("run %3d rep %d CONTROLLER: %7.0f IOPS  p50 %7.1f us  p99 %7.1f us  (load %.2f; from t=0 "
                       "%.0f IOPS)\n",
                       run_no, rep + 1, r->iops, r->p50_us, r->p99_us, r->load1, r->iops_all);
            fflush(stdout);
        }
    }

    /* The frontier: medians over repeats, per depth. */
    struct frontier f = {.n = ndepths};
    for (int i = 0; i < ndepths; i++) {
        double a[101], p5[101], p9[101];
        for (int k = 0; k < repeats; k++) {
            a[k] = res[i * repeats + k].iops;
            p5[k] = res[i * repeats + k].p50_us;
            p9[k] = res[i * repeats + k].p99_us;
        }
        f.pt[i] = (struct point){depths[i], median(a, repeats), median(p5, repeats), median(p9, repeats)};
    }
    frontier_finish(&f);

    printf("\nFRONTIER (fixed depths, medians of %d; load at end %.2f)\n", repeats, loadavg1());
    printf("%6s %9s %9s %9s %8s %9s  %s\n", "depth", "IOPS", "P50_us", "P99_us", "x/best", "in-band%", "");
    for (int i = 0; i < ndepths; i++) {
        double share = 0;
        for (int k = 0; k < repeats; k++)
            share += share_windows_in_band(&f, &res[i * repeats + k], c.warmup_s, c.window_s);
        printf("%6d %9.0f %9.1f %9.1f %8.3f %8.0f%%  %s%s%s\n", f.pt[i].depth, f.pt[i].iops, f.pt[i].p50,
               f.pt[i].p99, f.pt[i].iops / f.best_iops, 100.0 * share / repeats, i == f.knee ? "knee" : "",
               i == f.knee && i == f.best ? ", " : "", i == f.best ? "best" : "");
    }
    printf("band: IOPS >= %.0f (0.95 x best, depth %d) and P99 <= %.1f us (1.25 x knee depth %d's)\n",
           0.95 * f.best_iops, f.pt[f.best].depth, 1.25 * f.p99_knee, f.pt[f.knee].depth);
    printf("in-band%%: share of %.0f ms windows after warm-up inside the band (a fixed depth's own noise)\n",
           c.window_s * 1000);

    /* The controller: its point (medians), where it settled, how long it took. */
    double ci[101], c5[101], c9[101], ttw[101], ttd[101], setl[101], shr[101];
    for (int k = 0; k < repeats; k++) {
        struct result *r = &res[ndepths * repeats + k];
        int lo, hi;
        ci[k] = r->iops;
        c5[k] = r->p50_us;
        c9[k] = r->p99_us;
        ttw[k] = ttc_windows(&f, r, c.window_s);
        ttd[k] = ttc_depth(&f, r);
        setl[k] = settled_limit(r, c.warmup_s, &lo, &hi);
        shr[k] = share_windows_in_band(&f, r, c.warmup_s, c.window_s);
        if (!quiet) {
            printf("\ncontroller rep %d: %.0f IOPS, p50 %.1f us, p99 %.1f us; settled limit %.0f (range %d-%d after "
                   "warm-up), final phase %s; %.0f%% of windows after warm-up in band\n",
                   k + 1, r->iops, r->p50_us, r->p99_us, setl[k], lo, hi,
                   auraio_phase_name(r->samp[r->nsamp - 1].phase), 100 * shr[k]);
            char a[32], w[32];
            snprintf(a, sizeof(a), ttd[k] < 0 ? "never" : "%.2f s", ttd[k]);
            snprintf(w, sizeof(w), ttw[k] < 0 ? "never" : "%.2f s", ttw[k]);
            printf("  time to enter and stay in band (run is %.2f s): by held depth %s, by %.0f ms windows %s\n",
                   c.warmup_s + c.seconds, a, c.window_s * 1000, w);
            print_trace(r, &c);
        }
    }
    double cm_iops = median(ci, repeats), cm_p50 = median(c5, repeats), cm_p99 = median(c9, repeats);
    double cm_ttw = median(ttw, repeats), cm_ttd = median(ttd, repeats), cm_set = median(setl, repeats);
    struct result *last = &res[ndepths * repeats + repeats - 1];
    printf("\nCONTROLLER (medians of %d, rings %d%s): %.0f IOPS, p50 %.1f us, p99 %.1f us; settled limit %.0f; "
           "final phase %s\n",
           repeats, last->rings, c.p99_ms > 0 ? ", P99 target" : "", cm_iops, cm_p50, cm_p99, cm_set,
           auraio_phase_name(last->samp[last->nsamp - 1].phase));
    char tw[32], td[32];
    snprintf(td, sizeof(td), cm_ttd < 0 ? "never" : "%.2f s", cm_ttd);
    snprintf(tw, sizeof(tw), cm_ttw < 0 ? "never" : "%.2f s", cm_ttw);
    printf("convergence (enter and stay in band, from t=0): by held depth %s, by %.0f ms windows %s; windows in "
           "band after warm-up %.0f%%\n",
           td, c.window_s * 1000, tw, 100 * median(shr, repeats));

    /* The verdict, from the numbers above. */
    double xr = cm_iops / f.best_iops, pr = cm_p99 / f.p99_knee;
    double xr_sep = xr, pr_sep = pr;
    if (pairs > 0 && !(c.p99_ms > 0)) {
        int rc = paired_rounds(&c, &b, &f, pairs, seed, &run_no, &xr, &pr);
        if (rc) {
            status = rc;
            goto out;
        }
    }
    bool pass;
    if (c.p99_ms > 0) {
        /* Target mode: meet T and take the most throughput any fixed depth gets while meeting it. */
        double x_t = 0;
        for (int i = 0; i < f.n; i++)
            if (f.pt[i].p99 <= c.p99_ms * 1000 && f.pt[i].iops > x_t)
                x_t = f.pt[i].iops;
        pass = cm_p99 <= c.p99_ms * 1000 * 1.05 && (x_t == 0 || cm_iops >= 0.95 * x_t);
        printf("CHECK (target %.3f ms): P99 %.1f us <= 1.05 T, IOPS %.0f >= 0.95 x %.0f (best fixed depth meeting "
               "T): %s\n",
               c.p99_ms, cm_p99, cm_iops, x_t, pass ? "PASS" : "FAIL");
    } else {
        pass = xr >= 0.95 && pr <= 1.25;
        if (pairs > 0)
            printf("separate medians (frontier runs vs controller runs, not paired): IOPS %.3f x best, P99 %.3f x "
                   "knee's\n", xr_sep, pr_sep);
        printf("CHECK%s (issue #3, real device): IOPS %.3f x best (>= 0.95) %s, P99 %.3f x knee's (<= 1.25) %s: %s\n",
               pairs > 0 ? " paired" : "", xr, xr >= 0.95 ? "ok" : "MISS", pr, pr <= 1.25 ? "ok" : "MISS",
               pass ? "PASS" : "FAIL");
    }
    printf("RESULT build=%s best_depth=%d best_iops=%.0f knee_depth=%d knee_p99_us=%.1f ctl_iops=%.0f "
           "ctl_p50_us=%.1f ctl_p99_us=%.1f ctl_limit=%.0f iops_ratio=%.3f p99_ratio=%.3f ttc_depth_s=%.2f "
           "ttc_window_s=%.2f repeats=%d pairs=%d sep_iops_ratio=%.3f sep_p99_ratio=%.3f verdict=%s\n",
           AURAIO_BENCH_BUILDTYPE, f.pt[f.best].depth, f.best_iops, f.pt[f.knee].depth, f.p99_knee, cm_iops, cm_p50,
           cm_p99, cm_set, xr, pr, cm_ttd, cm_ttw, repeats, pairs, xr_sep, pr_sep, pass ? "PASS" : "FAIL");
    status = strict && !pass ? 4 : 0;
out:
    if (res) {
        for (int i = 0; i < npoints * repeats; i++)
            free_result(&res[i]);
        free(res);
    }
    if (b.fd >= 0)
        close(b.fd);
    if (temp_path[0])
        unlink(temp_path);
    return status;
}
