/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The log hook. The handler, its user_data and the level are one triple, replaced together under
 * a small mutex and copied out under it, so a message never pairs one handler with another's
 * user_data; the handler itself runs after the mutex is released (it may log, or replace itself).
 * Messages are formatted on the stack: logging allocates nothing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "log.h"

#include "uring_abi.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

/* Long enough for every message the library writes; a longer one is cut, never overflowed. */
#define LOG_MESSAGE_MAX 256
#define LOG_LEVEL_OFF (AURAIO_LOG_ERROR + 1)

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static auraio_log_fn log_handler;
static void *log_user_data;
static int log_min_level = LOG_LEVEL_OFF;
/* Mirror of log_min_level (OFF without a handler) for the lock-free early out. */
static _Atomic int log_threshold = LOG_LEVEL_OFF;

AURAIO_API int auraio_set_log_handler(auraio_log_fn handler, void *user_data, int min_level)
{
    if (min_level < AURAIO_LOG_DEBUG || min_level > AURAIO_LOG_ERROR)
        return -EINVAL;
    pthread_mutex_lock(&log_lock);
    log_handler = handler;
    log_user_data = user_data;
    log_min_level = handler ? min_level : LOG_LEVEL_OFF;
    atomic_store_explicit(&log_threshold, log_min_level, memory_order_relaxed);
    pthread_mutex_unlock(&log_lock);
    return 0;
}

bool auraio__log_enabled(int level)
{
    return level >= atomic_load_explicit(&log_threshold, memory_order_relaxed);
}

void auraio__log(int level, const char *fmt, ...)
{
    if (!auraio__log_enabled(level))
        return;
    pthread_mutex_lock(&log_lock);
    auraio_log_fn handler = log_handler;
    void *user_data = log_user_data;
    int min_level = log_min_level;
    pthread_mutex_unlock(&log_lock);
    if (!handler || level < min_level)
        return;
    char message[LOG_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    handler(level, message, user_data);
}

static void flag_names(unsigned flags, char *out, size_t len)
{
    static const struct {
        unsigned flag;
        const char *name;
    } names[] = {
        {IORING_SETUP_SQPOLL, "SQPOLL"},
        {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
        {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
        {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
        {IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
        {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
    };
    size_t pos = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((flags & names[i].flag) && pos < len) {
            int n = snprintf(out + pos, len - pos, "%s%s", pos ? "|" : "", names[i].name);
            pos += n > 0 ? (size_t)n : 0;
        }
    }
}

void auraio__log_setup_fallbacks(unsigned wanted, unsigned granted)
{
    unsigned refused = wanted & ~granted;
    if (!refused || !auraio__log_enabled(AURAIO_LOG_DEBUG))
        return;
    char names[128];
    if (refused & IORING_SETUP_SQPOLL)
        auraio__log(AURAIO_LOG_WARN,
                    "sqpoll_unavailable: the kernel refused SQPOLL (old kernel or no privilege); submissions "
                    "enter the kernel through system calls");
    if (refused & ~IORING_SETUP_SQPOLL) {
        flag_names(refused & ~IORING_SETUP_SQPOLL, names, sizeof(names));
        auraio__log(AURAIO_LOG_INFO, "setup_flags_refused: the kernel refused %s; the rings run without them", names);
    }
}
