/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The peer for read_bench: the smallest liburing loop doing the same reads - random 4 KiB (--bs)
 * reads at a fixed number in flight, one thread, each completion resubmitting its slot - with no
 * library between the application and the ring: queue the reads, then one
 * io_uring_submit_and_wait per round, consume every CQE, refill. read_bench's ratio to this is what
 * auraio costs over driving io_uring by hand (issue #11 asks for >= 0.95x on cached reads).
 *
 * Same options and RESULT line as read_bench (the subset that makes sense without a library):
 * --file, --depth, --seconds or --ops, --bs, --direct, --single-issuer (SINGLE_ISSUER |
 * DEFER_TASKRUN, as auraio's single_issuer option asks for), --seed.
 * Exit status: 0 ok, 1 I/O or setup error, 2 usage, 3 no I/O completed, 77 io_uring unavailable.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_util.h"

#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <stdbool.h>
#include <sys/stat.h>

#define MAX_DEPTH 4096

struct peer {
    struct io_uring ring;
    int fd;
    size_t bs;
    uint64_t blocks;
    uint64_t rng;
    void *bufs[MAX_DEPTH];
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

/* Queue slot @p i's next read; the SQ has room for every slot, so get_sqe cannot fail. */
static void queue_read(struct peer *p, unsigned i)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);
    uint64_t off = (xorshift64(&p->rng) % p->blocks) * p->bs;
    io_uring_prep_read(sqe, p->fd, p->bufs[i], (unsigned)p->bs, off);
    io_uring_sqe_set_data64(sqe, i);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --file PATH [--depth N] [--seconds S | --ops N] [--bs N] [--direct] [--single-issuer]"
            " [--seed N]\n",
            argv0);
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    unsigned depth = 32;
    double seconds = 5.0;
    uint64_t max_ops = 0;
    size_t bs = 4096;
    bool direct = false, single_issuer = false;
    uint64_t seed = 1;
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'}, {"depth", required_argument, NULL, 'd'},
        {"seconds", required_argument, NULL, 's'}, {"ops", required_argument, NULL, 'o'},
        {"bs", required_argument, NULL, 'b'}, {"direct", no_argument, NULL, 'D'},
        {"single-issuer", no_argument, NULL, 'S'}, {"seed", required_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': file = optarg; break;
        case 'd': depth = (unsigned)atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'o': max_ops = strtoull(optarg, NULL, 0); break;
        case 'b': bs = (size_t)bench_parse_size(optarg); break;
        case 'D': direct = true; break;
        case 'S': single_issuer = true; break;
        case 'x': seed = strtoull(optarg, NULL, 0); break;
        case 'h': usage(argv[0]); return 0;
        default: usage(argv[0]); return 2;
        }
    }
    if (!file || depth < 1 || depth > MAX_DEPTH || !(seconds > 0) || bs < 512 || bs % 512 || bs > (1u << 20)) {
        usage(argv[0]);
        return 2;
    }

    static struct peer p;
    int status = 1;
    p.fd = open(file, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
    struct stat st;
    if (p.fd < 0 || fstat(p.fd, &st) < 0 || (uint64_t)st.st_size < bs) {
        fprintf(stderr, "%s: cannot open, or not a regular file of at least %zu bytes\n", file, bs);
        return 1;
    }
    p.bs = bs;
    p.blocks = (uint64_t)st.st_size / bs;
    p.rng = seed ? seed : 1;
    for (unsigned i = 0; i < depth; i++) {
        if (posix_memalign(&p.bufs[i], 4096, bs) != 0)
            return 1;
        memset(p.bufs[i], 0, bs);
    }
    unsigned flags = single_issuer ? IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN : 0;
    int rc = io_uring_queue_init(depth, &p.ring, flags);
    if (rc < 0) {
        fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-rc));
        return (rc == -ENOSYS || rc == -EPERM) ? 77 : 1;
    }
    printf("build: %s (optimized: %s), liburing peer\n", AURAIO_BENCH_BUILDTYPE, AURAIO_BENCH_OPTIMIZED);
    printf("read: %s, bs %zu, depth %u, %s%s\n", file, bs, depth, direct ? "O_DIRECT" : "buffered",
           single_issuer ? ", single issuer" : "");
    fflush(stdout);

    uint64_t ops = 0;
    uint64_t start = bench_now_ns();
    uint64_t start_cpu = bench_cpu_ns(), stop_cpu = 0;
    uint64_t end = max_ops ? UINT64_MAX : start + (uint64_t)(seconds * 1e9);
    for (unsigned i = 0; i < depth; i++)
        queue_read(&p, i);
    unsigned in_flight = depth;
    bool stopping = false;
    while (in_flight > 0) {
        rc = io_uring_submit_and_wait(&p.ring, 1);
        if (rc < 0 && rc != -EINTR) {
            fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-rc));
            goto out;
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&p.ring, head, cqe)
        {
            seen++;
            in_flight--;
            if (cqe->res != (int)bs) {
                fprintf(stderr, "read: %s\n", cqe->res < 0 ? strerror(-cqe->res) : "short read");
                goto out;
            }
            if (stopping)
                continue;
            ops++;
            if (max_ops && ops >= max_ops)
                stopping = true;
            queue_read(&p, (unsigned)io_uring_cqe_get_data64(cqe));
            in_flight++;
        }
        io_uring_cq_advance(&p.ring, seen);
        /* One clock read per round, not per read: the loop stays the cheapest honest peer. */
        if (!stopping && !max_ops && bench_now_ns() >= end) {
            stopping = true;
            stop_cpu = bench_cpu_ns();
        }
    }
    double elapsed = (double)(bench_now_ns() - start) / 1e9;
    double iops = (double)ops / elapsed;
    double cpu_s = (double)((stop_cpu ? stop_cpu : bench_cpu_ns()) - start_cpu) / 1e9;
    printf("iops %.0f, %llu reads\n", iops, (unsigned long long)ops);
    printf("RESULT iops=%.0f ops=%llu seconds=%.3f cpu_s=%.6f depth=%u direct=%d single_issuer=%d build=%s\n", iops,
           (unsigned long long)ops, elapsed, cpu_s, depth, direct ? 1 : 0, single_issuer ? 1 : 0, AURAIO_BENCH_BUILDTYPE);
    status = ops > 0 ? 0 : 3;
out:
    io_uring_queue_exit(&p.ring);
    for (unsigned i = 0; i < depth; i++)
        free(p.bufs[i]);
    close(p.fd);
    return status;
}
