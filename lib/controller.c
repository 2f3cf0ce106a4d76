/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The depth controller: a model of the device's latency curve. Little's law (W = X R) makes the
 * effective latency W / X of a saturated device a line in the depth W (collisions over c + 1
 * channels: R = (W + c) / X_inf; a rate cap C: R = W / C past its knee, flat below it), so the
 * knee is placed where a line fitted to the measured depths around it reaches the throughput
 * line, not by telling 2% throughput steps apart. doc/controller.md describes the algorithm,
 * its state machine and where it fails; this file follows that description.
 *
 * Search: double the depth while a doubling pays, halve (or jump to the bandwidth-delay
 * product) while the shallowest point is still on the plateau, fit the knee, verify it with
 * one long epoch. Hold: a noise-calibrated change detector on the held throughput; a loss
 * rescales the depth by the change of the bandwidth-delay product and never searches above
 * the held depth (no escalation against a neighbour); a gain climbs from the held depth; rare
 * probes a step up and down catch what the held depth cannot show. Target mode caps the knee
 * with the interpolated P99 curve and keeps a proportional set-point on windows of completions.
 * Every epoch measures its own noise (batch means) and its own stationarity.
 */
#include "controller.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The objective: the smallest depth whose throughput is within 5% of the best. */
#define CTL_EPS 0.05
/* A doubling that gains less than two eps is a miss. On a hyperbolic curve X ~ W / (W + c) that
 * happens from ~82% of the plateau on, so two misses carry the climb past the eps knee. */
#define CTL_GAIN_MISS (2 * CTL_EPS)
/* Misses that end the climb: a single one can be noise. Up-probes that each miss are judged
 * together from the one after that many. */
#define CTL_MISSES 2
/* A doubling whose P99 grows by more than this x the depth ratio has met a queue (Little's law
 * allows 1x, correlated tails about as much again): the climb stops there. */
#define CTL_TAIL_JUMP 3.0
/* Completions per epoch at least: eight blocks for the epoch's own noise estimate, and a
 * throughput known to ~2.5% when 1 op in 200 is 5-20x slow (heavy tails stall a channel). */
#define CTL_EPOCH_N 1200u
/* Shortest epoch: several submit/reap batches, so batching does not read as a rate change. */
#define CTL_EPOCH_MIN_NS 10000000ull
/* Longest epoch before a slow device decides on fewer completions; also the settled epoch of a
 * device whose short epochs mislead (>= 2 of the kernel throttle's 100 ms slices). Nothing at
 * all past 16 x this: a stall is not a measurement. */
#define CTL_EPOCH_MAX_NS 250000000ull
/* Fewest completions a slow device decides on: counting noise 1 / sqrt(n) of two eps, the
 * throughput to ~10%, its P99 not just the maximum. */
#define CTL_EPOCH_MIN_N ((uint64_t)(1.0 / (4 * CTL_EPS * CTL_EPS) + 0.5))
/* Verify and hold epochs are this many times longer: they set references, not directions. */
#define CTL_LONG 4u
/* A held epoch has changed when it deviates by more than 3 sigma of the held noise (and by at
 * least 2 eps: a smaller change cannot move the knee out of its band); a climb's fall and its
 * re-read count beyond eps and 3 sigma of both epochs' own noise. */
#define CTL_CHANGE_SIGMAS 3.0
/* Consecutive same-sign changed epochs that make a change: a spike or a slow epoch is not. */
#define CTL_CHANGE_EPOCHS 3
/* Held epochs between probes (jittered up to twice that): 2-4 s at fast rates, ~1% of the
 * time off the knee, and rare enough that a probe's P99 does not set the window's. */
#define CTL_PROBE_EPOCHS 50u
/* Probe step: up x1.25, down /1.25. An up-probe hits when it gains at least half of that
 * step (elasticity >= 0.5: the held depth is below a knee), or with the earlier ones from the
 * same held depth more than eps (see probes_gain_past_eps). */
#define CTL_PROBE_GAIN 1.25
/* Held at a rate cap's hinge, an up-probe at least this often (jittered up to 1.5x): the held
 * depth reads the same with the cap lifted, so only more depth can show it gone, and a cap lifted
 * must be followed within 1.5 s (probe, climb and verify). */
#define CTL_CAP_PROBE_NS 500000000ull
/* Target mode: aim the P99 at 85% of the target, and grow only when it sits that margin again
 * below the set-point (hysteresis); cut halfway between the set-point and the target, since a
 * window that reaches the target is already lost. */
#define CTL_TARGET_SET 0.85
/* Completions per target decision: a P99 from fewer moves by +-20% with correlated tails. */
#define CTL_TARGET_WINDOW_N 2000u
/* A stall: nothing completed for this many median latencies (and half as many tick intervals)
 * with I/O in flight. A rate limiter that dispatches in slices (the kernel's block throttle) stalls
 * between them; a device that merely slows down does not go silent for 8 of its latencies. */
#define CTL_STALL 8.0

/* Not tuning: sizes of the stats window, the table, the engine contract's binding share. */
#define CTL_STATS_NS 100000000ull
#define CTL_STATS_MAX_NS 1000000000ull
#define CTL_TAB 24
#define CTL_BINDING_SHARE 16u
#define CTL_SETTLE_MIN_NS 200000ull
#define CTL_BLOCKS 32

/* One measured depth. x is bytes/s (ops/s for zero-byte ops), ops the completion rate, lat the
 * mean latency and p99 0 when it was not reliable. */
struct ctl_point {
    uint32_t w;
    double x, ops, lat, n;
    uint64_t p99;
    double se2;   /* squared relative standard error of x */
    bool settled; /* measured by a long epoch (verify, halving), past the stationarity test */
    uint64_t p50; /* median latency (0: no completions) */
};

struct ctl_ring {
    double demand;
    uint32_t limit;
    uint32_t batch;
    uint64_t win_start;
    uint64_t win_bytes;
    struct histogram win_hist;
    struct histogram last_hist;
    uint64_t p99, p50;
    double tput;
};

/* An epoch, cut into blocks of CTL_EPOCH_N / 8 completions whose rates (batch means) give the
 * epoch's own standard error: slow stalls and heavy tails show up there as they really are. */
struct ctl_epoch {
    uint64_t start, n, bytes, lat_sum, at_limit;
    uint32_t ticks, backlog_ticks;
    uint64_t blk_start, blk_n, blk_b;
    double blk_sum, blk_sum2, blocks;
    double blk_r[CTL_BLOCKS]; /* the first blocks' rates, for the stationarity test */
    uint32_t stalls;          /* stall ends seen; from the first one the epoch spans whole slices */
    bool whole;               /* stall-free, it ended on a whole number of slices */
    struct histogram hist;
};

struct ctl_group {
    struct ctl_config cfg;
    uint32_t nrings;
    struct ctl_ring *rings;
    uint32_t w, w_min, w_max;
    int phase;
    int resume; /* phase to return to after COAST or PROBE */
    uint64_t last_now, rng;

    struct ctl_epoch ep;
    /* Slices: a device seen stalling between bursts measures in whole slices (see CTL_STALL). */
    uint64_t last_done;  /* last tick that brought data completions */
    uint64_t waited, waited_at_done; /* the engine's running total of time asleep for
                                        completions (now and at last_done); 0: never given */
    bool busy;           /* I/O was in flight at the last tick */
    double tick_dt;      /* usual interval between ticks that bring completions */
    uint64_t p50;        /* median latency of the last epoch */
    uint64_t period;     /* time between stalls (a slice); 0 = the device has not stalled */
    uint64_t slice;      /* the shortest time measured between two stalls: a whole number of the
                            limiter's slices; 0 = not measured */
    double slice_x;      /* the rate of the last epoch from one stall's end to another's */
    uint32_t slice_w;    /* the depth it was read at */
    bool rate_cap;       /* a search read a rate cap after its first stall (limiter_rate) */
    double loan;         /* what epochs below that rate left unused since the last stall, less
                            what later ones read above it (x units x seconds): see lent() */
    uint32_t loan_w;     /* the depth whose last epoch read above that rate with a loan owed; 0: none */
    double loan_cut_x;   /* the last epoch's reading before lent() cut it to that rate; 0: not cut */
    uint64_t last_stall; /* end of the last stall */
    uint32_t stall_w;    /* the shallowest depth seen stalling since the device started to */
    uint32_t w_first;    /* the first search's start, where a search restarted by a stall begins */
    bool rate_probe;     /* the first stall came in a search, or its throughput fell with depth:
                            the next epoch reads the limiter's rate (see limiter_rate) */
    double cliff_x;      /* the fall's deeper reading: the next epoch tells what fell; 0: none */
    struct ctl_point reread; /* the fall's depth is being read a second time: the first reading */
    double clamp_x;      /* the rate a fall's table is clamped to, until a point reads above it */
    uint32_t repaying;   /* epochs in a row this depth was read inside a limiter's payback */
    struct ctl_point unclamped[CTL_TAB]; /* that table as measured */
    int nunclamped;
    uint64_t settle_until;
    uint64_t settled_since; /* start of the first epoch after the last depth change */
    uint64_t w_since;       /* when the depth last changed */
    uint32_t w_before;      /* the depth before that change */
    bool drain;             /* after a decrease: wait until in-flight fits the new depth */
    double last_lat;        /* mean latency of the last epoch, sizes the settle time */

    /* The model: measured points of the current search, ordered by depth. */
    struct ctl_point tab[CTL_TAB];
    int ntab;
    uint32_t cap; /* the search may not go above this */
    int misses, verifies;
    double x_prev, se2_prev;
    uint64_t p99_prev; /* the climb's previous point: P99 and depth */
    uint32_t w_prev;
    double lmin;       /* lowest mean latency of the last search: the BDP's R0 */
    uint32_t knee;     /* unconstrained knee of the last search (target-mode ceiling) */
    uint32_t loss_cap; /* after a capacity loss nothing searches above this, 0 = none */

    /* Hold. */
    double x_ref, var;
    struct ctl_point searched; /* the search's measurement of the held depth (n = 0: none) */
    double top_ratio;          /* held throughput / plateau when the hold began (<= 1) */
    bool below;                /* searching below a held depth after a loss */
    bool hinge;                /* the search's tail jumped past Little's law: the knee is a hinge */
    bool peak_walk;            /* the verify under way is peak_above()'s */
    bool clamped;              /* this search's table was clamped to a limiter's rate */
    bool slow_settle;          /* latched: a settled or held measurement contradicted a short
                                  epoch's reading of the same depth, so every epoch is a long,
                                  settled one of at least CTL_EPOCH_MAX_NS */
    struct ctl_point shallow;  /* shallowest point of the search that chose the held depth */
    int chg_cnt, chg_dir;
    uint32_t probe_in, probe_from;
    uint64_t cap_probe_at; /* the next up-probe while held at a rate cap (see at_silent_cap) */
    bool probe_up, probe_cap; /* probe_cap: the probe under way is that timed one */
    uint32_t gains_w;          /* the held depth the up-probes' gains below were read from */
    int gains_n;
    double gains_sum, gains_sum2;

    /* Target. */
    uint64_t target;
    bool infeasible;
    uint32_t miss_w; /* smallest depth whose window missed the target since the search */
    struct histogram tw_hist;
};

static const char *const phase_names[AURAIO_CTL_PHASE_COUNT] = {
    "GALLOP_UP", "GALLOP_DOWN", "VERIFY", "HOLD", "PROBE", "TARGET", "COAST", "FIXED",
};

const char *auraio__ctl_phase_name(int phase)
{
    if (phase < 0 || phase >= AURAIO_CTL_PHASE_COUNT)
        return "UNKNOWN";
    return phase_names[phase];
}

void auraio__ctl_acc_reset(struct ctl_acc *a)
{
    memset(a, 0, sizeof(*a));
}

uint32_t auraio__ctl_scale(uint32_t w, double f, uint32_t lo, uint32_t hi)
{
    if (lo < 1)
        lo = 1;
    if (hi < lo)
        hi = lo;
    double x = (double)w * f;
    uint32_t r;
    if (!(x == x) || x <= 0.0) /* NaN or non-positive factor: go to the floor */
        r = lo;
    else if (x >= (double)hi)
        r = hi;
    else
        r = (uint32_t)x;
    if (f < 1.0 && r >= w && w > 0)
        r = w - 1;
    if (f > 1.0 && r <= w)
        r = w + 1;
    if (r < lo)
        r = lo;
    if (r > hi)
        r = hi;
    return r;
}

static uint64_t rng_next(struct ctl_group *g)
{
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull); /* splitmix64: seeded, so runs repeat */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t clamp_w(const struct ctl_group *g, double w)
{
    if (!(w == w) || w <= (double)g->w_min)
        return g->w_min;
    if (w >= (double)g->w_max)
        return g->w_max;
    return (uint32_t)w;
}

/* ---- epochs ---- */

static void epoch_reset(struct ctl_group *g, uint64_t now)
{
    memset(&g->ep, 0, sizeof(g->ep));
    g->ep.start = now;
    g->ep.blk_start = now;
}

static void block_close(struct ctl_epoch *e, uint64_t now)
{
    double r = (double)(e->blk_b ? e->blk_b : e->blk_n) / (double)(now - e->blk_start);
    if (e->blocks < CTL_BLOCKS)
        e->blk_r[(int)e->blocks] = r;
    e->blk_sum += r;
    e->blk_sum2 += r * r;
    e->blocks += 1;
    e->blk_n = e->blk_b = 0;
    e->blk_start = now;
}

/* Blocks of CTL_EPOCH_N / 8 completions; in an epoch of whole slices, a block is a slice. */
static void block_tick(struct ctl_epoch *e, uint64_t now, bool stall_end)
{
    if (now <= e->blk_start)
        return;
    if (e->stalls ? stall_end && e->stalls > 1 : e->blk_n >= CTL_EPOCH_N / 8)
        block_close(e, now);
}

/* Whether the epoch's rate moved between its first and second half by more than three
 * standard errors of that difference: the device is still settling into the depth (a device
 * with memory takes longer than its latency to show a depth's own rate). */
static bool epoch_trending(const struct ctl_epoch *e)
{
    int m = e->blocks < CTL_BLOCKS ? (int)e->blocks : CTL_BLOCKS;
    if (m < 4)
        return false;
    double a = 0, b = 0, d2 = 0;
    for (int i = 0; i < m; i++) {
        if (i < m / 2)
            a += e->blk_r[i];
        else
            b += e->blk_r[i];
        if (i)
            d2 += (e->blk_r[i] - e->blk_r[i - 1]) * (e->blk_r[i] - e->blk_r[i - 1]);
    }
    a /= m / 2;
    b /= m - m / 2;
    /* Block noise from successive differences, which a trend barely inflates. */
    double var = d2 / (2.0 * (m - 1));
    double var_diff = var * (1.0 / (m / 2) + 1.0 / (m - m / 2));
    return (a - b) * (a - b) > 9.0 * var_diff;
}

/* Squared relative standard error of the epoch's rate from its blocks; 1 below 4 blocks, except
 * in whole slices, whose rate is the limiter's own (counting noise only). */
static double epoch_se2(const struct ctl_epoch *e)
{
    if (e->whole && e->n)
        return 1.0 / (double)e->n;
    if (e->blocks < 4)
        return e->stalls > 1 && e->n ? 1.0 / (double)e->n : 1.0;
    double m = e->blk_sum / e->blocks;
    double v = (e->blk_sum2 / e->blocks - m * m) / (e->blocks - 1);
    return m > 0 && v > 0 ? v / (m * m) : 0.0;
}

/* Change the depth. The ramp to a new depth is not its behaviour: wait about two of its
 * latencies (Little's law predicts R grows at most in proportion to W), and after a decrease
 * until the excess in flight has drained. */
static void set_w(struct ctl_group *g, uint32_t w, uint64_t now)
{
    if (w < g->w_min)
        w = g->w_min;
    if (w > g->w_max)
        w = g->w_max;
    double grow = g->w ? (double)w / (double)g->w : 1.0;
    double settle = 2.0 * g->last_lat * (grow > 1.0 ? grow : 1.0);
    g->settle_until = now + (settle > (double)CTL_SETTLE_MIN_NS ? (uint64_t)settle : CTL_SETTLE_MIN_NS);
    if (w < g->w)
        g->drain = true;
    if (w != g->w) {
        g->w_before = g->w;
        g->w_since = now;
    }
    g->w = w;
    g->repaying = 0;
    epoch_reset(g, now);
}

static bool long_epoch(const struct ctl_group *g)
{
    return g->slow_settle || g->phase == AURAIO_CTL_PHASE_VERIFY || g->phase == AURAIO_CTL_PHASE_GALLOP_DOWN ||
           g->phase == AURAIO_CTL_PHASE_HOLD || g->phase == AURAIO_CTL_PHASE_TARGET ||
           g->phase == AURAIO_CTL_PHASE_PROBE || g->phase == AURAIO_CTL_PHASE_COAST;
}

static double epoch_rate(const struct ctl_epoch *e, uint64_t dt)
{
    return (double)(e->bytes ? e->bytes : e->n) * 1e9 / (double)dt;
}

/* Does @p dt span a whole number of the measured slices (within a sixteenth of one: a tick
 * later reads part of the next burst)? */
static bool whole_slices(const struct ctl_group *g, uint64_t dt)
{
    if (!g->period || !g->slice)
        return false;
    uint64_t k = dt / g->slice;
    return k && dt - k * g->slice <= g->slice / 16;
}

/* An epoch is done once it has the completions and time below and its rate is known to eps/2
 * (one standard error): a point that noisy can still be told from the eps line. A noisier
 * device gets longer epochs, up to CTL_LONG x; slow devices decide on fewer completions after
 * CTL_EPOCH_MAX_NS. Verify and halving epochs start CTL_LONG x longer (a halving's point
 * decides whether the plateau reaches below: a noisy one misplaces the knee by a factor of
 * two); hold, probe and coast epochs take CTL_LONG x the time, so a held depth's noise is
 * judged on like-sized epochs. Every slot turns over 4 times: the completions that straddle
 * an epoch's edges (about W of them) stay a small part of it. */
static bool epoch_done(struct ctl_group *g, uint64_t now, bool stall_end)
{
    uint64_t dt = now - g->ep.start;
    uint64_t need = CTL_EPOCH_N, tmin = CTL_EPOCH_MIN_NS;
    if (g->phase == AURAIO_CTL_PHASE_VERIFY || g->phase == AURAIO_CTL_PHASE_GALLOP_DOWN)
        need *= CTL_LONG;
    if (long_epoch(g))
        tmin *= CTL_LONG;
    if (g->slow_settle)
        tmin = CTL_EPOCH_MAX_NS;
    uint64_t slots = 4ull * g->w;
    if (need < slots)
        need = slots;
    double prec = CTL_EPS / 2;
    if (g->below && !g->ntab && g->stall_w && g->w >= g->stall_w && !g->ep.stalls && dt < 2 * CTL_EPOCH_MAX_NS)
        return false; /* a loss's first reading of a depth that stalls spans its stalls: the host's
                         disk runs 100-400 ms between them, and a stretch between read 0.93 of its
                         peak for a depth that gives 0.84 */
    if (g->ep.stalls && dt < 2 * CTL_EPOCH_MAX_NS) {
        /* Whole slices: from one stall's end to another's, or a whole number of measured slices
         * after the stall's end that started the epoch, stall-free since and within eps of the
         * last stall-to-stall rate (the limiter paced the depth at its rate: waiting for a stall
         * there held a halving's reading 400 ms instead of 200). Above that rate the stretch is a
         * burst between a device's own stalls (the host's disk), which only a stall-to-stall
         * epoch reads. */
        bool whole = stall_end ? g->ep.stalls > 1
                               : g->ep.stalls == 1 && whole_slices(g, dt) &&
                                     epoch_rate(&g->ep, dt) <= (1.0 + CTL_EPS) * g->slice_x;
        if (whole && !stall_end)
            g->ep.whole = true;
        return whole && dt >= tmin && g->ep.n >= CTL_EPOCH_MIN_N &&
               (g->ep.n >= need || epoch_se2(&g->ep) <= prec * prec);
    }
    if (g->period && g->slice) {
        /* A slicing device whose slice is measured: a stall-free epoch ends on a whole number of
         * slices, which hold a whole number of budgets wherever it began. Ended anywhere else,
         * the same held depth read 60 K and 35 K in turn under a 51 K cap (epochs of 1.25 and
         * 1.5 slices), and that alternation, taken for noise, hid a cap cut to a quarter. */
        if (!whole_slices(g, dt))
            return false;
        g->ep.whole = true;
    } else if (g->period && dt < g->period + g->period / 4) {
        return false; /* a stall-free epoch must outlast a slice of unknown length to be one */
    }
    if (dt >= CTL_EPOCH_MAX_NS && g->ep.n >= (slots > CTL_EPOCH_MIN_N ? slots : CTL_EPOCH_MIN_N))
        return true;
    if (g->ep.n < need || dt < tmin)
        return false;
    if (epoch_trending(&g->ep) && now - g->settled_since < CTL_EPOCH_MAX_NS) {
        epoch_reset(g, now); /* still settling: measure again from here */
        return false;
    }
    return g->ep.n >= CTL_LONG * need || epoch_se2(&g->ep) <= prec * prec;
}

static struct ctl_point epoch_point(const struct ctl_group *g, uint64_t dt)
{
    const struct ctl_epoch *e = &g->ep;
    struct ctl_point p = {g->w, 0, 0, 0, (double)e->n, 0, epoch_se2(e), long_epoch(g), 0};
    p.ops = (double)e->n * 1e9 / (double)dt;
    p.x = epoch_rate(e, dt);
    p.lat = e->n ? (double)e->lat_sum / (double)e->n : 0.0;
    if (e->stalls && g->p50 && (double)g->p50 < p.lat)
        p.lat = (double)g->p50; /* the waits between slices are the limiter's queue, not the device's latency */
    if (auraio__histogram_percentile_reliable(&e->hist, 0.99))
        p.p99 = auraio__histogram_percentile(&e->hist, 0.99);
    if (e->n)
        p.p50 = auraio__histogram_percentile(&e->hist, 0.5);
    return p;
}

/* ---- the model ---- */

static void tab_clear(struct ctl_group *g)
{
    g->ntab = 0;
    g->hinge = false;
    g->peak_walk = false;
    g->clamped = false;
}

/* Two measurements of one depth, weighted by completions. */
static void pool(struct ctl_point *q, const struct ctl_point *p)
{
    double n = q->n + p->n;
    double a = n > 0 ? q->n / n : 0.5, b = 1.0 - a;
    q->x = a * q->x + b * p->x;
    q->ops = a * q->ops + b * p->ops;
    q->lat = a * q->lat + b * p->lat;
    q->p99 = p->p99 ? p->p99 : q->p99;
    q->p50 = p->p50 ? p->p50 : q->p50;
    q->se2 = a * a * q->se2 + b * b * p->se2;
    q->settled = q->settled || p->settled;
    q->n = n;
}

/* A device with memory shows a depth just entered partly as the one before (deeper reads
 * high, shallower low) for longer than its latency: a climb's short epoch and a settled one at
 * the same depth then differ by far more than their noise (3 standard errors and 2 eps). */
static bool disagree(const struct ctl_point *climb, const struct ctl_point *settled)
{
    double d = climb->x / settled->x - 1.0;
    return d * d > 9.0 * (climb->se2 + settled->se2) && d * d > 4.0 * CTL_EPS * CTL_EPS;
}

/* Insert in depth order; a depth measured again is pooled. */
static void tab_add(struct ctl_group *g, struct ctl_point p)
{
    int i = 0;
    while (i < g->ntab && g->tab[i].w < p.w)
        i++;
    if (i < g->ntab && g->tab[i].w == p.w) {
        if (p.settled && !g->tab[i].settled && !g->period && disagree(&g->tab[i], &p))
            g->slow_settle = true; /* (a slicing device's epochs span whole slices already) */
        pool(&g->tab[i], &p);
        return;
    }
    if (g->ntab == CTL_TAB) {
        /* Full (a search never measures this many depths): drop the farthest from p. */
        int far = p.w - g->tab[0].w > g->tab[g->ntab - 1].w - p.w ? 0 : g->ntab - 1;
        memmove(&g->tab[far], &g->tab[far + 1], (size_t)(g->ntab - far - 1) * sizeof(g->tab[0]));
        g->ntab--;
        if (far < i)
            i--;
    }
    memmove(&g->tab[i + 1], &g->tab[i], (size_t)(g->ntab - i) * sizeof(g->tab[0]));
    g->tab[i] = p;
    g->ntab++;
}

static const struct ctl_point *tab_find(const struct ctl_group *g, uint32_t w)
{
    for (int i = 0; i < g->ntab; i++)
        if (g->tab[i].w == w)
            return &g->tab[i];
    return NULL;
}

/* The plateau: the mean of the points within eps of the best, weighted by completions. On a
 * plateau they differ only by noise, and their mean is not biased up the way the best alone is;
 * on a curve still rising the best stands nearly alone. */
static double tab_top(const struct ctl_point *t, int nt)
{
    double best = 0, sum = 0, n = 0;
    for (int i = 0; i < nt; i++)
        best = t[i].x > best ? t[i].x : best;
    for (int i = 0; i < nt; i++) {
        if (t[i].x >= (1.0 - CTL_EPS) * best) {
            double wt = t[i].n > 0 ? t[i].n : 1;
            sum += wt * t[i].x;
            n += wt;
        }
    }
    return n > 0 ? sum / n : best;
}

static double plateau(const struct ctl_group *g)
{
    if (g->clamped) {
        /* The limiter's rate, read on whole slices: the best point, not the mean of those within
         * eps of it (a climb's reading of the device just under a 119 K cap pulled the line to 0.94
         * of the cap, and the held 7 gave 0.92 of it). */
        double best = 0;
        for (int i = 0; i < g->ntab; i++)
            best = g->tab[i].x > best ? g->tab[i].x : best;
        return best;
    }
    return tab_top(g->tab, g->ntab);
}

static bool feasible(const struct ctl_group *g, const struct ctl_point *p)
{
    return !g->target || !p->p99 || p->p99 <= g->target;
}

/* Little's law makes the effective latency W / X a line in W wherever the device is saturated
 * (R = (W + c) / X_inf for collisions over c + 1 channels, W / C under a cap) and flat below a
 * capped device's knee. The knee is placed where the line fitted (least squares, weighted by
 * completions) to the bracket [lo, hi] and its neighbours within a factor of two reaches @p t:
 * w / (a + b w) = t. Near a gradual knee a 1% error in one point's X moves that crossing by
 * 20% in W; the fit spreads it over the points. Returns the crossing, which may lie at or
 * below lo (the fit says the plateau reaches there, whatever lo's own noisy reading said). */
static double fit_knee(const struct ctl_point *tab, int n, int lo, int hi, double t)
{
    double s = 0, sw = 0, sr = 0, sww = 0, swr = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (tab[i].w * 2 < tab[lo].w || tab[i].w > 2 * tab[hi].w || tab[i].x <= 0)
            continue;
        double wt = tab[i].n > 0 ? tab[i].n : 1, w = tab[i].w, r = w / tab[i].x;
        s += wt;
        sw += wt * w;
        sr += wt * r;
        sww += wt * w * w;
        swr += wt * w * r;
        m++;
    }
    double var = s * sww - sw * sw;
    double b = var > 0 ? (s * swr - sw * sr) / var : 0;
    double a = s > 0 ? (sr - b * sw) / s : 0;
    if (m > 2 && var > 0) {
        /* The knee sits at ~a / (eps b): an intercept within two standard errors of zero (latency
         * proportional to depth, within noise) must not place it. */
        double res = 0;
        for (int i = 0; i < n; i++) {
            if (tab[i].w * 2 < tab[lo].w || tab[i].w > 2 * tab[hi].w || tab[i].x <= 0)
                continue;
            double wt = tab[i].n > 0 ? tab[i].n : 1, e = (double)tab[i].w / tab[i].x - a - b * tab[i].w;
            res += wt * e * e;
        }
        double var_a = res / s * (double)m / (m - 2) * sww / var;
        if (a * a <= 4 * var_a)
            a = 0;
    }
    if (a <= 0)
        return 0; /* latency proportional to depth: the plateau reaches below lo */
    double den = 1.0 - t * b;
    return den > 0 ? t * a / den : (double)tab[hi].w;
}

/* P99 grows about linearly with depth past the knee: the deepest depth whose interpolated P99
 * stays at the set-point between a feasible @p lo and an infeasible @p hi. */
static uint32_t interp_target(const struct ctl_group *g, const struct ctl_point *lo, const struct ctl_point *hi)
{
    double set = CTL_TARGET_SET * (double)g->target;
    if (!lo->p99 || (double)lo->p99 >= set || hi->p99 <= lo->p99)
        return lo->w;
    double w = (double)lo->w + (set - (double)lo->p99) / (double)(hi->p99 - lo->p99) * (double)(hi->w - lo->w);
    uint32_t k = (uint32_t)w;
    return k >= hi->w ? hi->w - 1 : (k < lo->w ? lo->w : k);
}

/* Where the table says the operating point is: 0 when a shallower point must be measured first
 * (the shallowest point is already good, or already misses the target, above the minimum).
 * Sets g->knee (throughput knee) and g->infeasible. */
static double good_line(const struct ctl_group *g)
{
    return (1.0 - CTL_EPS) * plateau(g);
}

/* On the plateau: within eps of it. */
static bool good(const struct ctl_group *g, const struct ctl_point *p)
{
    return p->x >= good_line(g);
}

/* The knee is a limiter's hinge: the device sliced, or a climb's tail jumped past Little's law. */
static bool hinged(const struct ctl_group *g)
{
    return g->period || g->hinge;
}

/* Past a limiter's hinge, whatever the throughput reads: a mean latency beyond CTL_TAIL_JUMP x
 * the median is a queue the limiter holds part of the requests in. A device's own service time
 * is not that skewed, and a throttle's first second (a burst, then its payback) can put a depth
 * past the hinge 10% below a plateau read inside the burst. */
static bool queued(const struct ctl_group *g, const struct ctl_point *p)
{
    return hinged(g) && p->p50 && p->lat > CTL_TAIL_JUMP * (double)p->p50;
}

static uint32_t model_point(struct ctl_group *g)
{
    double t = good_line(g);
    int hi = 0;
    while (hi < g->ntab - 1 && !good(g, &g->tab[hi]) && !queued(g, &g->tab[hi]))
        hi++;
    double cross = 0;
    while (hi > 0 && (cross = fit_knee(g->tab, g->ntab, hi - 1, hi, t)) <= (double)g->tab[hi - 1].w)
        hi--;
    const struct ctl_point *first = &g->tab[0];
    if (first->w > g->w_min && (hi == 0 || !feasible(g, first)))
        return 0;
    uint32_t knee = first->w;
    if (hi > 0) {
        knee = cross >= (double)g->tab[hi].w ? g->tab[hi].w : (uint32_t)(cross + 0.999);
        if (hinged(g)) {
            /* A slicing limiter (or a tail that jumped past Little's law on the climb: a queue
             * the throughput does not show, the same hinge with silences too short to see):
             * latency is flat below its rate and W / C above, a kink no line fits. Little's law
             * at the effective latency below it places the knee at the bandwidth-delay product,
             * W = X_top x (W / X)(lo): the device's own curve bends below the hinge, so 0.95 of
             * the product reads under the line (the disk held 3 at 0.948 of a 60 K cap's best). */
            const struct ctl_point *lo = &g->tab[hi - 1];
            double w = (double)lo->w * plateau(g) / lo->x;
            knee = w >= (double)g->tab[hi].w ? g->tab[hi].w : (uint32_t)(w + 0.999);
        }
        if (knee <= g->tab[hi - 1].w)
            knee = g->tab[hi - 1].w + 1;
    }
    g->knee = knee;
    if (!g->target)
        return knee;
    int f = 0;
    while (f < g->ntab && feasible(g, &g->tab[f]))
        f++;
    if (f == 0) {
        g->infeasible = true; /* the shallowest depth there is misses it */
        return g->w_min;
    }
    g->infeasible = false;
    uint32_t wt = f == g->ntab ? UINT32_MAX : interp_target(g, &g->tab[f - 1], &g->tab[f]);
    return wt < knee ? wt : knee;
}

static void enter_hold(struct ctl_group *g, uint32_t w, uint64_t now);
static uint32_t probe_interval(struct ctl_group *g);
static uint64_t cap_probe_time(struct ctl_group *g, uint64_t now);

static void start_search(struct ctl_group *g, uint32_t from, uint32_t cap, uint64_t now)
{
    tab_clear(g);
    g->rate_probe = false;
    g->cliff_x = 0;
    g->reread.x = 0;
    g->clamp_x = 0;
    g->miss_w = 0;
    g->below = false;
    g->cap = cap < g->w_min ? g->w_min : (cap > g->w_max ? g->w_max : cap);
    g->misses = 0;
    g->verifies = 0;
    g->x_prev = 0;
    g->p99_prev = 0;
    g->phase = AURAIO_CTL_PHASE_GALLOP_UP;
    set_w(g, from > g->cap ? g->cap : from, now);
}

/* After a loss, the held depth has been measured afresh: measure the shallowest depth of the
 * curve that chose it as well. When even that depth is on the new plateau (a cap), the usual
 * search goes on below it. Otherwise the knee moved with the bandwidth-delay product X_max x
 * R(shallow): in both models the knee is proportional to it (19 (BDP - 1) for collisions over
 * BDP channels, BDP itself under a cap), so the held depth is scaled by the product's change and
 * verified there. A device that only slowed down keeps its product: the depth stays. Returns
 * whether it moved the search on. */
static bool below_step(struct ctl_group *g, uint64_t now)
{
    const struct ctl_point *w0 = &g->shallow;
    const struct ctl_point *held = &g->tab[g->ntab - 1];
    if (g->ntab == 1) {
        uint32_t next = w0->w < held->w ? w0->w : clamp_w(g, held->w / 2);
        g->verifies = 0;
        if (next >= held->w)
            enter_hold(g, held->w, now); /* nothing below the minimum to search */
        else
            set_w(g, next, now);
        return true;
    }
    const struct ctl_point *lo = &g->tab[0];
    /* A slicing limiter's knee is its hinge, which model_point() places from these two points;
     * rescaling by the product is for a device that slowed down, and held 39 for a hinge at 5. */
    if (g->period || g->ntab != 2 || lo->w != w0->w || good(g, lo) || g->x_ref <= 0 || w0->lat <= 0)
        return false;
    double ratio = held->x * lo->lat / (g->x_ref * w0->lat);
    uint32_t k = clamp_w(g, (double)held->w * ratio + 0.5);
    if (k >= held->w) {
        enter_hold(g, held->w, now);
        return true;
    }
    if (k <= lo->w)
        k = lo->w + 1;
    g->verifies++;
    g->phase = AURAIO_CTL_PHASE_VERIFY;
    set_w(g, k, now);
    return true;
}

/* The nearest shallower point with a tail when @p p's P99 grew past Little's law from it (more
 * than CTL_TAIL_JUMP x the depth ratio), NULL otherwise: a queue between the two that the
 * throughput need not show. With no limiter seen, a verify below the line that reads one is not
 * followed past it: the host's disk, lifted from a cap, verified 192 at 308 K (P99 0.8 ms) and
 * 231 at 243 K (P99 13 ms) below a line set by 10 ms epochs at 384-512, and held 375 at P99 25 ms
 * for good. */
static const struct ctl_point *tail_jump_from(const struct ctl_group *g, const struct ctl_point *p)
{
    for (int i = g->ntab - 1; i >= 0; i--) {
        const struct ctl_point *t = &g->tab[i];
        if (t->w < p->w && t->p99)
            return p->p99 && (double)p->p99 > CTL_TAIL_JUMP * (double)p->w / (double)t->w * (double)t->p99 ? t : NULL;
    }
    return NULL;
}

/* For a verified depth @p v below the line on a hinged or slicing device: the shallowest depth
 * measured on the plateau above it, 0 when there is none. */
static uint32_t hinge_above(const struct ctl_group *g, const struct ctl_point *v)
{
    if (!hinged(g))
        return 0;
    for (int i = 0; i < g->ntab; i++)
        if (g->tab[i].w > v->w && good(g, &g->tab[i]))
            return g->tab[i].w;
    return 0;
}

/* For a verified depth @p v on the line: when it reads the table's best and the next depth
 * measured above it reads less beyond noise, the depth between them, where the curve may peak.
 * The plateau after a loss was read at the held depth only (the host's disk at 256, repaying a
 * burst with stalls at 0.85 of its peak), so the knee was placed where the curve first reaches
 * that rate, not at the peak between the two: the disk held 33-62 for a peak at 64-128. 0 when
 * there is no depth between them. */
static uint32_t peak_above(const struct ctl_group *g, const struct ctl_point *v)
{
    /* At or past the shallowest depth seen stalling, a limiter may cap v itself: its readings
     * differ by its bursts and paybacks (the throttle read 8 at 49 K and 14 at 46 K under a 48 K
     * cap, and this walked to 11 for a knee of 4). */
    if (v->x < tab_top(g->tab, g->ntab) || (g->stall_w && v->w >= g->stall_w))
        return 0;
    /* Nor once the table was clamped to a limiter's rate: a fresh reading above it is a burst
     * (a 26 K cap's verify at 4 read above the clamped 16 and 32, and the walk held 16 for a
     * knee of 1). */
    if (g->clamped)
        return 0;
    const struct ctl_point *d = NULL;
    for (int i = 0; i < g->ntab && !d; i++)
        d = g->tab[i].w > v->w ? &g->tab[i] : NULL;
    double fall = d ? 1.0 - d->x / v->x : 0;
    if (fall <= 0 || fall * fall <= CTL_CHANGE_SIGMAS * CTL_CHANGE_SIGMAS * (v->se2 + d->se2))
        return 0;
    uint32_t mid = v->w + 1;
    while ((uint64_t)mid * mid < (uint64_t)v->w * d->w)
        mid++;
    return mid < d->w ? mid : 0;
}

/* After the climb, a halving or a verify epoch: go where the model points, measure there once
 * with a long epoch, and hold when the measurement agrees with the model. */
static void decide(struct ctl_group *g, uint64_t now)
{
    bool unsettled = false;
    for (int i = 0; i < g->ntab; i++)
        unsettled = unsettled || !g->tab[i].settled;
    if (g->slow_settle && unsettled) {
        /* The climb's points read transients: search again with settled epochs only. */
        start_search(g, g->shallow.w ? g->shallow.w : g->tab[0].w, g->cap, now);
        return;
    }
    uint32_t k = model_point(g);
    double lmin = g->lmin;
    for (int i = 0; i < g->ntab; i++)
        if (g->tab[i].lat > 0 && (lmin == 0 || g->tab[i].lat < lmin))
            lmin = g->tab[i].lat;
    g->lmin = lmin;
    if (g->below && g->phase == AURAIO_CTL_PHASE_GALLOP_DOWN && g->shallow.w && below_step(g, now))
        return;
    if (k == 0) {
        /* Below a plateau seen at two depths or more, a capped device's knee is its bandwidth-
         * delay product (the plateau's rate x the lowest latency seen): jump there when it is
         * below the next halving, so a cap found at depth 256 is bracketed in two steps. */
        uint32_t next = clamp_w(g, g->tab[0].w / 2);
        if (g->ntab > 1 && good(g, &g->tab[1])) {
            double top_ops = 0;
            for (int i = 0; i < g->ntab; i++)
                top_ops = g->tab[i].ops > top_ops ? g->tab[i].ops : top_ops;
            uint32_t bdp = clamp_w(g, top_ops * lmin * 1e-9 + 0.999);
            next = bdp < next ? bdp : next;
        }
        g->phase = AURAIO_CTL_PHASE_GALLOP_DOWN;
        set_w(g, next, now);
        return;
    }
    const struct ctl_point *p = tab_find(g, k);
    if (g->phase == AURAIO_CTL_PHASE_VERIFY) {
        /* The verified depth reached the line: hold it, whatever the refreshed model says below
         * it (chasing that would follow noise). Below the line the knee is deeper: verify there. */
        const struct ctl_point *v = tab_find(g, g->w);
        if (g->peak_walk && v && !good(g, v)) {
            /* Past the peak: hold the shallowest depth on the line (placed as a hinge, the knee
             * would assume a limiter's flat latency below it, which the points read contradict). */
            int i = 0;
            while (i < g->ntab - 1 && !good(g, &g->tab[i]))
                i++;
            enter_hold(g, g->tab[i].w, now);
            return;
        }
        g->peak_walk = false;
        const struct ctl_point *q = v && !good(g, v) && !hinged(g) ? tail_jump_from(g, v) : NULL;
        if (q) {
            enter_hold(g, q->w, now);
            return;
        }
        uint32_t up = v && !good(g, v) && !g->infeasible && k == g->knee ? hinge_above(g, v) : 0;
        if (up) {
            /* Placed as a hinge, the knee assumed the latency flat up to it; a device that
             * queues below its limiter (channels, then a cap) keeps missing by less each time.
             * Bisect towards the plateau instead, and hold on it when the bisection runs out. */
            if (g->verifies > CTL_MISSES) {
                enter_hold(g, up, now);
                return;
            }
            uint32_t mid = v->w + 1;
            while (mid < up && (uint64_t)mid * mid < (uint64_t)v->w * up)
                mid++;
            k = k > mid ? k : mid;
        } else if ((v && good(g, v)) || g->verifies >= 2 || g->infeasible) {
            uint32_t peak = v && good(g, v) && !g->infeasible ? peak_above(g, v) : 0;
            if (!peak) {
                enter_hold(g, v && good(g, v) ? g->w : k, now);
                return;
            }
            k = peak;
            g->peak_walk = true;
        }
    } else if ((p && p->settled) || g->infeasible) {
        enter_hold(g, k, now);
        return;
    }
    g->verifies++;
    g->phase = AURAIO_CTL_PHASE_VERIFY;
    set_w(g, k, now);
}

/* A limiter held I/O in flight at the current depth: remember when and where. Until two stalls
 * measure its slice, assume the longest. */
static void limiter_held(struct ctl_group *g, uint64_t now)
{
    if (!g->period) {
        g->period = CTL_EPOCH_MAX_NS;
        g->slow_settle = false; /* whole slices read what a settled epoch would, sooner */
    }
    g->last_stall = now;
    /* A stall within a period of a decrease is the deeper depth's: a device repays a burst after
     * the depth that spent it is gone (taken for the shallow one's, it barred the walk to the
     * host disk's peak from every depth). */
    uint32_t w = g->w_before > g->w && now - g->w_since < g->period ? g->w_before : g->w;
    if (!g->stall_w || w < g->stall_w)
        g->stall_w = w;
}

/* A search's first sight of a limiter: its points were read inside the limiter's first budget.
 * The next epoch, at this depth, reads the limiter's rate (limiter_rate); with nothing read below
 * this depth there is nothing to clamp, and the search starts again from the shallow end. Returns
 * whether the search went on from here (false: it restarted). */
static bool limiter_found(struct ctl_group *g, uint64_t now)
{
    limiter_held(g, now);
    if (g->ntab && g->tab[0].w < g->w) {
        g->rate_probe = true;
        epoch_reset(g, now); /* the stall's end starts it (aligned by the caller) */
        return true;
    }
    start_search(g, g->w < g->w_first ? g->w : g->w_first, g->cap, now);
    return false;
}

/* ---- phases ---- */

static void climb(struct ctl_group *g, const struct ctl_point *p, uint64_t now)
{
    bool over = !feasible(g, p);
    /* Clearly still gaining: by more than a miss's worth, two standard errors beyond noise. */
    double excess = g->x_prev > 0 ? p->x / g->x_prev - 1.0 - CTL_GAIN_MISS : 0;
    bool gaining = excess > 0 && excess * excess > 4 * (p->se2 + g->se2_prev);
    if (g->x_prev > 0)
        g->misses = p->x < g->x_prev * (1.0 + CTL_GAIN_MISS) ? g->misses + 1 : 0;
    /* On a slicing device's whole slices (the limiter's own rate) a miss three standard errors
     * below the miss line is no noise: it ends the climb alone. */
    if (g->period && g->misses && excess < 0 && excess * excess > 9 * (p->se2 + g->se2_prev))
        g->misses = CTL_MISSES;
    /* Little's law lets the tail grow in proportion to the depth; far more is a queue the
     * throughput does not show (a throttle's slice wait, a 20 ms slice's silences too short to
     * count as stalls): the knee is a hinge, and with no clear gain the climb is past it. */
    bool jump = g->p99_prev && p->p99 &&
                (double)p->p99 > CTL_TAIL_JUMP * (double)p->w / (double)g->w_prev * (double)g->p99_prev;
    bool cliff = jump && !gaining;
    tab_add(g, *p);
    g->hinge = g->hinge || jump; /* even where a burst within the slice still reads a gain */
    double fall = g->x_prev > 0 ? 1.0 - CTL_EPS - p->x / g->x_prev : 0;
    if (cliff && !g->period && fall > 0 && fall * fall > CTL_CHANGE_SIGMAS * CTL_CHANGE_SIGMAS * (p->se2 + g->se2_prev)) {
        /* Queued and slower than the depth before: a falling curve (the device thrashes), or a
         * limiter whose first budget the shallower point was read inside. Only measuring that
         * depth again tells them apart (limiter_rate): the limiter's rate is the same there. */
        g->rate_probe = true;
        g->cliff_x = p->x;
        g->phase = AURAIO_CTL_PHASE_GALLOP_DOWN; /* a long epoch: whole slices of a limiter */
        set_w(g, g->w_prev, now);
        return;
    }
    g->x_prev = p->x;
    g->se2_prev = p->se2;
    g->p99_prev = p->p99;
    g->w_prev = p->w;
    uint32_t next = auraio__ctl_scale(g->w, 2.0, g->w_min, g->cap);
    if (g->target && p->p99) {
        /* Little's law: P99 grows at most in proportion to W, so do not step past the target. */
        double lim = (double)g->w * CTL_TARGET_SET * (double)g->target / (double)p->p99;
        if (lim < (double)next)
            next = lim > (double)g->w ? (uint32_t)lim : g->w;
    }
    if (!over && gaining && next <= g->w)
        enter_hold(g, g->w, now); /* still gaining at the ceiling: the plateau lies beyond it */
    else if (over || cliff || g->misses >= CTL_MISSES || next <= g->w)
        decide(g, now);
    else
        set_w(g, next, now);
}

static void enter_hold(struct ctl_group *g, uint32_t w, uint64_t now)
{
    const struct ctl_point *p = tab_find(g, w);
    g->clamp_x = 0;
    if (!g->below && g->ntab > 1)
        g->shallow = g->tab[0];
    double top = plateau(g);
    /* A reading that spent a loan is no reference: the held epochs after it read the limiter's
     * rate, a loss by the loan's size (on the disk, 55.9 K against 48 K, and a second search held
     * 2 at 0.92 of the cap). The first held epoch sets it instead. */
    g->x_ref = p && g->loan_w != w ? p->x : 0.0;
    g->searched = p ? *p : (struct ctl_point){0};
    g->top_ratio = p && top > 0 && p->x < top ? p->x / top : 1.0;
    g->var = 0;
    g->chg_cnt = 0;
    g->probe_in = probe_interval(g);
    g->cap_probe_at = cap_probe_time(g, now);
    g->gains_n = 0;
    auraio__histogram_reset(&g->tw_hist);
    g->phase = g->target ? AURAIO_CTL_PHASE_TARGET : AURAIO_CTL_PHASE_HOLD;
    if (w != g->w)
        set_w(g, w, now);
    else
        epoch_reset(g, now);
}

/* A downward search from @p from: decide() halves from there until a point falls below the
 * line, then interpolates; nothing above @p from is measured. */
static void search_below(struct ctl_group *g, uint32_t from, uint64_t now)
{
    tab_clear(g);
    g->rate_probe = false;
    g->cliff_x = 0;
    g->reread.x = 0;
    g->clamp_x = 0;
    g->miss_w = 0;
    g->below = true;
    g->cap = from;
    g->misses = 0;
    g->verifies = 0;
    g->phase = AURAIO_CTL_PHASE_GALLOP_DOWN;
    set_w(g, from, now);
}

/* A gain at the held depth (or an up-probe that hit): a limiter that sliced is gone or raised,
 * so stall-free epochs are short again, and the settled-epoch latch, learnt in the old regime,
 * waits until the new one contradicts a short epoch. */
static void new_regime(struct ctl_group *g)
{
    g->period = 0;
    g->slice = 0;
    g->slice_x = 0;
    g->slice_w = 0;
    g->rate_cap = false;
    g->loan = 0;
    g->stall_w = 0;
    g->slow_settle = false;
}

/* A lasting change of the held depth's throughput. A loss (a cap, a neighbour, a slower mix)
 * searches only below the held depth, so two tenants never ratchet each other up: it reads
 * the held depth afresh (the epochs that saw the change straddle it, unless the deciding one ran
 * stall to stall, @p sliced), then halves. A device
 * that only got slower keeps its curve's shape, so the half stays below the line and the knee
 * is placed next to the held depth; a new plateau (a cap) reaches below it, and decide() jumps
 * to the bandwidth-delay product. A gain lifts the ceiling and climbs from here. */
static void on_change(struct ctl_group *g, int dir, const struct ctl_point *sliced, uint64_t now)
{
    if (dir < 0) {
        g->loss_cap = g->w;
        if (g->w <= g->w_min) {
            enter_hold(g, g->w, now);
            /* The table's reading of this depth is the regime that just ended: compared with it,
             * every later epoch is a loss again, and the gain of a cap lifted never shows. */
            g->x_ref = 0;
            g->searched.n = 0;
        } else {
            search_below(g, g->w, now);
            if (sliced) {
                /* Read stall to stall, the deciding epoch began after the change: it is the held
                 * depth's reading afresh (read once more, the disk's schedule spent 200 ms more
                 * at 150 under a cap whose knee was 3, at a P99 of 86 ms). */
                tab_add(g, *sliced);
                decide(g, now);
            }
        }
    } else {
        g->loss_cap = 0;
        new_regime(g);
        start_search(g, g->w, g->w_max, now);
    }
}

/* Held epochs to the next probe: CTL_PROBE_EPOCHS, jittered up to twice that so that groups
 * sharing a device do not probe in step. */
static uint32_t probe_interval(struct ctl_group *g)
{
    return CTL_PROBE_EPOCHS + (uint32_t)(rng_next(g) % CTL_PROBE_EPOCHS);
}

/* Whether the held depth, read as @p p, is mostly in service rather than queued (Vegas: the
 * requests queued are W - X x R_min): at least half of it is the bandwidth-delay product at the
 * lowest latency measured. Behind a neighbour that saturates the device nearly all of it queues. */
static bool unqueued(const struct ctl_group *g, const struct ctl_point *p)
{
    return g->lmin > 0 && 2.0 * p->ops * g->lmin * 1e-9 >= (double)g->w;
}

/* Whether the held depth, read as @p p, sits at a rate cap's hinge with the cap silent: the
 * device sliced; a search read the limiter's rate after its first stall, or the held depth lies
 * below the shallowest one seen stalling and is mostly in service (a device's own knee queues, a
 * cap's hinge W = C x R0 does not); and no stall came for CTL_CAP_PROBE_NS. The hinge reads C
 * whether the cap is still there or gone (the device's own rate at W is C too), so the hold cannot
 * see it lifted; a cap that still holds the depth back stalls it now and then, and then no probe
 * is needed. */
static bool at_silent_cap(const struct ctl_group *g, const struct ctl_point *p, uint64_t now)
{
    bool hinge = g->rate_cap || (g->w < g->stall_w && unqueued(g, p));
    return g->period && hinge && now - g->last_stall >= CTL_CAP_PROBE_NS;
}

static uint64_t cap_probe_time(struct ctl_group *g, uint64_t now)
{
    return now + CTL_CAP_PROBE_NS + rng_next(g) % (CTL_CAP_PROBE_NS / 2);
}

/* The up-probes from the held depth gained more than eps on average so far: the knee is not
 * below it, and only more up-probes settle whether it lies above (see probes_gain_past_eps). */
static bool up_gains_pending(const struct ctl_group *g)
{
    return g->gains_n > 0 && g->gains_w == g->w && g->gains_sum * (1.0 - CTL_EPS) > g->gains_n * CTL_EPS;
}

/* @p up_only: the rate cap's timed probe, which only an up-probe serves. */
static void start_probe(struct ctl_group *g, const struct ctl_point *p, uint64_t now, bool up_only)
{
    g->cap_probe_at = cap_probe_time(g, now);
    g->probe_cap = up_only;
    if (up_only)
        g->probe_up = true;
    else {
        g->probe_in = probe_interval(g);
        /* Below a stalling depth only an up-probe can see the limiter go; a down-probe is lost
         * IOPS. */
        g->probe_up = !g->probe_up || (g->period && g->w < g->stall_w) || up_gains_pending(g);
    }
    /* A loss's ceiling holds against a neighbour; a held depth that hardly queues has none to
     * hold against, and the device may have recovered from a slow spell (the host's disk, repaying
     * a burst at 512, read 16 below 8 and held 6-8 for a knee of 64: at the ceiling, no up-probe
     * ever ran). */
    uint32_t ceiling = g->loss_cap && !unqueued(g, p) ? g->loss_cap : g->w_max;
    /* In target mode an up-probe that Little's law says would miss the target is skipped. */
    uint64_t p99 = auraio__histogram_percentile(&g->ep.hist, 0.99);
    if (g->probe_up && g->target && (double)p99 * CTL_PROBE_GAIN >= (double)g->target) {
        if (up_only) {
            epoch_reset(g, now);
            return;
        }
        g->probe_up = false;
    }
    /* Up by at least the step the hit line assumes: rounded down, 7 -> 8 is +14%, and a device
     * past half its channels (this disk at 6-8 under a 103 K cap, lifted) gained 4-12% there and
     * never hit. */
    double step = (double)g->w * CTL_PROBE_GAIN; /* rounded up without libm: lib/ links none */
    uint32_t top = ceiling > g->w ? ceiling : g->w, up = (uint32_t)step;
    up += (double)up < step;
    uint32_t pw = g->probe_up ? (up < top ? up : top) : auraio__ctl_scale(g->w, 1.0 / CTL_PROBE_GAIN, g->w_min, g->w_max);
    if (pw == g->w || g->x_ref <= 0) {
        epoch_reset(g, now);
        return;
    }
    g->probe_from = g->w;
    g->resume = g->phase;
    g->phase = AURAIO_CTL_PHASE_PROBE;
    set_w(g, pw, now);
}

/* Squared threshold of a change for an epoch whose own squared relative error is @p se2: the
 * held noise (between epochs) and the epoch's own (within it, e.g. a throttle's slices), at
 * CTL_CHANGE_SIGMAS, and never below 2 eps. */
static double noise_threshold2(const struct ctl_group *g, double se2)
{
    double floor = 2.0 * CTL_EPS;
    double s2 = CTL_CHANGE_SIGMAS * CTL_CHANGE_SIGMAS * (g->var + se2);
    return s2 > floor * floor ? s2 : floor * floor;
}

/* Whether the up-probes from held depth @p from, this one's @p gain included, together read more
 * than eps above it: then @p from is out of the knee's band by its very definition (smaller than
 * 0.95 x the probe's depth's throughput, so than the best). A concave device (this disk gains
 * 15% a doubling from 32 to 128) gains 5-10% a probe step far below its eps knee, under the
 * single probe's line every time: held at 50 after a search read 128 in a slow spell, it probed
 * 63 at +8 to +11% for good. More than CTL_MISSES probes, their mean beyond CTL_CHANGE_SIGMAS
 * standard errors of their own spread, and of the held noise. */
static bool probes_gain_past_eps(struct ctl_group *g, uint32_t from, double gain)
{
    if (g->gains_w != from || g->gains_n == 0) {
        g->gains_w = from;
        g->gains_n = 0;
        g->gains_sum = g->gains_sum2 = 0;
    }
    g->gains_n++;
    g->gains_sum += gain;
    g->gains_sum2 += gain * gain;
    double n = g->gains_n, mean = g->gains_sum / n;
    if (g->gains_n <= CTL_MISSES || mean * (1.0 - CTL_EPS) <= CTL_EPS)
        return false;
    double s2 = (g->gains_sum2 - n * mean * mean) / (n - 1);
    s2 = s2 > g->var ? s2 : g->var;
    return mean * mean * n > CTL_CHANGE_SIGMAS * CTL_CHANGE_SIGMAS * s2;
}

static void probe_done(struct ctl_group *g, const struct ctl_point *p, uint64_t now)
{
    double gain = p->x / g->x_ref - 1.0, need = (CTL_PROBE_GAIN - 1.0) / 2;
    /* An up-probe that would have hit, but was cut to a rate cap's rate for its loan, read the
     * loan or the device: it reads on until an epoch owes nothing. A cap still there ends that at
     * once (the device spends a loan at its own speed); a lifted one spends it at the probe's gain,
     * a slice's budget at worst in slice / need. (One that would have missed anyway has missed:
     * read on, a probe a hair above the rate spent 800 ms at 17 under a 118 K cap.) */
    if (g->probe_up && g->loan_cut_x > (1.0 + need) * g->x_ref &&
        now - g->w_since < (uint64_t)((double)g->slice / need)) {
        epoch_reset(g, now);
        return;
    }
    bool hit;
    if (g->probe_up) {
        hit = gain > need && gain * gain > noise_threshold2(g, p->se2);
        hit = probes_gain_past_eps(g, g->probe_from, gain) || hit;
    } else {
        /* Still within eps of the plateau one step down: the knee moved below the held depth. */
        hit = p->x >= (1.0 - CTL_EPS) * g->x_ref / g->top_ratio;
    }
    uint32_t from = g->probe_from;
    g->phase = g->resume;
    if (!hit) {
        set_w(g, from, now);
        return;
    }
    if (g->probe_up) {
        new_regime(g);
        /* More depth gave more above the ceiling, or more than the rate cap that made the loss
         * (a neighbour's share does not pass a cap): the loss is over. */
        if (g->w > g->loss_cap || g->probe_cap)
            g->loss_cap = 0;
        start_search(g, g->w, g->loss_cap ? g->loss_cap : g->w_max, now);
        return;
    }
    /* The knee is at or below the probe: search below the held depth, from the probe's point. */
    struct ctl_point held = {from, g->x_ref, g->x_ref * p->ops / p->x, 0, (double)CTL_EPOCH_N, 0, g->var, true, 0};
    search_below(g, from, now);
    tab_add(g, held);
    tab_add(g, *p);
    decide(g, now);
}

/* Target mode, once per CTL_TARGET_WINDOW_N completions: proportional to P99 (latency ~ depth
 * past the knee), cut above the target, grow below the hysteresis band up to the knee. */
static void target_step(struct ctl_group *g, uint64_t now)
{
    uint64_t p = auraio__histogram_percentile(&g->tw_hist, 0.99);
    auraio__histogram_reset(&g->tw_hist);
    double f = CTL_TARGET_SET * (double)g->target / (double)p;
    if ((double)p > (1.0 + CTL_TARGET_SET) / 2 * (double)g->target) {
        if (g->w <= g->w_min) {
            g->infeasible = p > g->target;
            return;
        }
        g->miss_w = g->w; /* growth stays below a depth that missed, until the regime changes */
        set_w(g, auraio__ctl_scale(g->w, f < 0.5 ? 0.5 : (f > 0.95 ? 0.95 : f), g->w_min, g->w_max), now);
        g->x_ref = 0;
        return;
    }
    g->infeasible = false;
    uint32_t ceiling = g->knee > g->w_min ? g->knee : g->w_min;
    if (g->miss_w && g->miss_w - 1 < ceiling)
        ceiling = g->miss_w - 1;
    if ((double)p < (CTL_TARGET_SET * CTL_TARGET_SET) * (double)g->target && g->w < ceiling) {
        set_w(g, auraio__ctl_scale(g->w, f < CTL_PROBE_GAIN ? f : CTL_PROBE_GAIN, g->w_min, ceiling), now);
        g->x_ref = 0;
    }
}

static void hold(struct ctl_group *g, const struct ctl_point *p, uint64_t now)
{
    if (g->target) {
        auraio__histogram_merge(&g->tw_hist, &g->ep.hist);
        if (g->tw_hist.total >= CTL_TARGET_WINDOW_N && auraio__histogram_percentile_reliable(&g->tw_hist, 0.99)) {
            uint32_t w = g->w;
            target_step(g, now);
            if (g->w != w)
                return;
        }
    }
    if (g->searched.n > 0) {
        /* The first held epoch checks the search's short-epoch reading of this depth. Far apart
         * (a memory that outlasts short epochs, a throttle dispatching in slices longer than
         * them): from now on every epoch is a settled one spanning CTL_EPOCH_MAX_NS, and the
         * search runs again from its shallow end with those. A verify's reading was a long epoch
         * already: two long ones that differ are drift (the disk, drifting 10-30%, latched on it). */
        bool off = !g->slow_settle && !g->period && !g->searched.settled && disagree(&g->searched, p);
        g->searched.n = 0;
        if (off) {
            /* Short epochs read high here (a burst, a fresh depth): the knee is at or below the
             * depth they chose, so the settled search never climbs past it (a throttle's cliff
             * lies above). */
            g->slow_settle = true;
            start_search(g, g->shallow.w && g->shallow.w < g->w ? g->shallow.w : g->w, g->w, now);
            return;
        }
    }
    if (g->x_ref <= 0) {
        g->x_ref = p->x;
        epoch_reset(g, now);
        return;
    }
    double dev = p->x / g->x_ref - 1.0;
    /* On a slicing device an epoch of one block (one slice, its stalls far apart) cannot
     * estimate its own noise: it may show a change against the held noise, but it neither
     * widens the threshold nor teaches the noise model. Taken in with its unit variance, a cap
     * that cut the rate 3x read as noise and the held variance absorbed every later epoch: the
     * cap schedule held 64 for 10 s under caps of a quarter and a sixteenth of the rate. */
    bool unknown = g->period && p->se2 >= 1.0;
    /* A factor of two (the search's own step) is a change however noisy the held epochs were:
     * the noise model learns from every epoch inside its threshold, and a device whose rate swung
     * by half for a second (this disk under the host's limits) had widened it past a cap that cut
     * the rate to a quarter, which then held 97 for a knee of 4 for five seconds. */
    bool factor2 = 2 * p->x <= g->x_ref || p->x >= 2 * g->x_ref;
    if (factor2 || dev * dev > noise_threshold2(g, unknown ? 0.0 : p->se2)) {
        int dir = dev < 0 ? -1 : 1;
        bool sliced = g->ep.stalls > 1; /* read stall to stall: whole slices */
        g->chg_cnt = dir == g->chg_dir ? g->chg_cnt + 1 : 1;
        g->chg_dir = dir;
        /* Half the rate or less, stall to stall: a limiter's new rate read over whole slices, as
         * exact as it gets. Like a first stall under the hold, it counts as all but the last of
         * the changed epochs (a device that already sliced, the disk behind its host's limit,
         * took three 200 ms epochs to see a cap of a fifth). */
        if (factor2 && dir < 0 && sliced && g->chg_cnt < CTL_CHANGE_EPOCHS - 1)
            g->chg_cnt = CTL_CHANGE_EPOCHS - 1;
        if (g->chg_cnt >= CTL_CHANGE_EPOCHS) {
            on_change(g, dir, sliced ? p : NULL, now);
            return;
        }
        epoch_reset(g, now); /* an anomalous epoch does not teach the noise model */
        return;
    }
    g->chg_cnt = 0;
    if (!unknown) {
        g->x_ref += (1.0 / (CTL_CHANGE_EPOCHS + 1)) * (p->x - g->x_ref);
        g->var += (1.0 / (CTL_CHANGE_EPOCHS + 1)) * (dev * dev - g->var);
    }
    if (--g->probe_in == 0)
        start_probe(g, p, now, false);
    else if (at_silent_cap(g, p, now) && now >= g->cap_probe_at)
        start_probe(g, p, now, true);
    else
        epoch_reset(g, now);
}

/* An app-limited epoch: the limit is not what holds the app back, so nothing grows; a reliable
 * P99 above the target still cuts (and flags the target at the minimum). */
static void coast(struct ctl_group *g, const struct ctl_point *p, uint64_t now)
{
    if (g->phase == AURAIO_CTL_PHASE_PROBE) {
        g->phase = AURAIO_CTL_PHASE_COAST; /* resume stays the phase the probe left */
        set_w(g, g->probe_from, now);
        return;
    }
    if (g->phase != AURAIO_CTL_PHASE_COAST) {
        g->resume = g->phase;
        g->phase = AURAIO_CTL_PHASE_COAST;
    }
    if (g->target && p->p99 && (double)p->p99 > CTL_TARGET_SET * (double)g->target) {
        if (g->w <= g->w_min) {
            g->infeasible = p->p99 > g->target;
        } else {
            double f = CTL_TARGET_SET * (double)g->target / (double)p->p99;
            set_w(g, auraio__ctl_scale(g->w, f < 0.5 ? 0.5 : f, g->w_min, g->w_max), now);
            return;
        }
    }
    epoch_reset(g, now);
}

/* Whether @p p read its depth slower than the search read it or a shallower one before, by
 * @p sigmas standard errors beyond eps: a device's own rate neither falls with depth nor drops at
 * a depth it just delivered, a limiter's does. */
static bool slower_than_shallower(const struct ctl_group *g, const struct ctl_point *p, double sigmas)
{
    for (int i = 0; i < g->ntab && g->tab[i].w <= p->w; i++) {
        double d = g->tab[i].x > 0 ? 1.0 - CTL_EPS - p->x / g->tab[i].x : 0;
        if (d > 0 && d * d >= sigmas * sigmas * (p->se2 + g->tab[i].se2))
            return true;
    }
    return false;
}

/* Whether the epoch just measured read the limiter: it spanned whole slices, or it read slower
 * than a shallower depth. */
static bool reads_limiter(const struct ctl_group *g, const struct ctl_point *p, double sigmas)
{
    return g->ep.stalls > 1 || slower_than_shallower(g, p, sigmas);
}

/* The table clamped to a limiter's rate @p c: past its hinge every depth reads c (Little's law
 * stretches the latency to match; the tail of a clamped point is unknown). */
static void clamp_table(struct ctl_group *g, double c)
{
    g->clamped = true;
    for (int i = 0; i < g->ntab; i++) {
        struct ctl_point *t = &g->tab[i];
        if (t->x > c) {
            double f = c / t->x;
            t->x = c;
            t->ops *= f;
            t->lat /= f;
            t->p99 = 0;
        }
    }
}

/* A search point on a device clamped to a stalling limiter's rate that reads below it, and slower
 * beyond noise than a depth read before at or below its own: a device's own rate does not fall
 * with depth, so the limiter's rate is this reading. The clamp was read inside a budget (the
 * kernel's throttle lets its first slices through faster than its rate: 75 K stall to stall for a
 * 45 K cap imposed mid-search, which left every depth below the line, and the verifies climbed
 * to 16 for a knee of 3). */
static void reclamp_below(struct ctl_group *g, const struct ctl_point *p)
{
    if (g->clamped && g->period && p->x < plateau(g) && slower_than_shallower(g, p, CTL_CHANGE_SIGMAS))
        clamp_table(g, p->x);
}

/* The epoch after a search's first stall. The search's points were read inside the limiter's
 * first budget, at the device's own speed; an epoch past the hinge reads the limiter's rate C.
 * Past the hinge every depth gives C and below it the device's own rate, so the steady curve is
 * min(device, C): the table is clamped to C (Little's law stretches the latency to match; the
 * tail of a clamped point is unknown) and the model places the hinge from the points below it.
 * An epoch that did not read the limiter cannot say where C is: the search starts again. */
static void limiter_rate(struct ctl_group *g, const struct ctl_point *p, uint64_t now)
{
    double cliff_x = g->cliff_x;
    struct ctl_point first = g->reread;
    g->rate_probe = false;
    g->cliff_x = 0;
    g->reread.x = 0;
    /* After a stall the limiter is certain and only its rate is read; after a fall the point
     * read again must differ beyond noise, as a falling curve's noisy reading may not. */
    if (!reads_limiter(g, p, cliff_x > 0 ? CTL_CHANGE_SIGMAS : 0)) {
        if (cliff_x > 0) {
            /* The depth before the fall delivers its rate again: the device's own falling curve. */
            tab_add(g, *p);
            decide(g, now);
        } else {
            start_search(g, g->w < g->w_first ? g->w : g->w_first, g->cap, now);
        }
        return;
    }
    if (cliff_x > 0 && g->ep.stalls < 2 && first.x == 0 && fabs(p->x / cliff_x - 1.0) > CTL_EPS) {
        /* The fall's deeper epoch read the limiter too, and the two disagree: the budget's end
         * inside the deeper one reads high, its payback inside the re-read low (0.7 C on this
         * disk). The depth is read once more, and the higher re-read is the rate: a payback
         * only takes away, and a rate read low holds below the knee. */
        g->reread = *p;
        g->rate_probe = true;
        g->cliff_x = cliff_x;
        epoch_reset(g, now);
        return;
    }
    if (first.x > p->x)
        p = &first;
    double c = p->x;
    if (cliff_x > 0) {
        /* A curve that falls past its peak re-reads a depth just left as low as a limiter
         * does (a device with memory); only a point above the limiter's rate can show it. */
        memcpy(g->unclamped, g->tab, sizeof(g->tab));
        g->nunclamped = g->ntab;
        g->clamp_x = c;
    }
    g->rate_cap = true;
    clamp_table(g, c);
    tab_add(g, *p); /* (clamped first: the budget's reading is the limiter's, not a memory's) */
    /* A verify that was under way checked a knee placed from the burst: place it again. */
    g->phase = AURAIO_CTL_PHASE_GALLOP_UP;
    g->verifies = 0;
    decide(g, now);
}

/* A point beyond noise above the rate a fall's table was clamped to: no limiter caps the device
 * there, the fall was its own curve, and the table as measured comes back. Not once the device
 * has stalled: the limiter is then certain, and a point above its rate is a budget's burst (a
 * throttle let 86 K through in 250 ms under a 67 K cap, which unclamped and held 32 for 4). */
static void unclamp_above(struct ctl_group *g, const struct ctl_point *p)
{
    if (g->clamp_x <= 0 || g->period)
        return;
    double d = p->x / g->clamp_x - 1.0 - CTL_EPS;
    if (d <= 0 || d * d <= CTL_CHANGE_SIGMAS * CTL_CHANGE_SIGMAS * p->se2)
        return;
    memcpy(g->tab, g->unclamped, sizeof(g->tab));
    g->clamped = false;
    g->ntab = g->nunclamped;
    g->clamp_x = 0;
}

/* Whether a search point was read while a limiter repaid a burst: the device is known to be
 * limited, the point reads below the plateau, and its tail jumped past Little's law from the
 * nearest shallower point with a tail. Below a limiter's hinge a depth reads its own rate with
 * its own latency; past it, the limiter's rate with a queue. A queue without the rate is neither:
 * the limiter is holding the depth back for what an earlier one took (on the disk a climb to 512
 * was repaid at 30 K under a 67 K cap for half a second, and verifies at 5 and 8 read inside it
 * held 14 for a knee of 4). */
static bool repaying(const struct ctl_group *g, const struct ctl_point *p)
{
    return hinged(g) && !good(g, p) && tail_jump_from(g, p);
}

/* A slicing limiter lends what a depth below its rate leaves unused, up to a slice's budget (the
 * kernel's throttle keeps it until it trims the slice), and the next depth above its rate spends
 * the loan at its own speed. Read as that depth's rate, the loan the halving's reading of depth 1
 * left set the held reference at 2 above a 31 K cap, the payback read as a loss, the next loan as
 * a gain, and the search went 1, 2, 1, 2 for as long as it ran. While a rate cap is owed, a
 * reading above its rate is its rate; a stall ends the loan. Not a device that stalls past its own
 * peak (the host's disk): it lends nothing, and the depths below its stalling one read above the
 * stalled rate for good. The account runs before a cap is known, since the depth that shows it may
 * read after the one that lent. Returns the reading before the cut (0: not cut). */
static double lent(struct ctl_group *g, struct ctl_point *p, uint64_t dt)
{
    g->loan_w = 0;
    if (!g->period || !g->slice || g->slice_x <= 0 || g->ep.stalls) {
        g->loan = 0;
        return 0;
    }
    bool owed = g->loan > 0;
    if (owed && p->x > g->slice_x)
        g->loan_w = g->w;
    double most = g->slice_x * (double)g->slice / 1e9;
    g->loan += (g->slice_x - p->x) * (double)dt / 1e9;
    g->loan = g->loan < 0 ? 0 : g->loan > most ? most : g->loan;
    /* Kept on account before a cap is known: the depth that shows one read after the loan. */
    if (!g->rate_cap || !owed || p->x <= g->slice_x)
        return 0;
    double raw = p->x, f = g->slice_x / p->x;
    p->x = g->slice_x;
    p->ops *= f;
    p->lat /= f;
    return raw;
}

static void end_epoch(struct ctl_group *g, uint64_t now)
{
    uint64_t dt = now - g->ep.start;
    struct ctl_point p = epoch_point(g, dt);
    bool binding = g->ep.at_limit * CTL_BINDING_SHARE >= g->ep.n || 2u * g->ep.backlog_ticks >= g->ep.ticks;
    if (p.lat > 0) {
        g->last_lat = p.lat;
        if (g->lmin == 0 || p.lat < g->lmin)
            g->lmin = p.lat; /* every epoch's, as BBR keeps the minimum RTT of all its samples */
    }
    if (g->ep.n)
        g->p50 = p.p50;
    /* Two depths read stall to stall at one rate: a limiter's (a device that stalls past its own
     * peak, the host's disk, stalls at that depth only). */
    bool one_rate = false;
    if (g->ep.stalls > 1) {
        one_rate = g->slice_w && g->slice_w != g->w && fabs(p.x / g->slice_x - 1.0) <= CTL_EPS;
        g->slice_x = p.x;
        g->slice_w = g->w;
    }
    g->loan_cut_x = lent(g, &p, dt);

    if (!binding) {
        coast(g, &p, now);
        return;
    }
    if (g->phase == AURAIO_CTL_PHASE_COAST) {
        /* Demand is back: resume where the app left off, measuring afresh. */
        g->phase = g->resume;
        if (g->phase == AURAIO_CTL_PHASE_HOLD || g->phase == AURAIO_CTL_PHASE_TARGET)
            g->x_ref = 0;
        epoch_reset(g, now);
        return;
    }
    if (g->rate_probe) {
        limiter_rate(g, &p, now);
        return;
    }
    switch (g->phase) {
    case AURAIO_CTL_PHASE_GALLOP_UP:
        climb(g, &p, now);
        break;
    case AURAIO_CTL_PHASE_GALLOP_DOWN:
    case AURAIO_CTL_PHASE_VERIFY:
        if (repaying(g, &p) && g->repaying < CTL_LONG) {
            /* Read the depth again once the payback is over; whatever depth the search held
             * meanwhile, the limiter would deliver the same. */
            g->repaying++;
            epoch_reset(g, now);
            break;
        }
        g->repaying = 0;
        if (g->below && !g->rate_cap && one_rate) {
            /* A loss's search on a device that began to stall under a held depth knew no limiter
             * rate: its first sight of one is this. As after a search's first stall, the table is
             * clamped to it and the knee placed again; read as the device's, the loan that the
             * shallow depths left held 38 for a knee of 16 under a 131 K cap (178 K read there). */
            g->rate_cap = true;
            clamp_table(g, p.x);
            tab_add(g, p);
            g->phase = AURAIO_CTL_PHASE_GALLOP_UP;
            g->verifies = 0;
            decide(g, now);
            break;
        }
        unclamp_above(g, &p);
        reclamp_below(g, &p);
        tab_add(g, p);
        decide(g, now);
        break;
    case AURAIO_CTL_PHASE_PROBE:
        probe_done(g, &p, now);
        break;
    default:
        hold(g, &p, now);
        break;
    }
}

/* ---- ticks, rings, stats ---- */

static void split(struct ctl_group *g)
{
    double sum = 0;
    for (uint32_t i = 0; i < g->nrings; i++)
        sum += g->rings[i].demand;
    for (uint32_t i = 0; i < g->nrings; i++) {
        struct ctl_ring *r = &g->rings[i];
        double share = sum > 0 ? (double)g->w * r->demand / sum : (double)g->w / g->nrings;
        uint32_t lim = (uint32_t)(share + 0.5);
        if (lim < 1)
            lim = 1; /* every ring can always start an I/O: the first one is how demand shows */
        if (lim > g->cfg.ring_max)
            lim = g->cfg.ring_max;
        r->limit = lim;
        /* Batch up to 1/8 of the window (max 32) before entering the kernel: amortises the
         * syscall at depth without delaying shallow, latency-bound rings. */
        uint32_t b = lim / 8;
        r->batch = b < 1 ? 1 : (b > 32 ? 32 : b);
    }
}

static void close_stats(struct ctl_ring *r, uint64_t now)
{
    uint64_t dt = now - r->win_start;
    r->tput = dt ? (double)r->win_bytes * 1e9 / (double)dt : 0.0;
    r->p50 = auraio__histogram_percentile(&r->win_hist, 0.5);
    r->p99 = auraio__histogram_percentile(&r->win_hist, 0.99);
    memcpy(&r->last_hist, &r->win_hist, sizeof(r->last_hist));
    auraio__histogram_reset(&r->win_hist);
    r->win_bytes = 0;
    r->win_start = now;
}

/* Fold one ring's tick into its stats window and, once the depth has settled, the epoch. */
static void take(struct ctl_group *g, struct ctl_ring *r, struct ctl_acc *a, uint64_t now)
{
    r->win_bytes += a->bytes;
    auraio__histogram_merge(&r->win_hist, &a->hist);
    if (now < g->settle_until || g->drain)
        return;
    g->ep.n += a->n;
    g->ep.bytes += a->bytes;
    g->ep.blk_n += a->n;
    g->ep.blk_b += a->bytes;
    g->ep.lat_sum += a->lat_sum_ns;
    g->ep.at_limit += a->at_limit;
    auraio__histogram_merge(&g->ep.hist, &a->hist);
}

/* An epoch that met its first stall's end starts again there, so that it spans whole slices. */
static void epoch_reset_aligned(struct ctl_group *g, uint64_t now)
{
    epoch_reset(g, now);
    g->ep.stalls = 1;
}

/* A tick that brings completions: whether it ends a stall (CTL_STALL) and what that says about
 * the device. The first stall of a search makes its earlier points suspect (short epochs inside
 * a burst read the device, not the limiter): the search starts again from its shallow end.  The
 * device counts as slicing until a held depth gains (on_change): the limiter is gone or raised. */
static bool stall(struct ctl_group *g, uint64_t now, uint64_t oldest)
{
    uint64_t gap = now - g->last_done;
    /* Only the silence the application saw while asleep waiting for it: a reaper preempted or
     * busy elsewhere leaves the same hole in the completion stream on a device that never
     * stopped (on a loaded machine that made an uncapped disk look sliced, and held 8 for 64). */
    uint64_t seen = g->waited ? g->waited - g->waited_at_done : gap;
    g->waited_at_done = g->waited;
    /* Silent for CTL_STALL median latencies, and for long enough that ticks (the only time
     * this module sees) cannot fake it: half CTL_STALL mean intervals between them. */
    double bar = CTL_STALL * (double)g->p50, tick_bar = CTL_STALL / 2 * g->tick_dt;
    bar = bar > tick_bar ? bar : tick_bar;
    if (!g->period && bar < (double)CTL_EPOCH_MIN_NS)
        bar = (double)CTL_EPOCH_MIN_NS; /* the first stall must be long: one slow request on a
                                           one-channel device is not a limiter's slice */
    /* I/O was in flight through the silence: seen at the tick before it, or a request that ends it
     * had waited since before it. The engine ticks after reaping and before the callbacks submit
     * again, so at depth 1, or when a throttle's burst ends, that tick finds nothing in flight:
     * without the second test no stall was ever seen below a few requests in flight. */
    bool held = g->busy || oldest >= gap;
    bool end = held && g->last_done && bar > 0 && (double)gap > bar && (double)seen > bar;
    if (g->last_done && !end) {
        /* Clamped: gaps just short of a stall must not raise the bar for the next one. */
        double x = g->tick_dt > 0 && (double)gap > 2 * g->tick_dt ? 2 * g->tick_dt : (double)gap;
        g->tick_dt = g->tick_dt > 0 ? g->tick_dt + 0.125 * (x - g->tick_dt) : x;
    }
    g->last_done = now;
    if (!end)
        return false;
    bool first = g->period == 0;
    uint64_t since = now - g->last_stall;
    if (!first && since < 4 * g->period && since >= CTL_EPOCH_MIN_NS) {
        /* Consecutive stalls, a slice (or a few) apart. No slice is taken longer than the
         * longest epoch: stalls that far apart are a device going quiet now and then, and a
         * 1.4 s "slice" made every stall-free epoch last 1.75 s, so a cap lifted took 5 s to show. */
        g->period = since < CTL_EPOCH_MAX_NS ? since : CTL_EPOCH_MAX_NS;
        if (since <= CTL_EPOCH_MAX_NS && (!g->slice || since < g->slice))
            g->slice = since; /* stalls come a whole number of slices apart */
    }
    if (first && (g->phase == AURAIO_CTL_PHASE_GALLOP_UP || g->phase == AURAIO_CTL_PHASE_GALLOP_DOWN ||
                  g->phase == AURAIO_CTL_PHASE_VERIFY))
        return limiter_found(g, now);
    if (first && (g->phase == AURAIO_CTL_PHASE_HOLD || g->phase == AURAIO_CTL_PHASE_TARGET) && g->x_ref > 0) {
        /* A limiter's first stall under a held depth: its budget (or a host's burst) ran out, and
         * the held reference was read inside it. The stall counts as all but the last of the
         * changed epochs a loss needs, and the next epoch, on whole slices, decides: waiting for
         * three stall-to-stall epochs held 256 at 0.73 of the burst's rate for 1.1 s on this disk. */
        g->chg_dir = -1;
        g->chg_cnt = CTL_CHANGE_EPOCHS - 1;
    }
    limiter_held(g, now);
    return true;
}

void auraio__ctl_group_update(struct ctl_group *g, const struct ctl_ring_input *in, uint64_t now)
{
    bool backwards = now < g->last_now;
    uint64_t pending = 0, inflight = 0, done = 0, oldest = 0;
    /* Only a silence long enough to be a stall needs its oldest completion (a scan of buckets). */
    bool silence = g->last_done && (double)(now - g->last_done) > 2 * g->tick_dt;
    for (uint32_t i = 0; i < g->nrings; i++) {
        struct ctl_ring *r = &g->rings[i];
        struct ctl_acc *a = in[i].acc;
        pending += in[i].pending;
        inflight += in[i].in_flight;
        double d = (double)in[i].pending + (a && a->at_limit ? 1.0 : 0.0);
        r->demand += 0.3 * (d - r->demand); /* a few ticks of memory: demand shifts fast */
        if (!a)
            continue;
        done += a->n;
        if (silence && a->n) {
            uint64_t m = auraio__histogram_max(&a->hist);
            oldest = m > oldest ? m : oldest;
        }
        if (!backwards)
            take(g, r, a, now);
        auraio__ctl_acc_reset(a);
    }
    g->last_now = now;
    if (backwards) {
        /* A clock step back: the interval is unknown, so drop it rather than divide by it. */
        g->settle_until = now;
        g->last_done = 0; /* nor is the time since the last completion: no stall */
        epoch_reset(g, now);
        for (uint32_t i = 0; i < g->nrings; i++) {
            auraio__histogram_reset(&g->rings[i].win_hist);
            g->rings[i].win_bytes = 0;
            g->rings[i].win_start = now;
        }
        split(g);
        return;
    }
    bool stall_end = done && stall(g, now, oldest);
    for (uint32_t i = 0; i < g->nrings; i++) {
        struct ctl_ring *r = &g->rings[i];
        uint64_t dt = now - r->win_start;
        if (dt >= CTL_STATS_NS && (auraio__histogram_percentile_reliable(&r->win_hist, 0.99) || dt >= CTL_STATS_MAX_NS))
            close_stats(r, now);
    }
    /* Per-ring limits are rounded (each at least 1), so their sum may exceed w a little. */
    uint64_t lsum = 0;
    for (uint32_t i = 0; i < g->nrings; i++)
        lsum += g->rings[i].limit;
    if (g->drain && inflight <= (lsum > g->w ? lsum : g->w))
        g->drain = false;
    g->busy = inflight > 0;
    if (now < g->settle_until || g->drain) {
        epoch_reset(g, now);
        g->settled_since = now;
    } else {
        if (stall_end && g->ep.stalls++ == 0)
            epoch_reset_aligned(g, now);
        g->ep.ticks++;
        block_tick(&g->ep, now, stall_end);
        if (pending > inflight)
            g->ep.backlog_ticks++;
        uint64_t dt = now - g->ep.start;
        if (dt > 0 && epoch_done(g, now, stall_end))
            end_epoch(g, now);
        else if (dt >= 16 * CTL_EPOCH_MAX_NS && g->ep.n < CTL_EPOCH_MIN_N)
            epoch_reset(g, now); /* (almost) nothing completed: no signal, change nothing */
    }
    split(g);
}

int auraio__ctl_group_init(struct ctl_group **out, const struct ctl_config *cfg, uint64_t now_ns)
{
    if (!out || !cfg || cfg->ring_count == 0 || cfg->ring_max == 0)
        return -EINVAL;
    struct ctl_group *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->rings = calloc(cfg->ring_count, sizeof(*g->rings));
    if (!g->rings) {
        free(g);
        return -ENOMEM;
    }
    g->cfg = *cfg;
    g->nrings = cfg->ring_count;
    g->w_min = cfg->w_min ? cfg->w_min : 1;
    uint64_t wmax = cfg->w_max ? cfg->w_max : (uint64_t)cfg->ring_max * cfg->ring_count;
    g->w_max = wmax > UINT32_MAX ? UINT32_MAX : (uint32_t)wmax;
    if (g->w_max < g->w_min)
        g->w_max = g->w_min;
    uint64_t winit = cfg->w_init ? cfg->w_init : 4ull * cfg->ring_count;
    g->rng = cfg->seed;
    g->target = cfg->p99_target_ns;
    g->last_now = now_ns;
    g->w = g->w_min;
    for (uint32_t i = 0; i < g->nrings; i++)
        g->rings[i].win_start = now_ns;
    g->w_first = winit > g->w_max ? g->w_max : (uint32_t)winit;
    start_search(g, g->w_first, g->w_max, now_ns);
    g->drain = false;
    g->settle_until = now_ns;
    split(g);
    *out = g;
    return 0;
}

void auraio__ctl_group_destroy(struct ctl_group *g)
{
    if (!g)
        return;
    free(g->rings);
    free(g);
}

void auraio__ctl_group_waited(struct ctl_group *g, uint64_t waited_ns)
{
    if (waited_ns > g->waited)
        g->waited = waited_ns;
}

void auraio__ctl_set_p99_target(struct ctl_group *g, uint64_t target_ns)
{
    if (g->target == target_ns)
        return;
    g->target = target_ns;
    g->infeasible = false;
    g->loss_cap = 0;
    start_search(g, g->w, g->w_max, g->last_now);
}

uint32_t auraio__ctl_ring_limit(const struct ctl_group *g, uint32_t ring)
{
    return ring < g->nrings ? g->rings[ring].limit : 0;
}

uint32_t auraio__ctl_ring_batch(const struct ctl_group *g, uint32_t ring)
{
    return ring < g->nrings ? g->rings[ring].batch : 0;
}

uint32_t auraio__ctl_group_depth(const struct ctl_group *g)
{
    return g->w;
}

int auraio__ctl_group_phase(const struct ctl_group *g)
{
    return g->phase;
}

void auraio__ctl_ring_stats(const struct ctl_group *g, uint32_t ring, struct ctl_ring_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (ring >= g->nrings)
        return;
    const struct ctl_ring *r = &g->rings[ring];
    out->phase = g->phase;
    out->target_infeasible = g->infeasible;
    out->p99_ns = r->p99;
    out->p50_ns = r->p50;
    out->throughput_bps = r->tput;
    out->limit = r->limit;
    out->batch = r->batch;
}

const struct histogram *auraio__ctl_ring_histogram(const struct ctl_group *g, uint32_t ring)
{
    return ring < g->nrings ? &g->rings[ring].last_hist : NULL;
}

/* ---- per-device model accessors (issue #16): read-only views of the fields above; kept at the
 * end of the file so the algorithm above can change without touching them ---- */

void auraio__ctl_group_model(const struct ctl_group *g, struct ctl_model *out)
{
    memset(out, 0, sizeof(*out));
    out->base_latency_ns = g->lmin;
    out->knee = g->knee;
    double best = 0, x = 0, ops = 0, n = 0;
    for (int i = 0; i < g->ntab; i++)
        best = g->tab[i].x > best ? g->tab[i].x : best;
    /* The plateau as tab_top weighs it, in both units. */
    for (int i = 0; i < g->ntab; i++) {
        if (g->tab[i].x >= (1.0 - CTL_EPS) * best) {
            double wt = g->tab[i].n > 0 ? g->tab[i].n : 1;
            x += wt * g->tab[i].x;
            ops += wt * g->tab[i].ops;
            n += wt;
        }
    }
    if (n > 0) {
        out->ceiling_bps = x / n;
        out->ceiling_ops = ops / n;
    }
}
