/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auraio-demo: random 4 KiB reads on a file through auraio with the depth controller on, keeping
 * as many reads outstanding as the library says it can take (auraio_capacity), and printing each
 * second what it did and the depth the controller chose. Without a file argument it creates a
 * temporary one (256 MiB) and removes it afterwards.
 *
 * With --metrics-port it serves Prometheus metrics at http://127.0.0.1:PORT/metrics while it runs
 * (0 picks a free port); the library's log messages (warnings, or everything with --verbose) go
 * to stderr through the log hook.
 *
 *   auraio-demo [--seconds N] [--size MIB] [--buffered] [--p99-ms T] [--metrics-port P]
 *               [--metrics-bind ADDR] [--verbose] [FILE]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <auraio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define MAX_OUTSTANDING 1024

struct slot {
    void *buf;
    int busy;
};

static struct slot slots[MAX_OUTSTANDING];
static uint64_t completed, failed;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_read(auraio_request_t *req, ssize_t result, void *user_data)
{
    (void)req;
    struct slot *s = user_data;
    s->busy = 0;
    if (result == BLOCK)
        completed++;
    else
        failed++;
}

static int make_temp_file(size_t bytes, char *path, size_t path_len)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, path_len, "%s/auraio-demo-XXXXXX", dir && *dir ? dir : "/var/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    char *chunk = malloc(1 << 20);
    if (!chunk) {
        close(fd);
        return -1;
    }
    for (size_t i = 0; i < (1u << 20); i++)
        chunk[i] = (char)(i * 31 + 7);
    for (size_t off = 0; off < bytes; off += 1u << 20) {
        if (write(fd, chunk, 1u << 20) != 1 << 20) {
            free(chunk);
            close(fd);
            return -1;
        }
    }
    free(chunk);
    fsync(fd);
    close(fd);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: auraio-demo [--seconds N] [--size MIB] [--buffered] [--p99-ms T] [--metrics-port P]\n"
                    "                   [--metrics-bind ADDR] [--verbose] [FILE]\n");
}

static void log_to_stderr(int level, const char *message, void *user_data)
{
    (void)user_data;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    fprintf(stderr, "auraio %s: %s\n", level >= 0 && level <= 3 ? names[level] : "?", message);
}

int main(int argc, char **argv)
{
    int seconds = 5;
    long size_mib = 256;
    int buffered = 0;
    double p99_ms = 0;
    const char *file = NULL;
    int metrics_port = -1;
    const char *metrics_bind = NULL;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            size_mib = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--buffered")) {
            buffered = 1;
        } else if (!strcmp(argv[i], "--p99-ms") && i + 1 < argc) {
            p99_ms = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--metrics-port") && i + 1 < argc) {
            metrics_port = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--metrics-bind") && i + 1 < argc) {
            metrics_bind = argv[++i];
        } else if (!strcmp(argv[i], "--verbose")) {
            verbose = 1;
        } else if (argv[i][0] == '-') {
            usage();
            return 2;
        } else {
            file = argv[i];
        }
    }
    if (seconds <= 0 || size_mib <= 0 || p99_ms < 0) {
        fprintf(stderr, "auraio-demo: --seconds and --size must be positive, --p99-ms not negative\n");
        return 2;
    }

    char temp[4096] = "";
    if (!file) {
        printf("creating a %ld MiB temporary file...\n", size_mib);
        if (make_temp_file((size_t)size_mib << 20, temp, sizeof(temp)) < 0) {
            perror("auraio-demo: temp file");
            return 1;
        }
        file = temp;
    }
    int fd = open(file, O_RDONLY | (buffered ? 0 : O_DIRECT));
    if (fd < 0 && !buffered && errno == EINVAL) {
        printf("O_DIRECT is not supported on %s: using buffered reads\n", file);
        fd = open(file, O_RDONLY);
    }
    if (fd < 0) {
        fprintf(stderr, "auraio-demo: open %s: %s\n", file, strerror(errno));
        return 1;
    }
    struct stat st;
    fstat(fd, &st);
    uint64_t blocks = (uint64_t)st.st_size / BLOCK;
    if (blocks == 0) {
        fprintf(stderr, "auraio-demo: %s is smaller than 4 KiB\n", file);
        return 1;
    }

    auraio_set_log_handler(log_to_stderr, NULL, verbose ? AURAIO_LOG_DEBUG : AURAIO_LOG_WARN);
    auraio_options_t opt;
    auraio_options_init(&opt);
    opt.max_p99_latency_ms = p99_ms;
    auraio_engine_t *e = auraio_create_with_options(&opt);
    if (!e) {
        fprintf(stderr, "auraio-demo: auraio_create: %s\n", strerror(errno));
        return 1;
    }
    if (metrics_port >= 0) {
        /* Stopped by auraio_destroy at the end; a failure to serve is reported, not fatal. */
        auraio_metrics_server_t *server = auraio_metrics_server_start(e, metrics_bind, metrics_port);
        if (server)
            printf("metrics: http://%s:%d/metrics\n", metrics_bind ? metrics_bind : "127.0.0.1",
                   auraio_metrics_server_port(server));
        else
            fprintf(stderr, "auraio-demo: metrics server: %s\n", strerror(errno));
    }
    for (int i = 0; i < MAX_OUTSTANDING; i++) {
        if (posix_memalign(&slots[i].buf, BLOCK, BLOCK)) {
            fprintf(stderr, "auraio-demo: out of memory\n");
            return 1;
        }
    }

    printf("auraio %s: random 4 KiB %s reads on %s for %d s, %d rings, target P99 %s\n", auraio_version(),
           buffered ? "buffered" : "O_DIRECT", file, seconds, auraio_get_ring_count(e),
           p99_ms > 0 ? "set" : "none (find the knee)");
    printf("%5s %10s %9s %9s %6s  %s\n", "time", "IOPS", "P50 ms", "P99 ms", "depth", "phase");
    double start = now_s(), next_report = start + 1;
    uint64_t last_completed = 0;
    int last_depth = -1;
    double depth_since = start;
    int next_slot = 0;
    while (now_s() - start < seconds) {
        /* Submit only what goes to the kernel right away: the library decides the depth. */
        int room = auraio_capacity(e);
        for (int tries = 0; room > 0 && tries < MAX_OUTSTANDING; tries++) {
            struct slot *s = &slots[next_slot];
            next_slot = (next_slot + 1) % MAX_OUTSTANDING;
            if (s->busy)
                continue;
            int64_t off = (int64_t)(next_random() % blocks) * BLOCK;
            if (!auraio_read(e, fd, auraio_buf(s->buf), BLOCK, off, on_read, s))
                break;
            s->busy = 1;
            room--;
        }
        auraio_wait(e, 100);
        double t = now_s();
        if (t >= next_report) {
            auraio_stats_t stats;
            auraio_get_stats(e, &stats);
            auraio_ring_stats_t rs;
            double p50 = 0;
            const char *phase = "-";
            for (int r = 0; r < auraio_get_ring_count(e); r++) {
                auraio_get_ring_stats(e, r, &rs);
                if (rs.ops_completed > 0 || r == 0) {
                    phase = auraio_phase_name(rs.phase);
                    if (rs.p50_latency_ms > p50)
                        p50 = rs.p50_latency_ms;
                }
            }
            if (stats.in_flight_limit != last_depth) {
                last_depth = stats.in_flight_limit;
                depth_since = t;
            }
            printf("%4.0fs %10.0f %9.3f %9.3f %6d  %s\n", t - start,
                   (double)(completed - last_completed) / (t - next_report + 1), p50, stats.p99_latency_ms,
                   stats.in_flight_limit, phase);
            fflush(stdout);
            last_completed = completed;
            next_report += 1;
        }
    }
    double elapsed = now_s() - start;
    auraio_stats_t stats;
    auraio_get_stats(e, &stats);
    printf("done: %llu reads (%llu failed) in %.1f s = %.0f IOPS; the controller holds depth %d "
           "(unchanged for the last %.1f s)\n",
           (unsigned long long)completed, (unsigned long long)failed, elapsed, (double)completed / elapsed,
           stats.in_flight_limit, now_s() - depth_since);
    auraio_destroy(e);
    for (int i = 0; i < MAX_OUTSTANDING; i++)
        free(slots[i].buf);
    close(fd);
    if (temp[0])
        unlink(temp);
    return failed ? 1 : 0;
}
