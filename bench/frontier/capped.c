/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real-device checks of issue #9 on a capped device: this disk under the kernel's block
 * throttle (bench/throttle, doc/throttle.md), with the fixed-depth frontier measured in the same
 * run under the same cap, so the knee is computed, never assumed. The run loop is frontier.c's
 * (frontier_run.h): one thread, "submit while auraio_capacity() > 0", latency submit to callback.
 *
 *   --cap C                  every run under a read-IOPS cap of C: the frontier (knee = the smallest
 *                            fixed depth within 5% of the best), the controller's point, the check
 *                            "IOPS >= 0.95 x best and P99 <= 2 x the knee's P99", convergence times
 *   --cap C --p99-target L   targets (ms, comma list) under C: share of 250 ms windows meeting the
 *                            target >= 95%, IOPS >= 0.9 x the best fixed depth meeting it
 *   --cap-schedule S         "T:IOPS,..." (0 = uncapped) changes the cap mid-run in the controller
 *                            run; the frontier under each distinct level first (interleaved); per
 *                            segment: held depth, IOPS, P99, the band, time back in the band
 *
 * Runs are interleaved: each repeat is a shuffled order of every (cap level, depth) and the
 * controller runs, so drift of this host-backed disk hits all alike. The throttle group is created
 * once after the file is ready and removed on every exit path, signals included.
 *
 * Exit status: 0 ran (whatever the verdicts; --strict: 4 when one FAILs), 1 error, 2 usage,
 * 3 a run completed no I/O, 77 io_uring, O_DIRECT or the throttle unavailable (the reason printed).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "frontier_run.h"

#include "bench_util.h"
#include "throttle.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LEVELS 8
#define MAX_TARGETS 8
#define MAX_JOBS (MAX_LEVELS * MAX_DEPTHS + MAX_TARGETS + 1)

static throttle_t *g_thr; /* the one group, for the signal handler */

static void on_signal(int sig)
{
    throttle_release(g_thr); /* async-signal-safe; destroy later only frees */
    signal(sig, SIG_DFL);
    raise(sig);
}

static int set_cap(void *ctx, uint64_t iops)
{
    return throttle_set_read_iops(ctx, iops);
}

/* One run of a repeat: fixed depth under a level, or the controller (depth 0) with target t
 * (-1: none) under a level, or the controller under the cap schedule (level -1). */
struct job {
    int level, depth, target;
};

struct opts {
    struct cfg c;
    int depths[MAX_DEPTHS], ndepths;
    int repeats;
    uint64_t seed;
    bool quiet, strict;
    uint64_t cap;
    bool have_cap;
    struct cap_step sched[MAX_SEGS];
    int nsched;
    double sched_end;
    double targets[MAX_TARGETS];
    int ntargets;
    uint64_t levels[MAX_LEVELS];
    int nlevels;
    double win_target_s;
};

static const char *fmt_s(char *buf, size_t len, double t)
{
    snprintf(buf, len, t < 0 ? "never" : "%.2f s", t);
    return buf;
}

static const char *fmt_cap(char *buf, size_t len, uint64_t iops)
{
    snprintf(buf, len, iops ? "%llu" : "uncapped", (unsigned long long)iops);
    return buf;
}

/* ------------------------------------------------------------------------------------------- */
/* Settling: when did the held depth and the windowed P99 enter the band and stay there */

/* Over [from, to) s of run r: the time after @p from from which every 50 ms limit sample is a
 * depth in f's band (*t_depth), and every whole window's P99 is within the band's bound and the
 * window saw completions (*t_win). NEVER when the last sample or window is out. */
static void settle_times(const struct frontier *f, const struct result *r, const struct cfg *c, double from,
                         double to, double *t_depth, double *t_win)
{
    double t = 0;
    bool any = false, last_bad = false;
    for (int i = 0; i < r->nsamp; i++) {
        if (r->samp[i].t + 1e-9 < from || r->samp[i].t >= to - 1e-9)
            continue;
        any = true;
        last_bad = !depth_in_band(f, r->samp[i].limit);
        if (last_bad)
            t = r->samp[i].t + SAMPLE_NS / 1e9 - from;
    }
    *t_depth = !any || last_bad ? NEVER : t;
    t = 0;
    any = last_bad = false;
    for (int i = 0; i < r->nwin; i++) {
        double ws = i * c->window_s, we = ws + c->window_s;
        if (ws + 1e-9 < from || we > to + 1e-9)
            continue;
        any = true;
        double bound = f->p99_factor * f->p99_knee;
        last_bad = r->win_iops[i] <= 0 || r->win_p99[i] > (bound > f->win_p99_noise ? bound : f->win_p99_noise);
        if (last_bad)
            t = we - from;
    }
    *t_win = !any || last_bad ? NEVER : t;
}

/* The 95th percentile of the window P99s after warm-up over @p repeats fixed runs: how far a
 * window's P99 strays when the depth is exactly the knee (a 200 ms window at 10k IOPS has 20
 * samples above its P99, so its P99 moves by tens of percent on its own). */
static double window_p99_noise(const struct result *runs, int repeats, const struct cfg *c)
{
    double v[1024];
    int n = 0;
    for (int k = 0; k < repeats; k++)
        for (int i = 0; i < runs[k].nwin && n < 1024; i++)
            if (i * c->window_s + 1e-9 >= c->warmup_s && runs[k].win_iops[i] > 0)
                v[n++] = runs[k].win_p99[i];
    return quantile_sort(v, n, 0.95);
}

/* When the knee depth's own fixed runs, counted from t = 0 with their warm-up, have every window
 * P99 in band (median over @p repeats): how long the capped device itself takes to become the
 * device the band describes, the floor under any controller's convergence time. */
static double knee_settle(const struct frontier *f, const struct result *runs, int repeats, const struct cfg *c)
{
    double tw[101], td;
    for (int k = 0; k < repeats; k++)
        settle_times(f, &runs[k], c, 0, c->warmup_s + c->seconds, &td, &tw[k]);
    return median(tw, repeats);
}

/* The median limit over [from, to). */
static double held_depth(const struct result *r, double from, double to)
{
    double v[1024];
    int n = 0;
    for (int i = 0; i < r->nsamp && n < 1024; i++)
        if (r->samp[i].t + 1e-9 >= from && r->samp[i].t < to - 1e-9)
            v[n++] = r->samp[i].limit;
    return n ? median(v, n) : 0.0;
}

static double max_never(double a, double b)
{
    return a < 0 || b < 0 ? NEVER : (a > b ? a : b);
}

/* The grid depths in the band, e.g. "4,8". */
static void band_depths(const struct frontier *f, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < f->n && at < len; i++)
        if (depth_in_band(f, f->pt[i].depth))
            at += (size_t)snprintf(buf + at, len - at, "%s%d", at ? "," : "", f->pt[i].depth);
    if (!buf[0])
        snprintf(buf, len, "none");
}

/* ------------------------------------------------------------------------------------------- */
/* Running the jobs */

static int level_of(const struct opts *o, uint64_t iops)
{
    for (int i = 0; i < o->nlevels; i++)
        if (o->levels[i] == iops)
            return i;
    return -1;
}

static int build_jobs(const struct opts *o, struct job *jobs)
{
    int n = 0;
    for (int l = 0; l < o->nlevels; l++)
        for (int i = 0; i < o->ndepths; i++)
            jobs[n++] = (struct job){l, o->depths[i], -1};
    if (o->nsched)
        jobs[n++] = (struct job){-1, 0, -1};
    else if (o->ntargets)
        for (int t = 0; t < o->ntargets; t++)
            jobs[n++] = (struct job){0, 0, t};
    else
        jobs[n++] = (struct job){0, 0, -1};
    return n;
}

/* The configuration of one job's run. */
static struct cfg job_cfg(const struct opts *o, const struct job *j)
{
    struct cfg c = o->c;
    if (j->target >= 0) {
        c.p99_ms = o->targets[j->target];
        c.window2_s = o->win_target_s;
    }
    if (j->level < 0) {
        c.warmup_s = 0;
        c.seconds = o->sched_end;
        c.sched = o->sched;
        c.nsched = o->nsched;
        c.set_cap = set_cap;
        c.cap_ctx = g_thr;
        c.seg_settle_s = 1.5;
    }
    return c;
}

static void print_run(const struct opts *o, const struct job *j, const struct result *r, int run_no, int rep)
{
    char cb[32];
    printf("run %3d rep %d ", run_no, rep + 1);
    if (j->level < 0)
        printf("schedule   ");
    else
        printf("cap %8s ", fmt_cap(cb, sizeof(cb), o->levels[j->level]));
    if (j->depth)
        printf("depth %4d: ", j->depth);
    else if (j->target >= 0)
        printf("CONTROLLER target %.2f ms: ", o->targets[j->target]);
    else
        printf("CONTROLLER: ");
    printf("%7.0f IOPS  p50 %7.1f us  p99 %8.1f us  (load %.2f)\n", r->iops, r->p50_us, r->p99_us, r->load1);
    fflush(stdout);
}

/* Every job @p repeats times, each repeat in a fresh shuffled order. res[job * repeats + rep]. */
static int run_jobs(const struct opts *o, struct bench *b, const struct job *jobs, int njobs, struct result *res)
{
    uint64_t rng = o->seed;
    int order[MAX_JOBS], run_no = 0;
    for (int rep = 0; rep < o->repeats; rep++) {
        for (int i = 0; i < njobs; i++)
            order[i] = i;
        for (int i = njobs - 1; i > 0; i--) {
            int k = (int)(bench_splitmix64(&rng) % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[k];
            order[k] = t;
        }
        for (int k = 0; k < njobs; k++) {
            const struct job *j = &jobs[order[k]];
            struct cfg c = job_cfg(o, j);
            uint64_t cap = j->level >= 0 ? o->levels[j->level] : o->sched[0].iops;
            int rc = throttle_set_read_iops(g_thr, cap);
            if (rc < 0) {
                fprintf(stderr, "capped: setting the cap: %s (%s)\n", strerror(-rc), throttle_last_error());
                return 1;
            }
            struct result *r = &res[order[k] * o->repeats + rep];
            rc = run_one(&c, b, j->depth, o->seed * 1000003u + (uint64_t)++run_no, r);
            if (rc)
                return rc;
            print_run(o, j, r, run_no, rep);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* The three checks */

static void trace_ctl(const struct opts *o, const struct cfg *c, const struct result *r, int rep, double held,
                      double td, double tw)
{
    char a[32], w[32];
    printf("\ncontroller rep %d: %.0f IOPS, p50 %.1f us, p99 %.1f us; held %.0f; final phase %s; in band from: "
           "held depth %s, %.0f ms window P99 %s\n",
           rep + 1, r->iops, r->p50_us, r->p99_us, held, auraio_phase_name(r->samp[r->nsamp - 1].phase),
           fmt_s(a, sizeof(a), td), c->window_s * 1000, fmt_s(w, sizeof(w), tw));
    if (!o->quiet)
        print_trace(r, c);
}

/* Check 1: the controller's point under the cap against the frontier under the cap. */
static bool check_capped(const struct opts *o, const struct frontier *f, const struct result *ctl)
{
    double ci[101], c9[101], td[101], tw[101], hd[101];
    struct cfg c = o->c;
    for (int k = 0; k < o->repeats; k++) {
        const struct result *r = &ctl[k];
        ci[k] = r->iops;
        c9[k] = r->p99_us;
        hd[k] = held_depth(r, c.warmup_s, 1e9);
        settle_times(f, r, &c, 0, c.warmup_s + c.seconds, &td[k], &tw[k]);
        trace_ctl(o, &c, r, k, hd[k], td[k], tw[k]);
    }
    double iops = median(ci, o->repeats), p99 = median(c9, o->repeats), held = median(hd, o->repeats);
    double ttd = median(td, o->repeats), ttw = median(tw, o->repeats), ttc = max_never(ttd, ttw);
    double xr = iops / f->best_iops, pr = p99 / f->p99_knee;
    bool pass = xr >= 0.95 && pr <= 2.0, conv = ttc >= 0 && ttc <= 1.0;
    char cb[32], a[32], w[32], m[32];
    fmt_cap(cb, sizeof(cb), o->cap);
    printf("\nCONTROLLER under cap %s (medians of %d): %.0f IOPS (%.3f x best), p99 %.1f us (%.2f x knee depth "
           "%d's %.1f us), held depth %.0f\n",
           cb, o->repeats, iops, xr, p99, pr, f->pt[f->knee].depth, f->p99_knee, held);
    printf("convergence from t=0 (enter the band and stay): held depth %s, %.0f ms window P99 %s, both %s\n",
           fmt_s(a, sizeof(a), ttd), c.window_s * 1000, fmt_s(w, sizeof(w), ttw), fmt_s(m, sizeof(m), ttc));
    printf("CHECK capped cap=%s: IOPS %.3f x best (>= 0.95) %s, P99 %.2f x knee's (<= 2) %s: %s\n", cb, xr,
           xr >= 0.95 ? "ok" : "MISS", pr, pr <= 2.0 ? "ok" : "MISS", pass ? "PASS" : "FAIL");
    printf("CHECK converge cap=%s: in band (held depth and window P99) from %s (<= 1 s): %s\n", cb, m,
           conv ? "PASS" : "FAIL");
    printf("RESULT check=capped cap=%llu best_depth=%d best_iops=%.0f knee_depth=%d knee_p99_us=%.1f ctl_iops=%.0f "
           "ctl_p99_us=%.1f held=%.0f iops_ratio=%.3f p99_ratio=%.3f ttc_depth_s=%.2f ttc_window_s=%.2f "
           "verdict=%s converge=%s\n",
           (unsigned long long)o->cap, f->pt[f->best].depth, f->best_iops, f->pt[f->knee].depth, f->p99_knee, iops,
           p99, held, xr, pr, ttd, ttw, pass ? "PASS" : "FAIL", conv ? "PASS" : "FAIL");
    return pass && conv;
}

/* Share of a run's target windows from @p from s on whose P99 met @p t_ms. */
static double share_met(const struct result *r, double win_s, double from, double t_ms)
{
    int n = 0, ok = 0;
    for (int i = 0; i < r->nwin2; i++) {
        if (i * win_s + 1e-9 < from)
            continue;
        n++;
        ok += r->win2_iops[i] > 0 && r->win2_p99[i] <= t_ms * 1000;
    }
    return n ? (double)ok / n : 0.0;
}

/* Check 3: each P99 target under the cap. */
static bool check_target(const struct opts *o, const struct frontier *f, int t, const struct result *ctl)
{
    double t_ms = o->targets[t];
    int best = -1;
    for (int i = 0; i < f->n; i++)
        if (f->pt[i].p99 <= t_ms * 1000 && (best < 0 || f->pt[i].iops > f->pt[best].iops))
            best = i;
    double ci[101], c9[101], sh[101], sh0[101], hd[101];
    struct cfg c = job_cfg(o, &(struct job){0, 0, t});
    int infeasible = 0;
    for (int k = 0; k < o->repeats; k++) {
        const struct result *r = &ctl[k];
        ci[k] = r->iops;
        c9[k] = r->p99_us;
        sh[k] = share_met(r, c.window2_s, c.warmup_s, t_ms);
        sh0[k] = share_met(r, c.window2_s, 0, t_ms);
        hd[k] = held_depth(r, c.warmup_s, 1e9);
        infeasible += r->samp[r->nsamp - 1].infeasible;
        printf("\ncontroller target %.2f ms rep %d: %.0f IOPS, p99 %.1f us, held %.0f, %.0f%% of %.0f ms windows "
               "met the target after warm-up (%.0f%% from t=0), final phase %s%s\n",
               t_ms, k + 1, r->iops, r->p99_us, hd[k], 100 * sh[k], c.window2_s * 1000, 100 * sh0[k],
               auraio_phase_name(r->samp[r->nsamp - 1].phase), r->samp[r->nsamp - 1].infeasible ? " (infeasible)" : "");
        if (!o->quiet)
            print_trace(r, &c);
    }
    char cb[32];
    fmt_cap(cb, sizeof(cb), o->cap);
    double iops = median(ci, o->repeats), share = median(sh, o->repeats);
    if (best < 0) {
        printf("CHECK target %.2f ms cap=%s: no fixed depth meets it (not feasible here); controller flagged "
               "infeasible in %d of %d runs: SKIP\n", t_ms, cb, infeasible, o->repeats);
        return true;
    }
    double xr = iops / f->pt[best].iops;
    bool pass = share >= 0.95 && xr >= 0.9;
    printf("TARGET %.2f ms under cap %s: best fixed depth meeting it %d (%.0f IOPS, p99 %.1f us); controller "
           "(medians of %d) %.0f IOPS, p99 %.1f us, held %.0f, windows met %.0f%%\n",
           t_ms, cb, f->pt[best].depth, f->pt[best].iops, f->pt[best].p99, o->repeats, iops,
           median(c9, o->repeats), median(hd, o->repeats), 100 * share);
    printf("CHECK target %.2f ms cap=%s: %.0f ms windows meeting it %.1f%% (>= 95%%) %s, IOPS %.3f x best fixed "
           "depth meeting it (>= 0.9) %s: %s\n",
           t_ms, cb, c.window2_s * 1000, 100 * share, share >= 0.95 ? "ok" : "MISS", xr, xr >= 0.9 ? "ok" : "MISS",
           pass ? "PASS" : "FAIL");
    printf("RESULT check=target cap=%llu target_ms=%.2f fixed_depth=%d fixed_iops=%.0f ctl_iops=%.0f ctl_p99_us=%.1f "
           "share=%.3f iops_ratio=%.3f verdict=%s\n",
           (unsigned long long)o->cap, t_ms, f->pt[best].depth, f->pt[best].iops, iops, median(c9, o->repeats), share,
           xr, pass ? "PASS" : "FAIL");
    return pass;
}

/* Check 2: per segment of the schedule, against the frontier under that segment's cap. */
static bool check_schedule(const struct opts *o, const struct frontier *fl, const struct result *ctl)
{
    struct cfg c = job_cfg(o, &(struct job){-1, 0, -1});
    double back[MAX_SEGS][101];
    for (int k = 0; k < o->repeats; k++) {
        const struct result *r = &ctl[k];
        printf("\ncontroller schedule rep %d: %.0f IOPS over the run, p99 %.1f us; final phase %s\n", k + 1, r->iops,
               r->p99_us, auraio_phase_name(r->samp[r->nsamp - 1].phase));
        if (!o->quiet)
            print_trace(r, &c);
        printf("%3s %11s %9s %6s %8s %7s %9s %7s %11s %8s %8s %8s %8s\n", "seg", "time s", "cap", "held", "IOPS",
               "x/best", "P99_us", "x/knee", "band", "in-band", "t_depth", "t_p99w", "t_back");
        for (int s = 0; s < o->nsched; s++) {
            const struct frontier *f = &fl[level_of(o, o->sched[s].iops)];
            double from = o->sched[s].t, to = s + 1 < o->nsched ? o->sched[s + 1].t : o->sched_end;
            double held = held_depth(r, from + c.seg_settle_s, to), td, tw;
            settle_times(f, r, &c, from, to, &td, &tw);
            back[s][k] = max_never(td, tw);
            bool ok = in_band(f, r->seg_iops[s], r->seg_p99[s]) && depth_in_band(f, (int)lround(held));
            char cb[32], bd[64], a[16], w[16], m[16];
            band_depths(f, bd, sizeof(bd));
            printf("%3d %5.1f-%-5.1f %9s %6.0f %8.0f %7.3f %9.1f %7.2f %11s %8s %8s %8s %8s\n", s, from, to,
                   fmt_cap(cb, sizeof(cb), o->sched[s].iops), held, r->seg_iops[s],
                   r->seg_iops[s] / f->best_iops, r->seg_p99[s], r->seg_p99[s] / f->p99_knee, bd, ok ? "yes" : "NO",
                   fmt_s(a, sizeof(a), td), fmt_s(w, sizeof(w), tw), fmt_s(m, sizeof(m), back[s][k]));
        }
    }
    printf("(held: median limit after %.1f s into the segment; IOPS, P99 over the same part; band: grid depths "
           "with IOPS >= 0.95 x best and P99 <= 2 x the knee's under that cap; t_*: time after the change from "
           "which the held depth / every %.0f ms window P99 stays in band; t_back: both)\n",
           c.seg_settle_s, c.window_s * 1000);
    bool pass = true;
    printf("\nSCHEDULE (medians of %d runs): time back in band after each change:", o->repeats);
    for (int s = 0; s < o->nsched; s++) {
        double t = median(back[s], o->repeats);
        char a[16];
        printf(" seg %d %s;", s, fmt_s(a, sizeof(a), t));
        if (s > 0 && !(t >= 0 && t <= 1.5))
            pass = false;
    }
    printf("\nCHECK cap-schedule: after every change back in band (held depth and window P99) within 1.5 s "
           "and staying: %s\n", pass ? "PASS" : "FAIL");
    return pass;
}

/* ------------------------------------------------------------------------------------------- */
/* Options */

static int parse_schedule(const char *s, struct opts *o)
{
    char *copy = strdup(s), *save = NULL;
    o->nsched = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':'), *end;
        if (!colon || o->nsched >= MAX_SEGS)
            goto bad;
        double t = strtod(tok, &end);
        long long iops = strtoll(colon + 1, &end, 10);
        if (*end || iops < 0 || !(t >= 0) || (o->nsched ? t <= o->sched[o->nsched - 1].t : t != 0))
            goto bad;
        o->sched[o->nsched++] = (struct cap_step){t, (uint64_t)iops};
    }
    free(copy);
    return o->nsched > 0 ? 0 : -1;
bad:
    free(copy);
    return -1;
}

static int parse_targets(const char *s, struct opts *o)
{
    char *copy = strdup(s), *save = NULL;
    o->ntargets = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        double t = atof(tok);
        if (!(t > 0) || o->ntargets >= MAX_TARGETS) {
            free(copy);
            return -1;
        }
        o->targets[o->ntargets++] = t;
    }
    free(copy);
    return o->ntargets > 0 ? 0 : -1;
}

static void usage(FILE *to, const char *argv0)
{
    fprintf(to,
            "usage: %s (--file PATH | --temp-size SIZE) (--cap IOPS [--p99-target MS,...] | --cap-schedule S)\n"
            "  --cap IOPS          read-IOPS cap for every run (0 = uncapped)\n"
            "  --p99-target LIST   with --cap: controller P99 targets in ms (e.g. 1,2,5), checked instead of\n"
            "                      the knee: 250 ms windows meeting it >= 95%%, IOPS >= 0.9 x best meeting it\n"
            "  --cap-schedule S    \"0:0,5:20000,10:5000,15:0\" (seconds:IOPS) for the controller run; the\n"
            "                      frontier is measured under each distinct level first\n"
            "  --schedule-end S    length of the schedule run (default: last time + the last spacing)\n"
            "  --file, --temp-size SIZE, --temp-dir DIR, --no-warm   the file, as in frontier\n"
            "  --depths LIST       fixed depths (default 1,2,4,8,16,32,64,128)\n"
            "  --seconds S         measured time per run (default 2); --warmup S before it (default 1)\n"
            "  --repeats R         rounds of every run, interleaved, medians reported (default 2)\n"
            "  --window-ms MS      windows for the P99 convergence test (default 200: two throttle slices)\n"
            "  --target-window-ms MS  windows for the target check (default 250)\n"
            "  --rings N           controller ring_count (default 0 = one per CPU); --seed N\n"
            "  --fixed-rings N     fixed runs' ring_count (default 1), each depth split evenly over them (it\n"
            "                      must divide every depth): the controller's own setup, like for like\n"
            "  --quiet             no per-run traces; --strict  exit 4 when a check FAILs\n",
            argv0);
}

static int parse_opts(int argc, char **argv, struct opts *o, uint64_t *temp_size, const char **temp_dir,
                      bool *warm)
{
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'},       {"temp-size", required_argument, NULL, 't'},
        {"temp-dir", required_argument, NULL, 'T'},   {"no-warm", no_argument, NULL, 'W'},
        {"depths", required_argument, NULL, 'd'},     {"seconds", required_argument, NULL, 's'},
        {"warmup", required_argument, NULL, 'w'},     {"repeats", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 'x'},       {"rings", required_argument, NULL, 'R'},
        {"fixed-rings", required_argument, NULL, 'F'},
        {"window-ms", required_argument, NULL, 'm'},  {"target-window-ms", required_argument, NULL, 'M'},
        {"cap", required_argument, NULL, 'c'},        {"cap-schedule", required_argument, NULL, 'S'},
        {"schedule-end", required_argument, NULL, 'E'}, {"p99-target", required_argument, NULL, 'p'},
        {"quiet", no_argument, NULL, 'q'},            {"strict", no_argument, NULL, 'X'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
    };
    int opt;
    const char *bad = NULL;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'f': o->c.file = optarg; break;
        case 't': *temp_size = bench_parse_size(optarg); break;
        case 'T': *temp_dir = optarg; break;
        case 'W': *warm = false; break;
        case 'd': o->ndepths = parse_depths(optarg, o->depths); if (o->ndepths < 1) bad = "--depths"; break;
        case 's': o->c.seconds = atof(optarg); break;
        case 'w': o->c.warmup_s = atof(optarg); break;
        case 'r': o->repeats = atoi(optarg); if (o->repeats < 1 || o->repeats > 101) bad = "--repeats"; break;
        case 'x': o->seed = strtoull(optarg, NULL, 0); break;
        case 'R': o->c.ctl_rings = atoi(optarg); if (o->c.ctl_rings < 0) bad = "--rings"; break;
        case 'F': o->c.fixed_rings = atoi(optarg); if (o->c.fixed_rings < 1) bad = "--fixed-rings"; break;
        case 'm': o->c.window_s = atof(optarg) / 1000.0; break;
        case 'M': o->win_target_s = atof(optarg) / 1000.0; break;
        case 'c': o->cap = strtoull(optarg, NULL, 10); o->have_cap = true; break;
        case 'S': if (parse_schedule(optarg, o) < 0) bad = "--cap-schedule"; break;
        case 'E': o->sched_end = atof(optarg); break;
        case 'p': if (parse_targets(optarg, o) < 0) bad = "--p99-target"; break;
        case 'q': o->quiet = true; break;
        case 'X': o->strict = true; break;
        case 'h': usage(stdout, argv[0]); exit(0);
        default: usage(stderr, argv[0]); return 2;
        }
    }
    if (!bad && (!o->c.file) == (!*temp_size))
        bad = "--file or --temp-size (exactly one)";
    if (!bad && o->have_cap == (o->nsched > 0))
        bad = "--cap or --cap-schedule (exactly one)";
    if (!bad && o->ntargets && !o->have_cap)
        bad = "--p99-target (needs --cap)";
    if (!bad && (!(o->c.seconds > 0) || !(o->c.warmup_s >= 0)))
        bad = "--seconds/--warmup";
    if (!bad && (!(o->c.window_s >= 0.001) || !(o->win_target_s >= 0.001)))
        bad = "--window-ms/--target-window-ms";
    if (o->nsched && o->sched_end == 0)
        o->sched_end = o->sched[o->nsched - 1].t +
                       (o->nsched > 1 ? o->sched[o->nsched - 1].t - o->sched[o->nsched - 2].t : 5.0);
    if (!bad && o->nsched && !(o->sched_end > o->sched[o->nsched - 1].t))
        bad = "--schedule-end";
    for (int i = 0; !bad && i < o->ndepths; i++)
        if (o->depths[i] % o->c.fixed_rings)
            bad = "--depths (every depth a multiple of --fixed-rings: each ring holds an equal share)";
    if (bad) {
        fprintf(stderr, "capped: bad or missing %s (see --help)\n", bad);
        return 2;
    }
    if (o->have_cap)
        o->levels[o->nlevels++] = o->cap;
    for (int s = 0; s < o->nsched; s++)
        if (level_of(o, o->sched[s].iops) < 0 && o->nlevels < MAX_LEVELS)
            o->levels[o->nlevels++] = o->sched[s].iops;
    return 0;
}

/* ------------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static struct opts o = {
        .c = {.warmup_s = 1.0, .seconds = 2.0, .window_s = 0.2, .fixed_rings = 1},
        .repeats = 2,
        .seed = 1,
        .win_target_s = 0.25,
    };
    uint64_t temp_size = 0;
    const char *temp_dir = NULL;
    bool warm = true;
    o.ndepths = parse_depths("1,2,4,8,16,32,64,128", o.depths);
    int status = parse_opts(argc, argv, &o, &temp_size, &temp_dir, &warm);
    if (status)
        return status;

    struct bench b = {.fd = -1};
    struct result *res = NULL;
    struct job jobs[MAX_JOBS];
    int njobs = build_jobs(&o, jobs);
    char dev[4096], why[256];
    status = open_bench_file("capped", o.c.file, temp_size, temp_dir, warm, &b, dev, sizeof(dev));
    if (status)
        goto out;
    if (!throttle_available(dev, why, sizeof(why))) {
        fprintf(stderr, "capped: no block throttle for %s: %s\n", dev, why);
        printf("SKIP: no block throttle: %s\n", why);
        status = 77;
        goto out;
    }
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], on_signal);
    int rc = throttle_create(&g_thr, dev);
    if (rc < 0) {
        fprintf(stderr, "capped: throttle_create: %s (%s)\n", strerror(-rc), throttle_last_error());
        g_thr = NULL;
        status = 77;
        goto out;
    }
    printf("throttle: %s (cgroup v%d), read-IOPS cap levels:", throttle_group_path(g_thr),
           throttle_kind(g_thr) == THROTTLE_CGROUP_V1 ? 1 : 2);
    for (int l = 0; l < o.nlevels; l++) {
        char cb[32];
        printf(" %s", fmt_cap(cb, sizeof(cb), o.levels[l]));
    }
    printf("\nplan: %d runs x %d repeats, shuffled per repeat (seed %llu): %d fixed depths per level, ", njobs,
           o.repeats, (unsigned long long)o.seed, o.ndepths);
    if (o.nsched)
        printf("the controller under the schedule (%.1f s)\n", o.sched_end);
    else
        printf("%d controller run%s; per run %.2f s warm-up (excluded) + %.2f s measured\n",
               o.ntargets ? o.ntargets : 1, o.ntargets > 1 ? "s" : "", o.c.warmup_s, o.c.seconds);
    printf("fixed: disable_adaptive, %d ring%s, limit = depth%s; controller: ring_count %d%s\n", o.c.fixed_rings,
           o.c.fixed_rings > 1 ? "s" : "", o.c.fixed_rings > 1 ? " split evenly" : "", o.c.ctl_rings,
           o.c.ctl_rings ? "" : " (one per CPU)");
    printf("load average at start: %.2f\n\n", loadavg1());
    fflush(stdout);

    status = 1;
    res = calloc((size_t)njobs * (size_t)o.repeats, sizeof(*res));
    if (!res)
        goto out;
    status = run_jobs(&o, &b, jobs, njobs, res);
    if (status)
        goto out;

    struct frontier fl[MAX_LEVELS];
    for (int l = 0; l < o.nlevels; l++) {
        const struct result *lr = &res[l * o.ndepths * o.repeats];
        char cb[32];
        fl[l] = (struct frontier){.p99_factor = 2.0};
        frontier_from_runs(&fl[l], o.depths, o.ndepths, &res[l * o.ndepths * o.repeats], o.repeats);
        printf("\nFRONTIER under cap %s (fixed depths, medians of %d; knee = smallest depth within 5%% of best)\n",
               fmt_cap(cb, sizeof(cb), o.levels[l]), o.repeats);
        print_frontier(&fl[l], lr, o.repeats, &o.c);
        fl[l].win_p99_noise = window_p99_noise(&lr[fl[l].knee * o.repeats], o.repeats, &o.c);
        printf("window P99 noise: the knee depth's own %.0f ms windows reach %.1f us (95th percentile); a "
               "controller window is out of band above %.1f us\n", o.c.window_s * 1000, fl[l].win_p99_noise,
               fmax(fl[l].win_p99_noise, fl[l].p99_factor * fl[l].p99_knee));
        double knee_tw = knee_settle(&fl[l], &lr[fl[l].knee * o.repeats], o.repeats, &o.c);
        char kb[32];
        printf("the knee depth itself, fixed, from t=0 (its warm-up included): every window P99 in band from %s "
               "(median of %d; the throttle's first second)\n", fmt_s(kb, sizeof(kb), knee_tw), o.repeats);
        printf("RESULT check=frontier cap=%llu best_depth=%d best_iops=%.0f knee_depth=%d knee_p99_us=%.1f "
               "knee_ttc_window_s=%.2f\n",
               (unsigned long long)o.levels[l], fl[l].pt[fl[l].best].depth, fl[l].best_iops,
               fl[l].pt[fl[l].knee].depth, fl[l].p99_knee, knee_tw);
    }
    printf("(in-band%%: share of %.0f ms windows after warm-up with IOPS and P99 in the band: a fixed depth's "
           "own noise)\n", o.c.window_s * 1000);

    const struct result *ctl = &res[o.nlevels * o.ndepths * o.repeats];
    bool pass = true;
    if (o.nsched)
        pass = check_schedule(&o, fl, ctl);
    else if (o.ntargets)
        for (int t = 0; t < o.ntargets; t++)
            pass &= check_target(&o, &fl[0], t, &ctl[t * o.repeats]);
    else
        pass = check_capped(&o, &fl[0], ctl);
    status = o.strict && !pass ? 4 : 0;
out:
    if (g_thr) {
        rc = throttle_destroy(g_thr);
        g_thr = NULL;
        if (rc < 0) {
            fprintf(stderr, "capped: removing the throttle group: %s (%s)\n", strerror(-rc), throttle_last_error());
            status = status ? status : 1;
        }
    }
    if (res) {
        for (int i = 0; i < njobs * o.repeats; i++)
            free_result(&res[i]);
        free(res);
    }
    if (b.fd >= 0)
        close(b.fd);
    return status;
}
