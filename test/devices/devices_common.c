/* SPDX-License-Identifier: Apache-2.0 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "devices_common.h"
#include "throttle.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MEDIAN_MAX 64

void devices_parse_args(int argc, char **argv, const struct devices_opt *opts, int n)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        for (int k = 0; k < n; k++) {
            if (strcmp(argv[i], opts[k].flag) != 0)
                continue;
            const char *v = argv[i + 1];
            switch (opts[k].kind) {
            case DEVICES_OPT_STR:
                *(const char **)opts[k].val = v;
                break;
            case DEVICES_OPT_INT:
                *(int *)opts[k].val = atoi(v);
                break;
            case DEVICES_OPT_U64:
                *(uint64_t *)opts[k].val = strtoull(v, NULL, 10);
                break;
            case DEVICES_OPT_DBL:
                *(double *)opts[k].val = atof(v);
                break;
            }
            break;
        }
    }
}

int devices_begin(bool ok, const char *fast_dir, const char *slow_dir, const char *argv0, const char *more_opts)
{
    if (!ok || !fast_dir || !slow_dir) {
        fprintf(stderr, "usage: %s --fast-dir DIR --slow-dir DIR [--cap IOPS] %s\n", argv0, more_opts);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    return devices_throttle_skip(slow_dir);
}

uint64_t devices_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void devices_sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int devices_open_file(const char *dir, const char *tag, int mb, uint64_t *dev_id)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/auraio-%s-%d", dir, tag, (int)getpid());
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    static char chunk[1 << 20];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (char)(i * 131 + 7);
    for (int i = 0; i < mb; i++) {
        if (write(fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk)) {
            perror("write");
            exit(1);
        }
    }
    fsync(fd);
    close(fd);
    fd = open(path, O_RDONLY | O_DIRECT);
    if (fd < 0) {
        perror("open O_DIRECT");
        exit(1);
    }
    unlink(path); /* gone from the namespace: nothing to clean up on any exit */
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        perror("fstat");
        exit(1);
    }
    *dev_id = (uint64_t)sb.st_dev;
    return fd;
}

void devices_read(auraio_engine_t *e, const char *name, int fd, uint64_t *rng, uint64_t blocks, void *buf,
                  auraio_callback_t cb, void *ud)
{
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    int64_t off = (int64_t)((*rng >> 33) % blocks) * DEVICES_BLOCK;
    if (!auraio_read(e, fd, auraio_buf(buf), DEVICES_BLOCK, off, cb, ud)) {
        fprintf(stderr, "%s: auraio_read: %s\n", name, strerror(errno));
        exit(1);
    }
}

void devices_check_read(const char *name, ssize_t res)
{
    if (res != DEVICES_BLOCK) {
        fprintf(stderr, "%s: read returned %zd\n", name, res);
        exit(1);
    }
}

auraio_engine_t *devices_engine(int rings, int select, int queue_depth, int fixed_depth)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = rings;
    o.ring_select = (auraio_ring_select_t)select;
    o.queue_depth = queue_depth;
    if (fixed_depth) {
        o.disable_adaptive = true;
        o.initial_in_flight = fixed_depth;
    }
    auraio_engine_t *e = auraio_create_with_options(&o);
    if (!e) {
        fprintf(stderr, "auraio_create: %s\n", strerror(errno));
        exit(1);
    }
    return e;
}

/* ---- the slow device's throttle ---- */

static throttle_t *thr;

static void release_at_exit(void)
{
    if (thr)
        throttle_release(thr);
}

static void release_on_signal(int sig)
{
    release_at_exit();
    signal(sig, SIG_DFL);
    raise(sig);
}

int devices_throttle_skip(const char *dir)
{
    char why[256];
    if (throttle_available(dir, why, sizeof(why)) == 1)
        return 0;
    printf("skip: no block throttle for %s: %s\n", dir, why);
    return 77;
}

int devices_throttle_start(const char *dir, uint64_t read_iops)
{
    atexit(release_at_exit);
    signal(SIGINT, release_on_signal);
    signal(SIGTERM, release_on_signal);
    if (throttle_create(&thr, dir) < 0 || throttle_set_read_iops(thr, read_iops) < 0) {
        fprintf(stderr, "throttle: %s\n", throttle_last_error());
        return 1;
    }
    return 0;
}

const char *devices_throttle_path(void)
{
    return throttle_group_path(thr);
}

void devices_throttle_stop(void)
{
    throttle_destroy(thr);
    thr = NULL;
}

/* ---- device stats and medians ---- */

int devices_stats_index(const auraio_device_stats_t *s, int n, int cap, uint64_t id)
{
    for (int i = 0; i < n && i < cap; i++) {
        if (s[i].device_id == id)
            return i;
    }
    return -1;
}

int devices_cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

int devices_cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double devices_median(const double *v, int n)
{
    double s[MEDIAN_MAX];
    memcpy(s, v, (size_t)n * sizeof(double));
    qsort(s, (size_t)n, sizeof(double), devices_cmp_dbl);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

int devices_median_int(int *v, int n)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof(int), devices_cmp_int);
    return v[n / 2];
}
