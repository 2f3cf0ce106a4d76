/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated device, its scenario generator, the fixed-depth oracle and the scores (see
 * simdev.h). Discrete events: because every channel is FIFO and a service time is fixed when its
 * request is submitted (the drifting device's load penalty reads the smoothed load at that
 * moment), a request's completion time is known at submission (max(now, channel free) + service),
 * so the only event queue is a heap of completion times.
 */
#include "simdev.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"

/* ---- PRNG: one splitmix64 stream per random source, so one knob does not reshuffle others ---- */
struct rng {
    uint64_t s;
};

static uint64_t rng_u64(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(struct rng *r) /* (0, 1) */
{
    return ((double)(rng_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double rng_range(struct rng *r, double a, double b)
{
    return a + (b - a) * rng_unit(r);
}

static double rng_normal(struct rng *r)
{
    return sqrt(-2.0 * log(rng_unit(r))) * cos(6.283185307179586 * rng_unit(r));
}

/* ---- completion heap ---- */
struct ev {
    uint64_t t_done, t_sub;
    int16_t ring; /* -1 neighbour */
    uint8_t kind;
};

struct heap {
    struct ev *a;
    size_t n, cap;
};

static void heap_push(struct heap *h, struct ev e)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 1024;
        h->a = realloc(h->a, h->cap * sizeof(*h->a));
        if (!h->a)
            abort();
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->a[p].t_done <= e.t_done)
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = e;
}

static struct ev heap_pop(struct heap *h)
{
    struct ev top = h->a[0];
    struct ev last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->a[c + 1].t_done < h->a[c].t_done)
            c++;
        if (h->a[c].t_done >= last.t_done)
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n)
        h->a[i] = last;
    return top;
}

/* ---- simulation state ---- */
struct sim {
    const struct sim_scenario *sc;
    struct sim_world world;
    uint64_t t;
    struct rng route, service, fsync;
    /* Drift multiplier exp(s) per ms of the scenario clock (NULL: no drift). */
    double *drift;
    size_t ndrift;
    /* Device memory: channel requests in flight (rings and neighbour) and their smoothed value,
     * integrated up to q_t. */
    uint32_t dev_q;
    double q_eff;
    uint64_t q_t;
    uint64_t *free_at;
    uint32_t k_alloc;
    struct heap heap;
    uint64_t thr_slice;    /* index of the throttle slice granting now, and its grants so far */
    double thr_used;
    uint32_t in_flight[SIM_MAX_RINGS];
    uint32_t limit[SIM_MAX_RINGS];
    uint32_t nb_in_flight;
    struct ctl_ring_acc acc[SIM_MAX_RINGS];
    struct ctl_group *ctl;
    struct sim_result *res;
    /* The app off the CPU over [pre_a, pre_b) (pre_b = 0: never); completions the device
     * finished meanwhile wait in `held` for the reap at pre_b. */
    struct rng preempt;
    uint64_t pre_a, pre_b, pre_total;
    struct ev *held;
    size_t nheld, held_cap;
};

static void set_k(struct sim *s, uint32_t k)
{
    if (k > s->k_alloc) {
        s->free_at = realloc(s->free_at, k * sizeof(*s->free_at));
        if (!s->free_at)
            abort();
        for (uint32_t i = s->k_alloc; i < k; i++)
            s->free_at[i] = s->t;
        s->k_alloc = k;
    }
    s->world.k = k;
}

/* Advance the smoothed in-flight count to now; dev_q has been constant since q_t. */
static void mem_update(struct sim *s)
{
    if (s->world.peak && s->t > s->q_t) {
        if (s->world.mem_tau_s > 0)
            s->q_eff += (1.0 - exp(-(double)(s->t - s->q_t) * 1e-9 / s->world.mem_tau_s))
                        * ((double)s->dev_q - s->q_eff);
        else
            s->q_eff = s->dev_q;
    }
    s->q_t = s->t;
}

static double drift_at(const struct sim *s, uint64_t t_ns)
{
    size_t i = (size_t)(t_ns / 1000000u);
    return s->drift[i < s->ndrift ? i : s->ndrift - 1];
}

/* When the cap lets a request submitted now reach the channels: in this slice while its budget
 * lasts, else at the start of the first slice with budget left (requests keep arrival order). */
static uint64_t throttle_dispatch(struct sim *s)
{
    const struct sim_world *w = &s->world;
    if (w->cap_iops <= 0 || w->cap_slice_s <= 0)
        return s->t;
    uint64_t slice_ns = (uint64_t)(w->cap_slice_s * 1e9);
    double budget = w->cap_iops * w->cap_slice_s;
    uint64_t now_slice = s->t / slice_ns;
    if (now_slice > s->thr_slice) {
        s->thr_slice = now_slice;
        s->thr_used = 0;
    }
    if (s->thr_used + 1 > budget) {
        s->thr_slice++;
        s->thr_used = 0;
    }
    s->thr_used += 1;
    uint64_t at = s->thr_slice * slice_ns;
    return at > s->t ? at : s->t;
}

static void submit(struct sim *s, int ring)
{
    const struct sim_world *w = &s->world;
    const struct sim_scenario *sc = s->sc;
    struct ev e = { 0, s->t, (int16_t)ring, 0 };
    if (ring >= 0 && sc->fsync_frac > 0 && rng_unit(&s->fsync) < sc->fsync_frac) {
        /* fsync: a flush with its own slow, variable latency that occupies no channel */
        e.kind = 1;
        e.t_done = s->t + (uint64_t)(sc->fsync_us * 1e3 * rng_range(&s->fsync, 0.5, 1.5));
        heap_push(&s->heap, e);
        s->in_flight[ring]++;
        return;
    }
    mem_update(s);
    uint32_t c;
    if (w->sharp) {
        c = 0;
        for (uint32_t i = 1; i < w->k; i++)
            if (s->free_at[i] < s->free_at[c])
                c = i;
    } else {
        c = (uint32_t)(rng_u64(&s->route) % w->k);
    }
    double sig2 = log(1.0 + w->cv * w->cv);
    double svc = w->mean_us * 1e3 * exp(sqrt(sig2) * rng_normal(&s->service) - sig2 / 2);
    if (w->p_slow > 0 && rng_unit(&s->service) < w->p_slow)
        svc *= w->m_slow;
    uint64_t start = throttle_dispatch(s);
    if (s->free_at[c] > start)
        start = s->free_at[c];
    double ts = (double)start * 1e-9;
    if (sc->spike_len > 0 && ts >= sc->spike_t && ts < sc->spike_t + sc->spike_len)
        svc *= sc->spike_factor;
    if (w->peak && s->q_eff > (double)w->peak)
        svc *= 1.0 + w->peak_beta * (s->q_eff - (double)w->peak) / (double)w->peak;
    if (s->drift)
        svc *= drift_at(s, start);
    if (svc < 1.0)
        svc = 1.0;
    e.t_done = start + (uint64_t)svc;
    s->free_at[c] = e.t_done;
    heap_push(&s->heap, e);
    s->dev_q++;
    if (ring >= 0)
        s->in_flight[ring]++;
    else
        s->nb_in_flight++;
}

/* Closed-loop app: keeps demand[r] requests outstanding; those beyond the limit wait in a backlog. */
static void fill(struct sim *s, uint32_t r)
{
    uint32_t d = s->world.capacity_app ? UINT32_MAX : s->world.demand[r];
    while (s->in_flight[r] < s->limit[r] && s->in_flight[r] < d)
        submit(s, (int)r);
}

static void log_completion(struct sim *s, const struct ev *e)
{
    struct sim_result *res = s->res;
    if (res->n == res->cap) {
        res->cap = res->cap ? 2 * res->cap : 65536;
        res->log = realloc(res->log, res->cap * sizeof(*res->log));
        if (!res->log)
            abort();
    }
    uint64_t lat = e->t_done - e->t_sub;
    res->log[res->n++] = (struct sim_completion){ e->t_done, lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat,
                                                  e->ring, e->kind };
}

static bool preempted(const struct sim *s)
{
    return s->pre_b && s->t >= s->pre_a && s->t < s->pre_b;
}

/* The next window off the CPU after the current one. */
static void next_preemption(struct sim *s)
{
    const struct sim_scenario *sc = s->sc;
    if (sc->preempt_every_s <= 0)
        return;
    double gap = -sc->preempt_every_s * log(1.0 - rng_unit(&s->preempt));
    double len = rng_range(&s->preempt, sc->preempt_lo_s, sc->preempt_hi_s);
    s->pre_a = s->pre_b + (uint64_t)(gap * 1e9);
    s->pre_b = s->pre_a + (uint64_t)(len * 1e9);
}

static void reap(struct sim *s, struct ev e);

static void complete(struct sim *s, struct ev e)
{
    if (e.kind == 0) {
        mem_update(s);
        s->dev_q--;
    }
    if (e.ring < 0) {
        s->nb_in_flight--;
        if (s->nb_in_flight < s->world.neighbour_q)
            submit(s, -1);
        return;
    }
    if (!preempted(s)) {
        reap(s, e);
        return;
    }
    if (s->nheld == s->held_cap) {
        s->held_cap = s->held_cap ? 2 * s->held_cap : 256;
        s->held = realloc(s->held, s->held_cap * sizeof(*s->held));
        if (!s->held)
            abort();
    }
    s->held[s->nheld++] = e;
}

/* The app sees a completion: latency is submit to reap, as the engine measures it. */
static void reap(struct sim *s, struct ev e)
{
    e.t_done = s->t;
    uint32_t r = (uint32_t)e.ring;
    /* As the engine counts it (lib/ring.c): a completion whose reap found the ring at its limit,
     * and (below) a submission that went to the backlog. An app that keeps exactly the limit
     * outstanding never has a backlog, yet the limit is what holds it. */
    bool full = s->in_flight[r] >= s->limit[r];
    s->in_flight[r]--;
    log_completion(s, &e);
    struct ctl_acc *a = auraio__ctl_acc_active(&s->acc[r]);
    if (full)
        auraio__ctl_acc_at_limit(a);
    uint64_t lat = e.t_done - e.t_sub;
    if (e.kind == 0)
        auraio__ctl_acc_record(a, lat, 4096);
    else
        auraio__ctl_acc_record_other(a, lat);
    /* The app immediately issues a replacement; if the ring is still full after the backlog
     * moved up, that submission waits in the backlog. */
    fill(s, r);
    if (!s->world.capacity_app && s->world.demand[r] > s->in_flight[r])
        auraio__ctl_acc_at_limit(a);
}

static void push_tick(struct sim_result *res, uint32_t w, int phase)
{
    if (res->nticks == res->tick_cap) {
        res->tick_cap = res->tick_cap ? 2 * res->tick_cap : 4096;
        res->w_tick = realloc(res->w_tick, res->tick_cap * sizeof(*res->w_tick));
        res->phase_tick = realloc(res->phase_tick, res->tick_cap);
        if (!res->w_tick || !res->phase_tick)
            abort();
    }
    res->w_tick[res->nticks] = w;
    res->phase_tick[res->nticks] = (uint8_t)phase;
    res->nticks++;
}

/* The controller's clock: starts at 100 s so a backwards step stays positive. */
static uint64_t ctl_now(const struct sim *s)
{
    double t = (double)s->t * 1e-9;
    double off = 100.0;
    if (s->sc->clock_step_t > 0 && t >= s->sc->clock_step_t)
        off -= s->sc->clock_step_s;
    return (uint64_t)((t + off) * 1e9);
}

/* One controller update, as the engine's tick does it. */
static void update(struct sim *s)
{
    const struct sim_scenario *sc = s->sc;
    struct ctl_ring_input in[SIM_MAX_RINGS];
    for (uint32_t r = 0; r < sc->rings; r++) {
        in[r].acc = auraio__ctl_acc_swap(&s->acc[r]);
        uint32_t d = s->world.capacity_app ? 0 : s->world.demand[r];
        in[r].pending = d > s->in_flight[r] ? d : s->in_flight[r];
        in[r].in_flight = s->in_flight[r];
    }
    /* The app sleeps waiting whenever it is on the CPU: its own work takes no time here. */
    auraio__ctl_group_waited(s->ctl, s->t - s->pre_total);
    auraio__ctl_group_update(s->ctl, in, ctl_now(s));
    for (uint32_t r = 0; r < sc->rings; r++) {
        s->limit[r] = auraio__ctl_ring_limit(s->ctl, r);
        struct ctl_ring_stats st;
        auraio__ctl_ring_stats(s->ctl, r, &st);
        if (st.throughput_bps > s->res->max_ctl_tput)
            s->res->max_ctl_tput = st.throughput_bps;
        fill(s, r);
    }
}

/* A tick of the simulated clock; the controller runs only when the app is on the CPU. */
static void tick(struct sim *s)
{
    const struct sim_scenario *sc = s->sc;
    if (!s->ctl) {
        push_tick(s->res, sc->fixed_w, AURAIO_CTL_PHASE_FIXED);
        return;
    }
    if (!preempted(s))
        update(s);
    push_tick(s->res, auraio__ctl_group_depth(s->ctl), auraio__ctl_group_phase(s->ctl));
    if (sc->observe)
        sc->observe(s->ctl, (double)s->t * 1e-9, sc->observe_arg);
}

static void apply_world(struct sim *s, const struct sim_world *w)
{
    uint32_t k = w->k;
    s->world = *w;
    s->world.k = s->k_alloc < k ? s->k_alloc : k;
    set_k(s, k);
    while (s->nb_in_flight < s->world.neighbour_q)
        submit(s, -1);
    for (uint32_t r = 0; r < s->sc->rings; r++)
        fill(s, r);
}

void sim_run(const struct sim_scenario *sc, struct sim_result *res)
{
    struct sim s;
    memset(&s, 0, sizeof(s));
    s.sc = sc;
    s.res = res;
    res->n = 0;
    res->nticks = 0;
    res->tick_ns = sc->tick_ns;
    res->max_ctl_tput = 0;
    s.route.s = sc->seed * 3 + 1;
    s.service.s = sc->seed * 5 + 2;
    s.fsync.s = sc->seed * 7 + 3;
    if (sc->drift_sd > 0 && sc->drift_tau_s > 0) {
        /* The whole path up front from its own stream: a run's length (and the order in which
         * it draws service times) cannot change what the device does at a given time. */
        struct rng dr = { sc->seed * 11 + 5 };
        double len = sc->duration_s < 600 ? sc->duration_s : 600;
        s.ndrift = (size_t)(len * 1000) + 2;
        s.drift = malloc(s.ndrift * sizeof(*s.drift));
        if (!s.drift)
            abort();
        double a = exp(-1e-3 / sc->drift_tau_s), b = sqrt(1.0 - a * a);
        double x = sc->drift_sd * rng_normal(&dr);
        for (size_t i = 0; i < s.ndrift; i++) {
            s.drift[i] = exp(x);
            x = a * x + b * sc->drift_sd * rng_normal(&dr);
        }
    }
    uint64_t next_tick = sc->tick_ns;
    if (sc->fixed_w && sc->start_s > 0) {
        /* Oracle warm-up only from start_s: the ticks before it held the same fixed depth. */
        s.t = (uint64_t)(sc->start_s * 1e9);
        for (uint64_t i = 0; i < s.t / sc->tick_ns; i++)
            push_tick(res, sc->fixed_w, AURAIO_CTL_PHASE_FIXED);
        next_tick = (s.t / sc->tick_ns + 1) * sc->tick_ns;
        s.q_t = s.t;
    }
    s.world = sc->world[0];
    set_k(&s, sc->world[0].k);
    if (sc->fixed_w) {
        /* Oracle: the group limit is fixed and split evenly. */
        for (uint32_t r = 0; r < sc->rings; r++)
            s.limit[r] = sc->fixed_w / sc->rings ? sc->fixed_w / sc->rings : 1;
    } else {
        struct ctl_config cfg = {
            .ring_count = sc->rings, .w_min = 1, .w_max = sc->w_max, .w_init = 0,
            .ring_max = sc->ring_max, .p99_target_ns = sc->target_ns, .seed = sc->seed,
        };
        if (auraio__ctl_group_init(&s.ctl, &cfg, ctl_now(&s)) != 0)
            abort();
        for (uint32_t r = 0; r < sc->rings; r++)
            s.limit[r] = auraio__ctl_ring_limit(s.ctl, r);
    }
    s.preempt.s = sc->seed * 13 + 7;
    next_preemption(&s);
    apply_world(&s, &sc->world[0]);
    int next_phase = 1;
    uint64_t end = (uint64_t)(sc->duration_s * 1e9);
    for (;;) {
        uint64_t tp = next_phase < sc->nphases ? (uint64_t)(sc->phase_t[next_phase] * 1e9) : UINT64_MAX;
        uint64_t tc = s.heap.n ? s.heap.a[0].t_done : UINT64_MAX;
        uint64_t t = tc;
        if (next_tick < t)
            t = next_tick;
        if (tp < t)
            t = tp;
        uint64_t tb = s.pre_b && s.pre_a <= t ? s.pre_b : UINT64_MAX; /* back on the CPU */
        if (tb <= t)
            t = tb;
        if (t >= end)
            break;
        s.t = t;
        if (t == tb) {
            /* Back on the CPU: reap everything that finished meanwhile, then tick. */
            s.pre_total += s.pre_b - s.pre_a;
            next_preemption(&s);
            for (size_t i = 0; i < s.nheld; i++)
                reap(&s, s.held[i]);
            s.nheld = 0;
            if (s.ctl)
                update(&s);
            else
                for (uint32_t r = 0; r < sc->rings; r++)
                    fill(&s, r);
        } else if (t == tc) {
            complete(&s, heap_pop(&s.heap));
            if (sc->max_completions && res->n >= sc->max_completions)
                break;
        } else if (t == tp) {
            apply_world(&s, &sc->world[next_phase++]);
        } else {
            tick(&s);
            next_tick += sc->tick_ns;
        }
    }
    if (s.ctl) {
        struct ctl_ring_stats st;
        auraio__ctl_ring_stats(s.ctl, 0, &st);
        res->infeasible = st.target_infeasible;
        res->final_phase = st.phase;
        res->final_w = auraio__ctl_group_depth(s.ctl);
        auraio__ctl_group_destroy(s.ctl);
    }
    free(s.heap.a);
    free(s.free_at);
    free(s.drift);
    free(s.held);
}

void sim_result_free(struct sim_result *res)
{
    free(res->log);
    free(res->w_tick);
    free(res->phase_tick);
    memset(res, 0, sizeof(*res));
}

/* ---- scenarios ---- */
static struct sim_world base_world(struct rng *r, uint32_t k_lo, uint32_t k_hi, double m_lo, double m_hi)
{
    struct sim_world w;
    memset(&w, 0, sizeof(w));
    w.k = k_lo + (uint32_t)(rng_u64(r) % (k_hi - k_lo + 1));
    w.mean_us = rng_range(r, m_lo, m_hi);
    w.cv = rng_range(r, 0.2, 0.8);
    w.p_slow = rng_range(r, 0.0, 0.005);
    w.m_slow = rng_range(r, 5.0, 20.0);
    return w;
}

void sim_draw(enum sim_kind kind, uint64_t seed, struct sim_scenario *sc)
{
    struct rng r = { seed * 0x2545f4914f6cdd1dull + (uint64_t)kind };
    memset(sc, 0, sizeof(*sc));
    sc->seed = seed * 1000 + (uint64_t)kind;
    sc->rings = 1;
    sc->tick_ns = 1000000;
    sc->duration_s = 2.0;
    sc->nphases = 1;
    sc->w_max = 256;
    struct sim_world *w = &sc->world[0];
    switch (kind) {
    case SIM_KNEE_LOW:
    case SIM_SHARP:
    case SIM_MIXED:
        *w = base_world(&r, 4, 16, 50, 200);
        w->sharp = kind == SIM_SHARP;
        if (kind == SIM_MIXED) {
            sc->fsync_frac = rng_range(&r, 0.02, 0.1);
            sc->fsync_us = rng_range(&r, 1000, 5000);
        }
        break;
    case SIM_KNEE_HIGH:
        *w = base_world(&r, 24, 64, 150, 300);
        sc->w_max = (rng_u64(&r) & 1) ? 1024 : 512;
        break;
    case SIM_NO_PARALLEL:
        *w = base_world(&r, 1, 1, 50, 200);
        sc->w_max = 64;
        break;
    case SIM_NO_KNEE:
        *w = base_world(&r, 512, 1024, 200, 400);
        sc->w_max = 64;
        break;
    case SIM_PHASE_UP:
    case SIM_PHASE_DOWN:
    case SIM_SLOWDOWN:
        *w = base_world(&r, 8, 16, 80, 200);
        sc->nphases = 2;
        sc->phase_t[1] = rng_range(&r, 1.5, 2.5);
        sc->duration_s = sc->phase_t[1] + 2.5;
        sc->world[1] = *w;
        if (kind == SIM_PHASE_UP) {
            sc->world[1].k = w->k * 4;
            sc->world[1].mean_us = w->mean_us * 2; /* keep the event count bounded */
            sc->w_max = 512;
        } else if (kind == SIM_PHASE_DOWN) {
            w->k *= 4;
            w->mean_us *= 2;
            sc->world[1] = *w;
            sc->world[1].k = w->k / 4;
            sc->world[1].mean_us = w->mean_us / 2;
            sc->w_max = 512;
        } else {
            sc->world[1].mean_us = w->mean_us * 3;
        }
        break;
    case SIM_NEIGHBOUR:
        *w = base_world(&r, 8, 16, 80, 200);
        sc->nphases = 3;
        sc->phase_t[1] = rng_range(&r, 1.5, 2.0);
        sc->phase_t[2] = sc->phase_t[1] + rng_range(&r, 1.5, 2.0);
        sc->duration_s = sc->phase_t[2] + 2.5;
        sc->world[1] = *w;
        sc->world[1].neighbour_q = 16 + (uint32_t)(rng_u64(&r) % 113);
        sc->world[2] = *w;
        break;
    case SIM_SPIKE:
        *w = base_world(&r, 4, 16, 50, 200);
        sc->spike_t = rng_range(&r, 1.5, 2.0);
        sc->spike_len = rng_range(&r, 0.05, 0.2);
        sc->spike_factor = 10;
        sc->duration_s = sc->spike_t + 3.0;
        break;
    case SIM_LOW_IOPS:
        *w = base_world(&r, 1, 1, 20000, 40000); /* tens of IOPS, HDD-with-seeks-like */
        sc->w_max = 32;
        sc->duration_s = 120;
        sc->tick_ns = 5000000;
        break;
    case SIM_FEW_OUTSTANDING:
        *w = base_world(&r, 8, 16, 50, 200);
        break;
    case SIM_MULTI_EQUAL:
    case SIM_MULTI_UNEQUAL:
        *w = base_world(&r, 8, 16, 80, 200);
        sc->rings = 2 + (uint32_t)(rng_u64(&r) % 7);
        break;
    case SIM_DRIFT: {
        /* The virtio disk of doc/frontier.md, scaled to simulator event rates: random placement
         * over k channels gives a gradual curve, X0(q) ~ q / (q + k - 1) (closed network), whose
         * 95% point lies a little below the peak P when k ~ P / 3 (oracle knee 0.8 P on seeds
         * 1-7); past P the load penalty turns it down, beta chosen so X(1.5 P) / X(P) ~ 0.7-0.9
         * by that formula (the oracle measures 0.75-0.90). */
        uint32_t peak = 32 + (uint32_t)(rng_u64(&r) % 65);
        uint32_t k = (peak + 1) / 3;
        *w = base_world(&r, k, k, 1, 2);
        w->mean_us = (double)k * 1e6 / rng_range(&r, 40e3, 80e3);
        double c = (double)(k - 1) / (double)peak;
        double fall = rng_range(&r, 0.7, 0.9);
        double gain = 1.5 * (1.0 + c) / (1.5 + c); /* X0(1.5 P) / X0(P) */
        w->peak = peak;
        w->peak_beta = 2.0 * (gain / fall - 1.0);
        w->mem_tau_s = rng_range(&r, 0.02, 0.05);
        sc->drift_sd = rng_range(&r, 0.06, 0.12);
        sc->drift_tau_s = rng_range(&r, 0.05, 0.2);
        sc->duration_s = 4.0;
        /* Scored over the steady half; the oracle measures the same span of the same path. */
        sc->oracle_t0 = sc->duration_s / 2;
        sc->oracle_t1 = sc->duration_s;
        break;
    }
    case SIM_CAPPED:
    case SIM_CAP_CHANGE: {
        /* A device of 100-300 K IOPS behind a provisioned-IOPS cap, dispatched in slices as the
         * kernel's throttle does (20 ms on an SSD, 100 ms on a rotational queue such as this
         * machine's virtio disk): knee and P99 cliff from a few to a few tens of requests. */
        *w = base_world(&r, 16, 32, 80, 160);
        w->p_slow = 0;
        double x_max = (double)w->k / (w->mean_us * 1e-6);
        double slice = (rng_u64(&r) & 1) ? 0.1 : 0.02;
        if (kind == SIM_CAPPED) {
            w->cap_iops = x_max * rng_range(&r, 0.1, 0.5);
            w->cap_slice_s = slice;
            sc->duration_s = 3.0;
            break;
        }
        /* Uncapped, 20% of the device, 5%, uncapped: 3 s each. */
        static const double share[4] = { 0, 0.2, 0.05, 0 };
        sc->nphases = 4;
        for (int p = 0; p < 4; p++) {
            sc->phase_t[p] = 3.0 * p;
            sc->world[p] = *w;
            sc->world[p].cap_iops = share[p] * x_max;
            sc->world[p].cap_slice_s = share[p] > 0 ? slice : 0;
        }
        sc->duration_s = 12.0;
        break;
    }
    case SIM_PREEMPTED:
        /* The uncapped device of the capped scenarios, driven from a loaded machine: the app's
         * thread is off the CPU for 10-30 ms every ~100 ms, so completions arrive after silences
         * as long as a throttle's, though the device never stopped. */
        *w = base_world(&r, 16, 32, 80, 160);
        w->p_slow = 0;
        sc->preempt_every_s = 0.3;
        sc->preempt_lo_s = 0.01;
        sc->preempt_hi_s = 0.02;
        sc->duration_s = 3.0;
        break;
    default:
        break;
    }
    sc->ring_max = sc->rings == 1 ? sc->w_max : sc->w_max; /* one ring could take it all */
    for (int p = 0; p < SIM_MAX_PHASES; p++) {
        for (uint32_t i = 0; i < sc->rings; i++) {
            uint32_t d = 2 * sc->w_max; /* saturating: always a backlog */
            /* Fewer than the first depth (4): an app holding exactly the limit outstanding
             * cannot be told from one that submits auraio_capacity() (every reap finds the
             * ring full, ring.c counts it at the limit), and that one must be searched for;
             * see test_capacity_app_searches. */
            if (kind == SIM_FEW_OUTSTANDING)
                d = 1 + (uint32_t)((seed + i) % 3);
            if (kind == SIM_MULTI_UNEQUAL)
                d = (uint32_t)(sc->w_max / 2 >> (i % 4));
            sc->world[p].demand[i] = d;
        }
    }
    if (kind == SIM_MULTI_UNEQUAL || kind == SIM_MULTI_EQUAL) {
        /* Keep the group saturating: the comparison is with a saturating single-ring oracle. */
        uint32_t sum = 0;
        for (uint32_t i = 0; i < sc->rings; i++)
            sum += sc->world[0].demand[i];
        if (sum < 2 * sc->w_max)
            for (int p = 0; p < SIM_MAX_PHASES; p++)
                for (uint32_t i = 0; i < sc->rings; i++)
                    sc->world[p].demand[i] = sc->world[p].demand[i] * (2 * sc->w_max / sum + 1);
    }
}

static int sim_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- oracle ---- */
/* @p base reduced to the device of @p phase alone at fixed depth @p w: one ring, no neighbour,
 * spike, fsyncs, clock step or target. The oracle and the noise probe both measure this. */
static struct sim_scenario fixed_depth_device(const struct sim_scenario *base, int phase, uint32_t w)
{
    struct sim_scenario sc = *base;
    sc.rings = 1;
    sc.nphases = 1;
    sc.world[0] = base->world[phase];
    sc.world[0].neighbour_q = 0;
    sc.spike_len = 0;
    sc.fsync_frac = 0;
    sc.clock_step_t = 0;
    sc.target_ns = 0;
    sc.fixed_w = w;
    sc.world[0].demand[0] = w;
    return sc;
}

void sim_oracle(const struct sim_scenario *base, int phase, struct sim_oracle *o)
{
    struct sim_scenario sc = fixed_depth_device(base, phase, 1);
    sc.duration_s = 1e6;
    bool win = base->oracle_t1 > base->oracle_t0 && base->oracle_t1 > 0;
    if (win) {
        /* Warm-up: the device's memory (6 time constants) and its queues. */
        double warm = 6 * sc.world[0].mem_tau_s > 0.1 ? 6 * sc.world[0].mem_tau_s : 0.1;
        sc.start_s = base->oracle_t0 > warm ? base->oracle_t0 - warm : 0;
        sc.duration_s = base->oracle_t1;
    }
    o->n = 0;
    struct sim_result res;
    memset(&res, 0, sizeof(res));
    uint32_t w = 1;
    while (o->n < SIM_MAX_GRID) {
        sc.fixed_w = w;
        sc.world[0].demand[0] = w;
        /* Enough completions for a ~1.5% throughput and ~5% P99 estimate; the first 10% warm up. */
        uint64_t need = 6000 + 40ull * w;
        /* Behind a throttle, whole slices: a run of 1.5 slices read its first burst as rate, and
         * placed the knee of a 20% cap at 30-40 where the whole-slice frontier has it at 5-7. */
        double sliced = sc.world[0].cap_iops * sc.world[0].cap_slice_s * 20;
        if ((double)need < sliced)
            need = (uint64_t)sliced;
        sc.max_completions = win ? 0 : need;
        sim_run(&sc, &res);
        size_t skip = res.n / 10;
        double x;
        if (win) {
            uint64_t a = (uint64_t)(base->oracle_t0 * 1e9);
            for (skip = 0; skip < res.n && res.log[skip].t_ns < a; skip++)
                ;
            if (skip + 100 > res.n)
                abort(); /* a window too short for this device */
            x = (double)(res.n - skip) / (base->oracle_t1 - base->oracle_t0);
        } else {
            double t0 = (double)res.log[skip].t_ns, t1 = (double)res.log[res.n - 1].t_ns;
            x = (double)(res.n - skip - 1) * 1e9 / (t1 - t0);
        }
        double *lat = malloc((res.n - skip) * sizeof(double));
        size_t m = 0;
        for (size_t i = skip; i < res.n; i++)
            lat[m++] = res.log[i].lat_ns;
        o->w[o->n] = w;
        o->x[o->n] = x;
        o->p99[o->n] = 0;
        {
            /* nearest-rank P99 */
            qsort(lat, m, sizeof(double), sim_cmp_double);
            size_t rank = (size_t)ceil(0.99 * (double)m);
            o->p99[o->n] = lat[rank ? rank - 1 : 0];
        }
        free(lat);
        o->n++;
        if (w >= base->w_max)
            break;
        uint32_t nw = w < 16 ? w + 1 : (uint32_t)(w * 1.1);
        w = nw > base->w_max ? base->w_max : nw;
    }
    sim_result_free(&res);
}


struct sim_point sim_oracle_point_band(const struct sim_oracle *o, uint64_t target_ns, double lr_max)
{
    double best = 0;
    for (int i = 0; i < o->n; i++)
        if (o->x[i] > best)
            best = o->x[i];
    int ke = o->n - 1;
    for (int i = 0; i < o->n; i++) {
        if (o->x[i] >= 0.95 * best) {
            ke = i;
            break;
        }
    }
    int k = ke;
    if (target_ns) {
        int kt = -1;
        for (int i = 0; i < o->n; i++)
            if (o->p99[i] <= (double)target_ns)
                kt = i;
        if (kt < 0)
            kt = 0;
        if (kt < k)
            k = kt;
    }
    struct sim_point pt = { o->w[k], o->x[k], o->p99[k], o->w[o->n - 1], 0, 0 };
    double pmax = lr_max * o->p99[k];
    if (target_ns && (double)target_ns < pmax)
        pmax = (double)target_ns;
    for (int i = o->n - 1; i >= 0; i--)
        if (o->x[i] >= 0.95 * pt.x)
            pt.w_lo = o->w[i];
    for (int i = 0; i < o->n; i++)
        if (o->p99[i] <= pmax || i == k)
            pt.w_hi = o->w[i] > pt.w_hi ? o->w[i] : pt.w_hi;
    if (pt.w_lo > pt.w)
        pt.w_lo = pt.w;
    return pt;
}

struct sim_point sim_oracle_point(const struct sim_oracle *o, uint64_t target_ns)
{
    return sim_oracle_point_band(o, target_ns, 1.25);
}

void sim_point_noise(const struct sim_scenario *base, int phase, struct sim_point *pt)
{
    struct sim_scenario sc = fixed_depth_device(base, phase, pt->w_lo ? pt->w_lo : 1);
    sc.max_completions = 0;
    sc.duration_s = 3.2;
    struct sim_result res;
    memset(&res, 0, sizeof(res));
    sim_run(&sc, &res);
    double s = 0, s2 = 0;
    int n = 0;
    for (double a = 0.2; a + 0.1 <= sc.duration_s + 1e-9; a += 0.1, n++) {
        double x = sim_rate(&res, a, a + 0.1, -1);
        s += x;
        s2 += x * x;
    }
    double m = n ? s / n : 0, var = n ? s2 / n - m * m : 0;
    pt->x_win_sd = m > 0 && var > 0 ? sqrt(var) / m : 0;
    sim_result_free(&res);
}

/* ---- scores ---- */
double sim_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), sim_cmp_double);
    if (n == 0)
        return 0;
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double sim_rate(const struct sim_result *r, double t0, double t1, int ring)
{
    uint64_t a = (uint64_t)(t0 * 1e9), b = (uint64_t)(t1 * 1e9);
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->log[i].t_ns >= a && r->log[i].t_ns < b && r->log[i].kind == 0
            && (ring < 0 || r->log[i].ring == ring))
            n++;
    return t1 > t0 ? (double)n / (t1 - t0) : 0;
}

static double quantile_of(const struct sim_result *r, uint64_t a, uint64_t b, double q, double *buf)
{
    size_t m = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->log[i].t_ns >= a && r->log[i].t_ns < b && r->log[i].kind == 0)
            buf[m++] = r->log[i].lat_ns;
    if (!m)
        return 0;
    qsort(buf, m, sizeof(double), sim_cmp_double);
    size_t rank = (size_t)ceil(q * (double)m);
    return buf[rank ? rank - 1 : 0];
}

double sim_quantile(const struct sim_result *r, double t0, double t1, double q)
{
    double *buf = malloc((r->n + 1) * sizeof(double));
    double v = quantile_of(r, (uint64_t)(t0 * 1e9), (uint64_t)(t1 * 1e9), q, buf);
    free(buf);
    return v;
}

uint32_t sim_max_w(const struct sim_result *r, double t0, double t1)
{
    uint32_t m = 0;
    for (size_t i = 0; i < r->nticks; i++) {
        double t = (double)(i + 1) * (double)r->tick_ns * 1e-9;
        if (t >= t0 && t < t1 && r->w_tick[i] > m)
            m = r->w_tick[i];
    }
    return m;
}

double sim_mean_w(const struct sim_result *r, double t0, double t1)
{
    double s = 0;
    size_t n = 0;
    for (size_t i = 0; i < r->nticks; i++) {
        double t = (double)(i + 1) * (double)r->tick_ns * 1e-9;
        if (t >= t0 && t < t1) {
            s += r->w_tick[i];
            n++;
        }
    }
    return n ? s / (double)n : 0;
}

void sim_score(const struct sim_result *r, double t0, double t1, struct sim_point ref,
               uint64_t target_ns, int ring, struct sim_scores *s)
{
    memset(s, 0, sizeof(*s));
    double ts = t0 + 0.5 * (t1 - t0);
    double *buf = malloc((r->n + 1) * sizeof(double));
    s->x = sim_rate(r, ts, t1, ring);
    s->p99 = quantile_of(r, (uint64_t)(ts * 1e9), (uint64_t)(t1 * 1e9), 0.99, buf);
    s->tr = ref.x > 0 ? s->x / ref.x : 0;
    s->lr = ref.p99 > 0 ? s->p99 / ref.p99 : 0;
    /* 100 ms windows: time to converge, target compliance, depth CoV. A window's own throughput
     * must also be in the band (>= 0.95 X*) up to its sampling noise: 3 sd of a 100 ms window at
     * the band's edge depth (a fixed depth there stays above it in ~99.9% of windows). A fixed
     * 0.9 X* floor was not the band: at ~20-50 K IOPS a window's sd is 3-5%, and the fixed
     * band-edge depth itself failed it in 5 of 7 slowdown draws over 3 s. Without a measured sd
     * (ref.x_win_sd = 0) the old 0.9 floor applies. */
    double x_floor = ref.x_win_sd > 0 ? 0.95 - 3.0 * ref.x_win_sd : 0.9;
    int nw = (int)((t1 - t0) / 0.1);
    int last_bad = -1, steady_w = 0, ok_w = 0;
    double ws = 0, ws2 = 0;
    for (int i = 0; i < nw; i++) {
        double a = t0 + 0.1 * i, b = a + 0.1;
        double x = sim_rate(r, a, b, ring);
        double p = quantile_of(r, (uint64_t)(a * 1e9), (uint64_t)(b * 1e9), 0.99, buf);
        /* In band: the depth held during the window is one whose fixed-depth throughput and P99
         * are inside the band, and the window's throughput is not far off. (Per-window P99 is
         * too noisy with correlated tails: the oracle's own fixed depth would fail a per-window
         * P99 test, so the latency side is judged through the depth.) */
        double mw = sim_mean_w(r, a, b);
        bool in_band = x >= x_floor * ref.x && mw >= 0.97 * ref.w_lo && mw <= 1.03 * ref.w_hi;
        if (!in_band)
            last_bad = i;
        if (a >= ts) {
            ws += mw;
            ws2 += mw * mw;
            steady_w++;
            if (target_ns && p <= (double)target_ns)
                ok_w++;
        }
    }
    s->ttc_s = 0.1 * (last_bad + 1);
    if (steady_w) {
        double m = ws / steady_w;
        double var = ws2 / steady_w - m * m;
        s->cov = m > 0 && var > 0 ? sqrt(var) / m : 0;
        s->tc = (double)ok_w / steady_w;
    }
    /* reversals of the depth's direction over the steady ticks */
    int dir = 0, rev = 0;
    uint32_t prev = 0;
    bool have = false;
    for (size_t i = 0; i < r->nticks; i++) {
        double t = (double)(i + 1) * (double)r->tick_ns * 1e-9;
        if (t < ts || t >= t1)
            continue;
        uint32_t w = r->w_tick[i];
        if (have && w != prev) {
            int d = w > prev ? 1 : -1;
            if (dir && d != dir)
                rev++;
            dir = d;
        }
        prev = w;
        have = true;
    }
    s->rev_per_s = t1 > ts ? rev / (t1 - ts) : 0;
    free(buf);
}
