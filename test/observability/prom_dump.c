/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prints an engine's Prometheus exposition after real I/O (reads, writes, an fsync, a failed read),
 * for promtool: `prom_dump | promtool check metrics`.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 4096
#define NBLOCKS 64

static _Atomic int done;

static void count(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    (void)res;
    (void)ud;
    atomic_fetch_add(&done, 1);
}

int main(void)
{
    harness_require_io_uring();
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 2;
    o.ring_select = AURAIO_SELECT_ROUND_ROBIN;
    auraio_engine_t *e = auraio_create_with_options(&o);
    int rfd = harness_pattern_file(BLOCK * NBLOCKS, 1), wfd = harness_temp_file(0);
    if (!e || rfd < 0 || wfd < 0) {
        fprintf(stderr, "prom_dump: setup failed: %s\n", strerror(errno));
        return 99;
    }
    static unsigned char bufs[NBLOCKS][BLOCK];
    int n = 0;
    for (int i = 0; i < NBLOCKS; i++, n++)
        if (!auraio_read(e, rfd, auraio_buf(bufs[i]), BLOCK, (int64_t)i * BLOCK, count, NULL))
            return 99;
    for (int i = 0; i < 8; i++, n++)
        if (!auraio_write(e, wfd, auraio_buf(bufs[i]), BLOCK, (int64_t)i * BLOCK, count, NULL))
            return 99;
    if (!auraio_read(e, 1000000, auraio_buf(bufs[0]), BLOCK, 0, count, NULL)) /* fails: EBADF */
        return 99;
    n++;
    if (harness_wait_for(e, &done, n, 5000) != 0)
        return 99;
    int need = auraio_metrics_prometheus(e, NULL, 0);
    char *doc = need > 0 ? malloc((size_t)need + 1) : NULL;
    if (!doc || auraio_metrics_prometheus(e, doc, (size_t)need + 1) != need)
        return 99;
    fputs(doc, stdout);
    free(doc);
    auraio_destroy(e);
    return 0;
}
