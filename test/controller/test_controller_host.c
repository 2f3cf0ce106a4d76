/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's disk (doc/controller.md, "Slicing limiters"): this VM's virtio disk, traced epoch by
 * epoch, rises to a peak at depth 64-128 and falls past it, and deep enough it bursts for ~0.4 s
 * (~1.25x the peak) and then stalls for 20-25 ms every 100-400 ms at ~0.85 of the peak. The stalls
 * look like a rate limiter's slices, but no limiter caps the shallower depths: the peak keeps its
 * rate. After the loss at the deep depth the table held only that depth's stalled rate, and the
 * knee went where the curve first reaches it (the real disk held 33-62 for a peak at 64-128).
 *
 * Fluid model, tick by tick (2 ms) as the engine feeds the controller:
 *   X(d) = X_PEAK * [d / (d + C)] / [PEAK / (PEAK + C)] up to PEAK, X_PEAK * (PEAK / d)^0.25 past
 *   it; past the host's queue Q a credit of CREDIT_S seconds of burst at BURST x X_PEAK, refilled
 *   at REFILL s/s while at or below Q; once spent, cycles of ON_MIN..ON_MAX s at the rate that
 *   averages X(d) and STALL_MIN..STALL_MAX s of silence with every request in flight.
 *   A +-2% jitter per tick from a fixed-seed PRNG. Latency by Little's law (w / rate); the
 *   first completions after a silence waited through it.
 * AURAIO_HOST_TRACE=1 prints every change of depth.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller.h"

#define TICK_NS 2000000ull
#define X_PEAK 250000.0
#define PEAK 128.0       /* the curve's peak */
#define Q 192.0          /* the host's queue: past it, a burst, then stalls */
#define C 16.0           /* collisions: X(64) = 0.9 x the peak, X(32) = 0.75 */
#define BURST 1.25       /* past Q, while credit lasts */
#define CREDIT_S 0.4
#define REFILL 0.25
#define ON_MIN_S 0.100
#define ON_MAX_S 0.400
#define STALL_MIN_S 0.020
#define STALL_MAX_S 0.025

struct hostdev {
    double credit, carry;
    double on_left, stall_left, on_rate, stalled; /* the current cycle past Q, once spent */
    uint64_t rng;
};

static double uniform(struct hostdev *h)
{
    h->rng = h->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(h->rng >> 11) / 9007199254740992.0;
}

static double settled(double d)
{
    if (d <= PEAK)
        return X_PEAK * (d / (d + C)) / (PEAK / (PEAK + C));
    return X_PEAK * pow(PEAK / d, 0.25);
}

/* One tick at limit @p w: fill @p a with its completions; returns the rate. */
static double host_tick(struct hostdev *h, uint32_t w, struct ctl_acc *a)
{
    double dt = (double)TICK_NS / 1e9, rate;
    if ((double)w <= Q) {
        h->credit = fmin(CREDIT_S, h->credit + REFILL * dt);
        h->on_left = h->stall_left = 0;
        rate = settled(w);
    } else if (h->credit > 0) {
        h->credit -= dt;
        rate = BURST * X_PEAK;
    } else {
        if (h->on_left <= 0 && h->stall_left <= 0) {
            double on = ON_MIN_S + (ON_MAX_S - ON_MIN_S) * uniform(h);
            h->stall_left = STALL_MIN_S + (STALL_MAX_S - STALL_MIN_S) * uniform(h);
            h->on_left = on;
            h->on_rate = settled(w) * (on + h->stall_left) / on;
        }
        if (h->stall_left > 0) {
            h->stall_left -= dt;
            h->stalled += dt;
            return 0.0; /* silent, everything in flight */
        }
        h->on_left -= dt;
        rate = h->on_rate;
    }
    rate *= 1.0 + 0.04 * (uniform(h) - 0.5);
    double n = rate * dt + h->carry;
    uint64_t k = (uint64_t)n;
    h->carry = n - (double)k;
    uint64_t lat = (uint64_t)((double)w / rate * 1e9);
    for (uint64_t i = 0; i < k; i++) {
        /* The first w completions after a silence waited through it. */
        uint64_t waited = i < w ? (uint64_t)(h->stalled * 1e9) : 0;
        auraio__ctl_acc_record(a, lat + waited, 4096);
        auraio__ctl_acc_at_limit(a); /* the app keeps the ring full */
    }
    h->stalled = 0;
    return rate;
}

struct run {
    double rate_last;  /* mean rate over the scored time */
    double x_last;     /* settled throughput of the depths held there */
    uint32_t w_min_last, w_max_last, w_final;
    int probes_last;   /* probes begun in the scored time */
};

static void run_host(uint32_t rings, double seconds, double score_s, uint64_t seed, struct run *out)
{
    struct ctl_group *g = NULL;
    struct ctl_config cfg = { .ring_count = rings, .w_min = 1, .w_max = 0, .w_init = 0,
                              .ring_max = 256, .p99_target_ns = 0, .seed = seed };
    uint64_t now = 1000000000ull;
    assert_int_equal(auraio__ctl_group_init(&g, &cfg, now), 0);
    struct hostdev h = { .credit = CREDIT_S, .rng = seed * 0x9e3779b97f4a7c15ull + 1 };
    struct ctl_acc *acc = calloc(rings, sizeof(*acc));
    struct ctl_ring_input *in = calloc(rings, sizeof(*in));
    assert_non_null(acc);
    assert_non_null(in);
    uint64_t ticks = (uint64_t)(seconds * 1e9 / (double)TICK_NS);
    uint64_t scored = (uint64_t)(score_s * 1e9 / (double)TICK_NS);
    double sum = 0, x_sum = 0;
    bool was_probing = false;
    out->w_max_last = 0;
    out->w_min_last = UINT32_MAX;
    out->probes_last = 0;
    for (uint64_t t = 0; t < ticks; t++) {
        uint32_t w = auraio__ctl_group_depth(g);
        struct ctl_acc all;
        memset(&all, 0, sizeof(all));
        double rate = host_tick(&h, w, &all);
        /* One device behind all rings: completions split in proportion to the rings' limits,
         * each completion's latency kept (the tick's max is how a stall's end is recognised). */
        uint32_t lsum = 0;
        for (uint32_t i = 0; i < rings; i++)
            lsum += auraio__ctl_ring_limit(g, i);
        uint64_t given = 0;
        uint64_t mean = all.n ? all.lat_sum_ns / all.n : 0, top = auraio__histogram_max(&all.hist);
        for (uint32_t i = 0; i < rings; i++) {
            uint32_t li = auraio__ctl_ring_limit(g, i);
            uint64_t ni = i + 1 == rings ? all.n - given : all.n * li / (lsum ? lsum : 1);
            given += ni;
            for (uint64_t k = 0; k < ni; k++) {
                auraio__ctl_acc_record(&acc[i], k == 0 ? top : mean, 4096);
                auraio__ctl_acc_at_limit(&acc[i]);
            }
            in[i] = (struct ctl_ring_input){ &acc[i], li, li };
        }
        now += TICK_NS;
        auraio__ctl_group_update(g, in, now);
        uint32_t wn = auraio__ctl_group_depth(g);
        bool probing = auraio__ctl_group_phase(g) == AURAIO_CTL_PHASE_PROBE;
        if (getenv("AURAIO_HOST_TRACE") && wn != w)
            printf("t=%.3f w %u -> %u phase %s rate %.0f credit %.3f\n", (double)t * TICK_NS / 1e9, w, wn,
                   auraio__ctl_phase_name(auraio__ctl_group_phase(g)), rate, h.credit);
        if (t + scored >= ticks) {
            sum += rate;
            x_sum += settled(wn);
            out->w_max_last = wn > out->w_max_last ? wn : out->w_max_last;
            out->w_min_last = wn < out->w_min_last ? wn : out->w_min_last;
            out->probes_last += probing && !was_probing;
        }
        was_probing = probing;
    }
    out->rate_last = sum / (double)scored;
    out->x_last = x_sum / (double)scored;
    out->w_final = auraio__ctl_group_depth(g);
    free(acc);
    free(in);
    auraio__ctl_group_destroy(g);
}

/* Holds on the curve's top, not where the curve first reaches the stalled depth's rate: a seed is
 * in band when the depths held over the last 3 s of 6 give >= 0.93 of the peak's settled
 * throughput (the 5% band starts at ~87 on this curve, 0.93 at ~74) and none is past the host's
 * queue. Wanted: 8 of 9 seeds (9 now, on either ring count). A seed whose stall-free reading of the
 * stalled depth caught only its fast phases (0.93 of the peak, not 0.84) cannot tell the peak from
 * it and holds ~70: a loss decided stall to stall is read from that deciding epoch, not again
 * (read again, 7 of 9 on one ring).
 * The depth held here queues, so it is no rate cap's hinge and is probed only every 50-100 held
 * epochs (2-4 s here): at most about one probe per seed in the scored 3 s (0 of 9 seeds probe
 * now; taken for a silent cap's hinge, 3-5 probes in every seed). */
static void check_holds_the_peak(uint32_t rings)
{
    int in_band = 0, probes = 0;
    for (uint64_t seed = 1; seed <= 9; seed++) {
        struct run r;
        run_host(rings, 6.0, 3.0, seed, &r);
        bool ok = r.x_last >= 0.93 * X_PEAK && r.w_max_last <= Q;
        in_band += ok;
        probes += r.probes_last;
        printf("# host disk, %u ring%s, seed %llu: final depth %u (last 3 s %u-%u, %d probes), settled X %.3f x "
               "peak, rate %.3f x peak%s\n",
               rings, rings > 1 ? "s" : "", (unsigned long long)seed, r.w_final, r.w_min_last, r.w_max_last,
               r.probes_last, r.x_last / X_PEAK, r.rate_last / X_PEAK, ok ? "" : " (out of band)");
    }
    printf("# host disk, %u ring%s: %d of 9 seeds in band, %d probes in their last 3 s\n", rings,
           rings > 1 ? "s" : "", in_band, probes);
    assert_true(in_band >= 8);
    assert_true(probes <= 9);
}

static void test_host_disk_one_ring(void **state)
{
    (void)state;
    check_holds_the_peak(1);
}

static void test_host_disk_two_rings(void **state)
{
    (void)state;
    check_holds_the_peak(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_disk_one_ring),
        cmocka_unit_test(test_host_disk_two_rings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
