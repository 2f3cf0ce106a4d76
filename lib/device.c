/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fd -> device class table (device.h). Nothing here runs per I/O: the hot path reads the map
 * inline (auraio__device_cached); this file resolves an fd on its first use, grows the map and
 * revalidates cached entries from the tick.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "device.h"

#include "uring_sys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct device_map *map_new(uint32_t len)
{
    struct device_map *m = malloc(sizeof(*m) + len);
    if (m) {
        m->older = NULL;
        m->len = len;
        for (uint32_t i = 0; i < len; i++)
            atomic_init(&m->cls[i], DEVICE_UNRESOLVED);
    }
    return m;
}

int auraio__device_table_init(struct device_table *t)
{
    memset(t, 0, sizeof(*t));
    struct device_map *m = map_new(DEVICE_MAP_MIN);
    t->keys = calloc(DEVICE_MAP_MIN, sizeof(*t->keys));
    if (!m || !t->keys) {
        free(m);
        free(t->keys);
        t->keys = NULL;
        return -ENOMEM;
    }
    atomic_init(&t->map, m);
    atomic_init(&t->count, 1); /* DEVICE_NONE */
    return 0;
}

void auraio__device_maps_free(_Atomic(struct device_map *) *head)
{
    struct device_map *m = atomic_load_explicit(head, memory_order_relaxed);
    while (m) {
        struct device_map *older = m->older;
        free(m);
        m = older;
    }
    atomic_store_explicit(head, NULL, memory_order_relaxed);
}

void auraio__device_table_destroy(struct device_table *t)
{
    auraio__device_maps_free(&t->map);
    free(t->keys);
    t->keys = NULL;
}

int auraio__device_probe(struct device_table *t, int fd, struct device_probe *out)
{
    struct stat st;
    memset(out, 0, sizeof(*out));
    t->fstat_calls++;
    int rc = auraio__sys_fstat(fd, &st);
    if (rc < 0)
        return rc;
    out->key.dev = (uint64_t)st.st_dev;
    out->key.rdev = (uint64_t)st.st_rdev;
    out->key.ino = (uint64_t)st.st_ino;
    /* Block devices are their own device; a file is its filesystem's. Pipes, sockets, character
     * devices and anonymous inodes (eventfd, io_uring, ...) have no queue depth to control. */
    if (S_ISBLK(st.st_mode)) {
        out->storage = true;
        out->id = out->key.rdev;
    } else if (S_ISREG(st.st_mode)) {
        out->storage = true;
        out->id = out->key.dev;
    }
    return 0;
}

int auraio__device_find(const struct device_table *t, uint64_t id)
{
    uint32_t n = atomic_load_explicit(&((struct device_table *)t)->count, memory_order_relaxed);
    for (uint32_t c = 1; c < n; c++) {
        if (t->ids[c] == id)
            return (int)c;
    }
    return -1;
}

uint32_t auraio__device_add(struct device_table *t, uint64_t id, bool *fresh)
{
    uint32_t n = atomic_load_explicit(&t->count, memory_order_relaxed);
    *fresh = n < DEVICE_CLASSES;
    if (!*fresh)
        return DEVICE_CLASSES - 1; /* shared by every device past the seventh */
    t->ids[n] = id;
    return n;
}

void auraio__device_publish_count(struct device_table *t, uint32_t count)
{
    atomic_store_explicit(&t->count, count, memory_order_release);
}

/* Replace the map by one that covers @p fd, the old one kept for readers that still hold it. */
static int map_grow(struct device_table *t, int fd)
{
    struct device_map *old = atomic_load_explicit(&t->map, memory_order_relaxed);
    uint64_t len = old->len;
    while (len <= (uint64_t)fd)
        len *= 2;
    if (len > DEVICE_MAP_MAX_FD)
        len = DEVICE_MAP_MAX_FD;
    struct device_map *m = map_new((uint32_t)len);
    struct device_key *keys = calloc(len, sizeof(*keys));
    if (!m || !keys) {
        free(m);
        free(keys);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < old->len; i++)
        atomic_init(&m->cls[i], atomic_load_explicit(&old->cls[i], memory_order_relaxed));
    memcpy(keys, t->keys, old->len * sizeof(*keys));
    free(t->keys);
    t->keys = keys;
    m->older = old;
    atomic_store_explicit(&t->map, m, memory_order_release);
    return 0;
}

int auraio__device_remember(struct device_table *t, int fd, uint32_t cls, const struct device_key *key)
{
    if (fd < 0 || (unsigned)fd >= DEVICE_MAP_MAX_FD)
        return 0; /* classed DEVICE_NONE without a lookup (device.h) */
    struct device_map *m = atomic_load_explicit(&t->map, memory_order_relaxed);
    if ((unsigned)fd >= m->len) {
        int rc = map_grow(t, fd);
        if (rc < 0)
            return rc;
        m = atomic_load_explicit(&t->map, memory_order_relaxed);
    }
    t->keys[fd] = *key;
    atomic_store_explicit(&m->cls[fd], (uint8_t)cls, memory_order_release);
    return 0;
}

void auraio__device_forget(struct device_table *t, int fd)
{
    /* No lock: a forget that races a growth may land in the replaced copy; revalidation then
     * catches the number (device.h). */
    struct device_map *m = atomic_load_explicit(&t->map, memory_order_acquire);
    if (fd >= 0 && (unsigned)fd < m->len)
        atomic_store_explicit(&m->cls[fd], DEVICE_UNRESOLVED, memory_order_relaxed);
}

unsigned auraio__device_revalidate(struct device_table *t, uint64_t now_ns)
{
    bool first = t->reval_due_ns == 0;
    if (now_ns < t->reval_due_ns)
        return 0;
    t->reval_due_ns = now_ns + DEVICE_REVALIDATE_NS;
    if (first)
        return 0; /* the first pass a period after the first tick: fds were just resolved */
    struct device_map *m = atomic_load_explicit(&t->map, memory_order_relaxed);
    unsigned checked = 0, forgotten = 0;
    uint32_t fd = t->reval_next < m->len ? t->reval_next : 0;
    for (uint32_t scanned = 0; scanned < m->len && scanned < DEVICE_REVALIDATE_SCAN; scanned++) {
        if (atomic_load_explicit(&m->cls[fd], memory_order_relaxed) != DEVICE_UNRESOLVED) {
            struct device_probe p;
            int rc = auraio__device_probe(t, (int)fd, &p);
            /* Closed, or open on another file (maybe on the same device): the next use resolves it
             * again, one fstat, rather than this pass guessing which. */
            if (rc < 0 || memcmp(&p.key, &t->keys[fd], sizeof(p.key)) != 0) {
                atomic_store_explicit(&m->cls[fd], DEVICE_UNRESOLVED, memory_order_relaxed);
                forgotten++;
            }
            if (++checked >= DEVICE_REVALIDATE_BATCH) {
                fd = (fd + 1) % m->len;
                break;
            }
        }
        fd = (fd + 1) % m->len;
    }
    t->reval_next = fd;
    return forgotten;
}
