/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Deterministic simulated block device for the controller tests: k FIFO channels (random or
 * least-loaded placement), lognormal service times with a rare heavy tail, an uncontrolled
 * neighbour, latency spikes, phase changes, closed-loop applications per ring, fsyncs, and a
 * drifting device with memory and a curve that falls past its peak (SIM_DRIFT). The
 * controller is driven exactly as the engine drives it (accumulators per completion, a group update
 * per tick with a simulated clock). Scores come from the raw completion log, never from
 * controller stats; the oracle reruns the same model at every fixed depth of a dense grid.
 */
#ifndef AURAIO_SIMDEV_H
#define AURAIO_SIMDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_MAX_RINGS 8
#define SIM_MAX_PHASES 4
#define SIM_MAX_GRID 96

struct sim_world {
    uint32_t k;                      /* parallel channels */
    double mean_us, cv;              /* lognormal service time */
    double p_slow, m_slow;           /* heavy tail: with p_slow, service x m_slow */
    bool sharp;                      /* least-loaded placement (sharp knee) */
    uint32_t neighbour_q;            /* uncontrolled closed-loop tenant's depth, 0 = none */
    uint32_t demand[SIM_MAX_RINGS];  /* app's outstanding requests per ring (closed loop) */
    bool capacity_app;               /* the app keeps exactly the limit outstanding (it submits
                                        auraio_capacity()): no backlog ever, demand ignored */
    /* A curve that falls past its peak, with memory (the virtio disk, doc/frontier.md): every
     * request in flight beyond `peak` costs service time x (1 + peak_beta (q - peak) / peak),
     * q being the device's in-flight count smoothed with time constant mem_tau_s, so a depth
     * just entered reads partly like the one before it (a deeper one better than it settles
     * to, a shallower one worse). peak 0 = off. */
    uint32_t peak;
    double peak_beta, mem_tau_s;
    /* A rate cap in front of the channels, dispatched like the kernel's block throttle: each
     * slice of cap_slice_s grants cap_iops x cap_slice_s requests in arrival order, and a request
     * past the slice's budget waits for the next slice (no carry-over). 0 = uncapped. */
    double cap_iops, cap_slice_s;
};

struct ctl_group;

struct sim_scenario {
    uint64_t seed;
    uint32_t rings;
    uint32_t w_max;          /* group maximum */
    uint32_t ring_max;       /* per ring (queue depth) */
    uint64_t target_ns;      /* P99 target, 0 = none */
    uint64_t tick_ns;        /* controller tick */
    double duration_s;
    int nphases;
    double phase_t[SIM_MAX_PHASES]; /* start of each phase, phase_t[0] = 0 */
    struct sim_world world[SIM_MAX_PHASES];
    double spike_t, spike_len, spike_factor; /* spike_len 0 = none */
    double fsync_frac, fsync_us;            /* mixed ops */
    double clock_step_t;     /* > 0: at this time the clock given to the controller jumps back */
    double clock_step_s;
    uint32_t fixed_w;        /* > 0: no controller, group limit fixed (oracle runs) */
    uint64_t max_completions;/* > 0: stop after this many logged completions (oracle runs) */
    /* Slow drift: service x exp(s(t)), s an AR(1) path on a 1 ms grid with stationary sd
     * drift_sd and time constant drift_tau_s, drawn from its own stream of `seed` alone, so
     * the controller run and every fixed-depth run of the oracle see the same path. 0 = none. */
    double drift_sd, drift_tau_s;
    /* The application's thread off the CPU (preempted on a loaded machine, or busy elsewhere):
     * windows of uniform [preempt_lo_s, preempt_hi_s) length with exponential gaps of mean
     * preempt_every_s, from their own stream of `seed`. Inside one the device keeps completing but
     * nothing is reaped, submitted or ticked; at its end everything is reaped at once. The engine
     * reports the time it slept waiting (auraio__ctl_group_waited), which excludes these windows.
     * 0 = never. */
    double preempt_every_s, preempt_lo_s, preempt_hi_s;
    /* > 0: the oracle measures every fixed depth over [oracle_t0, oracle_t1) of the scenario's
     * own clock (the drift path is a function of time: paired with the scored window). */
    double oracle_t0, oracle_t1;
    double start_s;          /* fixed_w runs only: the clock starts here (oracle warm-up) */
    /* Called after every controller update (test introspection of the group's state). */
    void (*observe)(const struct ctl_group *g, double t_s, void *arg);
    void *observe_arg;
};

struct sim_completion {
    uint64_t t_ns;
    uint32_t lat_ns;
    int16_t ring;
    uint8_t kind; /* 0 data, 1 fsync */
};

struct sim_result {
    struct sim_completion *log;
    size_t n, cap;
    uint32_t *w_tick;   /* group depth at each tick */
    uint8_t *phase_tick;
    size_t nticks, tick_cap;
    uint64_t tick_ns;
    bool infeasible;    /* final flag */
    int final_phase;
    uint32_t final_w;
    double max_ctl_tput; /* largest ring throughput the controller reported (clock-step test) */
    uint32_t max_w_between[2]; /* unused by default */
};

struct sim_oracle {
    int n;
    uint32_t w[SIM_MAX_GRID];
    double x[SIM_MAX_GRID];   /* completions per second */
    double p99[SIM_MAX_GRID]; /* ns */
};

struct sim_point {
    uint32_t w;
    double x, p99;
    uint32_t w_lo, w_hi; /* depths whose fixed-depth X and P99 are inside the score band */
    double x_win_sd;     /* relative sd of 100 ms-window throughput at fixed depth w_lo (0 = unknown) */
};

struct sim_scores {
    double tr, lr;        /* throughput and P99 ratios vs the oracle point (steady half) */
    double x, p99;        /* measured in steady half */
    double ttc_s;         /* time to enter and stay in the band, from phase start */
    double cov;           /* CoV of depth over steady 100 ms windows */
    double rev_per_s;     /* depth reversals per second in steady state */
    double tc;            /* share of steady windows with P99 <= target */
};

enum sim_kind {
    SIM_KNEE_LOW, SIM_KNEE_HIGH, SIM_NO_PARALLEL, SIM_NO_KNEE, SIM_SHARP,
    SIM_PHASE_UP, SIM_PHASE_DOWN, SIM_SLOWDOWN, SIM_NEIGHBOUR, SIM_SPIKE, SIM_LOW_IOPS,
    SIM_FEW_OUTSTANDING, SIM_MIXED, SIM_MULTI_EQUAL, SIM_MULTI_UNEQUAL, SIM_DRIFT, SIM_CAPPED,
    SIM_CAP_CHANGE, SIM_PREEMPTED, SIM_KIND_COUNT
};

/** Randomized instance of a scenario kind; same kind and seed give the same instance. */
void sim_draw(enum sim_kind kind, uint64_t seed, struct sim_scenario *sc);
/** Run; @p res must be zeroed before the first use, sim_result_free releases it. */
void sim_run(const struct sim_scenario *sc, struct sim_result *res);
void sim_result_free(struct sim_result *res);
/** Same model at every fixed depth of a grid for phase @p phase (no spike, no neighbour); over
 * [oracle_t0, oracle_t1) of the scenario's clock when those are set. */
void sim_oracle(const struct sim_scenario *sc, int phase, struct sim_oracle *o);
/** Knee point: smallest depth within 5% of the best throughput, capped by @p target_ns if set;
 * its band holds the depths with throughput >= 0.95x and P99 <= 1.25x the point's. */
struct sim_point sim_oracle_point(const struct sim_oracle *o, uint64_t target_ns);
/** The same with P99 <= @p lr_max x the point's in the band (capped devices: 2, as on the disk). */
struct sim_point sim_oracle_point_band(const struct sim_oracle *o, uint64_t target_ns, double lr_max);
/** Measure @p pt->x_win_sd: run phase @p phase at the fixed depth pt->w_lo for 3 s. */
void sim_point_noise(const struct sim_scenario *sc, int phase, struct sim_point *pt);
/** Scores of completions in [t0, t1) s against @p ref; @p ring < 0 = all rings. */
void sim_score(const struct sim_result *r, double t0, double t1, struct sim_point ref,
               uint64_t target_ns, int ring, struct sim_scores *s);
/** Completions per second of @p ring (<0: all) in [t0, t1). */
double sim_rate(const struct sim_result *r, double t0, double t1, int ring);
/** Exact nearest-rank quantile of latencies in [t0, t1) for data ops. */
double sim_quantile(const struct sim_result *r, double t0, double t1, double q);
double sim_median(double *v, int n);
/** Max group depth over ticks in [t0, t1). */
uint32_t sim_max_w(const struct sim_result *r, double t0, double t1);
double sim_mean_w(const struct sim_result *r, double t0, double t1);

#endif
