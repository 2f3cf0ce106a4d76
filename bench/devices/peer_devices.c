/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fast device's IOPS beside a slow one, for auraio and its peers in one run (issue #16's
 * "a slow, capped device does not cut the fast device's IOPS below 0.9x of what it reaches
 * alone"). The fast device is a zram filesystem, the slow one the disk under --slow-dir capped at
 * --cap read IOPS by the kernel's block throttle; 4 KiB O_DIRECT random reads. Each peer reads
 * zram alone and zram beside the capped disk, and its ratio "zram beside / zram alone" says what
 * driving the disk costs zram's IOPS in that peer:
 *  - raw: a minimal io_uring loop through liburing, one thread, one ring, fixed depths (zram at
 *    its knee, the disk at --slow-depth): queue, io_uring_submit_and_wait, reap, requeue;
 *  - fio-1cpu: fio's io_uring engine, one fio process, a job (a thread) per device, both jobs
 *    pinned to one CPU, so they have the one CPU the one-thread loops have (fio drives each job
 *    from its own thread: one job reading both files shares one depth between them, so it cannot
 *    keep zram at its knee and the disk at its own);
 *  - fio-2cpu: the same without the pinning: the disk's job may run on the other CPU;
 *  - auraio-fixed: the library at the raw loop's depths, adaptation off, one thread;
 *  - auraio-ctl: the library under the controller as test/devices does it: one thread, one
 *    engine, OUTSTANDING reads kept on zram, the disk's application submitting what
 *    auraio_device_capacity admits;
 *  - auraio-2thr: the same with the disk's application on a second thread with its own engine
 *    (fio-2cpu's placement: the disk's system calls may run on the other CPU);
 *  - raw-2thr and auraio-2fix: the raw loop and auraio at fixed depths (the raw loop's) in that
 *    shape, a ring or an engine per thread: fio-2cpu's fixed depths with auraio-2thr's threads.
 * With two CPUs, where the threads land decides the ratio (doc/controller.md, "Against peers"): the
 * disk's interrupts go to one CPU, and the zram thread that shares it pays for them. So each thread
 * of an in-process peer reports its CPU time, the time it waited runnable, its migrations and the
 * CPUs it ran on (sched_getcpu at every turn of its loop), the run before the rounds finds the CPU
 * of the disk's interrupts (/proc/interrupts), and --pin-fast / --pin-slow pin the two-thread
 * peers' threads (fio's jobs too) to chosen CPUs, alone runs like beside runs.
 * Before the rounds: the disk's uncapped rate (the host's own limits move it), the capped disk
 * alone through the raw loop at depths 1, 2 and 4 (the CPU a read costs the thread: past the cap
 * the throttle queues the bios and releases them in batches), zram's fixed-depth frontier through
 * the raw loop (its knee: the smallest depth within 5% of the second best point). Then --rounds
 * rounds; in each, the peers' order rotates and each peer's two runs are back to back (the disk
 * drifts over minutes), alone first in even rounds. --peers runs only the named peers. Printed:
 * every run, and the medians of the rounds' ratios, with the --ref peer's ratio (auraio-ctl's by
 * default) over each peer's (paired within a round). Run by
 * test/devices/two_devices.sh (the zram filesystem made and removed on every exit path; the
 * throttle group and the test files too, by devices_common).
 * Exit 0, 1 when a driven device completed no read, 77 when no block throttle is writable here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "auraio.h"
#include "bench_util.h"
#include "devices_common.h"

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define OUTSTANDING 128 /* auraio-ctl: the application's reads per device (as test/devices) */
#define RAW_ENTRIES 256 /* the raw loop's SQ: room for every slot of both devices */
#define SLOT_BITS 16    /* user_data: device << SLOT_BITS | slot */
#define SAMPLE_NS 100000000ull
#define MAX_SAMPLES 256
#define MAX_ROUNDS 64
#define KNEE_IOPS 0.95 /* the knee: the smallest depth within 5% of the best */
#define FIO_OUT 16384
#define UNCAPPED_DEPTH 32
#define SLOW_DEPTHS 4 /* the capped disk alone at 1, 2 and 4 before the rounds */

enum { FAST, SLOW, NDEV };
enum peer { RAW, FIO_ONE, FIO_TWO, LIB_FIXED, LIB_CTL, LIB_TWO, RAW_TWO, LIB_TWO_FIXED, NPEERS };
static const char *const peer_name[NPEERS] = {"raw",        "fio-1cpu",    "fio-2cpu", "auraio-fixed",
                                              "auraio-ctl", "auraio-2thr", "raw-2thr", "auraio-2fix"};
static const char *const peer_what[NPEERS] = {
    "raw io_uring loop (liburing), one thread, fixed depths",
    "fio io_uring, a job per device, both on one CPU",
    "fio io_uring, a job per device, on 2 CPUs (unpinned without --pin-fast/--pin-slow)",
    "auraio, one thread, fixed depths (adaptation off)",
    "auraio, one thread, under the controller",
    "auraio under the controller, the disk on a second thread and engine",
    "raw io_uring loop, the disk on a second thread and ring, fixed depths",
    "auraio at fixed depths, the disk on a second thread and engine",
};
/* The peers that drive the disk from a second thread (fio-2cpu's placement). */
static bool two_threads(enum peer p)
{
    return p == FIO_TWO || p == LIB_TWO || p == RAW_TWO || p == LIB_TWO_FIXED;
}

static const int frontier_grid[] = {1, 2, 4, 8, 16, 32, 64};
#define NFRONT ((int)(sizeof(frontier_grid) / sizeof(frontier_grid[0])))

struct target {
    const char *name;
    int fd;
    uint64_t id, blocks, rng;
    void *bufs[OUTSTANDING];
};
static struct target dev[NDEV] = {{.name = "zram", .rng = 1}, {.name = "disk", .rng = 2}};

#define MAX_CPUS 4 /* where a thread ran: the share of its loop's turns on CPUs 0..3 */

/* What the thread driving a device did over the counted part: its CPU s/s, the time it waited
 * runnable for a CPU (s/s, /proc/thread-self/schedstat), its involuntary switches a second, and
 * on which CPU it was at each turn of its loop. For fio only the CPU (its terse usr + sys). */
struct thread_stat {
    double cpu, delay, invol;
    double on[MAX_CPUS];
    int first_cpu;   /* where the thread was when the counted part began */
    long migrations; /* se.nr_migrations over the counted part (-1: no /proc/thread-self/sched) */
    bool known;
};

/* One run: each device's IOPS over the counted part, the thread's CPU s/s (in-process peers),
 * each device's depth (under the controller: the median of the engine's reports every 100 ms),
 * and the threads that drove them (th[SLOW] only when the disk had its own thread). */
struct result {
    double iops[NDEV];
    double cpu; /* the thread's CPU s/s (in-process peers; -1 for fio) */
    int depth[NDEV];
    struct thread_stat th[NDEV];
};

static double opt_run = 2.0, opt_warm = 1.0, opt_point = 0.5;
static int opt_rounds = 5, opt_fast_depth, opt_slow_depth = 1, opt_file_mb = 256, opt_fio_cpu = -1;
static int opt_pin_fast = -1, opt_pin_slow = -1; /* two-thread peers: each device's thread on this CPU */
static const char *opt_peers, *opt_ref = "auraio-ctl";
static uint64_t opt_cap = 4000;
static bool have_fio;
static int irq_cpu = -1; /* the CPU that takes most of the disk's interrupts (-1: not found) */

static double thread_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* The thread's migrations between CPUs so far (-1 without CONFIG_SCHED_DEBUG's file). */
static long migrations_now(void)
{
    char buf[256];
    long n = -1;
    FILE *f = fopen("/proc/thread-self/sched", "r");
    while (f && fgets(buf, sizeof(buf), f)) {
        if (strncmp(buf, "se.nr_migrations", 16) == 0 && strchr(buf, ':'))
            n = atol(strchr(buf, ':') + 1);
    }
    if (f)
        fclose(f);
    return n;
}

/* The thread's run delay (ns it waited runnable) and involuntary switches so far. */
static void sched_now(uint64_t *delay_ns, uint64_t *invol)
{
    *delay_ns = *invol = 0;
    char buf[4096];
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f) {
        unsigned long long run, wait;
        if (fscanf(f, "%llu %llu", &run, &wait) == 2)
            *delay_ns = wait;
        fclose(f);
    }
    f = fopen("/proc/thread-self/status", "r");
    while (f && fgets(buf, sizeof(buf), f)) {
        unsigned long long n;
        if (sscanf(buf, "nonvoluntary_ctxt_switches: %llu", &n) == 1)
            *invol = n;
    }
    if (f)
        fclose(f);
}

/* The counted part of an in-process run: starts after the warm-up, ends at the first check past
 * its length; IOPS are divided by the time it really lasted. */
struct clock_run {
    uint64_t count_at, end, counted_from, counted_to;
    double cpu0, cpu;
    uint64_t delay0, invol0, delay, invol, turns, on[MAX_CPUS];
    long mig0, mig;
    int first_cpu;
    bool counting, stopping;
};

static void clock_start(struct clock_run *c, double warm, double seconds)
{
    uint64_t t = devices_now_ns();
    *c = (struct clock_run){.count_at = t + (uint64_t)(warm * 1e9)};
    c->end = c->count_at + (uint64_t)(seconds * 1e9);
}

/* Moves the run's clock to now: counting from the warm-up's end, stopping at the end. */
static void clock_tick(struct clock_run *c)
{
    uint64_t t = devices_now_ns();
    if (!c->counting && t >= c->count_at) {
        c->counting = true;
        c->counted_from = t;
        c->cpu0 = thread_cpu_s();
        sched_now(&c->delay0, &c->invol0);
        c->mig0 = migrations_now();
        c->first_cpu = sched_getcpu();
    }
    if (c->counting && !c->stopping) {
        int cpu = sched_getcpu();
        c->turns++;
        c->on[cpu >= 0 && cpu < MAX_CPUS ? cpu : MAX_CPUS - 1]++;
    }
    if (c->counting && !c->stopping && t >= c->end) {
        c->stopping = true;
        c->counted_to = t;
        c->cpu = thread_cpu_s() - c->cpu0;
        sched_now(&c->delay, &c->invol);
        c->delay -= c->delay0;
        c->invol -= c->invol0;
        c->mig = c->mig0 < 0 ? -1 : migrations_now() - c->mig0;
    }
}

static struct result clock_result(const struct clock_run *c, const uint64_t done[NDEV])
{
    double s = (double)(c->counted_to - c->counted_from) / 1e9;
    struct result r = {.iops = {(double)done[FAST] / s, (double)done[SLOW] / s}, .cpu = c->cpu / s};
    struct thread_stat *t = &r.th[FAST];
    *t = (struct thread_stat){
        .cpu = r.cpu, .delay = (double)c->delay / 1e9 / s, .invol = (double)c->invol / s, .known = true};
    t->first_cpu = c->first_cpu;
    t->migrations = c->mig;
    for (int i = 0; i < MAX_CPUS; i++)
        t->on[i] = c->turns ? (double)c->on[i] / (double)c->turns : 0;
    return r;
}

/* Pins the calling thread to @p cpu (>= 0). */
static void pin_self(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc != 0) {
        fprintf(stderr, "pthread_setaffinity_np(%d): %s\n", cpu, strerror(rc));
        exit(1);
    }
}

/* Undoes pin_self(@p cpu): the thread may run on any CPU again. */
static void unpin_self(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < CPU_SETSIZE && i < (int)sysconf(_SC_NPROCESSORS_ONLN); i++)
        CPU_SET(i, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* ---- where the disk's interrupts go ---- */

#define MAX_IRQS 256
struct irq_snap {
    int n;
    char name[MAX_IRQS][48];
    uint64_t count[MAX_IRQS][MAX_CPUS];
};

/* The numbered lines of /proc/interrupts (device interrupts, not LOC/RES/...): counts per CPU. */
static void irq_snap(struct irq_snap *q)
{
    char line[1024];
    q->n = 0;
    FILE *f = fopen("/proc/interrupts", "r");
    int cpus = 0;
    if (f && fgets(line, sizeof(line), f)) {
        for (char *t = strtok(line, " \t\n"); t; t = strtok(NULL, " \t\n"))
            cpus++;
    }
    while (f && q->n < MAX_IRQS && fgets(line, sizeof(line), f)) {
        char *p = line, *end;
        strtol(p, &end, 10);
        if (end == p || *end != ':')
            continue;
        p = end + 1;
        for (int c = 0; c < cpus; c++) {
            uint64_t v = strtoull(p, &end, 10);
            if (c < MAX_CPUS)
                q->count[q->n][c] = v;
            p = end;
        }
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        const char *last = strrchr(p, ' ');
        snprintf(q->name[q->n], sizeof(q->name[0]), "%s", last ? last + 1 : p);
        q->n++;
    }
    if (f)
        fclose(f);
}

/* The interrupt line that fired most between @p a and @p b (the disk's, when only the disk ran) and
 * its share per CPU. */
static void irq_print(const struct irq_snap *a, const struct irq_snap *b, double reads)
{
    int best = -1;
    uint64_t best_n = 0;
    for (int i = 0; i < a->n && i < b->n; i++) {
        uint64_t n = 0;
        for (int c = 0; c < MAX_CPUS; c++)
            n += b->count[i][c] - a->count[i][c];
        if (n > best_n && strcmp(a->name[i], b->name[i]) == 0) {
            best = i;
            best_n = n;
        }
    }
    if (best < 0) {
        printf("the disk's interrupts: not found in /proc/interrupts\n");
        return;
    }
    printf("the disk's interrupts (%s, %.2f per read):", a->name[best], reads > 0 ? (double)best_n / reads : 0);
    uint64_t most = 0;
    for (int c = 0; c < MAX_CPUS; c++) {
        uint64_t n = b->count[best][c] - a->count[best][c];
        if (n)
            printf(" CPU %d %.0f%%", c, 100.0 * (double)n / (double)best_n);
        if (n > most) {
            most = n;
            irq_cpu = c;
        }
    }
    printf("\n");
}

/* ---- raw: the minimal io_uring loop ---- */

static void raw_queue(struct io_uring *ring, int k, unsigned slot)
{
    struct target *t = &dev[k];
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring); /* room for every slot: never NULL */
    t->rng = t->rng * 6364136223846793005ull + 1442695040888963407ull;
    io_uring_prep_read(sqe, t->fd, t->bufs[slot], DEVICES_BLOCK, ((t->rng >> 33) % t->blocks) * DEVICES_BLOCK);
    io_uring_sqe_set_data64(sqe, (uint64_t)k << SLOT_BITS | slot);
}

/* @p depth[k] reads kept on device k (0: not driven), for @p warm then @p seconds counted. */
static struct result raw_run(const int depth[NDEV], double warm, double seconds)
{
    struct io_uring ring;
    int rc = io_uring_queue_init(RAW_ENTRIES, &ring, 0);
    if (rc < 0) {
        fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-rc));
        exit(1);
    }
    unsigned in_flight = 0;
    for (int k = 0; k < NDEV; k++) {
        for (int i = 0; i < depth[k]; i++, in_flight++)
            raw_queue(&ring, k, (unsigned)i);
    }
    uint64_t done[NDEV] = {0};
    struct clock_run c;
    clock_start(&c, warm, seconds);
    while (in_flight > 0) {
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR) {
            fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-rc));
            exit(1);
        }
        clock_tick(&c);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            int k = (int)(cqe->user_data >> SLOT_BITS);
            seen++;
            devices_check_read(dev[k].name, cqe->res);
            done[k] += c.counting && !c.stopping;
            if (c.stopping)
                in_flight--;
            else
                raw_queue(&ring, k, (unsigned)(cqe->user_data & ((1u << SLOT_BITS) - 1)));
        }
        io_uring_cq_advance(&ring, seen);
    }
    io_uring_queue_exit(&ring);
    return clock_result(&c, done);
}

/* ---- fio: one process, a job per device ---- */

/* Runs fio with @p argv; its terse output in @p out. Returns its exit status, 127 when it could not
 * be run. */
static int fio_spawn(char *const argv[], char *out, size_t cap)
{
    int p[2];
    fflush(stdout); /* the child must not print what this process buffered */
    if (pipe(p) < 0)
        return 127;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execvp("fio", argv);
        _exit(127);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while ((r = read(p[0], out + n, cap - 1 - n)) > 0 || (r < 0 && errno == EINTR))
        n += r > 0 ? (size_t)r : 0;
    out[n] = 0;
    close(p[0]);
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return pid < 0 ? 127 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Field @p field (from 1) of job @p name in fio's terse (v3) output (field 3 the job, 8 its read
 * IOPS, 88 and 89 its user and system CPU in %). */
static double fio_field(const char *out, const char *name, int field)
{
    for (const char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *f = line;
        for (int i = 1; i < 3 && f; i++)
            f = strchr(f, ';') ? strchr(f, ';') + 1 : NULL;
        size_t len = strlen(name);
        if (!f || strncmp(f, name, len) != 0 || f[len] != ';')
            continue;
        for (int i = 3; i < field && f; i++)
            f = strchr(f, ';') ? strchr(f, ';') + 1 : NULL;
        return f ? atof(f) : 0;
    }
    return 0;
}

/* The files are this process's unlinked fds, which fio inherits: /dev/fd/N opens the same file. */
static struct result fio_run(const int depth[NDEV], int cpu)
{
    static char opt[32][64];
    char *argv[40];
    int a = 0, o = 0;
#define ARG(...) (snprintf(opt[o], sizeof(opt[o]), __VA_ARGS__), argv[a++] = opt[o++])
    argv[a++] = "fio";
    ARG("--output-format=terse");
    ARG("--terse-version=3");
    ARG("--thread");
    ARG("--ioengine=io_uring");
    ARG("--rw=randread");
    ARG("--bs=%d", DEVICES_BLOCK);
    ARG("--direct=1");
    ARG("--readonly");
    ARG("--invalidate=0");
    ARG("--norandommap");
    ARG("--randrepeat=0");
    ARG("--time_based");
    ARG("--ramp_time=%dms", (int)(opt_warm * 1000));
    ARG("--runtime=%dms", (int)(opt_run * 1000));
    if (cpu >= 0)
        ARG("--cpus_allowed=%d", cpu);
    for (int k = 0; k < NDEV; k++) {
        if (depth[k] == 0)
            continue;
        ARG("--name=%s", dev[k].name);
        ARG("--filename=/dev/fd/%d", dev[k].fd);
        ARG("--size=%dm", opt_file_mb);
        ARG("--iodepth=%d", depth[k]);
        int pin = k == FAST ? opt_pin_fast : opt_pin_slow;
        if (cpu < 0 && pin >= 0)
            ARG("--cpus_allowed=%d", pin);
    }
#undef ARG
    argv[a] = NULL;
    static char out[FIO_OUT];
    int st = fio_spawn(argv, out, sizeof(out));
    if (st != 0) {
        fprintf(stderr, "fio exited with %d:\n%s\n", st, out);
        exit(1);
    }
    struct result r = {.cpu = -1};
    for (int k = 0; k < NDEV; k++) {
        r.iops[k] = depth[k] ? fio_field(out, dev[k].name, 8) : 0;
        r.th[k].cpu = depth[k] ? (fio_field(out, dev[k].name, 88) + fio_field(out, dev[k].name, 89)) / 100 : 0;
        r.th[k].known = false;
    }
    return r;
}

/* ---- auraio: one thread, callbacks submitting their device's next read ---- */

struct lib_dev {
    int want;    /* reads to keep in flight */
    bool follow; /* submit only what the device admits (auraio_device_capacity) */
    int inflight, nspare;
    unsigned spare[OUTSTANDING];
    uint64_t done;
};
static struct lib_dev ldev[NDEV]; /* a device is driven by one thread at a time */
static _Thread_local auraio_engine_t *engine;
static _Thread_local struct clock_run lib_clock;

static void lib_done(auraio_request_t *q, ssize_t res, void *ud);

static bool lib_may(int k)
{
    struct lib_dev *d = &ldev[k];
    if (d->nspare == 0 || d->inflight >= d->want || lib_clock.stopping)
        return false;
    return !d->follow || auraio_device_capacity(engine, dev[k].fd) > 0;
}

static void lib_submit(int k)
{
    struct lib_dev *d = &ldev[k];
    unsigned slot = d->spare[--d->nspare];
    devices_read(engine, dev[k].name, dev[k].fd, &dev[k].rng, dev[k].blocks, dev[k].bufs[slot], lib_done,
                 (void *)(uintptr_t)((unsigned)k << SLOT_BITS | slot));
    d->inflight++;
}

static void lib_done(auraio_request_t *q, ssize_t res, void *ud)
{
    (void)q;
    int k = (int)((uintptr_t)ud >> SLOT_BITS);
    struct lib_dev *d = &ldev[k];
    devices_check_read(dev[k].name, res);
    d->inflight--;
    d->done += lib_clock.counting && !lib_clock.stopping;
    d->spare[d->nspare++] = (unsigned)((uintptr_t)ud & ((1u << SLOT_BITS) - 1));
    if (lib_may(k))
        lib_submit(k);
}

/* @p depth[k]: fixed depths (adaptation off), or under the controller when @p ctl (then each
 * driven device keeps OUTSTANDING reads, the disk's application following the capacity). */
static struct result lib_run(const int depth[NDEV], bool ctl)
{
    engine = devices_engine(1, AURAIO_SELECT_ADAPTIVE, 2 * OUTSTANDING + 8, ctl ? 0 : depth[FAST] + depth[SLOW]);
    for (int k = 0; k < NDEV; k++) {
        if (depth[k] == 0)
            continue;
        ldev[k] = (struct lib_dev){.want = ctl ? OUTSTANDING : depth[k], .follow = ctl && k == SLOW};
        for (unsigned i = 0; i < OUTSTANDING; i++)
            ldev[k].spare[ldev[k].nspare++] = i;
    }
    int depths[NDEV][MAX_SAMPLES], nd[NDEV] = {0};
    uint64_t next_sample = 0;
    clock_start(&lib_clock, opt_warm, opt_run);
    while (!lib_clock.stopping) {
        clock_tick(&lib_clock);
        for (int k = 0; k < NDEV; k++) {
            while (depth[k] && lib_may(k))
                lib_submit(k);
        }
        if (ctl && lib_clock.counting && devices_now_ns() >= next_sample) {
            auraio_device_stats_t s[4];
            int n = auraio_get_device_stats(engine, s, 4);
            for (int k = 0; k < NDEV; k++) {
                int i = devices_stats_index(s, n, 4, dev[k].id);
                if (depth[k] && i >= 0 && nd[k] < MAX_SAMPLES)
                    depths[k][nd[k]++] = s[i].depth;
            }
            next_sample = devices_now_ns() + SAMPLE_NS;
        }
        int rc = auraio_wait(engine, 1);
        if (rc < 0 && rc != -ETIME && rc != -EINTR) {
            fprintf(stderr, "auraio_wait: %s\n", strerror(-rc));
            exit(1);
        }
    }
    while (auraio_pending_count(engine) > 0)
        (void)auraio_wait(engine, 10);
    auraio_destroy(engine);
    uint64_t done[NDEV] = {depth[FAST] ? ldev[FAST].done : 0, depth[SLOW] ? ldev[SLOW].done : 0};
    struct result r = clock_result(&lib_clock, done);
    for (int k = 0; k < NDEV; k++)
        r.depth[k] = ctl ? devices_median_int(depths[k], nd[k]) : depth[k];
    return r;
}

/* The two-thread peers: zram on this thread, the disk on a second one, each with its own ring or
 * engine (the raw loop, auraio at fixed depths, auraio under the controller). */
struct thread_run {
    enum peer p;
    int depth[NDEV];
    struct result r;
};

static struct result one_thread_run(enum peer p, const int depth[NDEV])
{
    return p == RAW_TWO ? raw_run(depth, opt_warm, opt_run) : lib_run(depth, p == LIB_TWO);
}

static void *slow_thread(void *arg)
{
    struct thread_run *t = arg;
    pin_self(opt_pin_slow);
    t->r = one_thread_run(t->p, t->depth);
    return NULL;
}

static struct result run_two_threads(enum peer p)
{
    struct thread_run t = {.p = p, .depth = {0, opt_slow_depth}};
    pthread_t th;
    if (pthread_create(&th, NULL, slow_thread, &t) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(1);
    }
    const int depth[NDEV] = {opt_fast_depth, 0};
    pin_self(opt_pin_fast);
    struct result r = one_thread_run(p, depth);
    unpin_self(opt_pin_fast);
    pthread_join(th, NULL);
    r.iops[SLOW] = t.r.iops[SLOW];
    r.depth[SLOW] = t.r.depth[SLOW];
    r.th[SLOW] = t.r.th[FAST];
    return r;
}

/* ---- the rounds ---- */

/* Whether peer @p runs: named in --peers (all when not given), and fio present for fio's. */
static bool peer_on(enum peer p)
{
    if ((p == FIO_ONE || p == FIO_TWO) && !have_fio)
        return false;
    if (!opt_peers)
        return true;
    size_t len = strlen(peer_name[p]);
    for (const char *s = opt_peers; s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL) {
        if (strncmp(s, peer_name[p], len) == 0 && (s[len] == ',' || s[len] == 0))
            return true;
    }
    return false;
}

/* One line on the thread that drove device @p name (@p iops its reads a second). */
static void print_thread(const char *name, const struct thread_stat *t, double iops)
{
    printf("      %s's thread: CPU %.2f s/s (%.1f us per read)", name, t->cpu, iops > 0 ? 1e6 * t->cpu / iops : 0);
    if (t->known) {
        printf(", waiting runnable %.1f ms/s, %.0f involuntary switches/s, %ld migrations, began on CPU %d, on CPU",
               1e3 * t->delay, t->invol, t->migrations, t->first_cpu);
        for (int i = 0; i < MAX_CPUS; i++) {
            if (t->on[i] > 0)
                printf(" %d: %.0f%%", i, 100 * t->on[i]);
        }
    }
    printf("\n");
}

static struct result run_peer(enum peer p, bool both)
{
    const int depth[NDEV] = {opt_fast_depth, both ? opt_slow_depth : 0};
    switch (p) {
    case RAW:
        return raw_run(depth, opt_warm, opt_run);
    case FIO_ONE:
        return fio_run(depth, opt_fio_cpu);
    case FIO_TWO:
        return fio_run(depth, -1);
    case LIB_FIXED:
        return lib_run(depth, false);
    case LIB_TWO:
    case RAW_TWO:
    case LIB_TWO_FIXED:
        if (both)
            return run_two_threads(p);
        pin_self(opt_pin_fast); /* alone: zram's thread where it is beside the disk */
        struct result r = one_thread_run(p, depth);
        unpin_self(opt_pin_fast);
        return r;
    default:
        return lib_run(depth, true);
    }
}

/* zram's fixed-depth frontier through the raw loop; its knee. */
static int fast_knee(void)
{
    double iops[NFRONT], top[NFRONT];
    printf("zram alone, raw loop, %.1f s a depth:", opt_point);
    for (int g = 0; g < NFRONT; g++) {
        const int depth[NDEV] = {frontier_grid[g], 0};
        iops[g] = top[g] = raw_run(depth, 0.2, opt_point).iops[FAST];
        printf(" %d: %.0f%s", frontier_grid[g], iops[g], g + 1 < NFRONT ? "," : "\n");
    }
    qsort(top, NFRONT, sizeof(top[0]), devices_cmp_dbl);
    int g = 0;
    while (iops[g] < KNEE_IOPS * top[NFRONT - 2]) /* one lucky point does not move the knee */
        g++;
    return frontier_grid[g];
}

int main(int argc, char **argv)
{
    const char *fast_dir = NULL, *slow_dir = NULL;
    const struct devices_opt opts[] = {
        {"--fast-dir", DEVICES_OPT_STR, &fast_dir},
        {"--slow-dir", DEVICES_OPT_STR, &slow_dir},
        {"--cap", DEVICES_OPT_U64, &opt_cap},
        {"--rounds", DEVICES_OPT_INT, &opt_rounds},
        {"--run", DEVICES_OPT_DBL, &opt_run},
        {"--warm", DEVICES_OPT_DBL, &opt_warm},
        {"--point", DEVICES_OPT_DBL, &opt_point},
        {"--fast-depth", DEVICES_OPT_INT, &opt_fast_depth},
        {"--slow-depth", DEVICES_OPT_INT, &opt_slow_depth},
        {"--file-mb", DEVICES_OPT_INT, &opt_file_mb},
        {"--fio-cpu", DEVICES_OPT_INT, &opt_fio_cpu},
        {"--peers", DEVICES_OPT_STR, &opt_peers},
        {"--ref", DEVICES_OPT_STR, &opt_ref},
        {"--pin-fast", DEVICES_OPT_INT, &opt_pin_fast},
        {"--pin-slow", DEVICES_OPT_INT, &opt_pin_slow},
    };
    devices_parse_args(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])));
    bool ok = opt_rounds >= 1 && opt_rounds <= MAX_ROUNDS && opt_slow_depth >= 1 && opt_slow_depth <= OUTSTANDING &&
              opt_fast_depth >= 0 && opt_fast_depth <= OUTSTANDING && opt_file_mb >= 1 && opt_run > 0 && opt_warm > 0;
    int rc =
        devices_begin(ok, fast_dir, slow_dir, argv[0],
                      "[--rounds N] [--run S] [--warm S] [--point S] [--fast-depth N (0: zram's knee)] "
                      "[--slow-depth N] [--file-mb N] [--fio-cpu N] [--peers NAME,...] [--ref NAME] [--pin-fast CPU] "
                      "[--pin-slow CPU]");
    if (rc)
        return rc;
    if (opt_fio_cpu < 0)
        opt_fio_cpu = (int)sysconf(_SC_NPROCESSORS_ONLN) - 1;
    for (int k = 0; k < NDEV; k++) {
        dev[k].fd = devices_open_file(k == FAST ? fast_dir : slow_dir, "peer-devices", opt_file_mb, &dev[k].id);
        dev[k].blocks = (uint64_t)opt_file_mb * (1 << 20) / DEVICES_BLOCK;
        for (int i = 0; i < OUTSTANDING; i++) {
            if (posix_memalign(&dev[k].bufs[i], DEVICES_BLOCK, DEVICES_BLOCK) != 0)
                return 1;
        }
    }
    char ver[256] = "";
    char *fio_version[] = {"fio", "--version", NULL};
    have_fio = fio_spawn(fio_version, ver, sizeof(ver)) == 0;
    printf("build: %s (optimized: %s); fio: %s", AURAIO_BENCH_BUILDTYPE, AURAIO_BENCH_OPTIMIZED,
           have_fio ? ver : "missing, its peers skipped\n");
    enum peer ref = NPEERS;
    for (int p = 0; p < NPEERS; p++) {
        if (strcmp(opt_ref, peer_name[p]) == 0)
            ref = (enum peer)p;
    }
    if (ref == NPEERS || !peer_on(ref)) {
        fprintf(stderr, "--ref %s: not a peer that runs\n", opt_ref);
        return 2;
    }

    /* Before the cap: what the disk gives now (the host's own limits move it over minutes). */
    const int uncapped[NDEV] = {0, UNCAPPED_DEPTH};
    printf("disk uncapped, raw loop at depth %d: %.0f IOPS\n", UNCAPPED_DEPTH, raw_run(uncapped, 0.2, 1.0).iops[SLOW]);
    if (devices_throttle_start(slow_dir, opt_cap))
        return 1;
    printf("disk capped at %llu read IOPS (%s)\n", (unsigned long long)opt_cap, devices_throttle_path());
    /* What a disk read costs the thread that submits it, by depth; where its interrupts go. */
    static struct irq_snap irq0, irq1;
    double reads = 0;
    irq_snap(&irq0);
    for (int d = 1; d <= SLOW_DEPTHS; d *= 2) {
        const int capped[NDEV] = {0, d};
        struct result cr = raw_run(capped, 0.5, 1.0);
        printf("disk capped, alone, raw loop at depth %d: %.0f IOPS, %.1f us of the thread's CPU per read\n", d,
               cr.iops[SLOW], 1e6 * cr.cpu / cr.iops[SLOW]);
        reads += 1.5 * cr.iops[SLOW];
    }
    irq_snap(&irq1);
    irq_print(&irq0, &irq1, reads);
    if (opt_fast_depth == 0)
        opt_fast_depth = fast_knee();
    printf("fixed depths: zram %d, disk %d; fio-1cpu on CPU %d; %d rounds of %.1f s runs after %.1f s warm-up\n",
           opt_fast_depth, opt_slow_depth, opt_fio_cpu, opt_rounds, opt_run, opt_warm);

    static struct result res[MAX_ROUNDS][NPEERS][2]; /* [round][peer][beside the disk] */
    static double ratio[NPEERS][MAX_ROUNDS], rel[NPEERS][MAX_ROUNDS];
    int failed = 0;
    for (int r = 0; r < opt_rounds; r++) {
        printf("round %d:\n", r + 1);
        for (int j = 0; j < NPEERS; j++) {
            enum peer p = (enum peer)((j + r) % NPEERS);
            if (!peer_on(p))
                continue;
            for (int i = 0; i < 2; i++) {
                bool both = (i + r) % 2 == 1;
                struct result *x = &res[r][p][both];
                *x = run_peer(p, both);
                printf("  %-12s %-6s zram %7.0f IOPS", peer_name[p], both ? "beside" : "alone", x->iops[FAST]);
                if (both)
                    printf(", disk %5.0f IOPS", x->iops[SLOW]);
                if (x->cpu >= 0)
                    printf(", CPU %.2f s/s", x->cpu);
                bool held = p == LIB_CTL || p == LIB_TWO; /* under the controller */
                if (held)
                    printf(", held depth zram %d", x->depth[FAST]);
                if (held && both)
                    printf(", disk %d", x->depth[SLOW]);
                printf("\n");
                print_thread("zram", &x->th[FAST], x->iops[FAST]);
                if (both && two_threads(p))
                    print_thread("disk", &x->th[SLOW], x->iops[SLOW]);
                if (x->iops[FAST] <= 0 || (both && x->iops[SLOW] <= 0)) {
                    printf("FAIL: %s %s: a driven device completed no read\n", peer_name[p], both ? "beside" : "alone");
                    failed = 1;
                }
            }
            ratio[p][r] = res[r][p][1].iops[FAST] / res[r][p][0].iops[FAST];
        }
        printf("  ratios zram beside / alone:");
        for (int p = 0; p < NPEERS; p++) {
            if (peer_on((enum peer)p))
                printf(" %s %.3f", peer_name[p], ratio[p][r]);
        }
        printf("\n");
        for (int p = 0; p < NPEERS; p++)
            rel[p][r] = ratio[p][r] > 0 ? ratio[ref][r] / ratio[p][r] : 0;
    }

    printf("\nmedians of %d rounds (zram at depth %d, the disk at %d for the fixed-depth peers):\n", opt_rounds,
           opt_fast_depth, opt_slow_depth);
    printf("| peer | zram alone IOPS | zram beside the disk | disk IOPS beside | zram beside / alone | "
           "%s's ratio / this one's (paired) | zram's thread beside: CPU s/s, waiting runnable ms/s | "
           "rounds zram's thread ran beside the disk on the CPU of its interrupts (CPU %d) | "
           "the disk's thread: CPU us per read |\n|---|---|---|---|---|---|---|---|---|\n",
           peer_name[ref], irq_cpu);
    for (int p = 0; p < NPEERS; p++) {
        if (!peer_on((enum peer)p))
            continue;
        double alone[MAX_ROUNDS], beside[MAX_ROUNDS], disk[MAX_ROUNDS], cpu[MAX_ROUNDS], delay[MAX_ROUNDS],
            per_read[MAX_ROUNDS];
        int on_irq = 0;
        for (int r = 0; r < opt_rounds; r++) {
            const struct result *b = &res[r][p][1];
            alone[r] = res[r][p][0].iops[FAST];
            beside[r] = b->iops[FAST];
            disk[r] = b->iops[SLOW];
            cpu[r] = b->th[FAST].cpu;
            delay[r] = 1e3 * b->th[FAST].delay;
            on_irq += irq_cpu >= 0 && b->th[FAST].on[irq_cpu] > 0.5;
            per_read[r] = b->iops[SLOW] > 0 ? 1e6 * b->th[SLOW].cpu / b->iops[SLOW] : 0;
        }
        printf("| %s (%s) | %.0f | %.0f | %.0f | %.3f | %.3f | ", peer_name[p], peer_what[p],
               devices_median(alone, opt_rounds), devices_median(beside, opt_rounds), devices_median(disk, opt_rounds),
               devices_median(ratio[p], opt_rounds), devices_median(rel[p], opt_rounds));
        if (res[0][p][1].th[FAST].known)
            printf("%.2f, %.1f | %d of %d |", devices_median(cpu, opt_rounds), devices_median(delay, opt_rounds),
                   on_irq, opt_rounds);
        else
            printf("%.2f | - |", devices_median(cpu, opt_rounds));
        if (two_threads((enum peer)p))
            printf(" %.1f |\n", devices_median(per_read, opt_rounds));
        else
            printf(" - |\n");
    }
    if (peer_on(LIB_CTL)) {
        int held[NDEV][MAX_ROUNDS];
        for (int r = 0; r < opt_rounds; r++) {
            for (int k = 0; k < NDEV; k++)
                held[k][r] = res[r][LIB_CTL][1].depth[k];
        }
        printf("auraio-ctl beside the disk held zram at %d and the disk at %d (medians of rounds)\n",
               devices_median_int(held[FAST], opt_rounds), devices_median_int(held[SLOW], opt_rounds));
    }
    devices_throttle_stop();
    return failed;
}
