/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The run loop and frontier arithmetic shared by frontier.c and capped.c; see frontier_run.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "frontier_run.h"

#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>


static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (copied, the input keeps its order). NEVER (-1) sorts as +infinity, so a
 * median of convergence times with "never" in the upper half is itself "never". */
double median(const double *v, int n)
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

/* Nearest-rank @p q quantile of n values, sorted in place. */
double quantile_sort(double *v, int n, double q)
{
    if (n <= 0)
        return 0.0;
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    int i = (int)ceil(q * n) - 1;
    return v[i < 0 ? 0 : i];
}

/* ------------------------------------------------------------------------------------------- */
/* Latency histogram: exact below 128 ns, then 64 sub-buckets per power of two (1.6%), so a P99 per
 * 100 ms window costs no sort and no per-sample memory. */
#define HIST_SUB 64
#define HIST_BUCKETS (128 + 64 * HIST_SUB)


void hist_add(struct hist *h, uint64_t v)
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
double hist_quantile_us(const struct hist *h, double p)
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

/* Close windows *cur..upto-1 of a series of n windows of ns each (the later ones are empty). */
static void close_windows(struct hist *h, int *cur, int upto, int n, uint64_t ns, double *iops, double *p99)
{
    while (*cur < upto && *cur < n) {
        iops[*cur] = (double)h->total / ((double)ns / 1e9);
        p99[*cur] = hist_quantile_us(h, 0.99);
        memset(h, 0, sizeof(*h));
        ++*cur;
    }
}

/* Start of schedule segment @p i in ns from t0; the last one ends at the end of the run. */
static uint64_t seg_start_ns(const struct bench *b, int i)
{
    if (i >= b->c->nsched)
        return b->meas_end - b->t0;
    return (uint64_t)(b->c->sched[i].t * 1e9);
}

/* Close segments cur_seg..upto-1: IOPS and P99 over each one's part after the settle time. */
static void close_segments(struct bench *b, int upto)
{
    struct result *r = b->r;
    while (b->cur_seg < upto && b->cur_seg < r->nseg) {
        int i = b->cur_seg;
        double from = (double)seg_start_ns(b, i) / 1e9 + b->c->seg_settle_s;
        double to = (double)seg_start_ns(b, i + 1) / 1e9;
        r->seg_iops[i] = to > from ? (double)b->seg_ops / (to - from) : 0.0;
        r->seg_p99[i] = hist_quantile_us(&b->seg, 0.99);
        memset(&b->seg, 0, sizeof(b->seg));
        b->seg_ops = 0;
        b->cur_seg++;
    }
}

/* Which segment @p t_ns (from t0) falls in. */
static int segment_of(const struct bench *b, uint64_t t_ns)
{
    int i = 0;
    while (i + 1 < b->r->nseg && t_ns >= seg_start_ns(b, i + 1))
        i++;
    return i;
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
        close_windows(&b->win, &b->cur_win, w, b->r->nwin, b->win_ns, b->r->win_iops, b->r->win_p99);
    hist_add(&b->win, lat);
    if (b->win2_ns) {
        w = (int)((now - b->t0) / b->win2_ns);
        if (w != b->cur_win2)
            close_windows(&b->win2, &b->cur_win2, w, b->r->nwin2, b->win2_ns, b->r->win2_iops, b->r->win2_p99);
        hist_add(&b->win2, lat);
    }
    if (b->r->nseg) {
        int sg = segment_of(b, now - b->t0);
        if (sg != b->cur_seg)
            close_segments(b, sg);
        if (now - b->t0 >= seg_start_ns(b, sg) + (uint64_t)(b->c->seg_settle_s * 1e9)) {
            hist_add(&b->seg, lat);
            b->seg_ops++;
        }
    }
    hist_add(&b->all, lat);
    b->all_ops++;
    if (now >= b->meas_start) {
        hist_add(&b->meas, lat);
        b->meas_ops++;
    }
    fill(b);
}

double loadavg1(void)
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

/* Apply the cap schedule's steps that are due at @p now. */
static int apply_steps(struct bench *b, int *next, uint64_t now)
{
    const struct cfg *c = b->c;
    while (*next < c->nsched && now >= b->t0 + (uint64_t)(c->sched[*next].t * 1e9)) {
        int rc = c->set_cap(c->cap_ctx, c->sched[(*next)++].iops);
        if (rc < 0) {
            fprintf(stderr, "setting the cap: %s\n", strerror(-rc));
            b->error = -rc;
            b->stopping = true;
            return rc;
        }
    }
    return 0;
}

/* depth > 0: the limit pinned at depth (split over cfg->fixed_rings); depth 0: the controller. */
int run_one(const struct cfg *c, struct bench *b, int depth, uint64_t seed, struct result *r)
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
    b->win2_ns = (uint64_t)(c->window2_s * 1e9);
    r->nwin2 = b->win2_ns ? (int)(total_ns / b->win2_ns) : 0;
    r->win2_iops = calloc((size_t)r->nwin2 + 1, sizeof(double));
    r->win2_p99 = calloc((size_t)r->nwin2 + 1, sizeof(double));
    r->nseg = c->nsched < MAX_SEGS ? c->nsched : MAX_SEGS;
    int samp_max = (int)(total_ns / SAMPLE_NS) + 2;
    r->samp = calloc((size_t)samp_max, sizeof(*r->samp));
    b->slots = calloc((size_t)nslots, sizeof(*b->slots));
    b->free_stack = calloc((size_t)nslots, sizeof(int));
    void *pool = NULL;
    int status = 1;
    if (!r->win_iops || !r->win_p99 || !r->win2_iops || !r->win2_p99 || !r->samp || !b->slots || !b->free_stack ||
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
    b->c = c;
    b->cur_win = b->cur_win2 = b->cur_seg = 0;
    b->seg_ops = 0;
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
    memset(&b->win2, 0, sizeof(b->win2));
    memset(&b->seg, 0, sizeof(b->seg));

    b->t0 = bench_now_ns();
    b->meas_start = b->t0 + (uint64_t)(c->warmup_s * 1e9);
    b->meas_end = b->t0 + (uint64_t)r->nwin * b->win_ns;
    uint64_t next_sample = b->t0;
    int next_step = 0;
    if (apply_steps(b, &next_step, b->t0) < 0)
        goto out;
    fill(b);
    while (!b->stopping) {
        uint64_t now = bench_now_ns();
        if (apply_steps(b, &next_step, now) < 0)
            break;
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
    close_windows(&b->win, &b->cur_win, r->nwin, r->nwin, b->win_ns, r->win_iops, r->win_p99);
    close_windows(&b->win2, &b->cur_win2, r->nwin2, r->nwin2, b->win2_ns, r->win2_iops, r->win2_p99);
    close_segments(b, r->nseg);
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



void frontier_finish(struct frontier *f)
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
    if (!(f->p99_factor > 0))
        f->p99_factor = 1.25;
}

bool in_band(const struct frontier *f, double iops, double p99)
{
    return iops >= 0.95 * f->best_iops && p99 <= f->p99_factor * f->p99_knee;
}

/* Is holding depth @p w in the band, judged by the fixed-depth frontier (piecewise linear in log
 * depth between grid points)? The grid is sorted by depth. */
bool depth_in_band(const struct frontier *f, int w)
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
double ttc_windows(const struct frontier *f, const struct result *r, double window_s)
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
double ttc_depth(const struct frontier *f, const struct result *r)
{
    int last_bad = -1;
    for (int i = 0; i < r->nsamp; i++)
        if (!depth_in_band(f, r->samp[i].limit))
            last_bad = i;
    if (last_bad == r->nsamp - 1)
        return NEVER;
    return last_bad < 0 ? 0.0 : r->samp[last_bad + 1].t;
}

double share_windows_in_band(const struct frontier *f, const struct result *r, double from_s,
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
double settled_limit(const struct result *r, double from_s, int *lo, int *hi)
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

void print_trace(const struct result *r, const struct cfg *c)
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

void free_result(struct result *r)
{
    free(r->win_iops);
    free(r->win_p99);
    free(r->win2_iops);
    free(r->win2_p99);
    free(r->samp);
    memset(r, 0, sizeof(*r));
}

int parse_depths(const char *s, int *out)
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

void frontier_from_runs(struct frontier *f, const int *depths, int ndepths, const struct result *res, int repeats)
{
    double a[101], p5[101], p9[101];
    f->n = ndepths;
    for (int i = 0; i < ndepths; i++) {
        for (int k = 0; k < repeats; k++) {
            a[k] = res[i * repeats + k].iops;
            p5[k] = res[i * repeats + k].p50_us;
            p9[k] = res[i * repeats + k].p99_us;
        }
        f->pt[i] = (struct point){depths[i], median(a, repeats), median(p5, repeats), median(p9, repeats)};
    }
    frontier_finish(f);
}

void print_frontier(const struct frontier *f, const struct result *res, int repeats, const struct cfg *c)
{
    printf("%6s %9s %9s %9s %8s %9s  %s\n", "depth", "IOPS", "P50_us", "P99_us", "x/best", "in-band%", "");
    for (int i = 0; i < f->n; i++) {
        double share = 0;
        for (int k = 0; k < repeats; k++)
            share += share_windows_in_band(f, &res[i * repeats + k], c->warmup_s, c->window_s);
        printf("%6d %9.0f %9.1f %9.1f %8.3f %8.0f%%  %s%s%s\n", f->pt[i].depth, f->pt[i].iops, f->pt[i].p50,
               f->pt[i].p99, f->pt[i].iops / f->best_iops, 100.0 * share / repeats, i == f->knee ? "knee" : "",
               i == f->knee && i == f->best ? ", " : "", i == f->best ? "best" : "");
    }
    printf("band: IOPS >= %.0f (0.95 x best, depth %d) and P99 <= %.1f us (%.2f x knee depth %d's)\n",
           0.95 * f->best_iops, f->pt[f->best].depth, f->p99_factor * f->p99_knee, f->p99_factor,
           f->pt[f->knee].depth);
}

int open_bench_file(const char *prog, const char *file, uint64_t temp_size, const char *temp_dir, bool warm,
                    struct bench *b, char *dev_path, size_t dev_path_len)
{
    char temp_path[4096] = "";
    if (temp_size) {
        if (bench_make_random_temp(temp_dir, "auraio-frontier", temp_size, temp_path, sizeof(temp_path)) < 0)
            return 1;
        file = temp_path;
    }
    b->fd = open(file, O_RDONLY | O_DIRECT | O_CLOEXEC);
    int err = errno;
    snprintf(dev_path, dev_path_len, "%s", file);
    if (temp_path[0]) {
        /* Gone from the directory now, so a run stopped by a signal leaves no 1 GiB file behind;
         * the open descriptor keeps the data until exit. The directory names the disk. */
        unlink(temp_path);
        snprintf(dev_path, dev_path_len, "%s", dirname(temp_path));
    }
    if (b->fd < 0) {
        fprintf(stderr, "open %s with O_DIRECT: %s\n", file, strerror(err));
        return err == EINVAL ? 77 : 1; /* e.g. an old tmpfs: nothing to measure here */
    }
    struct stat st;
    if (fstat(b->fd, &st) < 0 || (uint64_t)st.st_size < BS) {
        fprintf(stderr, "%s: not a file of at least %u bytes\n", file, BS);
        return 1;
    }
    b->blocks = (uint64_t)st.st_size / BS;
    double warm_s = 0;
    if (warm) {
        int rc = warm_file(b->fd, (uint64_t)st.st_size, &warm_s);
        if (rc < 0) {
            fprintf(stderr, "warming %s: %s\n", file, strerror(-rc));
            return rc == -EINVAL ? 77 : 1;
        }
    }
    struct utsname un;
    uname(&un);
    printf("auraio %s: build %s (optimized: %s), auraio %s, kernel %s, %ld CPUs\n", prog, AURAIO_BENCH_BUILDTYPE,
           AURAIO_BENCH_OPTIMIZED, auraio_version(), un.release, sysconf(_SC_NPROCESSORS_ONLN));
    printf("file: %s, %llu MiB, 4 KiB random reads, O_DIRECT, warmed: %s", temp_size ? "(temp file)" : file,
           (unsigned long long)((uint64_t)st.st_size >> 20), warm ? "yes" : "no");
    if (warm)
        printf(" (full O_DIRECT read, %.1f s, %.0f MB/s)", warm_s,
               warm_s > 0 ? (double)st.st_size / warm_s / 1e6 : 0.0);
    printf("\n");
    return 0;
}
