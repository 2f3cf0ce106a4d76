/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Requests: the per-ring slot that carries one operation from submit to callback, and the public
 * handle that names a slot at one generation. The handle doubles as the SQE user_data, so a CQE
 * names its slot and generation directly; the library's own SQEs (cancels, wakeups) are told apart
 * by USER_DATA_WAKE and USER_DATA_CANCEL_BIT below, a request's linked timeout by USER_DATA_TIMEOUT_BIT.
 */
#ifndef AURAIO_REQUEST_H
#define AURAIO_REQUEST_H

#include "auraio.h"

#include <linux/time_types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

_Static_assert(sizeof(void *) == 8, "request handles pack slot and generation into 64 bits");

enum request_op {
    REQ_READ,
    REQ_WRITE,
    REQ_READV,
    REQ_WRITEV,
    REQ_FSYNC,
    /* Metadata and space ops (ops.c prepares their SQEs): no bytes, no latency sample. */
    REQ_OPENAT,
    REQ_CLOSE,
    REQ_STATX,
    REQ_FALLOCATE,
    REQ_FTRUNCATE,
    REQ_SYNC_FILE_RANGE,
    REQ_FADVISE,
    REQ_MADVISE,
    REQ_TIMEOUT, /* a timer (auraio_timeout): outside the in-flight limit, never in a chain */
    REQ_OP_COUNT,
};

/* Whether the kernel breaks a chain when this op fails: reads and writes (also on a short
 * transfer), openat and close mark themselves failed; fsync, statx, fallocate and the others only
 * report the error and let the chain run on (6.18), so ring.c ends the kernel's chain after them
 * and continues it itself. */
static inline bool request_op_fails_links(unsigned op)
{
    return op <= REQ_WRITEV || op == REQ_OPENAT || op == REQ_CLOSE;
}

/* Data ops feed the controller's latency histogram; every other op is only counted. */
static inline bool request_op_is_data(unsigned op)
{
    return op <= REQ_WRITEV;
}

enum request_state {
    REQ_FREE,     /* on the ring's free list */
    REQ_BACKLOG,  /* accepted, waiting for room under the in-flight limit */
    REQ_INFLIGHT, /* SQE prepared (maybe not yet entered) or in the kernel */
    REQ_FORMING,  /* in a chain whose last request its thread has not submitted yet */
    REQ_PARKED,   /* admitted chain member waiting in the library for a predecessor (ring.c) */
    REQ_DONE,     /* result known; callback pending or running; slot not reusable yet */
};

/* Everything a submit call hands to a ring. */
struct request_args {
    auraio_callback_t callback;
    void *user_data;
    uint64_t offset; /* before addr, as in the SQE: the plain SQE copies both in one move */
    uint64_t addr;   /* buffer or iovec array */
    uint32_t len;    /* bytes, or iovec count */
    int fd;
    uint8_t op;             /* enum request_op */
    uint8_t device;         /* its device class (device.h), set by the engine at submit */
    /* Everything from here on is zero in a plain request (struct request_plain). */
    uint8_t fixed_buffer;   /* READ_FIXED/WRITE_FIXED with buf_index; addr holds the offset */
    uint8_t fixed_file;     /* fd is an index into the registered file table */
    uint16_t buf_index;
    uint32_t fsync_flags;
    uint8_t link;        /* 0, IOSQE_IO_LINK or IOSQE_IO_HARDLINK: the next request depends on this */
    uint32_t op_flags;   /* open flags, statx flags, fallocate mode, sync_file_range flags, advice */
    uint32_t aux;        /* open mode, statx mask */
    uint32_t file_index; /* openat into / close of registered file index - 1; 0: a plain fd */
    uint64_t addr2;      /* statx: the caller's struct statx */
    uint64_t timeout_ns; /* deadline (IORING_OP_LINK_TIMEOUT) or a timer's delay; 0: none */
};

/*
 * A lone read or write from plain memory without flags (no link, registered buffer or file, file
 * index or deadline): the hot path's arguments, the leading fields of request_args in the same
 * order, so api.c fills eight fields instead of clearing 88 bytes and the ring copies them as one
 * block (request_args_from_plain).
 */
struct request_plain {
    auraio_callback_t callback;
    void *user_data;
    uint64_t offset;
    uint64_t addr;
    uint32_t len;
    int fd;
    uint8_t op; /* REQ_READ to REQ_WRITEV */
    uint8_t device;
    /* The SQE's opcode for op (ring.h, ring_plain_opcode): past the prefix, never copied into the
     * slot; set by the builder, where op is a constant, so the ring needs no table lookup. */
    uint8_t sqe_opcode;
};

#define REQUEST_PLAIN_BYTES offsetof(struct request_args, fixed_buffer)
#define request_plain_same_(f)                                                                                        \
    _Static_assert(offsetof(struct request_plain, f) == offsetof(struct request_args, f), "request_plain mirrors " #f)
request_plain_same_(callback);
request_plain_same_(user_data);
request_plain_same_(addr);
request_plain_same_(offset);
request_plain_same_(len);
request_plain_same_(fd);
request_plain_same_(op);
request_plain_same_(device);
_Static_assert(offsetof(struct request_plain, device) + 1 == REQUEST_PLAIN_BYTES, "request_plain is the prefix");
#undef request_plain_same_

/* @p a becomes the full arguments of @p p: its prefix copied (a few vector moves), the rest zero. */
static inline void request_args_from_plain(struct request_args *a, const struct request_plain *p)
{
    memcpy(a, p, REQUEST_PLAIN_BYTES);
    memset((char *)a + REQUEST_PLAIN_BYTES, 0, sizeof(*a) - REQUEST_PLAIN_BYTES);
}

/* Every field zero, field by field: for this 88-byte struct gcc emits `rep stosq` for a memset or
 * an initializer, eleven iterations plus setup on every read and write (callgrind, issue #11). */
static inline void request_args_clear(struct request_args *a)
{
    _Static_assert(sizeof(struct request_args) == 88, "request_args_clear must clear every field");
    a->callback = NULL;
    a->user_data = NULL;
    a->addr = 0;
    a->offset = 0;
    a->len = 0;
    a->fd = 0;
    a->op = 0;
    a->fixed_buffer = 0;
    a->fixed_file = 0;
    a->device = 0;
    a->buf_index = 0;
    a->fsync_flags = 0;
    a->link = 0;
    a->op_flags = 0;
    a->aux = 0;
    a->file_index = 0;
    a->addr2 = 0;
    a->timeout_ns = 0;
}

struct request {
    struct request_args args;
    struct request *next; /* free list or backlog link (backlog: chain heads only) */
    /* Chains: every member points at its head; the head's backlog entry stands for the chain,
     * whose members follow through chain_next. A lone request is a chain of one. */
    struct request *chain_head;
    struct request *chain_next;
    /* The deadline or timer duration: the kernel reads it when it takes the SQE, so it lives in the
     * slot, which stays taken until every CQE of the request is back. */
    struct __kernel_timespec ts;
    uint64_t submit_ns;
    /* request_make_handle(ring, slot, generation): the slot's current name, its generation never
     * 0 (handle_generation reads it); needed three times per I/O (SQE, submit's return,
     * completion) and advanced in place by request_retire. */
    uint64_t handle;
    int32_t result;
    int32_t timeout_result; /* the linked timeout's CQE: -ETIME when the deadline fired */
    uint32_t chain_len;     /* on the head: members, itself included */
    /* The last four bytes, together: the reap tests state and quick with one compare
     * (request_quick_inflight), start_plain and request_retire write them together, and the slot
     * is 160 bytes (an index is two instructions). */
    uint8_t state; /* enum request_state; read and written under the ring lock only */
    /* In flight as a plain request (start_plain): a lone read or write, one CQE, no deadline,
     * nothing registered, not under memcheck. Its CQE completes it without the general path's
     * tests (auraio__ring_reap); meaningful only while state is REQ_INFLIGHT, cleared by
     * request_retire. */
    bool quick;
    uint8_t cqes_left; /* CQEs still to come: the op's and its linked timeout's */
    bool cancel_issued : 1;
    bool split : 1; /* the rest of its chain (chain_next...) is parked until it completes */
    /* split, or it uses a registered buffer or file: its completion has more to undo. One bit for
     * the completion path to test, where three tests of four fields were ~9 instructions per read
     * (callgrind, issue #11). */
    bool finish_slow : 1;
};

_Static_assert(sizeof(struct request) == 160, "a slot is 160 bytes: 5 << 5, an index in two instructions");
_Static_assert(offsetof(struct request, quick) == offsetof(struct request, state) + 1,
               "request_quick_inflight reads state and quick as one 16-bit value");

/* Whether @p q is in flight as a quick request: state and quick compared at once (the expected
 * pair is built the same way, so byte order does not matter; it folds to a constant). */
static inline bool request_quick_inflight(const struct request *q)
{
    static const uint8_t want_bytes[2] = {REQ_INFLIGHT, 1};
    uint16_t both, want;
    memcpy(&both, &q->state, sizeof(both));
    memcpy(&want, want_bytes, sizeof(want));
    return both == want;
}

/* A free slot's shape, which the plain submit relies on (ring.c, submit_plain_locked): a chain of
 * one (itself), and every argument past the plain prefix zero, so that a plain request writes
 * only the prefix and nothing else of the slot (chain fields and the cleared tail were ~7
 * instructions per read, callgrind, issue #11). Every path that gives a slot back restores it,
 * except the reap's quick path, whose requests never left it. */
static inline void request_reshape_free(struct request *q)
{
    q->chain_head = q;
    q->chain_next = NULL;
    q->chain_len = 1;
    memset((char *)&q->args + REQUEST_PLAIN_BYTES, 0, sizeof(q->args) - REQUEST_PLAIN_BYTES);
}

/* Whether @p q has a free slot's shape (request_reshape_free): debug builds assert it wherever a
 * slot is given back or taken by the plain submit. */
static inline bool request_free_shaped(const struct request *q)
{
    static const unsigned char zero[sizeof(struct request_args) - REQUEST_PLAIN_BYTES];
    return q->chain_head == q && q->chain_next == NULL && q->chain_len == 1 &&
           memcmp((const char *)&q->args + REQUEST_PLAIN_BYTES, zero, sizeof(zero)) == 0;
}

/* A free slot becomes a plain request in flight: state, quick, one CQE and no flag, the four
 * bytes written at once (the flags are clear in a free slot: request_retire). */
static inline void request_start_quick(struct request *q)
{
    static const uint8_t bytes[4] = {REQ_INFLIGHT, 1, 1, 0};
    _Static_assert(offsetof(struct request, cqes_left) == offsetof(struct request, state) + 2 &&
                       sizeof(struct request) == offsetof(struct request, state) + 4,
                   "state, quick, cqes_left and the flag bits are the slot's last four bytes");
    memcpy((char *)q + offsetof(struct request, state), bytes, sizeof(bytes));
}

#define REQUEST_SLOT_BITS 16
#define REQUEST_RING_BITS 16
#define REQUEST_MAX_SLOTS (1u << REQUEST_SLOT_BITS)
#define REQUEST_MAX_RINGS (1u << REQUEST_RING_BITS)

static inline uint64_t request_make_handle(uint32_t ring_index, uint32_t slot, uint32_t generation)
{
    return ((uint64_t)generation << 32) | ((uint64_t)ring_index << REQUEST_SLOT_BITS) | slot;
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
 * cancel carries its target's handle with the top bit set (generations stay below 2^30 for that),
 * so its CQE says which request the kernel could not cancel yet and a later cancel may retry it.
 * A request's linked timeout carries its handle with bit 62 set, so its CQE finds the request. */
#define USER_DATA_WAKE 1u /* a NOP posted to wake a thread sleeping in the ring */
#define USER_DATA_ALARM 2u /* the ring's alarm (ring.h): a TIMEOUT timed sleeps count on */
#define USER_DATA_CANCEL_BIT (1ull << 63)
#define USER_DATA_TIMEOUT_BIT (1ull << 62)
#define USER_DATA_OWN_BITS (USER_DATA_CANCEL_BIT | USER_DATA_TIMEOUT_BIT)
#define REQUEST_GENERATION_MASK 0x3fffffffu

/* Advance a slot's generation when it is freed (same ring and slot); past
 * REQUEST_GENERATION_MASK it wraps to 1, skipping 0 so no handle is ever NULL. */
static inline void request_retire(struct request *r)
{
    _Static_assert(REQUEST_GENERATION_MASK == (USER_DATA_TIMEOUT_BIT >> 32) - 1, "a generation ends below bit 62");
    uint64_t h = r->handle + ((uint64_t)1 << 32);
    if (h & USER_DATA_OWN_BITS) /* the generation ran past the mask */
        h = ((uint64_t)1 << 32) | (uint32_t)h;
    r->handle = h;
    r->state = REQ_FREE;
    r->quick = false;
    r->cqes_left = 0;
    r->cancel_issued = false;
    r->split = false;
    r->finish_slow = false;
}

#endif
