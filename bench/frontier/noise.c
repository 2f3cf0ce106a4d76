/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How precisely can anything (the controller, a person with fio) tell two depths apart on this
 * device in a given time? Random 4 KiB O_DIRECT reads, the library's limit pinned high and the
 * number in flight set by this program, in two parts:
 *
 * 1. Fixed depth A for --hold seconds: the relative sd of the throughput of consecutive blocks of
 *    10 ms to 1.28 s, beside the counting floor 1/sqrt(n) an i.i.d. device would show. A ratio far
 *    above 1 at long blocks is slow drift that no longer epoch averages away.
 * 2. Depths A and B alternated in slices (settle, then measure) for --ab seconds per slice length:
 *    each B slice against the mean of the A slices on either side (a linear drift cancels). The sd
 *    of that log-ratio is the noise of one paired comparison; the number of comparisons needed to
 *    tell a 3% difference at two sd follows from it.
 *
 * Exit status: 0 ran, 1 I/O or setup error, 2 usage, 77 io_uring or O_DIRECT unavailable.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "auraio.h"
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BS 4096u
#define MAX_DEPTH 1024
#define BLOCK_NS 10000000ull /* finest block of part 1 */
#define NSCALES 8            /* 10 ms .. 1.28 s */

struct noise {
    auraio_engine_t *e;
    int fd;
    uint64_t blocks, rng;
    void *pool;
    int free_stack[MAX_DEPTH];
    int nfree, outstanding, depth, error;
    uint64_t done; /* completions so far */
};

static void on_read(auraio_request_t *req, ssize_t result, void *user_data);

static void fill(struct noise *n)
{
    while (n->outstanding < n->depth && n->nfree > 0 && !n->error) {
        int slot = n->free_stack[--n->nfree];
        int64_t off = (int64_t)(bench_splitmix64(&n->rng) % n->blocks * BS);
        void *buf = (char *)n->pool + (size_t)slot * BS;
        if (!auraio_read(n->e, n->fd, auraio_buf(buf), BS, off, on_read, (void *)(intptr_t)slot)) {
            n->free_stack[n->nfree++] = slot;
            if (errno != EAGAIN)
                n->error = errno;
            return;
        }
        n->outstanding++;
    }
}

static struct noise *g_noise; /* the callback's context: one run at a time */

static void on_read(auraio_request_t *req, ssize_t result, void *user_data)
{
    struct noise *n = g_noise;
    (void)req;
    n->free_stack[n->nfree++] = (int)(intptr_t)user_data;
    n->outstanding--;
    if (result != (ssize_t)BS && !n->error)
        n->error = result < 0 ? (int)-result : EIO;
    n->done++;
}

/* Run at the current depth until @p until (monotonic ns). */
static int run_until(struct noise *n, uint64_t until)
{
    fill(n);
    while (bench_now_ns() < until && !n->error) {
        int rc = auraio_wait(n->e, 5);
        if (rc < 0 && rc != -ETIME) {
            n->error = -rc;
            break;
        }
        fill(n);
    }
    return n->error ? -1 : 0;
}

/* Relative sd of consecutive block means at every scale 10 ms * 2^k, and the counting floor. */
static void part_fixed(struct noise *n, int depth, double secs)
{
    size_t nb = (size_t)(secs * 1e9 / BLOCK_NS);
    double *cnt = calloc(nb, sizeof(double));
    if (!cnt)
        return;
    n->depth = depth;
    uint64_t t = bench_now_ns();
    run_until(n, t + 200000000ull); /* settle at the depth */
    t = bench_now_ns();
    for (size_t i = 0; i < nb && !n->error; i++) {
        uint64_t d0 = n->done;
        run_until(n, t + (uint64_t)(i + 1) * BLOCK_NS);
        cnt[i] = (double)(n->done - d0);
    }
    double total = 0;
    for (size_t i = 0; i < nb; i++)
        total += cnt[i];
    printf("FIXED depth %d for %.1f s: %.0f IOPS\n", depth, secs, total / secs);
    printf("  block_ms   blocks   rel_sd%%   counting%%   ratio\n");
    for (int k = 0; k < NSCALES; k++) {
        size_t per = (size_t)1 << k, m = nb / per;
        if (m < 4)
            break;
        double s = 0, s2 = 0;
        for (size_t j = 0; j < m; j++) {
            double c = 0;
            for (size_t i = 0; i < per; i++)
                c += cnt[j * per + i];
            s += c;
            s2 += c * c;
        }
        double mean = s / (double)m;
        double sd = sqrt(fmax(0.0, (s2 - (double)m * mean * mean) / (double)(m - 1))) / mean;
        double floor = 1.0 / sqrt(mean);
        printf("  %8.0f %8zu %9.2f %11.2f %7.1f\n", (double)(per * BLOCK_NS) / 1e6, m, 100 * sd, 100 * floor,
               sd / floor);
    }
    free(cnt);
}

/* One slice at @p depth: settle, then measure; returns the measured IOPS. */
static double slice(struct noise *n, int depth, uint64_t settle_ns, uint64_t meas_ns)
{
    n->depth = depth;
    uint64_t t = bench_now_ns();
    run_until(n, t + settle_ns);
    uint64_t d0 = n->done, t0 = bench_now_ns();
    run_until(n, t0 + meas_ns);
    return (double)(n->done - d0) * 1e9 / (double)(bench_now_ns() - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A, B, A, B, ..., A: each B against the mean of its neighbours. */
static void part_ab(struct noise *n, int da, int db, double settle_ms, double meas_ms, double secs)
{
    uint64_t st = (uint64_t)(settle_ms * 1e6), ms = (uint64_t)(meas_ms * 1e6);
    int pairs = (int)(secs * 1e3 / (2.0 * (settle_ms + meas_ms)));
    if (pairs < 3)
        pairs = 3;
    double *r = calloc((size_t)pairs, sizeof(double));
    if (!r)
        return;
    double xa = slice(n, da, st, ms);
    for (int i = 0; i < pairs && !n->error; i++) {
        double xb = slice(n, db, st, ms);
        double xa2 = slice(n, da, st, ms);
        r[i] = log(xb / (0.5 * (xa + xa2)));
        xa = xa2;
    }
    double s = 0, s2 = 0;
    for (int i = 0; i < pairs; i++) {
        s += r[i];
        s2 += r[i] * r[i];
    }
    double mean = s / pairs;
    double sd = sqrt(fmax(0.0, (s2 - pairs * mean * mean) / (pairs - 1)));
    qsort(r, (size_t)pairs, sizeof(double), cmp_double);
    double med = pairs % 2 ? r[pairs / 2] : 0.5 * (r[pairs / 2 - 1] + r[pairs / 2]);
    /* Comparisons for a 3% difference at two sd of the mean: (2 sd / 0.03)^2. */
    double need = (2.0 * sd / 0.03) * (2.0 * sd / 0.03);
    printf("  %6.0f %6.0f %6d %9.3f %9.3f %8.2f %7.1f %8.1f\n", settle_ms, meas_ms, pairs, exp(med), exp(mean),
           100 * sd, need, need * 2 * (settle_ms + meas_ms) / 1e3);
    free(r);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s (--file PATH | --temp-size SIZE) [options]\n"
            "  --file PATH        read this file (O_DIRECT)\n"
            "  --temp-size SIZE   create a file of SIZE (e.g. 1G), read it, delete it\n"
            "  --temp-dir DIR     where (must support O_DIRECT; default $TMPDIR or /var/tmp)\n"
            "  --depths A,B       the depth held in part 1 and compared in part 2 (default 64,96)\n"
            "  --hold S           part 1 length in seconds (default 20)\n"
            "  --ab S             part 2 length per slice length in seconds (default 20)\n",
            argv0);
}

int main(int argc, char **argv)
{
    const char *file = NULL, *temp_dir = NULL;
    uint64_t temp_size = 0;
    int da = 64, db = 96;
    double hold = 20, ab = 20;
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'}, {"temp-size", required_argument, NULL, 't'},
        {"temp-dir", required_argument, NULL, 'T'}, {"depths", required_argument, NULL, 'd'},
        {"hold", required_argument, NULL, 'H'}, {"ab", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'f': file = optarg; break;
        case 't': temp_size = bench_parse_size(optarg); break;
        case 'T': temp_dir = optarg; break;
        case 'd':
            if (sscanf(optarg, "%d,%d", &da, &db) != 2) {
                fprintf(stderr, "--depths: expected A,B (e.g. 64,96), got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'H': hold = atof(optarg); break;
        case 'a': ab = atof(optarg); break;
        case 'h': usage(argv[0]); return 0;
        default: usage(argv[0]); return 2;
        }
    }
    if ((!file) == (!temp_size) || da < 1 || db < 1 || da > MAX_DEPTH || db > MAX_DEPTH || !(hold >= 0.1)
        || !(ab >= 0) || (temp_size && temp_size < (1u << 20))) {
        usage(argv[0]);
        return 2;
    }
    char temp_path[4096] = "";
    if (temp_size) {
        if (bench_make_random_temp(temp_dir, "auraio-noise", temp_size, temp_path, sizeof(temp_path)) < 0)
            return 1;
        file = temp_path;
    }
    struct noise n = {.fd = -1, .rng = 1};
    int status = 1;
    n.fd = open(file, O_RDONLY | O_DIRECT | O_CLOEXEC);
    int open_err = errno; /* before unlink and fprintf can change it */
    if (temp_path[0])
        unlink(temp_path); /* the descriptor keeps the data; nothing is left behind on a kill */
    if (n.fd < 0) {
        fprintf(stderr, "open %s with O_DIRECT: %s\n", file, strerror(open_err));
        return open_err == EINVAL ? 77 : 1;
    }
    struct stat st;
    if (fstat(n.fd, &st) < 0 || (uint64_t)st.st_size < BS) {
        fprintf(stderr, "%s: not a file of at least %u bytes\n", file, BS);
        goto out;
    }
    n.blocks = (uint64_t)st.st_size / BS;
    int maxd = da > db ? da : db;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    o.disable_adaptive = true;
    o.initial_in_flight = maxd;
    o.max_in_flight = maxd;
    o.queue_depth = maxd > 256 ? maxd : 0;
    n.e = auraio_create_with_options(&o);
    if (!n.e) {
        int err = errno;
        fprintf(stderr, "auraio_create_with_options: %s\n", strerror(err));
        status = err == ENOSYS || err == EPERM ? 77 : 1;
        goto out;
    }
    if (posix_memalign(&n.pool, 4096, (size_t)maxd * BS) != 0) {
        n.pool = NULL;
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    for (int i = maxd - 1; i >= 0; i--)
        n.free_stack[n.nfree++] = i;
    g_noise = &n;
    {
        /* The whole file once, sequentially: reads then come from wherever they will stay. */
        void *buf = NULL;
        if (posix_memalign(&buf, 4096, 1u << 20) == 0) {
            for (off_t off = 0; off < st.st_size; off += 1 << 20)
                if (pread(n.fd, buf, 1u << 20, off) < 0)
                    break;
            free(buf);
        }
    }
    printf("auraio noise profile: build %s (optimized: %s), 4 KiB random O_DIRECT reads, %.0f MiB\n",
           AURAIO_BENCH_BUILDTYPE, AURAIO_BENCH_OPTIMIZED, (double)st.st_size / (1 << 20));
    part_fixed(&n, da, hold);
    if (ab > 0 && !n.error) {
        printf("PAIRED depth %d vs %d (B / mean of the A slices on either side)\n", db, da);
        printf("  settle   meas  pairs  median_r    mean_r   sd_log%%  n_for_3%%  seconds\n");
        static const double plan[][2] = {{150, 80}, {150, 250}, {300, 700}};
        for (size_t i = 0; i < sizeof(plan) / sizeof(plan[0]) && !n.error; i++)
            part_ab(&n, da, db, plan[i][0], plan[i][1], ab);
    }
    n.depth = 0;
    while (n.outstanding > 0) {
        int rc = auraio_wait(n.e, 1000);
        if (rc < 0 && rc != -ETIME)
            break;
    }
    if (n.error) {
        fprintf(stderr, "noise: I/O error: %s\n", strerror(n.error));
        goto out;
    }
    status = 0;
out:
    if (n.e)
        auraio_destroy(n.e);
    free(n.pool);
    if (n.fd >= 0)
        close(n.fd);
    return status;
}
