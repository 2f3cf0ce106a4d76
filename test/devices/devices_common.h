/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the programs of test/devices share: the test file on each device, a random read of it, the
 * slow device's block throttle (released on every exit path), an engine at a fixed depth or under
 * the controller, a device's entry in the engine's device stats, and medians.
 */
#ifndef AURAIO_TEST_DEVICES_COMMON_H
#define AURAIO_TEST_DEVICES_COMMON_H

#include "auraio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DEVICES_BLOCK 4096 /* every read: 4 KiB, O_DIRECT, at a random aligned offset */

/* A program's "--flag value" options: each flag's value parsed into *val by its kind. */
enum devices_opt_kind { DEVICES_OPT_STR, DEVICES_OPT_INT, DEVICES_OPT_U64, DEVICES_OPT_DBL };
struct devices_opt {
    const char *flag;
    enum devices_opt_kind kind;
    void *val; /* const char **, int *, uint64_t * or double * */
};
/* Parses argv's pairs by @p opts[0..n); a flag not among them is passed over. */
void devices_parse_args(int argc, char **argv, const struct devices_opt *opts, int n);

/* A program's start, after devices_parse_args: 2, with the usage printed (@p argv0, the two
 * directories and --cap, then @p more_opts), when @p ok is false or a directory is missing; 77,
 * the reason printed, where no block throttle is writable for @p slow_dir; else 0, stdout
 * line-buffered. */
int devices_begin(bool ok, const char *fast_dir, const char *slow_dir, const char *argv0, const char *more_opts);

uint64_t devices_now_ns(void);
void devices_sleep_ns(uint64_t ns);

/* A file of @p mb MiB in @p dir (named after @p tag and the pid), opened O_DIRECT and unlinked at
 * once, so no exit path leaves it behind. Returns the fd; @p dev_id gets its st_dev (the id
 * auraio_device_stats_t.device_id names). Exits with a message on failure. */
int devices_open_file(const char *dir, const char *tag, int mb, uint64_t *dev_id);

/* Reads DEVICES_BLOCK bytes of @p fd into @p buf at the next of @p rng's random offsets among
 * @p blocks blocks. Exits with a message naming @p name when the engine refuses it. */
void devices_read(auraio_engine_t *e, const char *name, int fd, uint64_t *rng, uint64_t blocks, void *buf,
                  auraio_callback_t cb, void *ud);

/* A completed read must have read the whole block; exits naming @p name otherwise. */
void devices_check_read(const char *name, ssize_t res);

/* An engine of @p rings rings (@p select: an auraio_ring_select_t), room for @p queue_depth
 * requests per ring, under the controller (@p fixed_depth 0) or adaptation off at @p fixed_depth.
 * Exits with a message on failure. */
auraio_engine_t *devices_engine(int rings, int select, int queue_depth, int fixed_depth);

/* The slow device's cap. devices_throttle_skip: 77 (its reason printed) where no block throttle is
 * writable for @p dir here, else 0. devices_throttle_start: caps @p dir's device at @p read_iops,
 * the group released at exit and on SIGINT/SIGTERM; 0, or 1 with the reason printed.
 * devices_throttle_stop removes the group. */
int devices_throttle_skip(const char *dir);
int devices_throttle_start(const char *dir, uint64_t read_iops);
const char *devices_throttle_path(void);
void devices_throttle_stop(void);

/* The index of device @p id among the @p n entries of @p s (at most @p cap of them filled), or -1. */
int devices_stats_index(const auraio_device_stats_t *s, int n, int cap, uint64_t id);

int devices_cmp_int(const void *a, const void *b);
int devices_cmp_dbl(const void *a, const void *b);
/* The median of @p v[0..n) (n <= 64), @p v left as it is; of an even count, the mean of the two middle values. */
double devices_median(const double *v, int n);
/* The median of the ints @p v[0..n) (the upper middle of an even count), sorting @p v; 0 when n is 0. */
int devices_median_int(int *v, int n);

#endif
