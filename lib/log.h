/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The log hook (auraio_set_log_handler): the library's only way to say anything. It never writes
 * to stderr itself. Callers must hold no library lock: the handler is user code.
 */
#ifndef AURAIO_LOG_H
#define AURAIO_LOG_H

#include "auraio.h"

#include <stdbool.h>

/* True when a message at @p level would reach a handler (one relaxed load). */
bool auraio__log_enabled(int level);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void auraio__log(int level, const char *fmt, ...);

/* Report the io_uring setup flags the kernel refused (the rings fell back without them): once per
 * engine, from its creation. */
void auraio__log_setup_fallbacks(unsigned wanted, unsigned granted);

#endif
