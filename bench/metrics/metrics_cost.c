/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What observability costs the I/O path: cached 4 KiB random reads at a fixed number in flight
 * (one thread, a callback resubmits its slot), with the embedded /metrics server running
 * throughout, in alternating segments without and with a client scraping it at 10 Hz (connect,
 * GET /metrics, read to EOF: the whole exporter path, rendering included). Segments alternate
 * ABBA so drift (page cache, CPU frequency, neighbours) hits both sides alike; the result is the
 * median IOPS of each side and their ratio, measured in the same run.
 *
 * Both controller configurations: "adaptive" (the default: the controller's windows are folded
 * into the lifetime histogram every tick) and "fixed" (adaptation off, limit pinned to --depth).
 *
 * Output: a line per segment, then `RESULT mode=... iops_plain=... iops_scraped=... ratio=...`.
 * Exit status: 0 ok, 1 error, 2 usage, 77 io_uring unavailable.
 *   metrics_cost [--seconds S] [--rounds N] [--depth D] [--temp-size SIZE] [--mode adaptive|fixed|both]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "auraio.h"
#include "bench_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BS 4096
#define SCRAPE_PERIOD_NS 100000000ull /* 10 Hz */
#define MAX_SEGMENTS 256

struct bench {
    auraio_engine_t *e;
    int fd;
    uint64_t blocks;
    uint64_t rng;
    uint64_t ops;
    bool stopping;
    int error;
};

struct slot {
    struct bench *b;
    void *buf;
};

struct scraper {
    int port;
    _Atomic bool active; /* scrape during this segment */
    _Atomic bool quit;
    _Atomic uint64_t scrapes, bytes, failures;
    _Atomic uint64_t busy_ns; /* time spent in scrapes */
};

static int submit(struct slot *s);

static void on_read(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct slot *s = ud;
    struct bench *b = s->b;
    if (res != BS) {
        b->error = res < 0 ? (int)-res : EIO;
        b->stopping = true;
        return;
    }
    b->ops++;
    if (!b->stopping) {
        int rc = submit(s);
        if (rc < 0) {
            b->error = -rc;
            b->stopping = true;
        }
    }
}

static int submit(struct slot *s)
{
    struct bench *b = s->b;
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    int64_t off = (int64_t)(b->rng % b->blocks) * BS;
    return auraio_read(b->e, b->fd, auraio_buf(s->buf), BS, off, on_read, s) ? 0 : -errno;
}

/* One GET /metrics over a fresh connection, read to EOF. @return bytes, or -1. */
static long scrape_once(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n";
    long total = -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) > 0) {
        char buf[16384];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        bool ok = n >= 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0;
        total = n > 0 ? n : 0;
        while (n > 0 && (n = recv(fd, buf, sizeof(buf), 0)) > 0)
            total += n;
        if (!ok || n < 0)
            total = -1;
    }
    close(fd);
    return total;
}

static void *scrape_main(void *arg)
{
    struct scraper *sc = arg;
    uint64_t next = bench_now_ns();
    while (!atomic_load(&sc->quit)) {
        if (atomic_load(&sc->active)) {
            uint64_t t0 = bench_now_ns();
            long n = scrape_once(sc->port);
            atomic_fetch_add(&sc->busy_ns, bench_now_ns() - t0);
            if (n > 0) {
                atomic_fetch_add(&sc->scrapes, 1);
                atomic_fetch_add(&sc->bytes, (uint64_t)n);
            } else {
                atomic_fetch_add(&sc->failures, 1);
            }
        }
        next += SCRAPE_PERIOD_NS;
        struct timespec ts = {.tv_sec = (time_t)(next / 1000000000u), .tv_nsec = (long)(next % 1000000000u)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int run_mode(const char *mode, int fd, uint64_t blocks, int depth, double seconds, int rounds)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    o.queue_depth = depth * 2 > 256 ? depth * 2 : 256;
    if (!strcmp(mode, "fixed")) {
        o.disable_adaptive = true;
        o.initial_in_flight = depth;
        o.max_in_flight = depth;
    }
    struct bench b = {.fd = fd, .blocks = blocks, .rng = 88172645463325252ull};
    b.e = auraio_create_with_options(&o);
    if (!b.e) {
        fprintf(stderr, "auraio_create: %s\n", strerror(errno));
        return errno == ENOSYS || errno == EPERM ? 77 : 1;
    }
    auraio_metrics_server_t *server = auraio_metrics_server_start(b.e, NULL, 0);
    if (!server) {
        fprintf(stderr, "metrics server: %s\n", strerror(errno));
        auraio_destroy(b.e);
        return 1;
    }
    struct scraper sc = {.port = auraio_metrics_server_port(server)};
    pthread_t t;
    if (pthread_create(&t, NULL, scrape_main, &sc) != 0) {
        auraio_destroy(b.e);
        return 1;
    }
    struct slot *slots = calloc((size_t)depth, sizeof(*slots));
    for (int i = 0; slots && i < depth; i++) {
        slots[i].b = &b;
        if (posix_memalign(&slots[i].buf, 4096, BS) != 0 || submit(&slots[i]) < 0)
            b.stopping = true;
    }
    double plain[MAX_SEGMENTS], scraped[MAX_SEGMENTS];
    int np = 0, ns = 0;
    /* Warm-up: a segment's worth, so the page cache and (adaptive) the controller settle. */
    uint64_t warm_end = bench_now_ns() + (uint64_t)(seconds * 1e9);
    while (!b.stopping && bench_now_ns() < warm_end)
        auraio_wait(b.e, 100);
    for (int seg = 0; seg < 2 * rounds && !b.stopping; seg++) {
        /* ABBA: round r runs (plain, scraped) when r is even, (scraped, plain) when odd. */
        bool scrape = (seg % 2 == 1) != ((seg / 2) % 2 == 1);
        atomic_store(&sc.active, scrape);
        uint64_t scrapes0 = atomic_load(&sc.scrapes);
        uint64_t ops0 = b.ops, t0 = bench_now_ns(), end = t0 + (uint64_t)(seconds * 1e9), now;
        while (!b.stopping && (now = bench_now_ns()) < end)
            auraio_wait(b.e, 100);
        now = bench_now_ns();
        double iops = (double)(b.ops - ops0) / ((double)(now - t0) / 1e9);
        if (scrape)
            scraped[ns++] = iops;
        else
            plain[np++] = iops;
        printf("%-8s segment %2d %-8s %10.0f IOPS  (%llu scrapes)\n", mode, seg, scrape ? "scraped" : "plain", iops,
               (unsigned long long)(atomic_load(&sc.scrapes) - scrapes0));
        fflush(stdout);
    }
    atomic_store(&sc.active, false);
    atomic_store(&sc.quit, true);
    pthread_join(t, NULL);
    b.stopping = true;
    while (auraio_pending_count(b.e) > 0)
        auraio_wait(b.e, 1000);
    int status = 0;
    if (b.error || atomic_load(&sc.failures) || np == 0 || ns == 0) {
        fprintf(stderr, "%s: I/O error %d, %llu failed scrapes\n", mode, b.error,
                (unsigned long long)atomic_load(&sc.failures));
        status = 1;
    } else {
        uint64_t n = atomic_load(&sc.scrapes);
        double mp = median(plain, np), ms = median(scraped, ns);
        printf("RESULT mode=%s iops_plain=%.0f iops_scraped=%.0f ratio=%.4f segments=%d seconds=%.2f depth=%d "
               "scrapes=%llu doc_bytes=%llu scrape_ms=%.3f build=%s optimized=%s\n",
               mode, mp, ms, ms / mp, np + ns, seconds, depth, (unsigned long long)n,
               (unsigned long long)(n ? atomic_load(&sc.bytes) / n : 0),
               n ? (double)atomic_load(&sc.busy_ns) / (double)n / 1e6 : 0.0, AURAIO_BENCH_BUILDTYPE,
               AURAIO_BENCH_OPTIMIZED);
    }
    auraio_destroy(b.e);
    for (int i = 0; slots && i < depth; i++)
        free(slots[i].buf);
    free(slots);
    return status;
}

static void fill_zero(void *chunk, size_t len, uint64_t off, void *ctx)
{
    (void)off;
    (void)ctx;
    memset(chunk, 0x5a, len);
}

int main(int argc, char **argv)
{
    double seconds = 1.0;
    int rounds = 5, depth = 32;
    uint64_t temp_size = 64u << 20;
    const char *mode = "both";
    static const struct option longopts[] = {
        {"seconds", required_argument, NULL, 's'}, {"rounds", required_argument, NULL, 'r'},
        {"depth", required_argument, NULL, 'd'},   {"temp-size", required_argument, NULL, 't'},
        {"mode", required_argument, NULL, 'm'},    {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': seconds = atof(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 'd': depth = atoi(optarg); break;
        case 't': temp_size = bench_parse_size(optarg); break;
        case 'm': mode = optarg; break;
        default:
            fprintf(stderr, "usage: %s [--seconds S] [--rounds N] [--depth D] [--temp-size SIZE] "
                            "[--mode adaptive|fixed|both]\n", argv[0]);
            return 2;
        }
    }
    if (!(seconds > 0) || rounds < 1 || 2 * rounds > MAX_SEGMENTS || depth < 1 || depth > 4096 ||
        temp_size < (1u << 20) ||
        (strcmp(mode, "both") && strcmp(mode, "adaptive") && strcmp(mode, "fixed"))) {
        fprintf(stderr, "metrics_cost: bad arguments\n");
        return 2;
    }
    const char *dir = getenv("TMPDIR");
    char path[4096];
    int rc = bench_make_file(dir && *dir ? dir : "/tmp", "auraio-metrics-cost", temp_size & ~(uint64_t)((1u << 20) - 1),
                             fill_zero, NULL, path, sizeof(path));
    if (rc < 0) {
        fprintf(stderr, "temp file: %s\n", strerror(-rc));
        return 1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unlink(path);
    if (fd < 0)
        return 1;
    uint64_t blocks = (temp_size & ~(uint64_t)((1u << 20) - 1)) / BS;
    int status = 0;
    if (!strcmp(mode, "both") || !strcmp(mode, "adaptive"))
        status = run_mode("adaptive", fd, blocks, depth, seconds, rounds);
    if (status == 0 && (!strcmp(mode, "both") || !strcmp(mode, "fixed")))
        status = run_mode("fixed", fd, blocks, depth, seconds, rounds);
    close(fd);
    return status;
}
