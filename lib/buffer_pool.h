/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The aligned buffer pool behind auraio_buffer_alloc/auraio_buffer_free/auraio_get_buffer_stats.
 * It knows nothing about engines or rings: the engine owns one pool and forwards to it. Buffers are
 * 4096-byte aligned (O_DIRECT-safe), in 16 power-of-two size classes from 4 KiB to 128 MiB; larger
 * requests are served directly by the system allocator and tracked the same way. See
 * doc/buffers.md for the design, thread-exit and destroy semantics.
 */
#ifndef AURAIO_BUFFER_POOL_H
#define AURAIO_BUFFER_POOL_H

#include <stddef.h>

#include "auraio.h"

/* Alignment of every buffer; also the granularity of the allocation-tracking map. */
#define AURAIO_POOL_ALIGN 4096u
#define AURAIO_POOL_MIN_CLASS_SIZE ((size_t)4096)
#define AURAIO_POOL_CLASS_COUNT 16
/* 4 KiB << 15: the largest pooled size; above it buffers are allocated and freed directly. */
#define AURAIO_POOL_MAX_CLASS_SIZE (AURAIO_POOL_MIN_CLASS_SIZE << (AURAIO_POOL_CLASS_COUNT - 1))
/* Upper bound for an explicit shard count. */
#define AURAIO_POOL_MAX_SHARDS 256

struct buffer_pool;

/*
 * Create a pool with @p shard_count shards (0: derived from the online CPU count).
 * @return 0, -EINVAL (NULL @p out, shard_count < 0 or > AURAIO_POOL_MAX_SHARDS), -ENOMEM.
 */
int auraio__pool_create(struct buffer_pool **out, int shard_count);

/*
 * Hand out a 4096-aligned buffer of at least @p size bytes. Thread-safe, takes no lock in the
 * common case (thread-cache hit). @return 0 with *out set, -EINVAL (NULL pool or out, size 0),
 * -ENOMEM (*out is set to NULL on error).
 */
int auraio__pool_alloc(struct buffer_pool *pool, size_t size, void **out);

/*
 * Take back a buffer. @p size must be the size passed to auraio__pool_alloc (any size that maps
 * to the same class is accepted). Thread-safe; any thread may free a buffer allocated by another.
 * @return 0 (also for a NULL @p buf), -EINVAL for a NULL pool, a pointer this pool did not hand
 * out (or not its start), a buffer that is not currently handed out (double free), or a size that
 * does not match the allocation; -EINVAL changes nothing.
 */
int auraio__pool_free(struct buffer_pool *pool, void *buf, size_t size);

/*
 * Fill @p out (reserved bytes zeroed). Thread-safe; exact when no other thread is inside the pool,
 * otherwise a snapshot that may be off by the buffers in motion. Does nothing if either is NULL.
 */
void auraio__pool_stats(const struct buffer_pool *pool, auraio_buffer_stats_t *out);

/*
 * Free every buffer the pool ever handed out (outstanding ones included: pointers still held by
 * the application become invalid) and the pool. No other call on @p pool may run concurrently
 * or follow; other threads may still hold thread caches for it and may exit at any time: their
 * caches are detached safely. NULL is a no-op.
 */
void auraio__pool_destroy(struct buffer_pool *pool);

#endif
