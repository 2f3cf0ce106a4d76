/* SPDX-License-Identifier: Apache-2.0 */
/* What api.c and api_ops.c (the entry points of the newer ops) share. */
#ifndef AURAIO_API_OPS_H
#define AURAIO_API_OPS_H

#include "auraio.h"
#include "uring_abi.h"

#include <errno.h>
#include <stdint.h>

/* AURAIO_LINK / AURAIO_HARDLINK in @p flags to the SQE link flag in *@p link. @return 0, or
 * -EINVAL when both are set. Inline: every read and write passes here. */
static inline int auraio__api_link_flag(unsigned flags, uint8_t *link)
{
    if ((flags & AURAIO_LINK) && (flags & AURAIO_HARDLINK))
        return -EINVAL;
    *link = (flags & AURAIO_HARDLINK) ? IOSQE_IO_HARDLINK : (flags & AURAIO_LINK) ? IOSQE_IO_LINK : 0;
    return 0;
}

#endif
