/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A device with memory, as the virtio disk behaves (doc/controller.md, sixth follow-up): its
 * throughput at a new depth takes ~100 ms to become that depth's own, and until then the depth
 * just entered reads better than it is (deeper: high; shallower: low). Its settled curve peaks at
 * depth 64 and falls past it. Short epochs comparing depths are fooled; the controller must notice
 * (drift latch or hysteresis check), walk with settled measurements and hold near the peak.
 *
 * The device is a fluid model fed tick by tick (2 ms), exactly as the engine feeds the controller:
 * rate(t) = X(d_eff) * (w / d_eff)^0.3, d_eff an exponential average of the limit w with a 60 ms
 * time constant, X(d) = X_PEAK * min(d / 64, 1)^0.7 below the peak and (64 / d)^0.8 above it,
 * times a +-2% per-tick jitter from a fixed-seed PRNG. Latency follows Little's law (w / rate).
 * AURAIO_MEMDEV_TRACE=1 prints every change of depth. AURAIO_FLICKER=1 also runs the second
 * disk's model (check_flicker), which the controller does not meet yet.
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
#define X_PEAK 200000.0 /* completions per second at the peak depth */
#define PEAK 64.0
#define MEMORY_S 0.060
#define FRESH_EXP 0.3

/* The second VM disk (doc/frontier.md, noise profile): a curve that keeps creeping up to a flat
 * top at 96 (X(32) ~ 0.85, X(64) ~ 0.94 of it) and drift with energy at every time scale: three
 * AR(1) components (10 ms, 100 ms, 1 s; sd 10%, 6%, 5%), close to its measured block spread
 * (17% at 10 ms, 9.6% at 80 ms, 5.7% at 1.28 s). */
#define FLICKER_TOP 96.0
#define FLICKER_COMPONENTS 3
static const double flicker_tau_s[FLICKER_COMPONENTS] = { 0.010, 0.100, 1.0 };
static const double flicker_sd[FLICKER_COMPONENTS] = { 0.10, 0.06, 0.05 };

struct memdev {
    double d_eff;
    double carry; /* fractional completions carried to the next tick */
    uint64_t rng;
    bool flicker;                    /* the second disk instead of the peaked one */
    double drift[FLICKER_COMPONENTS]; /* log-throughput offsets of the AR(1) components */
};

static double settled(const struct memdev *m, double d)
{
    if (m->flicker)
        return X_PEAK * pow((d < FLICKER_TOP ? d : FLICKER_TOP) / FLICKER_TOP, 0.15);
    if (d <= PEAK)
        return X_PEAK * pow(d / PEAK, 0.7);
    return X_PEAK * pow(PEAK / d, 0.8);
}

static double uniform(struct memdev *m)
{
    m->rng = m->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(m->rng >> 11) / 9007199254740992.0;
}

static double jitter(struct memdev *m)
{
    if (!m->flicker)
        return 1.0 + 0.04 * (uniform(m) - 0.5);
    double dt = (double)TICK_NS / 1e9, sum = 0;
    for (int i = 0; i < FLICKER_COMPONENTS; i++) {
        double a = exp(-dt / flicker_tau_s[i]);
        /* uniform(-0.5, 0.5) has sd 1/sqrt(12): scaled so the stationary sd is flicker_sd[i] */
        double kick = (uniform(m) - 0.5) * sqrt(12.0) * flicker_sd[i] * sqrt(1.0 - a * a);
        m->drift[i] = a * m->drift[i] + kick;
        sum += m->drift[i];
    }
    return exp(sum);
}

/* One tick at limit @p w: fill @p a with this tick's completions; returns the rate used. */
static double memdev_tick(struct memdev *m, uint32_t w, struct ctl_acc *a)
{
    double dt = (double)TICK_NS / 1e9;
    m->d_eff += (1.0 - exp(-dt / MEMORY_S)) * ((double)w - m->d_eff);
    double rate = settled(m, m->d_eff) * pow((double)w / m->d_eff, FRESH_EXP) * jitter(m);
    double n = rate * dt + m->carry;
    uint64_t k = (uint64_t)n;
    m->carry = n - (double)k;
    uint64_t lat = (uint64_t)((double)w / rate * 1e9);
    for (uint64_t i = 0; i < k; i++) {
        auraio__ctl_acc_record(a, lat, 4096);
        auraio__ctl_acc_at_limit(a); /* the app keeps the ring full */
    }
    return rate;
}

struct run {
    double rate_last_s;   /* mean rate over the last second */
    uint32_t w_final;
    uint32_t w_max_last_s;
    uint32_t w_min_last_s;
    double x_settled_last_s; /* settled throughput of the depths held (the drift taken out) */
    int phase_final;
};

static void run_memdev(uint32_t rings, double seconds, double score_s, uint64_t seed, bool flicker,
                       struct run *out)
{
    struct ctl_group *g = NULL;
    struct ctl_config cfg = { .ring_count = rings, .w_min = 1, .w_max = 0, .w_init = 0,
                              .ring_max = 256, .p99_target_ns = 0, .seed = seed };
    uint64_t now = 1000000000ull;
    assert_int_equal(auraio__ctl_group_init(&g, &cfg, now), 0);
    struct memdev m = { .d_eff = 4.0 * rings, .carry = 0, .rng = seed * 0x9e3779b97f4a7c15ull + 1,
                        .flicker = flicker };
    struct ctl_acc *acc = calloc(rings, sizeof(*acc));
    struct ctl_ring_input *in = calloc(rings, sizeof(*in));
    assert_non_null(acc);
    assert_non_null(in);
    uint64_t ticks = (uint64_t)(seconds * 1e9 / (double)TICK_NS);
    uint64_t last_s = (uint64_t)(score_s * 1e9 / (double)TICK_NS);
    double sum = 0, x_sum = 0;
    out->w_max_last_s = 0;
    out->w_min_last_s = UINT32_MAX;
    for (uint64_t t = 0; t < ticks; t++) {
        uint32_t w = auraio__ctl_group_depth(g);
        /* One fluid device behind all rings: the group depth is what it sees; the rings'
         * completions are split in proportion to their limits. */
        struct ctl_acc all;
        memset(&all, 0, sizeof(all));
        double rate = memdev_tick(&m, w, &all);
        uint32_t lsum = 0;
        for (uint32_t i = 0; i < rings; i++)
            lsum += auraio__ctl_ring_limit(g, i);
        uint64_t given = 0;
        for (uint32_t i = 0; i < rings; i++) {
            uint32_t li = auraio__ctl_ring_limit(g, i);
            uint64_t ni = i + 1 == rings ? all.n - given : all.n * li / (lsum ? lsum : 1);
            given += ni;
            uint64_t lat = all.n ? all.lat_sum_ns / all.n : 0;
            for (uint64_t k = 0; k < ni; k++) {
                auraio__ctl_acc_record(&acc[i], lat, 4096);
                auraio__ctl_acc_at_limit(&acc[i]);
            }
            in[i] = (struct ctl_ring_input){ &acc[i], li, li };
        }
        now += TICK_NS;
        auraio__ctl_group_update(g, in, now);
        if (getenv("AURAIO_MEMDEV_TRACE") && auraio__ctl_group_depth(g) != w)
            printf("t=%.3f w %u -> %u phase %s rate %.0f\n", (double)t * TICK_NS / 1e9, w,
                   auraio__ctl_group_depth(g), auraio__ctl_phase_name(auraio__ctl_group_phase(g)), rate);
        if (t + last_s >= ticks) {
            sum += rate;
            x_sum += settled(&m, (double)auraio__ctl_group_depth(g));
            uint32_t wn = auraio__ctl_group_depth(g);
            if (wn > out->w_max_last_s)
                out->w_max_last_s = wn;
            if (wn < out->w_min_last_s)
                out->w_min_last_s = wn;
        }
    }
    out->rate_last_s = sum / (double)last_s;
    out->x_settled_last_s = x_sum / (double)last_s;
    out->w_final = auraio__ctl_group_depth(g);
    out->phase_final = auraio__ctl_group_phase(g);
    free(acc);
    free(in);
    auraio__ctl_group_destroy(g);
}

/* Lands near the settled peak: within 5% of X_PEAK, i.e. depth ~ 50-68 on this curve, and stays
 * there (no re-search wandering past the peak in the last second). Without the settled walk the
 * short epochs favour whichever depth was just entered and the search holds at 128-256 (0.5-0.6
 * of the peak) or well short of it. */
static void check_lands_at_peak(uint32_t rings)
{
    for (uint64_t seed = 1; seed <= 5; seed++) {
        struct run r;
        run_memdev(rings, 6.0, 1.0, seed, false, &r);
        printf("# memory device, %u ring%s, seed %llu: final depth %u (last second %u-%u), "
               "rate %.3f x peak, phase %s\n",
               rings, rings > 1 ? "s" : "", (unsigned long long)seed, r.w_final, r.w_min_last_s,
               r.w_max_last_s, r.rate_last_s / X_PEAK, auraio__ctl_phase_name(r.phase_final));
        assert_true(r.rate_last_s >= 0.95 * X_PEAK);
        assert_true(r.w_max_last_s <= 96);
        assert_true(r.w_min_last_s >= 40);
    }
}

/* The second disk: the drift hides the 3-9% steps near the top from short comparisons. A seed is
 * in band when the depths held over the last 4 s of 8 give >= 0.93 of the top's settled throughput
 * (not the shallow half) and the final depth is <= 2x the top (latency grows with depth past it:
 * no runaway to w_max). Wanted: 7 of 9 seeds in band for 1 and 2 rings. Neither the sixth nor the
 * seventh follow-up's controller meets it (seventh, 1 ring: 6 of 9, two held 215-255 and one
 * 0.89; sixth, 2 rings: five held 256-512), so it runs only with AURAIO_FLICKER=1, as a fast
 * loop for that work (doc/controller.md, known gaps). */
static void check_flicker(uint32_t rings)
{
    int in_band = 0;
    for (uint64_t seed = 1; seed <= 9; seed++) {
        struct run r;
        run_memdev(rings, 8.0, 4.0, seed, true, &r);
        double x = r.x_settled_last_s / X_PEAK;
        bool ok = x >= 0.93 && r.w_final <= 2.0 * FLICKER_TOP;
        in_band += ok;
        printf("# flicker device, %u ring%s, seed %llu: final depth %u (last 4 s %u-%u), settled "
               "X %.3f x top, phase %s%s\n",
               rings, rings > 1 ? "s" : "", (unsigned long long)seed, r.w_final, r.w_min_last_s,
               r.w_max_last_s, x, auraio__ctl_phase_name(r.phase_final), ok ? "" : " (out of band)");
    }
    printf("# flicker device, %u ring%s: %d of 9 seeds in band\n", rings, rings > 1 ? "s" : "", in_band);
    assert_true(in_band >= 7);
}

static void test_flicker_device_one_ring(void **state)
{
    (void)state;
    check_flicker(1);
}

static void test_flicker_device_two_rings(void **state)
{
    (void)state;
    check_flicker(2);
}

static void test_memory_device_one_ring(void **state)
{
    (void)state;
    check_lands_at_peak(1);
}

static void test_memory_device_two_rings(void **state)
{
    (void)state;
    check_lands_at_peak(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_device_one_ring),
        cmocka_unit_test(test_memory_device_two_rings),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    /* Not met yet (see check_flicker): on request only, so CI carries no failing test. */
    const struct CMUnitTest flicker_tests[] = {
        cmocka_unit_test(test_flicker_device_one_ring),
        cmocka_unit_test(test_flicker_device_two_rings),
    };
    if (getenv("AURAIO_FLICKER"))
        rc += cmocka_run_group_tests_name("flicker", flicker_tests, NULL, NULL);
    return rc;
}
