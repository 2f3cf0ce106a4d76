/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Requests: the per-ring slot that carries one operation from submit to callback, and the public
 * handle that names a slot at one generation. The handle doubles as the SQE user_data, so a CQE
 * names its slot and generation directly; the library's own SQEs (cancels, wakeups) are told apart
 * by USER_DATA_WAKE and USER_DATA_CANCEL_BIT below.
 */
#ifndef AURAIO_REQUEST_H
#define AURAIO_REQUEST_H

#include "auraio.h"

#include <stdbool.h>
#include <stdint.h>

_Static_assert(sizeof(void *) == 8, "request handles pack slot and generation into 64 bits");

enum request_op {
    REQ_READ,
    REQ_WRITE,
    REQ_READV,
    REQ_WRITEV,
    REQ_FSYNC,
    REQ_OP_COUNT,
};

enum request_state {
    REQ_FREE,     /* on the ring's free list */
    REQ_BACKLOG,  /* accepted, waiting for room under the in-flight limit */
    REQ_INFLIGHT, /* SQE prepared (maybe not yet entered) or in the kernel */
    REQ_DONE,     /* result known; callback pending or running; slot not reusable yet */
};

/* Everything a submit call hands to a ring. */
struct request_args {
    auraio_callback_t callback;
    void *user_data;
    uint64_t addr; /* buffer or iovec array */
    uint64_t offset;
    uint32_t len; /* bytes, or iovec count */
    int fd;
    uint8_t op;             /* enum request_op */
    uint8_t fixed_buffer;   /* READ_FIXED/WRITE_FIXED with buf_index; addr holds the offset */
    uint8_t fixed_file;     /* fd is an index into the registered file table */
    uint16_t buf_index;
    uint32_t fsync_flags;
};

struct request {
    struct request_args args;
    struct request *next; /* free list or backlog link */
    uint64_t submit_ns;
    int32_t result;
    uint32_t generation; /* never 0 */
    uint16_t slot;
    uint8_t state;       /* enum request_state; read and written under the ring lock only */
    bool cancel_issued;
};

#define REQUEST_SLOT_BITS 16
#define REQUEST_RING_BITS 16
#define REQUEST_MAX_SLOTS (1u << REQUEST_SLOT_BITS)
#define REQUEST_MAX_RINGS (1u << REQUEST_RING_BITS)

static inline uint64_t request_handle(uint32_t ring_index, const struct request *r)
{
    return ((uint64_t)r->generation << 32) | ((uint64_t)ring_index << REQUEST_SLOT_BITS) | r->slot;
}

static inline uint32_t handle_generation(uint64_t h)
{
    return (uint32_t)(h >> 32);
}

static inline uint32_t handle_ring(uint64_t h)
{
    return (uint32_t)(h >> REQUEST_SLOT_BITS) & (REQUEST_MAX_RINGS - 1);
}

static inline uint32_t handle_slot(uint64_t h)
{
    return (uint32_t)h & (REQUEST_MAX_SLOTS - 1);
}

/* user_data of the library's own SQEs. A wake NOP has generation 0, never issued to a request. A
 * cancel carries its target's handle with the top bit set (generations stay below 2^31 for that),
 * so its CQE says which request the kernel could not cancel yet and a later cancel may retry it. */
#define USER_DATA_WAKE 1u /* a NOP posted to wake a thread sleeping in the ring */
#define USER_DATA_CANCEL_BIT (1ull << 63)
#define REQUEST_GENERATION_MASK 0x7fffffffu

/* Advance a slot's generation when it is freed; skips 0 so no handle is ever NULL. */
static inline void request_retire(struct request *r)
{
    r->generation = (r->generation + 1) & REQUEST_GENERATION_MASK;
    if (r->generation == 0)
        r->generation = 1;
    r->state = REQ_FREE;
    r->cancel_issued = false;
}

#endif
