/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the throttle tests: the skip gate (exit 77 with the reason when no throttle controller
 * is writable for the temp directory's disk) and a fixed-depth O_DIRECT random-read load through
 * auraio whose IOPS over a window the tests compare with the cap.
 */
#ifndef AURAIO_TEST_THROTTLE_IO_H
#define AURAIO_TEST_THROTTLE_IO_H

#include "auraio.h"

#include <stdint.h>

/* The directory temp files and throttle groups are made for: $TMPDIR (the build dir under meson). */
const char *tio_dir(void);

/* Exit 77 (printing why) unless io_uring works and a throttle group can be made for tio_dir(). */
void tio_require_throttle(void);

/* The blkio (v1) or v2 line of /proc/self/cgroup, without the hierarchy id ("blkio:/x"). */
void tio_cgroup_line(char *out, size_t size);

struct tio_load {
    auraio_engine_t *engine;
    int fd;
    int depth;
    unsigned char *bufs;
    int busy[64];
    uint64_t completed;
    uint64_t errors;
    uint64_t rng;
};

/* A 32 MiB file of written data (unwritten extents would read without disk I/O), opened O_DIRECT,
 * and an engine held at @p depth in flight (one ring, adaptation off). */
void tio_load_init(struct tio_load *l, int depth);
void tio_load_fini(struct tio_load *l);
/* Keep @p depth reads in flight for @p seconds; @return completions per second in that time. The
 * reads stay in flight at the end, so consecutive calls measure one continuous run. */
double tio_load_run(struct tio_load *l, double seconds);

double tio_now(void);

#endif
