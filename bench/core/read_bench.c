/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Random reads through the public API (auraio_read) at a fixed number in flight, one thread, for
 * a fixed time; prints IOPS and the p50/p99 of the latency from just before auraio_read to the
 * start of the callback - the latency an application sees, library queueing included.
 *
 * --lib-latency is the application the liburing peer (read_liburing.c) is: it reads the clock once
 * per auraio_wait instead of twice per read (a clock read costs ~30 ns on this project's VM, as
 * much as a third of the library's own time per read) and prints the library's own latency
 * histogram instead (auraio_get_metrics: kernel entry to reap, the samples the controller sees).
 * compare_read.py runs it that way, so its ratio to the peer is the library's cost alone.
 *
 * The adaptive controller is off and the in-flight limit is pinned to --depth, so the number is
 * comparable with fio's io_uring engine at the same iodepth (compare_fio.py runs both). A callback
 * resubmits its slot at once, like fio keeps its queue full. --depth 1 --direct is the latency
 * check of failure-modes.md ("Completion delivery"): a reaping bug shows up as a p50 of a timer
 * tick instead of the device's ~70 us.
 *
 * --wait-ms sets the timeout of each auraio_wait (default 1000): an application waiting with a short
 * timeout (1 ms, as bench/devices/peer_devices does) sleeps with a deadline before the CPU's next
 * timer tick, which the library meets with its ring's alarm rather than a kernel timer per sleep
 * (engine.c, "Waiting"); --depth 1 --direct --wait-ms 1 shows what a sleep's timer costs.
 *
 * Output: human-readable lines, then one `RESULT key=value ...` line for scripts.
 * Exit status: 0 ok, 1 I/O or setup error, 2 usage, 3 no I/O completed, 77 io_uring unavailable.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "auraio.h"
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Latency histogram: exact below 128 ns, then 64 sub-buckets per power of two (1.6% resolution,
 * the same as fio's clat histogram), so percentiles cost no sort and no per-sample memory. */
#define HIST_SUB 64
#define HIST_BUCKETS (128 + 64 * HIST_SUB)

struct hist {
    uint64_t count[HIST_BUCKETS];
    uint64_t total;
};

static unsigned hist_index(uint64_t v)
{
    if (v < 128)
        return (unsigned)v;
    unsigned e = (unsigned)(63 - __builtin_clzll(v)) - 6;
    unsigned idx = 64 * e + (unsigned)(v >> e);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* Midpoint of bucket @p idx in ns. */
static double hist_value(unsigned idx)
{
    if (idx < 128)
        return idx;
    unsigned e = idx / 64 - 1;
    uint64_t m = idx % 64 + 64;
    return ((double)(m << e) + (double)((m + 1) << e)) / 2.0;
}

static double hist_percentile(const struct hist *h, double p)
{
    if (h->total == 0)
        return 0.0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->total + 0.999999);
    if (rank == 0)
        rank = 1;
    uint64_t cum = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        cum += h->count[i];
        if (cum >= rank)
            return hist_value(i);
    }
    return hist_value(HIST_BUCKETS - 1);
}

/* Percentile @p p of the library's lifetime latency histogram, in ns: the lower bound of the
 * bucket that holds it (the library's buckets are 1/16 of a power of two wide); -1 when the
 * histogram holds no sample. */
static double lib_percentile(const auraio_engine_t *engine, double p)
{
    static auraio_metrics_t m;
    if (auraio_get_metrics(engine, AURAIO_ALL_RINGS, &m) < 0 || m.latency_count == 0)
        return -1.0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)m.latency_count + 0.999999);
    if (rank == 0)
        rank = 1;
    uint64_t cum = 0;
    for (int i = 0; i < AURAIO_HISTOGRAM_BUCKETS; i++) {
        cum += m.latency_buckets[i];
        if (cum >= rank)
            return (double)auraio_histogram_bucket_lower_ns(i);
    }
    return (double)auraio_histogram_bucket_lower_ns(AURAIO_HISTOGRAM_BUCKETS - 1);
}

struct bench;

struct slot {
    struct bench *b;
    int index; /* registered buffer index when --fixed-buffers */
    void *buf;
    auraio_buf_t bufd; /* buf's descriptor, built once (the peer keeps its buffer pointers too) */
    uint64_t submit_ns;
    int64_t offset;
};

struct bench {
    auraio_engine_t *engine;
    int fd;
    size_t bs;
    uint64_t blocks;
    uint64_t rng;
    uint64_t end_ns;
    uint64_t stop_ns; /* when the main loop saw the deadline pass (elapsed time without app_clock) */
    uint64_t stop_cpu_ns; /* the process's CPU time then (cpu_s in the RESULT line) */
    bool stopping;
    bool verify;
    bool fixed_buffers; /* slot i reads into registered buffer i (READ_FIXED) */
    bool fixed_files;   /* the file is registered file 0 (IOSQE_FIXED_FILE) */
    bool app_clock;     /* time each read (default); off with --lib-latency */
    int error;       /* first negative result or submit errno */
    uint64_t ops;    /* completions before end_ns */
    uint64_t max_ops; /* --ops: stop after this many completions (0: time only) */
    struct hist hist;
};

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static void on_read(auraio_request_t *req, ssize_t result, void *user_data);

static int submit_slot(struct bench *b, struct slot *s)
{
    s->offset = (int64_t)((xorshift64(&b->rng) % b->blocks) * b->bs);
    if (b->app_clock)
        s->submit_ns = bench_now_ns();
    if (!auraio_read_ex(b->engine, b->fixed_files ? 0 : b->fd, s->bufd, b->bs, s->offset,
                        b->fixed_files ? AURAIO_FIXED_FILE : 0, on_read, s))
        return -errno;
    return 0;
}

static void on_read(auraio_request_t *req, ssize_t result, void *user_data)
{
    struct slot *s = user_data;
    struct bench *b = s->b;
    (void)req;
    if (result != (ssize_t)b->bs) {
        if (!b->error)
            b->error = result < 0 ? (int)-result : EIO;
        b->stopping = true;
        return;
    }
    if (b->verify) {
        uint64_t tag;
        memcpy(&tag, s->buf, sizeof(tag));
        if (tag != (uint64_t)s->offset) {
            fprintf(stderr, "verify: offset %lld holds tag %llu\n", (long long)s->offset, (unsigned long long)tag);
            if (!b->error)
                b->error = EILSEQ;
            b->stopping = true;
            return;
        }
    }
    if (b->app_clock) {
        uint64_t now = bench_now_ns();
        if (now >= b->end_ns)
            b->stopping = true;
        else {
            b->hist.count[hist_index(now - s->submit_ns)]++;
            b->hist.total++;
        }
    }
    /* Without the application's clock the main loop sets stopping at the deadline, once per
     * auraio_wait, as the liburing peer checks it once per round. */
    if (b->stopping || (b->max_ops && b->ops >= b->max_ops)) {
        b->stopping = true;
        return;
    }
    b->ops++;
    int rc = submit_slot(b, s);
    if (rc < 0 && !b->error) {
        b->error = -rc;
        b->stopping = true;
    }
}

/* Every block starts with its own offset, so --verify can check what came back. */
static void fill_offset_tags(void *chunk, size_t len, uint64_t off, void *ctx)
{
    size_t bs = *(const size_t *)ctx;
    char *block = chunk;
    for (size_t i = 0; i < len; i += bs) {
        uint64_t tag = off + i;
        memcpy(block + i, &tag, sizeof(tag));
        memset(block + i + sizeof(tag), (int)(tag / bs) & 0xff, bs - sizeof(tag));
    }
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s (--file PATH | --temp-size SIZE) [options]\n"
            "  --file PATH        read this file (its whole size, block-aligned)\n"
            "  --temp-size SIZE   create a temp file of SIZE (e.g. 8M) in $TMPDIR, read it, delete it;\n"
            "                     implies --verify\n"
            "  --depth N          requests in flight (default 32)\n"
            "  --seconds S        run time (default 5)\n"
            "  --ops N            stop after N reads instead (a fixed amount of work, for callgrind)\n"
            "  --bs N             block size (default 4096)\n"
            "  --direct           open with O_DIRECT (default: buffered, page cache)\n"
            "  --default-rings    library's ring count (one per CPU) instead of 1\n"
            "  --single-issuer    set auraio_options_t.single_issuer\n"
            "  --fixed-buffers    register the slot buffers (READ_FIXED)\n"
            "  --fixed-files      register the file (IOSQE_FIXED_FILE)\n"
            "  --verify           check each block's offset tag (files from --temp-size)\n"
            "  --lib-latency      no clock read per read: the deadline checked once per auraio_wait, and\n"
            "                     p50/p99 from the library's histogram (kernel entry to reap)\n"
            "  --wait-ms N        timeout of each auraio_wait in ms (default 1000; -1: none)\n"
            "  --seed N           random seed (default 1)\n"
            "  --metrics-port P   serve Prometheus metrics on 127.0.0.1:P/metrics while running\n"
            "                     (0: a free port, printed)\n",
            argv0);
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    uint64_t temp_size = 0;
    int depth = 32;
    double seconds = 5.0;
    size_t bs = 4096;
    bool direct = false, default_rings = false, single_issuer = false, verify = false;
    bool fixed_buffers = false, fixed_files = false, lib_latency = false;
    uint64_t seed = 1;
    uint64_t max_ops = 0;
    int metrics_port = -1;
    int wait_ms = 1000;
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'},     {"temp-size", required_argument, NULL, 't'},
        {"depth", required_argument, NULL, 'd'},    {"seconds", required_argument, NULL, 's'},
        {"bs", required_argument, NULL, 'b'},       {"direct", no_argument, NULL, 'D'},
        {"default-rings", no_argument, NULL, 'R'},  {"single-issuer", no_argument, NULL, 'S'},
        {"verify", no_argument, NULL, 'v'},         {"seed", required_argument, NULL, 'x'},
        {"fixed-buffers", no_argument, NULL, 'B'},  {"fixed-files", no_argument, NULL, 'F'},
        {"metrics-port", required_argument, NULL, 'm'}, {"ops", required_argument, NULL, 'o'},
        {"lib-latency", no_argument, NULL, 'L'},    {"help", no_argument, NULL, 'h'},
        {"wait-ms", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': file = optarg; break;
        case 't': temp_size = bench_parse_size(optarg); verify = true; break;
        case 'd': depth = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'b': bs = (size_t)bench_parse_size(optarg); break;
        case 'D': direct = true; break;
        case 'R': default_rings = true; break;
        case 'S': single_issuer = true; break;
        case 'v': verify = true; break;
        case 'B': fixed_buffers = true; break;
        case 'F': fixed_files = true; break;
        case 'x': seed = strtoull(optarg, NULL, 0); break;
        case 'm': metrics_port = atoi(optarg); break;
        case 'o': max_ops = strtoull(optarg, NULL, 0); break;
        case 'L': lib_latency = true; break;
        case 'w': wait_ms = atoi(optarg); break;
        case 'h': usage(argv[0]); return 0;
        default: usage(argv[0]); return 2;
        }
    }
    if ((!file) == (!temp_size) || depth < 1 || depth > 16384 || !(seconds > 0) || bs < 512 || bs % 512 ||
        bs > (1u << 20)) {
        usage(argv[0]);
        return 2;
    }

    char temp_path[4096];
    if (temp_size) {
        const char *dir = getenv("TMPDIR");
        int rc = bench_make_file(dir && *dir ? dir : "/tmp", "auraio-read-bench",
                                 (temp_size + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1), fill_offset_tags, &bs,
                                 temp_path, sizeof(temp_path));
        if (rc < 0) {
            fprintf(stderr, "cannot create temp file: %s\n", strerror(-rc));
            return 1;
        }
        file = temp_path;
    }

    int status = 1;
    struct bench *b = calloc(1, sizeof(*b));
    struct slot *slots = calloc((size_t)depth, sizeof(*slots));
    if (!b || !slots)
        goto out;
    b->fd = -1;
    b->fd = open(file, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
    if (b->fd < 0) {
        int err = errno;
        fprintf(stderr, "open %s: %s\n", file, strerror(err));
        /* tmpfs before 6.6 refuses O_DIRECT: a smoke test there has nothing to measure. */
        if (err == EINVAL && direct && temp_size)
            status = 77;
        goto out;
    }
    struct stat st;
    if (fstat(b->fd, &st) < 0 || (uint64_t)st.st_size < bs) {
        fprintf(stderr, "%s: not a regular file of at least %zu bytes\n", file, bs);
        goto out;
    }
    b->bs = bs;
    b->blocks = (uint64_t)st.st_size / bs;
    b->rng = seed ? seed : 1;
    b->verify = verify;
    b->max_ops = max_ops;
    b->app_clock = !lib_latency;

    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = default_rings ? 0 : 1;
    /* Room for depth in flight plus depth being delivered: a callback resubmits before the
     * engine releases the completed slot. */
    o.queue_depth = depth * 2 > 256 ? depth * 2 : 256;
    o.initial_in_flight = depth;
    o.max_in_flight = depth;
    o.disable_adaptive = true;
    o.single_issuer = single_issuer;
    b->engine = auraio_create_with_options(&o);
    if (!b->engine) {
        int err = errno;
        fprintf(stderr, "auraio_create_with_options: %s\n", strerror(err));
        status = (err == ENOSYS || err == EPERM) ? 77 : 1;
        goto out;
    }
    if (metrics_port >= 0) {
        /* Watch the run live; auraio_destroy stops the server. */
        auraio_metrics_server_t *server = auraio_metrics_server_start(b->engine, NULL, metrics_port);
        if (!server) {
            fprintf(stderr, "metrics server: %s\n", strerror(errno));
            goto out;
        }
        printf("metrics: http://127.0.0.1:%d/metrics\n", auraio_metrics_server_port(server));
        fflush(stdout);
    }
    for (int i = 0; i < depth; i++) {
        slots[i].b = b;
        slots[i].index = i;
        if (posix_memalign(&slots[i].buf, 4096, bs) != 0)
            goto out;
        memset(slots[i].buf, 0, bs);
    }
    if (fixed_buffers) {
        struct iovec *iov = calloc((size_t)depth, sizeof(*iov));
        if (!iov)
            goto out;
        for (int i = 0; i < depth; i++)
            iov[i] = (struct iovec){slots[i].buf, bs};
        int rc = auraio_register_buffers(b->engine, iov, depth);
        free(iov);
        if (rc < 0) {
            fprintf(stderr, "auraio_register_buffers: %s\n", strerror(-rc));
            goto out;
        }
        b->fixed_buffers = true;
    }
    for (int i = 0; i < depth; i++)
        slots[i].bufd = fixed_buffers ? auraio_buf_fixed(i, 0) : auraio_buf(slots[i].buf);
    if (fixed_files) {
        int rc = auraio_register_files(b->engine, &b->fd, 1);
        if (rc < 0) {
            fprintf(stderr, "auraio_register_files: %s\n", strerror(-rc));
            goto out;
        }
        b->fixed_files = true;
    }

    printf("build: %s (optimized: %s), auraio %s\n", AURAIO_BENCH_BUILDTYPE, AURAIO_BENCH_OPTIMIZED,
           auraio_version());
    printf("read: %s, %llu MiB, bs %zu, depth %d, %s, rings %d, %.1f s%s%s\n", temp_size ? "(temp file)" : file,
           (unsigned long long)((uint64_t)st.st_size >> 20), bs, depth, direct ? "O_DIRECT" : "buffered",
           auraio_get_ring_count(b->engine), seconds, fixed_buffers ? ", registered buffers" : "",
           fixed_files ? ", registered file" : "");
    fflush(stdout);

    uint64_t start = bench_now_ns();
    uint64_t start_cpu = bench_cpu_ns();
    b->end_ns = max_ops ? UINT64_MAX : start + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < depth; i++) {
        int rc = submit_slot(b, &slots[i]);
        if (rc < 0) {
            fprintf(stderr, "auraio_read: %s\n", strerror(-rc));
            b->error = -rc;
            b->stopping = true;
            break;
        }
    }
    /* Callbacks resubmit; this loop only drives completions until the deadline, then drains. */
    while (auraio_pending_count(b->engine) > 0) {
        int rc = auraio_wait(b->engine, wait_ms);
        if (rc < 0 && rc != -ETIME) {
            fprintf(stderr, "auraio_wait: %s\n", strerror(-rc));
            b->error = -rc;
            break;
        }
        if (!b->stopping) {
            uint64_t now = bench_now_ns();
            if (now >= b->end_ns) {
                b->stopping = true;
                b->stop_ns = now;
                b->stop_cpu_ns = bench_cpu_ns();
            }
        }
    }
    /* The reads counted are those completed before the deadline (app_clock) or before the main
     * loop saw it pass (stop_ns, the liburing peer's rule). */
    uint64_t stop_ns = max_ops ? bench_now_ns() : b->app_clock ? b->end_ns : b->stop_ns ? b->stop_ns : bench_now_ns();
    double elapsed = (double)(stop_ns - start) / 1e9;
    /* With the application's clock the deadline is seen in a callback; the drain after it (a
     * depth's worth of reads) is then counted, ~0.01% of a second's CPU time at 32 cached reads. */
    double cpu_s = (double)((b->stop_cpu_ns ? b->stop_cpu_ns : bench_cpu_ns()) - start_cpu) / 1e9;

    auraio_ring_stats_t rs;
    if (auraio_get_ring_stats(b->engine, 0, &rs) == 0)
        printf("ring 0: limit %d, batch threshold %d, queue depth %d, submissions at limit %llu\n", rs.in_flight_limit,
               rs.batch_threshold, rs.queue_depth, (unsigned long long)rs.submissions_at_limit);
    if (b->error) {
        fprintf(stderr, "read_bench: I/O error: %s\n", strerror(b->error));
        goto out;
    }
    double iops = (double)b->ops / elapsed;
    double p50, p99;
    if (b->app_clock) {
        p50 = hist_percentile(&b->hist, 50.0) / 1000.0;
        p99 = hist_percentile(&b->hist, 99.0) / 1000.0;
    } else {
        p50 = lib_percentile(b->engine, 50.0) / 1000.0;
        p99 = lib_percentile(b->engine, 99.0) / 1000.0;
        if (b->ops > 0 && p50 < 0) {
            fprintf(stderr, "read_bench: %llu reads, but the library's histogram holds no sample\n",
                    (unsigned long long)b->ops);
            goto out;
        }
    }
    printf("iops %.0f, p50 %.1f us, p99 %.1f us, %llu reads\n", iops, p50, p99, (unsigned long long)b->ops);
    printf("RESULT iops=%.0f p50_us=%.2f p99_us=%.2f ops=%llu seconds=%.3f cpu_s=%.6f depth=%d direct=%d rings=%d "
           "fixed_buffers=%d fixed_files=%d latency=%s wait_ms=%d build=%s\n",
           iops, p50, p99, (unsigned long long)b->ops, elapsed, cpu_s, depth, direct ? 1 : 0,
           auraio_get_ring_count(b->engine), fixed_buffers ? 1 : 0, fixed_files ? 1 : 0, b->app_clock ? "app" : "library",
           wait_ms, AURAIO_BENCH_BUILDTYPE);
    status = b->ops > 0 ? 0 : 3;
out:
    if (b && b->engine)
        auraio_destroy(b->engine);
    if (slots) {
        for (int i = 0; i < depth; i++)
            free(slots[i].buf);
        free(slots);
    }
    if (b && b->fd >= 0)
        close(b->fd);
    free(b);
    if (temp_size)
        unlink(temp_path);
    return status;
}
