/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Probe-Bracket-Hold depth controller for one device group. Owns the group's search state, the
 * per-epoch measurement, the per-ring split of the group depth and the per-ring stats windows.
 * Every constant below names the reason or measurement behind it; doc/controller.md has the story.
 * No libm: square roots and logs are avoided by comparing squares and ratios.
 */
#include "controller.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Knee tolerance: hold the smallest depth within 5% of the best throughput (the goal). */
#define CTL_EPS 0.05
/* A doubling that gains under 10% counts as a plateau step; two in a row end the gallop (BBR uses
 * 25% over 3 rounds for 2x steps; on collision-knee devices 10% still leaves ~3% on the table). */
#define CTL_GAIN_UP 0.10
#define CTL_GALLOP_FAILS 2
/* Epoch sizes: ~400 completions give ~2.5% throughput precision, enough to see a 10% gain;
 * bisection and hold need ~1.5% to judge a 5% band. Minimum times smooth batching effects. */
#define CTL_N_GALLOP 400u
/* Bisection epochs: 4000 samples (sd ~1.5-2%). On the flat tops of gradual knees X moves ~1% per
 * 10% of depth, so the 2000-sample epochs (sd 3-4%) scattered the landing over 0.4-1.4x the
 * oracle's knee; doubling them (and the X_top re-measurement, 8000) put the latency-spike
 * scenario's initial landing in the band (TTC 2.8 -> 0.0 s) at +0.1-0.3 s of search. */
#define CTL_N_BISECT 4000u
#define CTL_N_HOLD 2000u
/* Measured noise of one epoch's throughput on the simulated device (lognormal + heavy tail):
 * relative sd ~ 1-3 / sqrt(n). The deepest gallop point sets X_top, and on a flat top a 1% error
 * there moves the knee 20-40% in depth, so it is re-measured with a long epoch (sd ~2%) and pooled
 * with the gallop epoch. A capacity-loss re-search decides on 3000-sample epochs. */
#define CTL_N_TOP 8000u
#define CTL_N_LOSS 3000u
#define CTL_N_DOWN 1500u
/* An epoch whose throughput is within this relative distance of the good/bad line is extended
 * once (the reference design's "extend if within 1 sigma" with sigma ~ 2.5% at these sizes). */
#define CTL_AMBIG 0.03
/* A gallop point counts as clearly good (bad) only when 6% above (below) the line. */
#define CTL_GALLOP_MARGIN 0.06
#define CTL_T_GALLOP_NS 3000000ull
#define CTL_T_BISECT_NS 10000000ull
#define CTL_T_HOLD_NS 25000000ull
/* Slow devices: an epoch may end at 250 ms with 64 samples, or at 2 s with 16; with fewer samples
 * it never raises the depth (a handful of completions is noise). */
#define CTL_T_EPOCH_MAX_NS 250000000ull
#define CTL_N_EPOCH_MAX 64u
#define CTL_T_EPOCH_SLOW_NS 2000000000ull
#define CTL_N_EPOCH_SLOW 16u
#define CTL_T_EPOCH_STALE_NS 4000000000ull
/* After a depth change, wait out the ramp: twice the median latency, at least 200 us. */
#define CTL_SETTLE_MIN_NS 200000ull
/* Bisection stops when the bracket is within 10% (3-5 epochs from a 2x bracket). */
#define CTL_BISECT_RATIO 1.10
/* Change detector: 3 consecutive epochs beyond max(3 sigma, 9%) with the same sign. */
#define CTL_CHG_MIN 0.09
#define CTL_CHG_SIGMAS2 9.0
#define CTL_CHG_EPOCHS 3
#define CTL_EWMA 0.2
/* Probes every 2-4 s (jittered), one epoch at 1.25x; a hit needs +8% or 3 sigma. */
#define CTL_PROBE_MIN_NS 2000000000ull
#define CTL_PROBE_SPAN_NS 2000000000ull
#define CTL_PROBE_GAIN 1.25
#define CTL_PROBE_HIT 0.08
/* Target mode: aim at 85% of T, cut above 95%, grow below 70% (iocost-style hysteresis). A
 * decision needs >= 2000 samples over >= 4 epochs (P99 is +-15% noisy below that), or 1 s. */
#define CTL_T_SET 0.85
#define CTL_T_CUT 0.95
#define CTL_T_GROW 0.70
#define CTL_T_CLEAR 0.85
#define CTL_TW_N 2000u
#define CTL_TW_EPOCHS 4
#define CTL_TW_SLOW_NS 1000000000ull
#define CTL_TW_SLOW_N 200u
/* An increase in target mode must pay: X must rise by >= 25% of the relative depth increase. */
#define CTL_PAYOFF 0.25
/* Stats windows: 100 ms, extended up to 1 s until P99 is not just the maximum. */
#define CTL_STATS_NS 100000000ull
#define CTL_STATS_MAX_NS 1000000000ull
/* Demand EWMA per tick, for the per-ring split. */
#define CTL_DEMAND_EWMA 0.3
#define CTL_TAB 24
/* Interleaved bisection (ab_slice): slices of >= 700 completions and >= 4 ms alternate candidate
 * and reference; at least 3 pairs, decide at 2 sd, cap at 6000 candidate samples or 300 ms. On
 * the real device (virtio, host page cache) 100 ms windows at one depth vary +-15% with a slow
 * time constant: 25 ms absolute epochs compared against an X_top measured earlier landed at
 * 0.6x the best IOPS. A pair spans ~10 ms there, so the drift cancels in the ratio. */
/* Sub-intervals for the noise estimate: >= 8 ms and >= 64 completions; "noisy" when their
 * variance exceeds the (conservative) counting floor CTL_NOISE_C / n on average. */
#define CTL_SUB_NS 4000000ull
#define CTL_SUB_N 64u
/* The X_top re-measurement lasts >= 30 ms, so the drift test has >= 7 sub-intervals before the
 * bracket is chosen (a 2-ring run on the virtio disk bracketed by absolute epochs at 27). */
#define CTL_T_TOP_NS 30000000ull
#define CTL_DISP_EWMA 0.3
#define CTL_DISP_NOISY 5.0
#define CTL_DISP_CLIP 12.0
#define CTL_SLOW_HOLD 0.5
#define CTL_T_HOLD_NOISY_NS 100000000ull
/* Noisy search: a candidate that beats the reference by 2% becomes the reference. */
#define CTL_AB_PEAK 0.02
#define CTL_AB_SLICE_N 700u
#define CTL_AB_SLICE_T_NS 4000000ull
/* On the virtio disk a depth takes tens of ms to show its steady throughput: 5 ms slices blurred
 * the curve (X(64)/X(128) read 0.92 interleaved, 1.3 at fixed depth; X(53)/X(64) read >= 0.95).
 * 15 ms slices (plus the settle) still alternate well inside the drift's ~100 ms. */
#define CTL_AB_SLICE_NOISY_NS 15000000ull
/* The line of an interleaved step on a drifting device: 3% under the reference, not 5%: the
 * ratio keeps a few % of error, and a short landing is the costly side (the P99 score has 25%). */
#define CTL_EPS_NOISY 0.03
#define CTL_AB_KMIN 3
#define CTL_AB_SIGMAS2 4.0
#define CTL_AB_NC_MAX 6000u
#define CTL_AB_T_MAX_NS 300000000ull
/* Counting floor of an epoch's relative throughput variance: CTL_NOISE_C / n (measured sd
 * ~1-3/sqrt(n) on heavy-tailed devices; see noise2()). */
#define CTL_NOISE_C 4.0

struct ctl_point {
    uint32_t w;
    double x;
    double n; /* samples behind x (0 = injected reference, no count known) */
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

struct ctl_group {
    struct ctl_config cfg;
    uint32_t nrings;
    struct ctl_ring *rings;
    uint32_t w, w_min, w_max;
    int phase;
    uint64_t last_now;
    uint64_t rng;

    /* current epoch */
    uint64_t ep_start;
    uint64_t settle_until;
    bool drain;              /* after a decrease: wait until in-flight <= w */
    uint64_t ep_n, ep_bytes, ep_at_limit;
    uint32_t ep_ticks, ep_backlog_ticks;
    struct histogram ep_hist;
    uint64_t last_p50;
    uint64_t last_p99;       /* of the last epoch (ab: settle after a drain) */
    uint64_t last_ep_ns;     /* duration of the last completed epoch (probe spacing) */

    /* search */
    struct ctl_point tab[CTL_TAB];
    int ntab;
    uint32_t lo, hi, cap;
    uint32_t top_w;          /* depth of the X_top re-measurement (0: the deepest point) */
    int fails;
    double x_top, x_prev;
    bool loss;               /* GALLOP_DOWN after a capacity loss: no bisection, back to hi */
    bool loss_ref;           /* that search's first epoch: X at the held depth, new regime */
    bool top;                /* BISECT epoch re-measuring the deepest gallop point */
    double top_x, top_n;     /* that point's gallop measurement, to pool with the long epoch */
    /* Curve-shape reference of the held regime: X at a shallow depth of the search that led to
     * the hold (shape_s = 0: none). A capacity loss re-measures X there and compares the gain
     * X(W)/X(shape_s) before and after (see research()). */
    uint32_t shape_s;
    double shape_xs;
    bool shape;              /* GALLOP_DOWN epoch measuring X(shape_s) in the new regime */
    double shape_xw_old, shape_xw_new;
    uint32_t ep_mult;        /* an ambiguous epoch is extended once: need x 2 */
    /* Interleaved (A/B) bisection step: short slices alternate between the candidate depth and
     * the reference depth (where X_top was measured), and the decision is on the ratio of the
     * two, measured over the same span of time, so slow device drift cancels (doc, 5th). */
    bool ab;
    bool ab_down;            /* noisy search: halving down from the reference until a bad point */
    /* Measured slow noise: every epoch is cut into sub-intervals of >= CTL_SUB_NS; the spread
     * of their rates (batch means) against the counting floor CTL_NOISE_C / n tells an i.i.d.
     * device (ratio << 1: the simulator measures ~0.1-0.3) from one whose throughput drifts
     * (the virtio disk: ratio >> 1). disp is an EWMA of that ratio; slow2 of the relative
     * variance of the sub-interval rates. */
    uint64_t sub_start, sub_n, sub_b;
    uint32_t sub_k;
    double sub_s, sub_s2, sub_cnt;
    double disp, slow2;
    int disp_epochs;
    bool drifting;           /* latched: disp once exceeded CTL_DISP_NOISY */
    int ab_side;             /* 0: candidate slice running, 1: reference slice */
    uint32_t ab_ref, ab_cand;
    uint64_t ab_start;
    double ab_nc, ab_nr, ab_bc, ab_br, ab_tc, ab_tr, ab_xc;
    int ab_k;
    double ab_q, ab_q2;      /* sum and sum of squares of the per-pair ratios */

    /* hold */
    double x_ref, var;
    int chg_cnt, chg_dir;
    double chg_sum;
    uint64_t next_probe;
    uint32_t probe_from;
    int probe_return;        /* phase to return to after a probe */

    /* target */
    uint64_t target;
    bool infeasible;
    uint32_t knee_w;
    struct histogram tw_hist;
    int tw_epochs;
    uint64_t tw_start;
    double tw_xsum;
    uint32_t grow_from;      /* depth before the last target-mode increase, 0 = none pending */
    double grow_x;
};

static const char *const phase_names[AURAIO_CTL_PHASE_COUNT] = {
    "GALLOP_UP", "GALLOP_DOWN", "BISECT", "HOLD", "PROBE", "TARGET", "COAST", "FIXED",
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
    /* splitmix64: tiny, seeded, good enough for jitter */
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Probes are rare relative to an epoch: every 2-4 s, but at least CTL_PROBE_EPOCHS epochs apart.
 * At tens of IOPS an epoch lasts 1-2 s, and a probe every 2-4 s kept the depth 25-35% of the
 * time above the held one (P99 x1.3-1.5 on a k = 1 device) for a test that cannot win on 64
 * samples anyway. */
#define CTL_PROBE_EPOCHS 24

static uint64_t probe_delay(struct ctl_group *g)
{
    uint64_t d = CTL_PROBE_MIN_NS + rng_next(g) % CTL_PROBE_SPAN_NS;
    uint64_t e = (uint64_t)CTL_PROBE_EPOCHS * g->last_ep_ns;
    return d > e ? d : e;
}

static uint32_t isqrt64(uint64_t v)
{
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    while (bit > v)
        bit >>= 2;
    while (bit) {
        if (v >= r + bit) {
            v -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)r;
}

static void epoch_reset(struct ctl_group *g, uint64_t now)
{
    g->ep_start = now;
    g->ep_n = g->ep_bytes = g->ep_at_limit = 0;
    g->ep_ticks = g->ep_backlog_ticks = 0;
    g->ep_mult = 1;
    g->sub_start = now;
    g->sub_n = g->sub_b = 0;
    g->sub_k = 0;
    g->sub_s = g->sub_s2 = g->sub_cnt = 0;
    auraio__histogram_reset(&g->ep_hist);
}

static void tw_reset(struct ctl_group *g, uint64_t now)
{
    auraio__histogram_reset(&g->tw_hist);
    g->tw_epochs = 0;
    g->tw_start = now;
    g->tw_xsum = 0;
}

static void set_w(struct ctl_group *g, uint32_t w, uint64_t now)
{
    if (w < g->w_min)
        w = g->w_min;
    if (w > g->w_max)
        w = g->w_max;
    if (w < g->w)
        g->drain = true;
    if (w != g->w) {
        /* Latency scales with depth past the knee, so the new depth's ramp lasts ~ p50 * w'/w. */
        uint64_t settle = 2 * g->last_p50;
        if (w > g->w && g->w > 0)
            settle = settle * w / g->w;
        g->settle_until = now + (settle > CTL_SETTLE_MIN_NS ? settle : CTL_SETTLE_MIN_NS);
    }
    g->w = w;
    epoch_reset(g, now);
}

/* Every epoch measured at the same depth within one search is pooled (weighted by its sample
 * count), so repeated visits sharpen the estimate instead of replacing it; the table is cleared
 * whenever a search starts, so nothing from an older regime is pooled. */
static void tab_add_n(struct ctl_group *g, uint32_t w, double x, double n)
{
    for (int i = 0; i < g->ntab; i++) {
        if (g->tab[i].w == w) {
            struct ctl_point *p = &g->tab[i];
            if (p->n > 0 && n > 0) {
                p->x = (p->x * p->n + x * n) / (p->n + n);
                p->n += n;
            } else if (n > 0 || p->n <= 0) {
                p->x = x;
                p->n = n;
            }
            return;
        }
    }
    if (g->ntab == CTL_TAB) {
        memmove(&g->tab[0], &g->tab[1], sizeof(g->tab[0]) * (CTL_TAB - 1));
        g->ntab--;
    }
    g->tab[g->ntab++] = (struct ctl_point){ w, x, n };
}

static void tab_add(struct ctl_group *g, uint32_t w, double x)
{
    tab_add_n(g, w, x, (double)g->ep_n);
}

/* The shallowest measured point of the current table, if it is at most a quarter of the held
 * depth: far enough down the curve that the gain X(W)/X(s) reflects the curve's shape. */
static void shape_capture(struct ctl_group *g, uint32_t w)
{
    g->shape_s = 0;
    for (int i = 0; i < g->ntab; i++) {
        const struct ctl_point *p = &g->tab[i];
        if (p->n > 0 && 4ull * p->w <= w && (g->shape_s == 0 || p->w < g->shape_s)) {
            g->shape_s = p->w;
            g->shape_xs = p->x;
        }
    }
}

/* sqrt without libm (a few Newton steps; only used on small-sample paths). */
static double sqrt_approx(double v)
{
    if (!(v > 0))
        return 0;
    double r = v > 1 ? v : 1;
    for (int i = 0; i < 30; i++)
        r = 0.5 * (r + v / r);
    return r;
}

static void enter_hold(struct ctl_group *g, uint32_t w, uint64_t now)
{
    g->ab = false;
    g->ab_down = false;
    shape_capture(g, w);
    g->knee_w = w;
    set_w(g, w, now);
    g->x_ref = 0;
    g->var = 0;
    g->chg_cnt = 0;
    g->chg_sum = 0;
    g->grow_from = 0;
    g->next_probe = now + probe_delay(g);
    tw_reset(g, now);
    g->phase = g->target ? AURAIO_CTL_PHASE_TARGET : AURAIO_CTL_PHASE_HOLD;
}

static void start_gallop(struct ctl_group *g, uint32_t from, uint32_t cap, uint64_t now)
{
    g->ntab = 0;
    g->fails = 0;
    g->x_prev = 0;
    g->loss = false;
    g->loss_ref = false;
    g->shape = false;
    g->top = false;
    g->top_w = 0;
    g->ab = false;
    g->ab_down = false;
    g->ab_ref = 0;
    g->cap = cap < g->w_max ? cap : g->w_max;
    g->phase = AURAIO_CTL_PHASE_GALLOP_UP;
    set_w(g, from, now);
}

/* Depth that target-mode growth is aimed at, by Little's law (latency ~ depth above the knee). */
static double target_factor(const struct ctl_group *g, uint64_t p99)
{
    if (p99 == 0)
        return 2.0;
    return CTL_T_SET * (double)g->target / (double)p99;
}

/* After a capacity loss X_top is X at the old depth, which may sit below the top of the new
 * curve (a uniform slowdown keeps the knee's depth; only a flatter curve moves it down). The line
 * at 1.5% under it keeps a slowdown near the old depth (its X(W/2) is ~6-10% lower): at 2.5% the
 * 3000-sample noise (sd 4-5% per ratio) took 2 of 7 slowdown draws under the band and the median
 * TR to 0.949. It costs the phase-down case (a flatter curve, knee 1.4-3.5x below the held
 * depth), which stops halving earlier; see doc/controller.md, known gaps. */
#define CTL_EPS_LOSS 0.015
/* Shape test (research()): a gain ratio rho = [X(W)/X(s)]_new / [X(W)/X(s)]_old at or above this
 * keeps the held depth. A uniform slowdown gives rho ~ 1, four times fewer channels ~ 0.3-0.5. */
#define CTL_SHAPE_SAME 0.75
#define CTL_N_SHAPE 800u

static double eps_of(const struct ctl_group *g)
{
    return g->loss ? CTL_EPS_LOSS : CTL_EPS;
}

static bool good(const struct ctl_group *g, double x)
{
    return x >= (1.0 - eps_of(g)) * g->x_top;
}


/* Too close to the good/bad line to call: keep accumulating the same epoch once more. */
static bool ambiguous(struct ctl_group *g, double x)
{
    if (g->ep_mult > 1 || g->x_top <= 0)
        return false;
    double d = x / ((1.0 - eps_of(g)) * g->x_top) - 1.0;
    if (d * d >= CTL_AMBIG * CTL_AMBIG)
        return false;
    g->ep_mult = 2;
    return true;
}

static bool noisy(const struct ctl_group *g);
static void sub_close(struct ctl_group *g);

static void bisect_next(struct ctl_group *g, uint64_t now)
{
    if (g->lo == 0 || (double)g->hi <= CTL_BISECT_RATIO * (double)g->lo || g->hi - g->lo <= 1) {
        enter_hold(g, g->hi, now);
        return;
    }
    uint32_t m = isqrt64((uint64_t)g->lo * g->hi);
    if (g->ab_down)
        m = g->hi / 2;
    if (m <= g->lo)
        m = g->lo + 1;
    if (m >= g->hi)
        m = g->hi - 1;
    g->phase = AURAIO_CTL_PHASE_BISECT;
    g->ab = g->ab_ref > m && noisy(g);
    if (g->ab) {
        g->ab_side = 0;
        g->ab_cand = m;
        g->ab_start = now;
        g->ab_nc = g->ab_nr = g->ab_bc = g->ab_br = g->ab_tc = g->ab_tr = 0;
        g->ab_k = 0;
        g->ab_q = g->ab_q2 = 0;
    }
    set_w(g, m, now);
}

/* How far from the line a gallop point must be to count as clearly on one side: the tuned 6% for
 * full-size epochs (sd ~5-9% at 400 samples, and the line itself is a pooled long epoch), two
 * counting-floor sd for the time-capped epochs of slow devices (64 samples: sd ~25%, where a
 * fixed 6% let one noisy shallow point bound the bisection). A point with no sample count (an
 * injected reference) is a long HOLD average: the plain 6%. */
static double point_margin(const struct ctl_point *p)
{
    if (p->n <= 0 || p->n >= (double)CTL_N_GALLOP)
        return CTL_GALLOP_MARGIN;
    double m = 2.0 * sqrt_approx(CTL_NOISE_C / p->n);
    return m > CTL_GALLOP_MARGIN ? m : CTL_GALLOP_MARGIN;
}

static void bracket(struct ctl_group *g, uint64_t now)
{
    /* Insertion sort by depth: the table is tiny. */
    for (int i = 1; i < g->ntab; i++) {
        struct ctl_point p = g->tab[i];
        int j = i - 1;
        while (j >= 0 && g->tab[j].w > p.w) {
            g->tab[j + 1] = g->tab[j];
            j--;
        }
        g->tab[j + 1] = p;
    }
    /* X_top: the highest depth's throughput when the gallop stopped at the cap while still
     * growing; after a plateau the mean of the two deepest points, because the maximum of noisy
     * epochs is biased up and the flat top makes the knee depth very sensitive to that bias. */
    g->x_top = g->ntab ? g->tab[g->ntab - 1].x : 0;
    g->ab_ref = g->ntab ? g->tab[g->ntab - 1].w : 0;
    if (g->top_w) {
        /* The peak was shallower than the deepest point: X_top is the peak's pooled X, and the
         * points past it are dropped (the bracket lies below the peak). */
        int t = 0;
        while (t < g->ntab - 1 && g->tab[t].w < g->top_w)
            t++;
        g->ntab = t + 1;
        g->x_top = g->tab[t].x;
        g->ab_ref = g->tab[t].w;
        g->top_w = 0;
    } else if (g->ntab >= 2) {
        /* Non-monotone or noisy top: never below the mean of the two deepest points. */
        double m2 = 0.5 * (g->tab[g->ntab - 1].x + g->tab[g->ntab - 2].x);
        if (m2 > g->x_top)
            g->x_top = m2;
    }
    /* Gallop points are short epochs (sd ~5-9%): they bound the bracket only where they are
     * clearly on one side of the line; the rest is left to the long bisection epochs. */
    double line = (1.0 - eps_of(g)) * g->x_top;
    if (noisy(g) && g->ntab >= 2 && !g->loss) {
        /* Slowly drifting device: a gallop epoch (a few ms) says nothing about which side of the
         * line it is on, and X_top from one stretch of time is not comparable with another. The
         * bracket is the whole gallop range [first point, deepest point], and every bisection
         * step is an interleaved comparison with the deepest point (ab_slice). The first point
         * is below the knee: the gallop went on from it. */
        g->lo = g->tab[0].w;
        g->hi = g->ab_ref;
        g->ab_down = true;
        /* The reference is the last gallop point that still gained >= 10% over its neighbour
         * (consecutive gallop epochs are ms apart, so the drift cancels between them), not the
         * deepest: interleaving favours deep depths on the virtio disk (a deep slice after a
         * shallow one starts fresh: X(64)/X(128) read 0.92 interleaved, 1.3 at fixed depth),
         * so a reference past the peak pulled the landing to 128-139. */
        for (int i = g->ntab - 1; i >= 1; i--) {
            if (g->tab[i].x >= g->tab[i - 1].x * (1.0 + CTL_GAIN_UP)) {
                if (i < g->ntab - 1) {
                    g->ab_ref = g->hi = g->tab[i].w;
                    g->x_top = g->tab[i].x;
                    g->lo = g->tab[i - 1].w;
                    g->ab_down = false;
                }
                break;
            }
        }
        bisect_next(g, now);
        return;
    }
    int h = 0;
    while (h < g->ntab - 1 && g->tab[h].x < line * (1.0 + point_margin(&g->tab[h])))
        h++;
    g->hi = g->tab[h].w;
    int l = h - 1;
    while (l >= 0 && g->tab[l].x >= line * (1.0 - point_margin(&g->tab[l])))
        l--;
    if (l < 0)
        g->hi = g->tab[0].w; /* even the first point is on the plateau: halve from there */
    if (l < 0) {
        g->lo = 0;
        if (g->hi <= g->w_min) {
            enter_hold(g, g->hi, now);
            return;
        }
        g->phase = AURAIO_CTL_PHASE_GALLOP_DOWN;
        set_w(g, g->hi / 2 > g->w_min ? g->hi / 2 : g->w_min, now);
        return;
    }
    g->lo = g->tab[l].w;
    bisect_next(g, now);
}

static void research(struct ctl_group *g, int dir, double x_now, uint64_t now)
{
    uint32_t w = g->w;
    if (dir < 0) {
        /* Capacity loss (slower phase, or another tenant): search only downward, so a greedy
         * knee-seeker cannot escalate against a neighbour whose share it would take. */
        /* The depth held was the knee (or the cap) of the old curve. Halve while the curve is
         * flat (X(W/2) >= (1 - eps) X(W), X(W) measured by the detector's epochs in the new
         * regime); at the first depth that loses more, go back to the last flat one. A uniform
         * slowdown keeps the knee's depth (the curve only scales), so its first halving fails and
         * the depth stays; fewer channels flatten the curve and the depth halves toward the new
         * knee. No bisection: below the old knee the capped curve's "5% of its top" would land
         * low, and the score band around a gradual knee is wider than one halving. */
        if (g->shape_s && 4ull * g->shape_s <= w && g->x_ref > 0 && g->shape_xs > 0) {
            /* Shape test: one short epoch at the shallow reference depth of the old regime.
             * A uniform slowdown scales the whole curve, so the gain X(W)/X(s) is unchanged
             * and the knee's depth with it; fewer channels (or a flatter curve) shrink the
             * gain roughly in proportion to the knee (X(W)/X(s) ~ BDP/s below saturation).
             * The two-point X(W/2)/X(W) test could not separate these (0.90-0.94 vs 0.93-0.98
             * with sd 4-5%); the gain over 4x-100x in depth differs by a factor 2-4. */
            uint32_t s0 = g->shape_s;
            double xs_old = g->shape_xs, xw_old = g->x_ref;
            start_gallop(g, w, w, now);
            g->shape_s = s0;
            g->shape_xs = xs_old;
            g->shape_xw_old = xw_old;
            g->shape_xw_new = x_now;
            g->hi = w;
            g->lo = 0;
            g->shape = true;
            g->phase = AURAIO_CTL_PHASE_GALLOP_DOWN;
            set_w(g, s0, now);
            return;
        }
        start_gallop(g, w, w, now);
        g->ntab = 0;
        tab_add_n(g, w, x_now, 0);
        g->x_top = x_now;
        g->ab_ref = w;
        g->hi = w;
        g->lo = 0;
        g->loss = true;
        if (w <= g->w_min) {
            enter_hold(g, w, now);
            return;
        }
        /* The detector's epochs straddle the change: measure X(W) afresh first. */
        g->loss_ref = true;
        g->phase = AURAIO_CTL_PHASE_GALLOP_DOWN;
        epoch_reset(g, now);
        return;
    } else {
        start_gallop(g, w < g->w_max ? auraio__ctl_scale(w, 2.0, g->w_min, g->w_max) : w,
                     g->w_max, now);
        g->x_prev = x_now;
    }
    tab_add_n(g, w, x_now, 0);
}

/* Relative variance of this epoch's throughput: the learned epoch-to-epoch variance, but never
 * below the counting floor CTL_NOISE_C / n (measured: sd ~ 1-3 / sqrt(n) on heavy-tailed
 * devices). At tens of IOPS an epoch holds 16-64 samples, sd 20-40%; without the floor the
 * learned variance lags and probes "win" on noise, ratcheting the depth up. */

static double noise2(const struct ctl_group *g)
{
    double floor = g->ep_n ? CTL_NOISE_C / (double)g->ep_n : 1.0;
    /* A drifting device: its measured sub-interval variance (halved: a HOLD epoch spans several
     * sub-intervals, and the drift is partly averaged) bounds sigma from below, or the drift
     * itself re-searches (seen on the virtio disk: spurious BISECT/GALLOP_DOWN, limit 256). */
    if (noisy(g) && CTL_SLOW_HOLD * g->slow2 > floor)
        floor = CTL_SLOW_HOLD * g->slow2;
    return g->var > floor ? g->var : floor;
}

/* Throughput change detector shared by HOLD and TARGET; returns true when it re-searched. */
static bool detect_change(struct ctl_group *g, double x, uint64_t now, bool allow_loss)
{
    if (g->x_ref <= 0) {
        g->x_ref = x;
        g->var = 0.03 * 0.03;
        return false;
    }
    double d = x / g->x_ref - 1.0;
    double thr2 = CTL_CHG_SIGMAS2 * noise2(g);
    if (thr2 < CTL_CHG_MIN * CTL_CHG_MIN)
        thr2 = CTL_CHG_MIN * CTL_CHG_MIN;
    if (d * d > thr2) {
        int dir = d > 0 ? 1 : -1;
        if (dir == g->chg_dir && g->chg_cnt > 0) {
            g->chg_cnt++;
            g->chg_sum += x;
        } else {
            g->chg_dir = dir;
            g->chg_cnt = 1;
            g->chg_sum = x;
        }
        if (g->chg_cnt >= CTL_CHG_EPOCHS && (dir > 0 || allow_loss)) {
            research(g, dir, g->chg_sum / g->chg_cnt, now);
            return true;
        }
        /* Anomalous epochs stay out of the noise model, or it would absorb the change. */
        return false;
    }
    g->chg_cnt = 0;
    g->x_ref += CTL_EWMA * (x - g->x_ref);
    g->var += CTL_EWMA * (d * d - g->var);
    return false;
}

static void on_target_window(struct ctl_group *g, bool binding, uint64_t now)
{
    uint64_t p = auraio__histogram_percentile(&g->tw_hist, 0.99);
    double x = g->tw_epochs ? g->tw_xsum / g->tw_epochs : 0.0;
    tw_reset(g, now);
    if (g->grow_from) {
        double dw = (double)g->w / (double)g->grow_from - 1.0;
        uint32_t from = g->grow_from;
        g->grow_from = 0;
        if (x < g->grow_x * (1.0 + CTL_PAYOFF * dw)) {
            /* The increase bought no throughput: that depth is past the knee. */
            g->knee_w = from;
            g->next_probe = now + probe_delay(g);
            set_w(g, from, now);
            return;
        }
        if (g->w > g->knee_w)
            g->knee_w = g->w;
    }
    if ((double)p > CTL_T_CUT * (double)g->target) {
        if (g->w <= g->w_min) {
            if (p > g->target)
                g->infeasible = true;
            return;
        }
        double f = target_factor(g, p);
        f = f < 0.5 ? 0.5 : (f > 0.95 ? 0.95 : f);
        set_w(g, auraio__ctl_scale(g->w, f, g->w_min, g->w_max), now);
        return;
    }
    if ((double)p <= CTL_T_CLEAR * (double)g->target)
        g->infeasible = false;
    if ((double)p < CTL_T_GROW * (double)g->target && binding && g->w < g->w_max) {
        bool probing = g->w >= g->knee_w;
        if (probing && now < g->next_probe)
            return;
        double f = target_factor(g, p);
        f = f > CTL_PROBE_GAIN ? CTL_PROBE_GAIN : f;
        uint32_t nw = auraio__ctl_scale(g->w, f, g->w_min, g->w_max);
        if (!probing && nw > g->knee_w)
            nw = g->knee_w > g->w ? g->knee_w : g->w + 1;
        g->grow_from = g->w;
        g->grow_x = x;
        set_w(g, nw, now);
    }
}

/* An app-limited epoch skips every rule except target decreases (reference design 5.4, HOLD):
 * the limit is not what holds the app back, so it must not grow, but a reliable P99 above the
 * target still cuts it proportionally (latency ~ depth past the knee), and at the minimum depth
 * the target is flagged infeasible. Without this a target set on an app-limited ring (or one
 * never reached by the gallop) was silently ignored: the phase stayed COAST at its first depth. */
static void coast_target(struct ctl_group *g, bool p99_ok, uint64_t p99, uint64_t now)
{
    if (!g->target || !p99_ok)
        return;
    if ((double)p99 > CTL_T_CUT * (double)g->target) {
        if (g->w <= g->w_min) {
            if (p99 > g->target)
                g->infeasible = true;
            return;
        }
        double f = target_factor(g, p99);
        f = f < 0.5 ? 0.5 : (f > 0.95 ? 0.95 : f);
        set_w(g, auraio__ctl_scale(g->w, f, g->w_min, g->w_max), now);
    } else if ((double)p99 <= CTL_T_CLEAR * (double)g->target) {
        g->infeasible = false;
    }
}

/* One slice of an interleaved bisection step ended (x: its throughput). After each reference
 * slice the pair is complete: R = X(cand)/X(ref) over all pairs so far; its uncertainty comes from
 * the data (the spread of the per-pair ratios, batch means), never below the counting floor
 * 1/n_c + 1/n_r. Decide once R is 2 sd from the line (at least CTL_AB_KMIN pairs), or at the caps. */
static void ab_slice(struct ctl_group *g, double x, uint64_t now)
{
    double dt = (double)(now - g->ep_start);
    double b = (double)(g->ep_bytes ? g->ep_bytes : g->ep_n);
    if (g->ab_side == 0) {
        g->ab_xc = x;
        g->ab_nc += (double)g->ep_n;
        g->ab_bc += b;
        g->ab_tc += dt;
        g->ab_side = 1;
        set_w(g, g->ab_ref, now);
        return;
    }
    g->ab_nr += (double)g->ep_n;
    g->ab_br += b;
    g->ab_tr += dt;
    double q = x > 0 ? g->ab_xc / x : 0.0;
    g->ab_k++;
    g->ab_q += q;
    g->ab_q2 += q * q;
    double xr = g->ab_tr > 0 ? g->ab_br / g->ab_tr : 0.0;
    double xc = g->ab_tc > 0 ? g->ab_bc / g->ab_tc : 0.0;
    double r = xr > 0 ? xc / xr : 0.0;
    double line = 1.0 - (noisy(g) && !g->loss ? CTL_EPS_NOISY : eps_of(g));
    /* The sample cap is for counting noise; on a drifting device only the time cap applies. */
    bool cap = (now - g->ab_start >= CTL_AB_T_MAX_NS && g->ab_k >= 2)
               || (g->ab_nc >= (double)CTL_AB_NC_MAX && !noisy(g));
    bool decide = cap;
    double se2 = 0;
    if (g->ab_k >= 2 && r > 0) {
        double k = (double)g->ab_k;
        double m = g->ab_q / k;
        double s2 = (g->ab_q2 - k * m * m) / (k - 1.0) / k / (r * r);
        double fl = 1.0 / g->ab_nc + 1.0 / g->ab_nr;
        se2 = s2 > fl ? s2 : fl;
        /* A spread from a handful of pairs is itself uncertain (it under-reads half the time):
         * on a drifting device inflate it like a t quantile would, and ask for one pair more. */
        int kmin = CTL_AB_KMIN;
        if (noisy(g)) {
            se2 *= 1.0 + 4.0 / k;
            kmin++;
        }
        double d = r / line - 1.0;
        if (g->ab_k >= kmin)
            decide = decide || d * d >= CTL_AB_SIGMAS2 * se2;
    }
    /* Undecided at the cap: "good" only one sd clear of the line. Falling short of the best
     * IOPS is the costly error; a slightly deeper landing costs little P99 near the knee. */
    bool good_r = r >= line;
    if (cap && noisy(g) && good_r && (r / line - 1.0) * (r / line - 1.0) < se2)
        good_r = false;
    if (!decide) {
        g->ab_side = 0;
        set_w(g, g->ab_cand, now);
        return;
    }
    g->ab = false;
    uint32_t w = g->ab_cand;
    if (good_r && g->ab_down && r > 1.0 + CTL_AB_PEAK) {
        /* Past the peak: the shallower depth is the better reference from now on. */
        g->ab_ref = w;
        g->x_top *= r;
    }
    if (!good_r)
        g->ab_down = false;
    tab_add_n(g, w, r * g->x_top, g->ab_nc);
    if (good_r)
        g->hi = w;
    else
        g->lo = w;
    bisect_next(g, now);
}

static void end_epoch(struct ctl_group *g, uint64_t now)
{
    uint64_t dt = now - g->ep_start;
    double x = (double)(g->ep_bytes ? g->ep_bytes : g->ep_n) * 1e9 / (double)dt;
    uint64_t p50 = auraio__histogram_percentile(&g->ep_hist, 0.5);
    uint64_t p99 = auraio__histogram_percentile(&g->ep_hist, 0.99);
    bool binding = g->ep_at_limit * 16 >= g->ep_n || 2u * g->ep_backlog_ticks >= g->ep_ticks;
    bool enough = g->ep_n >= CTL_N_EPOCH_MAX || (g->ep_n >= CTL_N_EPOCH_SLOW && dt >= CTL_T_EPOCH_SLOW_NS);
    bool p99_ok = auraio__histogram_percentile_reliable(&g->ep_hist, 0.99);
    g->last_ep_ns = dt;
    sub_close(g);
    if (p50)
        g->last_p50 = p50;
    if (p99)
        g->last_p99 = p99;

    switch (g->phase) {
    case AURAIO_CTL_PHASE_COAST:
    case AURAIO_CTL_PHASE_GALLOP_UP: {
        if (!binding || !enough) {
            /* The app is the bottleneck: growing would only add a burst risk. */
            if (!binding)
                g->phase = AURAIO_CTL_PHASE_COAST;
            if (!binding && enough)
                coast_target(g, p99_ok, p99, now);
            epoch_reset(g, now);
            return;
        }
        g->phase = AURAIO_CTL_PHASE_GALLOP_UP;
        if (g->target && p99_ok && p99 > g->target) {
            /* Past the target already: proportional cut, then the set-point loop. */
            double f = target_factor(g, p99);
            f = f < 0.5 ? 0.5 : (f > 0.95 ? 0.95 : f);
            uint32_t nw = auraio__ctl_scale(g->w, f, g->w_min, g->w_max);
            enter_hold(g, nw, now);
            g->knee_w = g->cap;
            if (g->w <= g->w_min && p99 > g->target && g->w == nw && nw == g->w_min)
                g->infeasible = g->infeasible || false;
            return;
        }
        tab_add(g, g->w, x);
        if (g->x_prev > 0)
            g->fails = x < g->x_prev * (1.0 + CTL_GAIN_UP) ? g->fails + 1 : 0;
        g->x_prev = x;
        uint32_t next = auraio__ctl_scale(g->w, 2.0, g->w_min, g->cap);
        bool target_cap = false;
        if (g->target && p99) {
            double f = target_factor(g, p99);
            if (f < 2.0) {
                uint32_t lim = f > 1.0 ? auraio__ctl_scale(g->w, f, g->w_min, g->cap) : g->w;
                if (lim < next)
                    next = lim;
                target_cap = f <= 1.05;
            }
        }
        if (g->fails >= CTL_GALLOP_FAILS || g->w >= g->cap || next <= g->w || target_cap) {
            if (target_cap && g->fails < CTL_GALLOP_FAILS) {
                enter_hold(g, g->w, now);
                g->knee_w = g->cap;
                return;
            }
            /* The deepest point sets X_top: measure it again, longer, before bracketing. */
            g->top = true;
            g->top_x = x;
            g->top_n = (double)g->ep_n;
            g->phase = AURAIO_CTL_PHASE_BISECT;
            g->top_w = 0;
            /* A curve that falls past its peak (the virtio disk: X(96) ~ 0.7 X(64), and the
             * gallop's two misses carried it to 256) must not take X_top from the fallen tail:
             * when a shallower gallop point beat the deepest by more than the gain margin, re-
             * measure there instead. On monotone (simulated) curves the deepest point stays. */
            int b = -1;
            for (int i = 0; i < g->ntab; i++)
                if (g->tab[i].n > 0 && g->tab[i].w < g->w && (b < 0 || g->tab[i].x > g->tab[b].x))
                    b = i;
            if (b >= 0 && g->tab[b].x > x * (1.0 + CTL_GAIN_UP)) {
                g->top_w = g->tab[b].w;
                set_w(g, g->top_w, now);
                return;
            }
            epoch_reset(g, now);
            return;
        }
        set_w(g, next, now);
        return;
    }
    case AURAIO_CTL_PHASE_GALLOP_DOWN:
        if (!enough) {
            epoch_reset(g, now);
            return;
        }
        if (g->shape) {
            g->shape = false;
            double rho = (g->shape_xw_new / x) / (g->shape_xw_old / g->shape_xs);
            uint32_t held = g->hi;
            if (rho >= CTL_SHAPE_SAME) {
                /* Same shape: the knee's depth has not moved. */
                g->ntab = 0;
                tab_add(g, g->w, x);
                enter_hold(g, held, now);
                return;
            }
            /* The knee moved down: a fresh search from here, never above the held depth. */
            uint32_t from = g->w;
            start_gallop(g, from, held, now);
            tab_add(g, from, x);
            g->x_prev = x;
            set_w(g, auraio__ctl_scale(from, 2.0, g->w_min, held), now);
            return;
        }
        if (g->loss_ref) {
            g->loss_ref = false;
            g->x_top = x;
            tab_add(g, g->w, x);
            set_w(g, g->w / 2 > g->w_min ? g->w / 2 : g->w_min, now);
            return;
        }
        if (ambiguous(g, x))
            return;
        tab_add(g, g->w, x);
        if (!g->loss && g->ep_n < CTL_N_GALLOP && x < (1.0 - CTL_EPS) * g->x_top
            && x >= (1.0 - CTL_EPS - 2.0 * sqrt_approx(CTL_NOISE_C / (double)g->ep_n)) * g->x_top)
            x = (1.0 - CTL_EPS) * g->x_top; /* few samples (slow device): within 2 sd is flat */
        if (g->loss) {
            if (good(g, x) && g->w > g->w_min) {
                g->hi = g->w;
                set_w(g, g->w / 2 > g->w_min ? g->w / 2 : g->w_min, now);
            } else if (good(g, x)) {
                enter_hold(g, g->w, now);
            } else {
                g->lo = g->w;
                bisect_next(g, now);
            }
            return;
        }
        if (good(g, x)) {
            g->hi = g->w;
            if (g->w <= g->w_min) {
                enter_hold(g, g->w, now);
                return;
            }
            set_w(g, g->w / 2 > g->w_min ? g->w / 2 : g->w_min, now);
        } else {
            g->lo = g->w;
            bisect_next(g, now);
        }
        return;
    case AURAIO_CTL_PHASE_BISECT:
        if (!enough) {
            epoch_reset(g, now);
            return;
        }
        if (g->ab && !g->top) {
            ab_slice(g, x, now);
            return;
        }
        if (g->top) {
            double n = (double)g->ep_n;
            g->top = false;
            (void)n;
            tab_add(g, g->w, x); /* pooled with its gallop epoch */
            bracket(g, now);
            return;
        }
        if (ambiguous(g, x))
            return;
        tab_add(g, g->w, x);
        if (good(g, x))
            g->hi = g->w;
        else
            g->lo = g->w;
        bisect_next(g, now);
        return;
    case AURAIO_CTL_PHASE_PROBE:
        g->phase = g->probe_return;
        if (enough && binding && x >= g->x_ref * (1.0 + CTL_PROBE_HIT)
            && (x / g->x_ref - 1.0) * (x / g->x_ref - 1.0) > CTL_CHG_SIGMAS2 * noise2(g)) {
            uint32_t from = g->probe_from;
            start_gallop(g, auraio__ctl_scale(g->w, 2.0, g->w_min, g->w_max), g->w_max, now);
            tab_add_n(g, from, g->x_ref, 0);
            g->x_prev = x;
            return;
        }
        g->next_probe = now + probe_delay(g);
        set_w(g, g->probe_from, now);
        return;
    case AURAIO_CTL_PHASE_HOLD:
        if (!binding || !enough) {
            g->chg_cnt = 0;
            epoch_reset(g, now);
            return;
        }
        if (detect_change(g, x, now, true))
            return;
        if (now >= g->next_probe && g->cap >= g->w_max && g->w < g->w_max && g->chg_cnt == 0
            && g->x_ref > 0) {
            g->probe_from = g->w;
            g->probe_return = AURAIO_CTL_PHASE_HOLD;
            g->phase = AURAIO_CTL_PHASE_PROBE;
            set_w(g, auraio__ctl_scale(g->w, CTL_PROBE_GAIN, g->w_min, g->w_max), now);
            return;
        }
        epoch_reset(g, now);
        return;
    case AURAIO_CTL_PHASE_TARGET:
    default:
        if (p99_ok && (double)p99 > 2.0 * (double)g->target && g->w > g->w_min) {
            /* One epoch far over the target with a trustworthy P99: cut now, not in 4 epochs. */
            double f = target_factor(g, p99);
            f = f < 0.5 ? 0.5 : (f > 0.95 ? 0.95 : f);
            g->grow_from = 0;
            set_w(g, auraio__ctl_scale(g->w, f, g->w_min, g->w_max), now);
            tw_reset(g, now);
            return;
        }
        if (binding && enough && g->grow_from == 0 && detect_change(g, x, now, false))
            return;
        auraio__histogram_merge(&g->tw_hist, &g->ep_hist);
        g->tw_epochs++;
        g->tw_xsum += x;
        if ((g->tw_hist.total >= CTL_TW_N && g->tw_epochs >= CTL_TW_EPOCHS)
            || (now - g->tw_start >= CTL_TW_SLOW_NS && g->tw_hist.total >= CTL_TW_SLOW_N))
            on_target_window(g, binding, now);
        else
            epoch_reset(g, now);
        return;
    }
}

static uint32_t epoch_need(int phase)
{
    switch (phase) {
    case AURAIO_CTL_PHASE_GALLOP_UP:
    case AURAIO_CTL_PHASE_COAST:
    case AURAIO_CTL_PHASE_GALLOP_DOWN:
        return CTL_N_GALLOP;
    case AURAIO_CTL_PHASE_BISECT:
    case AURAIO_CTL_PHASE_PROBE:
        return CTL_N_BISECT;
    default:
        return CTL_N_HOLD;
    }
}

static uint64_t epoch_tmin(int phase)
{
    switch (phase) {
    case AURAIO_CTL_PHASE_GALLOP_UP:
    case AURAIO_CTL_PHASE_COAST:
    case AURAIO_CTL_PHASE_GALLOP_DOWN:
        return CTL_T_GALLOP_NS;
    case AURAIO_CTL_PHASE_BISECT:
    case AURAIO_CTL_PHASE_PROBE:
        return CTL_T_BISECT_NS;
    default:
        return CTL_T_HOLD_NS;
    }
}

static void sub_tick(struct ctl_group *g, uint64_t now)
{
    uint64_t dt = now - g->sub_start;
    if (dt < CTL_SUB_NS || g->sub_n < CTL_SUB_N)
        return;
    double r = (double)g->sub_b / (double)dt;
    g->sub_k++;
    g->sub_s += r;
    g->sub_s2 += r * r;
    g->sub_cnt += (double)g->sub_n;
    g->sub_start = now;
    g->sub_n = g->sub_b = 0;
}

/* At an epoch's end: fold its sub-interval spread into the device's noise estimate. */
static void sub_close(struct ctl_group *g)
{
    if (g->sub_k < 3)
        return;
    double k = (double)g->sub_k;
    double m = g->sub_s / k;
    if (!(m > 0))
        return;
    double v = (g->sub_s2 - k * m * m) / (k - 1.0) / (m * m);
    if (v < 0)
        v = 0;
    double fl = CTL_NOISE_C * k / g->sub_cnt;
    double ratio = v / fl;
    if (ratio > CTL_DISP_CLIP)
        ratio = CTL_DISP_CLIP; /* one epoch straddling a step change is not a drifting device */
    if (g->disp_epochs == 0) {
        g->disp = ratio;
        g->slow2 = v;
    } else {
        g->disp += CTL_DISP_EWMA * (ratio - g->disp);
        g->slow2 += CTL_DISP_EWMA * (v - g->slow2);
    }
    g->disp_epochs++;
    /* Latched: the estimate falls in long HOLD epochs of a drifting device (the drift is slower
     * than their sub-intervals), and one search judged by absolute epochs is one too many. The
     * i.i.d. simulator never gets near (disp <= ~3 with one straddling epoch clipped). */
    if (g->disp > CTL_DISP_NOISY)
        g->drifting = true;
}

static bool noisy(const struct ctl_group *g)
{
    return g->drifting;
}

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

void auraio__ctl_group_update(struct ctl_group *g, const struct ctl_ring_input *in, uint64_t now)
{
    bool backwards = now < g->last_now;
    uint64_t pending = 0, inflight = 0;

    for (uint32_t i = 0; i < g->nrings; i++) {
        struct ctl_ring *r = &g->rings[i];
        struct ctl_acc *a = in[i].acc;
        pending += in[i].pending;
        inflight += in[i].in_flight;
        double d = (double)in[i].pending + (a && a->at_limit ? 1.0 : 0.0);
        r->demand += CTL_DEMAND_EWMA * (d - r->demand);
        if (!a)
            continue;
        if (!backwards) {
            r->win_bytes += a->bytes;
            auraio__histogram_merge(&r->win_hist, &a->hist);
            if (now >= g->settle_until && !g->drain) {
                g->ep_n += a->n;
                g->ep_bytes += a->bytes;
                g->sub_n += a->n;
                g->sub_b += a->bytes ? a->bytes : a->n;
                g->ep_at_limit += a->at_limit;
                auraio__histogram_merge(&g->ep_hist, &a->hist);
            }
        }
        auraio__ctl_acc_reset(a);
    }

    if (backwards) {
        /* A clock step back: the interval is unknown, so drop it rather than divide by it. */
        g->last_now = now;
        g->settle_until = now;
        epoch_reset(g, now);
        tw_reset(g, now);
        for (uint32_t i = 0; i < g->nrings; i++) {
            auraio__histogram_reset(&g->rings[i].win_hist);
            g->rings[i].win_bytes = 0;
            g->rings[i].win_start = now;
        }
        split(g);
        return;
    }
    g->last_now = now;

    for (uint32_t i = 0; i < g->nrings; i++) {
        struct ctl_ring *r = &g->rings[i];
        uint64_t dt = now - r->win_start;
        if (dt >= CTL_STATS_NS
            && (auraio__histogram_percentile_reliable(&r->win_hist, 0.99) || dt >= CTL_STATS_MAX_NS))
            close_stats(r, now);
    }

    if (g->drain && inflight <= g->w) {
        g->drain = false;
        /* The I/Os that survive a drain are the slowest of the deeper depth (the inspection
         * paradox: on a heavy-tailed device they clog channels for a while). A 6 ms A/B slice
         * right after the drain read 0.83 of the true X(w); wait about one P99 more. */
        if (g->ab) {
            uint64_t s = g->last_p99 > CTL_SETTLE_MIN_NS ? g->last_p99 : CTL_SETTLE_MIN_NS;
            if (now + s > g->settle_until)
                g->settle_until = now + s;
        }
    }
    if (now < g->settle_until || g->drain) {
        epoch_reset(g, now); /* the ramp after a change is not the new depth's behaviour */
    } else {
        g->ep_ticks++;
        sub_tick(g, now);
        if (pending > inflight)
            g->ep_backlog_ticks++;
        uint64_t dt = now - g->ep_start;
        /* Every slot must turn over at least twice, or the epoch sees only the oldest I/Os. */
        uint64_t need = epoch_need(g->phase);
        if (g->top)
            need = CTL_N_TOP;
        else if (g->shape && g->phase == AURAIO_CTL_PHASE_GALLOP_DOWN)
            need = CTL_N_SHAPE;
        else if (g->loss && g->phase == AURAIO_CTL_PHASE_GALLOP_DOWN)
            need = CTL_N_LOSS;
        else if (g->phase == AURAIO_CTL_PHASE_GALLOP_DOWN)
            need = CTL_N_DOWN;
        if (need < 2ull * g->w)
            need = 2ull * g->w;
        need *= g->ep_mult;
        uint64_t tmin = epoch_tmin(g->phase);
        if (g->top && tmin < CTL_T_TOP_NS)
            tmin = CTL_T_TOP_NS; /* >= 7 sub-intervals: the drift test before the bracket */
        if (noisy(g) && (g->phase == AURAIO_CTL_PHASE_HOLD || g->phase == AURAIO_CTL_PHASE_TARGET))
            tmin = CTL_T_HOLD_NOISY_NS;
        if (g->ab && g->phase == AURAIO_CTL_PHASE_BISECT && !g->top) {
            need = CTL_AB_SLICE_N > 2ull * g->w ? CTL_AB_SLICE_N : 2ull * g->w;
            tmin = noisy(g) ? CTL_AB_SLICE_NOISY_NS : CTL_AB_SLICE_T_NS;
        }
        if (dt > 0
            && ((g->ep_n >= need && dt >= tmin)
                || (dt >= CTL_T_EPOCH_MAX_NS && g->ep_n >= CTL_N_EPOCH_MAX)
                || (dt >= CTL_T_EPOCH_SLOW_NS && g->ep_n >= CTL_N_EPOCH_SLOW)))
            end_epoch(g, now);
        else if (dt >= CTL_T_EPOCH_STALE_NS)
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
    start_gallop(g, winit > g->w_max ? g->w_max : (uint32_t)winit, g->w_max, now_ns);
    g->drain = false;
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

void auraio__ctl_set_p99_target(struct ctl_group *g, uint64_t target_ns)
{
    if (g->target == target_ns)
        return;
    g->target = target_ns;
    g->infeasible = false;
    start_gallop(g, g->w, g->w_max, g->last_now);
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
