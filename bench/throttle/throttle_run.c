/* SPDX-License-Identifier: Apache-2.0 */
/*
 * throttle-run: run a command on a capped device. Creates a block-throttle group for the disk behind
 * --file (throttle.h), applies the caps, starts the command inside the group, changes the read cap
 * on a schedule, forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT to the command, and removes the group on
 * every exit path (normal exit, the command killed, our own error exits through atexit). A SIGKILL
 * of this process leaves the group; the next create (or `throttle-run --sweep`) removes it.
 *
 * Exit status: the command's own; 128+N when it was killed by signal N; 2 for bad options; 125 when
 * the throttle group could not be set up or removed; 127 when the command could not be executed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "throttle.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define EXIT_SETUP 125
#define EXIT_EXEC 127
#define MAX_EVENTS 256

enum cap_kind { CAP_READ_IOPS, CAP_READ_BPS };

struct event {
    double at; /* seconds from the start of the command */
    enum cap_kind kind;
    uint64_t value;
};

static throttle_t *group;
static bool verbose;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: throttle-run --file PATH [--read-iops N] [--read-bps N] [--write-iops N] [--write-bps N]\n"
            "                    [--schedule T:IOPS,...] [--bps-schedule T:BPS,...] [--verbose] -- COMMAND [ARGS...]\n"
            "       throttle-run --check --file PATH   exit 0 if a throttle group works here, 77 (and why) if not\n"
            "       throttle-run --sweep               remove throttle groups left by dead processes\n"
            "\n"
            "Runs COMMAND with its I/O to the disk behind PATH capped by the kernel's block throttle.\n"
            "N: an integer, 0 = uncapped; suffixes k, M, G (x1000) and Ki, Mi, Gi (x1024).\n"
            "--schedule \"0:0,5:20000,10:5000,15:0\": read-IOPS cap from T seconds after the start (T may\n"
            "be fractional and must not decrease); --bps-schedule does the same for read bytes/s.\n"
            "Exit: COMMAND's status; 128+N if it died of signal N; 2 bad options; 125 throttle setup or\n"
            "cleanup failed; 127 COMMAND not executable.\n");
}

__attribute__((format(printf, 1, 2), noreturn)) static void bad_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("throttle-run: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see --help)\n", stderr);
    va_end(ap);
    exit(EXIT_USAGE);
}

/* "20000", "20k", "100Mi" -> value; false on anything else (including overflow). */
static bool parse_count(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return false;
    uint64_t mul = 1;
    const char *suffixes = "kMG";
    const char *p = *end ? strchr(suffixes, *end) : NULL;
    if (*end && !p)
        return false;
    if (p) {
        bool bin = end[1] == 'i';
        for (long i = 0; i <= p - suffixes; i++)
            mul *= bin ? 1024u : 1000u;
        end += bin ? 2 : 1;
    }
    if (*end || (v && mul > UINT64_MAX / v))
        return false;
    *out = (uint64_t)v * mul;
    return true;
}

static uint64_t count_opt(const char *opt, const char *val)
{
    uint64_t v;
    if (!val)
        bad_usage("%s: needs a value", opt);
    if (!parse_count(val, &v))
        bad_usage("%s: \"%s\" is not a count (an integer, optionally with k/M/G or Ki/Mi/Gi)", opt, val ? val : "");
    return v;
}

/* Append "T:V,T:V" to @p ev. */
static int parse_schedule(const char *opt, const char *s, enum cap_kind kind, struct event *ev, int n)
{
    if (!s)
        bad_usage("%s: needs a value", opt);
    if (!*s)
        bad_usage("%s: empty schedule (want \"T:N,T:N,...\", e.g. \"0:0,5:20000\")", opt);
    char *copy = strdup(s);
    if (!copy)
        bad_usage("out of memory");
    double last = -1;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        char *end;
        if (!colon)
            bad_usage("%s: \"%s\" is not T:N (seconds:value)", opt, item);
        *colon = 0;
        errno = 0;
        double at = strtod(item, &end);
        if (end == item || *end || errno || !(at >= 0) || at > 1e6)
            bad_usage("%s: \"%s\" is not a time in seconds >= 0", opt, item);
        if (at < last)
            bad_usage("%s: times must not decrease (%g after %g)", opt, at, last);
        uint64_t v;
        if (!parse_count(colon + 1, &v))
            bad_usage("%s: \"%s\" is not a count", opt, colon + 1);
        if (n >= MAX_EVENTS)
            bad_usage("%s: more than %d schedule entries", opt, MAX_EVENTS);
        ev[n++] = (struct event){at, kind, v};
        last = at;
    }
    free(copy);
    return n;
}

static int by_time(const void *a, const void *b)
{
    const struct event *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return (int)x->kind - (int)y->kind;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cleanup_at_exit(void)
{
    if (group && throttle_destroy(group) < 0)
        fprintf(stderr, "throttle-run: %s\n", throttle_last_error());
    group = NULL;
}

static void apply(const struct event *e, double t)
{
    int err =
        e->kind == CAP_READ_IOPS ? throttle_set_read_iops(group, e->value) : throttle_set_read_bps(group, e->value);
    if (err) {
        fprintf(stderr, "throttle-run: changing the cap at t=%.3f s: %s\n", t, throttle_last_error());
        return; /* keep running under the previous cap; the command's result is still worth having */
    }
    if (verbose)
        fprintf(stderr, "throttle-run: t=%.3f s %s=%" PRIu64 "%s\n", t,
                e->kind == CAP_READ_IOPS ? "read_iops" : "read_bps", e->value, e->value ? "" : " (uncapped)");
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    throttle_caps_t caps = {0, 0, 0, 0};
    static struct event ev[2 * MAX_EVENTS];
    int nev = 0, cmd = -1;
    bool check = false, sweep = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--") == 0) {
            cmd = i + 1;
            break;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            verbose = true, takes = false;
        } else if (strcmp(a, "--check") == 0) {
            check = true, takes = false;
        } else if (strcmp(a, "--sweep") == 0) {
            sweep = true, takes = false;
        } else if (strcmp(a, "--file") == 0) {
            if (!v || !*v)
                bad_usage("--file: needs a path");
            file = v;
        } else if (strcmp(a, "--read-iops") == 0) {
            caps.read_iops = count_opt(a, v);
        } else if (strcmp(a, "--read-bps") == 0) {
            caps.read_bps = count_opt(a, v);
        } else if (strcmp(a, "--write-iops") == 0) {
            caps.write_iops = count_opt(a, v);
        } else if (strcmp(a, "--write-bps") == 0) {
            caps.write_bps = count_opt(a, v);
        } else if (strcmp(a, "--schedule") == 0) {
            nev = parse_schedule(a, v, CAP_READ_IOPS, ev, nev);
        } else if (strcmp(a, "--bps-schedule") == 0) {
            nev = parse_schedule(a, v, CAP_READ_BPS, ev, nev);
        } else {
            bad_usage("unknown option \"%s\"", a);
        }
        if (takes && !v)
            bad_usage("%s: needs a value", a);
        i += takes;
    }

    if (sweep) {
        int n = throttle_sweep_stale();
        if (n < 0) {
            fprintf(stderr, "throttle-run: --sweep: %s\n", throttle_last_error());
            return EXIT_SETUP;
        }
        printf("removed %d stale throttle group(s)\n", n);
        return 0;
    }
    if (!file)
        bad_usage("--file: missing (the file whose disk gets the caps)");
    if (check) {
        char why[700];
        int ok = throttle_available(file, why, sizeof(why));
        printf("%s: %s\n", ok ? "available" : "unavailable", why);
        return ok ? 0 : 77;
    }
    if (cmd < 0 || cmd >= argc)
        bad_usage("no command: put it after \"--\"");
    qsort(ev, (size_t)nev, sizeof(ev[0]), by_time);

    /* Signals are taken with sigtimedwait below, never by a handler: block them before the child
     * exists so none is lost, and unblock them in the child before exec. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigprocmask(SIG_BLOCK, &set, &old);

    if (throttle_create(&group, file) < 0) {
        fprintf(stderr, "throttle-run: %s\n", throttle_last_error());
        return EXIT_SETUP;
    }
    atexit(cleanup_at_exit);
    if (throttle_set(group, &caps) < 0) {
        fprintf(stderr, "throttle-run: %s\n", throttle_last_error());
        exit(EXIT_SETUP);
    }
    int next = 0;
    for (; next < nev && ev[next].at <= 0; next++)
        apply(&ev[next], 0);
    if (verbose) {
        throttle_caps_t c = throttle_get_caps(group);
        fprintf(stderr,
                "throttle-run: group %s: read_iops=%" PRIu64 " read_bps=%" PRIu64 " write_iops=%" PRIu64
                " write_bps=%" PRIu64 " (0 = uncapped)\n",
                throttle_group_path(group), c.read_iops, c.read_bps, c.write_iops, c.write_bps);
    }

    fflush(NULL);
    double start = now_s();
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "throttle-run: fork: %s\n", strerror(errno));
        exit(EXIT_SETUP);
    }
    if (child == 0) {
        /* Already in the group (forked from inside it). _exit: the atexit cleanup is the parent's. */
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[cmd], &argv[cmd]);
        fprintf(stderr, "throttle-run: cannot run %s: %s\n", argv[cmd], strerror(errno));
        _exit(EXIT_EXEC);
    }

    int status = 0;
    for (;;) {
        siginfo_t si;
        int sig;
        if (next < nev) {
            double wait = start + ev[next].at - now_s();
            if (wait <= 0) {
                apply(&ev[next], now_s() - start);
                next++;
                continue;
            }
            struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
            sig = sigtimedwait(&set, &si, &ts);
        } else {
            sig = sigwaitinfo(&set, &si);
        }
        if (sig < 0)
            continue; /* EAGAIN: the next event is due; EINTR: retry */
        if (sig != SIGCHLD) {
            kill(child, sig);
            continue;
        }
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child)
            break;
    }

    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : EXIT_SETUP;
    throttle_t *g = group;
    group = NULL;
    if (throttle_destroy(g) < 0) {
        fprintf(stderr, "throttle-run: %s\n", throttle_last_error());
        return EXIT_SETUP;
    }
    return rc;
}
