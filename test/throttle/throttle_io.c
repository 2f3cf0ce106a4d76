/* SPDX-License-Identifier: Apache-2.0 */
/* The throttle tests' skip gate and fixed-depth read load (see throttle_io.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "throttle_io.h"

#include "harness.h"
#include "throttle.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define BLOCK 4096
#define FILE_SIZE (32u << 20)

const char *tio_dir(void)
{
    const char *d = getenv("TMPDIR");
    return d && *d ? d : "/tmp";
}

void tio_require_throttle(void)
{
    harness_require_io_uring();
    char why[700];
    if (!throttle_available(tio_dir(), why, sizeof(why))) {
        printf("SKIP: no writable block-throttle controller for %s: %s\n", tio_dir(), why);
        exit(77);
    }
    if (!harness_odirect_supported()) {
        printf("SKIP: O_DIRECT does not work in %s\n", tio_dir());
        exit(77);
    }
    printf("# throttle: %s\n", why);
}

void tio_cgroup_line(char *out, size_t size)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    assert_non_null(f);
    char line[1024];
    out[0] = 0;
    /* "7:blkio:/path" (v1) wins over "0::/path" (v2), as in throttle.c. */
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        char *c = strchr(line, ':');
        if (!c)
            continue;
        if (strncmp(c, ":blkio:", 7) == 0) {
            snprintf(out, size, "%s", c + 1);
            break;
        }
        if (strncmp(line, "0::", 3) == 0)
            snprintf(out, size, "%s", c + 1);
    }
    fclose(f);
}

double tio_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void tio_load_init(struct tio_load *l, int depth)
{
    memset(l, 0, sizeof(*l));
    assert_true(depth > 0 && depth <= 64);
    l->depth = depth;
    l->rng = 0x9e3779b97f4a7c15ull;
    int fd = harness_pattern_file(FILE_SIZE, 7);
    assert_true(fd >= 0);
    assert_int_equal(fsync(fd), 0);
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    l->fd = open(proc, O_RDONLY | O_DIRECT | O_CLOEXEC);
    close(fd);
    assert_true(l->fd >= 0);
    l->bufs = aligned_alloc(BLOCK, (size_t)depth * BLOCK);
    assert_non_null(l->bufs);

    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    o.queue_depth = 64;
    o.initial_in_flight = depth;
    o.max_in_flight = depth;
    o.disable_adaptive = true;
    l->engine = auraio_create_with_options(&o);
    assert_non_null(l->engine);
}

void tio_load_fini(struct tio_load *l)
{
    while (auraio_pending_count(l->engine) > 0)
        assert_true(auraio_wait(l->engine, 5000) >= 0);
    auraio_destroy(l->engine);
    close(l->fd);
    free(l->bufs);
    assert_int_equal(l->errors, 0);
}

struct slot_ctx {
    struct tio_load *l;
    int i;
};
static struct slot_ctx ctx[64];

static void on_read(auraio_request_t *req, ssize_t result, void *ud)
{
    (void)req;
    struct slot_ctx *c = ud;
    c->l->busy[c->i] = 0;
    if (result == BLOCK)
        c->l->completed++;
    else
        c->l->errors++;
}

double tio_load_run(struct tio_load *l, double seconds)
{
    uint64_t start_count = l->completed;
    double start = tio_now(), end = start + seconds;
    while (tio_now() < end) {
        for (int i = 0; i < l->depth; i++) {
            if (l->busy[i])
                continue;
            l->rng = l->rng * 6364136223846793005ull + 1442695040888963407ull;
            int64_t off = (int64_t)((l->rng >> 33) % (FILE_SIZE / BLOCK)) * BLOCK;
            ctx[i] = (struct slot_ctx){l, i};
            if (!auraio_read(l->engine, l->fd, auraio_buf(l->bufs + (size_t)i * BLOCK), BLOCK, off, on_read, &ctx[i]))
                fail_msg("auraio_read: %s", strerror(errno));
            l->busy[i] = 1;
        }
        int rc = auraio_wait(l->engine, 5);
        assert_true(rc >= 0 || rc == -ETIME || rc == -EINTR);
    }
    /* No drain: back-to-back windows keep the device busy across them, as a cap change mid-run
     * does (a drained queue lets blk-throttle start a fresh slice with a burst at the next one). */
    return (double)(l->completed - start_count) / (tio_now() - start);
}
