/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which device an fd's I/O lands on, cached per fd so the hot path pays two loads and no system
 * call (doc/controller.md, "Devices"). An engine sorts its requests into a few device classes:
 * class DEVICE_NONE (pipes, sockets, eventfds, character devices, metadata ops, fds beyond the
 * table) is admitted without a device limit and feeds no controller; every other class is one
 * storage device (a block device's st_rdev, a file's st_dev: files on one filesystem share it)
 * with its own controller group.
 *
 * The map (fd -> class, DEVICE_UNRESOLVED until the fd's first use) is read without a lock: it is replaced whole when
 * it grows, and the old copies stay allocated until the table is destroyed, so a reader holding
 * one never reads freed memory. Everything else is written under the owner's lock (the engine's
 * tick lock), which serialises resolution, revalidation and growth.
 *
 * A closed fd whose number is reused is found two ways: the library's own close and openat
 * (auraio_close, auraio_openat) forget the number at once; a plain close()/open() behind the
 * library's back is caught by revalidation, which re-checks a bounded number of cached fds
 * (st_dev, st_rdev, st_ino) each DEVICE_REVALIDATE_NS off the I/O path. Until then the reused
 * number's I/O is counted against the old device: a depth-accounting error, never a wrong I/O.
 */
#ifndef AURAIO_DEVICE_H
#define AURAIO_DEVICE_H

#include "compiler.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Classes per engine: DEVICE_NONE and up to seven devices. More devices than that share the
 * last class (one controller for them, as before per-device control); a ring carries a backlog
 * and an accumulator per class, so the count is a memory bound, not a speed one. */
#define DEVICE_CLASSES 8u
#define DEVICE_NONE 0u
/* A map entry not resolved yet (maps start filled with it). */
#define DEVICE_UNRESOLVED 0xffu
/* fds at or above this are classed DEVICE_NONE without a lookup: the map is a byte per fd and
 * a process with a million fds open is not the one to pay a megabyte for it. */
#define DEVICE_MAP_MAX_FD (1u << 20)
/* First map size, and how revalidation paces itself (see above). */
#define DEVICE_MAP_MIN 1024u
#define DEVICE_REVALIDATE_NS 250000000ull
#define DEVICE_REVALIDATE_BATCH 64u
/* Slots of the map one revalidation pass scans at most (resolved or not): bounds its cost. */
#define DEVICE_REVALIDATE_SCAN 4096u

struct device_map {
    struct device_map *older; /* the copy this one replaced (freed at destroy) */
    uint32_t len;
    _Atomic uint8_t cls[]; /* the class; DEVICE_UNRESOLVED: not resolved yet */
};

/* What a cached fd was when it was resolved: revalidation compares it with a fresh fstat. */
struct device_key {
    uint64_t dev;  /* st_dev */
    uint64_t rdev; /* st_rdev */
    uint64_t ino;
};

struct device_table {
    _Atomic(struct device_map *) map;
    struct device_key *keys; /* map->len entries */
    uint64_t ids[DEVICE_CLASSES]; /* class -> device id (see auraio_device_stats_t.device_id) */
    _Atomic uint32_t count;        /* classes in use (DEVICE_NONE included) */
    uint32_t reval_next;           /* the fd the next revalidation pass starts at */
    uint64_t reval_due_ns;
    uint64_t fstat_calls;          /* resolutions and revalidations that asked the kernel */
};

/* One fd's classification. */
struct device_probe {
    bool storage; /* a regular file or a block device */
    uint64_t id;  /* its device: st_rdev for a block device, st_dev for a file */
    struct device_key key;
};

int auraio__device_table_init(struct device_table *t);
void auraio__device_table_destroy(struct device_table *t);
/** Free a chain of maps (the current one and every older copy kept for readers); quiescent only. */
void auraio__device_maps_free(_Atomic(struct device_map *) *head);

/* The fd's cached class, or -1 when it has not been resolved (the caller resolves it). */
static inline int auraio__device_cached(const struct device_table *t, int fd)
{
    /* Acquire: a class is published after its controller group and the rings' limits for it. */
    const struct device_map *m = atomic_load_explicit(&((struct device_table *)t)->map, memory_order_acquire);
    if (auraio_likely((unsigned)fd < m->len)) {
        unsigned c = atomic_load_explicit(&((struct device_map *)m)->cls[fd], memory_order_acquire);
        if (auraio_likely(c != DEVICE_UNRESOLVED))
            return (int)c;
    }
    return (unsigned)fd >= DEVICE_MAP_MAX_FD ? (int)DEVICE_NONE : -1;
}

/* Under the owner's lock: fstat @p fd. @return 0 or -errno (then it is classed DEVICE_NONE). */
int auraio__device_probe(struct device_table *t, int fd, struct device_probe *out);
/* Under the owner's lock: the class of device @p id, or -1 when it has none yet. */
int auraio__device_find(const struct device_table *t, uint64_t id);
/* Under the owner's lock: give device @p id the next class (the last one once all are taken).
 * Publish it with auraio__device_publish_count once its group exists. */
uint32_t auraio__device_add(struct device_table *t, uint64_t id, bool *fresh);
void auraio__device_publish_count(struct device_table *t, uint32_t count);
/* Under the owner's lock: cache @p fd's class. @return 0, or -ENOMEM (then it stays unresolved
 * and the next use asks again). */
int auraio__device_remember(struct device_table *t, int fd, uint32_t cls, const struct device_key *key);
/* Forget @p fd (the library closed it, or openat returned its number anew). Any thread. */
void auraio__device_forget(struct device_table *t, int fd);
/* Under the owner's lock, from the tick: when due, re-check up to DEVICE_REVALIDATE_BATCH cached
 * fds and forget those that changed or closed. @return how many were forgotten. */
unsigned auraio__device_revalidate(struct device_table *t, uint64_t now_ns);

#endif
