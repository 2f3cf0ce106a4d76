/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bffio's verify blocks: a header (magic, offset, length, checksum of the payload) followed by
 * payload bytes derived from the offset, so a block read back later - by the same job's verify
 * pass or by a read job with verify= - proves it is the block written at that offset, intact.
 * verify=pattern writes the pattern instead and checks every byte.
 */
#ifndef BFFIO_VERIFY_H
#define BFFIO_VERIFY_H

#include "job.h"

#include <stddef.h>
#include <stdint.h>

uint32_t bffio_crc32c(uint32_t crc, const void *data, size_t len);
void bffio_md5(const void *data, size_t len, uint8_t out[16]);

/* Fill @p buf (@p len bytes, written at @p offset) for the job's verify mode. */
void bffio_verify_fill(const struct bffio_job *job, void *buf, size_t len, uint64_t offset);
/*
 * Check a block read back. @return 0, or -1 with @p msg saying what is wrong (always naming the
 * offset).
 */
int bffio_verify_check(const struct bffio_job *job, const void *buf, size_t len, uint64_t offset, const char *file,
                       char *msg, size_t msg_len);

#endif
