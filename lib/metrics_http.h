/* SPDX-License-Identifier: Apache-2.0 */
/* The embeddable /metrics server (metrics_http.c); api.c checks arguments and sets errno. */
#ifndef AURAIO_METRICS_HTTP_H
#define AURAIO_METRICS_HTTP_H

#include "auraio.h"

struct auraio_engine;

/* @p address NULL: 127.0.0.1. @return 0, -EINVAL (not an IP literal), -EBUSY (the engine has one),
 * -ENOMEM, or the socket's -errno (-EADDRINUSE, -EACCES ...). */
int auraio__metrics_server_start(struct auraio_engine *e, const char *address, int port,
                                 struct auraio_metrics_server **out);
/* @return 0, or -EINVAL when the engine no longer owns @p s (already stopped). */
int auraio__metrics_server_stop(struct auraio_metrics_server *s);
int auraio__metrics_server_port(const struct auraio_metrics_server *s);

#endif
