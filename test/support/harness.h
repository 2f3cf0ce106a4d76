/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared test helpers: the io_uring availability gate (exit 77 with a reason where the kernel has
 * no io_uring, 99 on anything unexpected), temp files filled with a position-keyed pattern, and a
 * completion recorder that counts callbacks per request so "exactly once" can be asserted.
 */
#ifndef AURAIO_TEST_HARNESS_H
#define AURAIO_TEST_HARNESS_H

#include "auraio.h"

#include <stdatomic.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Call first in main(): exits 77 (skip) if io_uring cannot be used here, saying why. */
void harness_require_io_uring(void);

/* Byte at file position @p pos of the test pattern (keyed by @p seed). */
static inline unsigned char harness_pattern_byte(uint64_t pos, unsigned seed)
{
    uint64_t x = (pos / 8 + 1) * 0x9e3779b97f4a7c15ull ^ (uint64_t)seed * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 31;
    return (unsigned char)(x >> ((pos % 8) * 8));
}
void harness_fill_pattern(void *buf, size_t len, uint64_t file_pos, unsigned seed);
/* Index of the first mismatching byte, or -1 when buf matches the pattern. */
long harness_check_pattern(const void *buf, size_t len, uint64_t file_pos, unsigned seed);

/* A temp file of @p size bytes holding the pattern; unlinked at once, the fd keeps it. Also
 * returns its path's directory fd-less: the file is gone from the namespace. */
int harness_pattern_file(size_t size, unsigned seed);
/* An empty temp file opened read-write with @p flags added (e.g. O_DIRECT); -errno on failure. */
int harness_temp_file(int extra_flags);
/* True when O_DIRECT opens and reads work in the temp directory (probed, not inferred). */
bool harness_odirect_supported(void);

/** Wait on @p s for at most @p ms (a watchdog's bound); false when it timed out. */
bool harness_sem_wait_ms(sem_t *s, int ms);

/* Records completions: per-slot callback counts and results. */
#define RECORDER_MAX 4096
struct recorder {
    _Atomic int calls[RECORDER_MAX];
    _Atomic long results[RECORDER_MAX];
    _Atomic int total;
};
struct recorder_ctx {
    struct recorder *rec;
    int id;
};
void recorder_init(struct recorder *r);
/* The callback to pass with a struct recorder_ctx * as user_data. */
void recorder_callback(auraio_request_t *req, ssize_t result, void *user_data);
/* Asserts (via cmocka) that ids [0, n) were each called exactly once. */
void recorder_assert_each_once(struct recorder *r, int n);

/* A submit call that must fail: NULL with errno @p err (needs <cmocka.h> and <errno.h>). */
#define EXPECT_NULL_ERRNO(call, err)                                                                  \
    do {                                                                                            \
        errno = 0;                                                                                  \
        assert_null(call);                                                                          \
        assert_int_equal(errno, err);                                                               \
    } while (0)

/* Callback for submissions that must be refused: it only counts, and tests assert the count is 0. */
extern _Atomic int harness_unexpected_callbacks;
void harness_must_not_run(auraio_request_t *req, ssize_t result, void *user_data);

/* Wait (auraio_wait loops) until @p target callbacks have run in total or @p timeout_ms passes. */
int harness_wait_for(auraio_engine_t *e, _Atomic int *counter, int target, int timeout_ms);

#endif
