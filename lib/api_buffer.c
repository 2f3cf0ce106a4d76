/* SPDX-License-Identifier: Apache-2.0 */
/* Public buffer-pool entry points: argument checks and errno, forwarding to buffer_pool.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "auraio.h"

#include "buffer_pool.h"
#include "engine.h"
#include "validate.h"

#include <errno.h>

AURAIO_API void *auraio_buffer_alloc(auraio_engine_t *engine, size_t size)
{
    void *buf = NULL;
    int rc = engine ? auraio__pool_alloc(engine->pool, size, &buf) : -EINVAL;
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    return buf;
}

AURAIO_API int auraio_buffer_free(auraio_engine_t *engine, void *buf, size_t size)
{
    validate_or_return(engine != NULL, -EINVAL);
    return auraio__pool_free(engine->pool, buf, size);
}

AURAIO_API int auraio_get_buffer_stats(const auraio_engine_t *engine, auraio_buffer_stats_t *stats)
{
    validate_or_return(engine != NULL && stats != NULL, -EINVAL);
    auraio__pool_stats(engine->pool, stats);
    return 0;
}
