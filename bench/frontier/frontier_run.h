/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The run loop shared by bench/frontier/frontier (issue #3: the uncapped disk) and
 * bench/frontier/capped (issue #9: the disk under the kernel's block throttle).
 *
 * One run = one engine, one application thread, a pool of buffers, "submit while
 * auraio_capacity() > 0" (also from callbacks): fixed runs and controller runs differ only in who
 * sets the limit. Latency is measured here (submit to callback), never taken from the library's
 * stats. A run may carry a read-IOPS cap schedule (applied from the main loop at its times through
 * a callback, so this module does not depend on the throttle) and then reports IOPS and P99 per
 * schedule segment. The frontier (fixed depths) and its band: IOPS >= 0.95 x the best fixed depth
 * and P99 <= p99_factor x the knee depth's P99 (the knee: the smallest depth within 5% of the best).
 */
#ifndef AURAIO_BENCH_FRONTIER_RUN_H
#define AURAIO_BENCH_FRONTIER_RUN_H

#include "auraio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BS 4096u
#define MAX_DEPTHS 64
#define MAX_SEGS 16
#define SAMPLE_NS 50000000ull /* limit/phase trace period: 50 ms */
#define NEVER (-1.0)

/* Median of n values (copied, the input keeps its order). NEVER (-1) sorts as +infinity, so a
 * median of convergence times with "never" in the upper half is itself "never". */
double median(const double *v, int n);
/* Nearest-rank @p q quantile of n values, sorted in place. */
double quantile_sort(double *v, int n, double q);

/* Latency histogram: exact below 128 ns, then 64 sub-buckets per power of two (1.6%), so a P99 per
 * window costs no sort and no per-sample memory. */
#define HIST_SUB 64
#define HIST_BUCKETS (128 + 64 * HIST_SUB)

struct hist {
    uint64_t count[HIST_BUCKETS];
    uint64_t total;
};

void hist_add(struct hist *h, uint64_t v);
/* @p p-quantile (0..1) in microseconds, bucket midpoint. */
double hist_quantile_us(const struct hist *h, double p);

/* From @c t seconds after the start of a run, the read-IOPS cap is @c iops (0 = uncapped). */
struct cap_step {
    double t;
    uint64_t iops;
};

struct cfg {
    const char *file;
    double warmup_s, seconds, window_s;
    double window2_s;    /* a second series of windows (e.g. the target check's 250 ms), 0 = none */
    int ctl_rings;       /* 0 = the library's default (one per CPU) */
    int fixed_rings;     /* rings for the fixed-depth runs */
    double p99_ms;       /* controller target, 0 = none */
    int single_issuer;
    int slack;           /* requests the app keeps queued beyond the limit (0: exactly capacity) */
    int stand_in;        /* > 0: the "controller" runs are this fixed depth (the check's own noise) */
    /* Cap schedule (nsched 0: none): set_cap(cap_ctx, iops) at each step's time; segment i runs from
     * step i to step i + 1 (the last to the end), measured from seg_settle_s after its start. */
    const struct cap_step *sched;
    int nsched;
    int (*set_cap)(void *ctx, uint64_t iops);
    void *cap_ctx;
    double seg_settle_s;
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
    int nwin2;          /* the same for window2_s */
    double *win2_iops, *win2_p99;
    int nsamp;
    struct sample *samp;
    int nseg;           /* cap schedule segments: IOPS and P99 after seg_settle_s */
    double seg_iops[MAX_SEGS], seg_p99[MAX_SEGS];
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
    uint64_t t0, meas_start, meas_end, win_ns, win2_ns;
    struct hist meas, all, win, win2, seg;
    uint64_t meas_ops, all_ops, seg_ops;
    int cur_win, cur_win2, cur_seg;
    const struct cfg *c;
    struct result *r;
    int outstanding;     /* submitted by us, callback not yet run */
    int slack, last_limit;
    uint64_t subs, subs_full, waits; /* app-side view of how often the limit binds */
};

double loadavg1(void);

/* depth > 0: the limit pinned at depth (split over cfg->fixed_rings); depth 0: the controller.
 * @return 0, 1 error, 3 no I/O completed, 77 io_uring unavailable. */
int run_one(const struct cfg *c, struct bench *b, int depth, uint64_t seed, struct result *r);
void free_result(struct result *r);

struct point {
    int depth;
    double iops, p50, p99; /* medians over repeats */
};

struct frontier {
    struct point pt[MAX_DEPTHS];
    int n;
    double p99_factor; /* the band's P99 bound in knee P99s (0: 1.25, issue #3's) */
    double best_iops;
    int best, knee; /* indices */
    double p99_knee;
    /* The knee depth's own window-P99 noise: the 95th percentile of its fixed runs' window P99s
     * (0: not measured). A controller window is judged out of band only beyond max(band, this). */
    double win_p99_noise;
};

/* Best and knee of f->pt[0..n) (sorted by depth). */
void frontier_finish(struct frontier *f);
/* Median IOPS/P50/P99 per depth of res[i * repeats + k] (i < ndepths) into f, then finish. */
void frontier_from_runs(struct frontier *f, const int *depths, int ndepths, const struct result *res, int repeats);
bool in_band(const struct frontier *f, double iops, double p99);
/* Is holding depth @p w in the band, judged by the frontier (piecewise linear in log depth)? */
bool depth_in_band(const struct frontier *f, int w);
/* Start of the first window after which every window is in the band; NEVER if the last is not. */
double ttc_windows(const struct frontier *f, const struct result *r, double window_s);
/* The same on the 50 ms limit trace, with depth_in_band. */
double ttc_depth(const struct frontier *f, const struct result *r);
double share_windows_in_band(const struct frontier *f, const struct result *r, double from_s, double window_s);
/* The median limit from @p from_s on (the last 12.8 s at most), and its range. */
double settled_limit(const struct result *r, double from_s, int *lo, int *hi);
void print_trace(const struct result *r, const struct cfg *c);
/* The frontier table with each depth's share of windows in the band; the knee and best marked. */
void print_frontier(const struct frontier *f, const struct result *res, int repeats, const struct cfg *c);

/* "1,4,16" -> sorted unique depths; -1 on a bad list. */
int parse_depths(const char *s, int *out);

/*
 * Open @p file (or create a temp file of @p temp_size in @p temp_dir) with O_DIRECT into b->fd,
 * unlink a temp file at once, warm it with one full read, and print the header lines (build,
 * kernel, file). @p dev_path receives a path on the same disk (the file or the temp directory).
 * @return 0, or the exit status (1 error, 77 O_DIRECT unavailable).
 */
int open_bench_file(const char *prog, const char *file, uint64_t temp_size, const char *temp_dir, bool warm,
                    struct bench *b, char *dev_path, size_t dev_path_len);

#endif
