/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Controller cost per completion: the per-completion record (accumulator + histogram) plus the
 * amortised tick (swap, group update, limit read) at a realistic completions-per-tick ratio.
 * Prints ns/completion; the issue's budget is 20 ns. Run directly or via `meson test --benchmark`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "controller.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double run(uint32_t per_tick, uint64_t total)
{
    struct ctl_group *g = NULL;
    struct ctl_config cfg = { .ring_count = 1, .w_min = 1, .w_max = 256, .ring_max = 256, .seed = 1 };
    if (auraio__ctl_group_init(&g, &cfg, 0) != 0)
        abort();
    struct ctl_ring_acc *acc = calloc(1, sizeof(*acc));
    uint64_t x = 88172645463325252ull, sim_now = 0, sink = 0;
    uint64_t t0 = now_ns();
    for (uint64_t done = 0; done < total; done += per_tick) {
        struct ctl_acc *a = auraio__ctl_acc_active(acc);
        for (uint32_t i = 0; i < per_tick; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            auraio__ctl_acc_record(a, 50000 + (x & 0xffff), 4096); /* 50-115 us */
        }
        struct ctl_ring_input in = { auraio__ctl_acc_swap(acc), 512, 256 };
        sim_now += 1000000;
        auraio__ctl_group_update(g, &in, sim_now);
        sink += auraio__ctl_ring_limit(g, 0);
    }
    uint64_t t1 = now_ns();
    if (sink == 1)
        printf("#");
    free(acc);
    auraio__ctl_group_destroy(g);
    return (double)(t1 - t0) / (double)total;
}

int main(void)
{
    /* 1 ms ticks: 1000 completions per tick is 1 M IOPS, 100 is 100 K IOPS. */
    uint32_t ratios[] = { 1000, 300, 100 };
    double worst = 0;
    for (unsigned i = 0; i < sizeof(ratios) / sizeof(ratios[0]); i++) {
        double best = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            double ns = run(ratios[i], 20000000);
            if (ns < best)
                best = ns;
        }
        printf("controller: %u completions/tick: %.2f ns/completion\n", ratios[i], best);
        if (best > worst)
            worst = best;
    }
    printf("controller: worst %.2f ns/completion (budget 20 ns)\n", worst);
    return 0;
}
