/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine side of the real-Prometheus test: an engine with the /metrics server on a free port,
 * driven by commands on stdin.
 *   "go"    start buffered 4 KiB random reads of a cached file, as many outstanding as
 *           auraio_capacity() allows
 *   "stop"  stop submitting, drain, and print "stopped COUNT P99_NS": the lifetime latency sample
 *           count and the P99 of the engine's own 512-bucket lifetime histogram (nearest rank,
 *           bucket midpoint, as the engine computes percentiles), from auraio_get_metrics
 *   EOF     destroy the engine (which stops the server) and exit
 * Prints "port N" when the server listens.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 4096
#define FILE_BLOCKS 4096
#define SLOTS 256

static char bufs[SLOTS][BLOCK];
static int busy[SLOTS];
static long failures;

static void done(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    *(int *)ud = 0;
    if (res != BLOCK)
        failures++;
}

static uint64_t lifetime_p99(const auraio_metrics_t *m)
{
    uint64_t total = m->latency_count;
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(0.99 * (double)total);
    if ((double)rank < 0.99 * (double)total)
        rank++;
    uint64_t seen = 0;
    for (int b = 0; b + 1 < AURAIO_HISTOGRAM_BUCKETS; b++) {
        seen += m->latency_buckets[b];
        if (seen >= rank) {
            uint64_t lo = auraio_histogram_bucket_lower_ns(b), hi = auraio_histogram_bucket_lower_ns(b + 1);
            return lo + (hi - lo) / 2;
        }
    }
    return (uint64_t)1 << 35;
}

/* The next command, or NULL at EOF; @p wait_ms: how long to wait for one (0: just look). */
static const char *command(int wait_ms)
{
    static char line[64];
    static size_t len;
    struct pollfd in = {.fd = 0, .events = POLLIN};
    for (;;) {
        char *nl = memchr(line, '\n', len);
        if (nl) {
            *nl = '\0';
            static char cmd[64];
            snprintf(cmd, sizeof(cmd), "%s", line);
            len -= (size_t)(nl + 1 - line);
            memmove(line, nl + 1, len);
            return cmd;
        }
        if (poll(&in, 1, wait_ms) <= 0)
            return "";
        ssize_t n = read(0, line + len, sizeof(line) - 1 - len);
        if (n <= 0)
            return NULL;
        len += (size_t)n;
    }
}

int main(void)
{
    harness_require_io_uring();
    int fd = harness_pattern_file((size_t)FILE_BLOCKS * BLOCK, 6);
    auraio_engine_t *e = auraio_create();
    if (fd < 0 || !e)
        return 99;
    auraio_metrics_server_t *s = auraio_metrics_server_start(e, NULL, 0);
    if (!s) {
        fprintf(stderr, "metrics_load: server: %s\n", strerror(errno));
        return 99;
    }
    printf("port %d\n", auraio_metrics_server_port(s));
    fflush(stdout);
    uint64_t rng = 88172645463325252ull;
    bool running = false;
    const char *cmd;
    while ((cmd = command(running ? 0 : 1000)) != NULL && failures == 0) {
        if (!strcmp(cmd, "go")) {
            running = true;
        } else if (!strcmp(cmd, "stop")) {
            running = false;
            while (auraio_pending_count(e) > 0)
                auraio_wait(e, 1000);
            static auraio_metrics_t m;
            auraio_get_metrics(e, AURAIO_ALL_RINGS, &m);
            printf("stopped %llu %llu\n", (unsigned long long)m.latency_count, (unsigned long long)lifetime_p99(&m));
            fflush(stdout);
        }
        if (!running)
            continue;
        int room = auraio_capacity(e);
        for (int i = 0; i < SLOTS && room > 0; i++) {
            if (busy[i])
                continue;
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            if (!auraio_read(e, fd, auraio_buf(bufs[i]), BLOCK, (int64_t)(rng % FILE_BLOCKS) * BLOCK, done, &busy[i]))
                break;
            busy[i] = 1;
            room--;
        }
        int rc = auraio_wait(e, 100);
        if (rc < 0 && rc != -ETIME)
            break;
    }
    auraio_destroy(e); /* stops the server too */
    close(fd);
    return failures ? 1 : 0;
}
