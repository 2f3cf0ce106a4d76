/* SPDX-License-Identifier: Apache-2.0 */
/* What api.c and api_ops.c (the entry points of the newer ops) share. */
#ifndef AURAIO_API_OPS_H
#define AURAIO_API_OPS_H

#include <stdint.h>

/* AURAIO_LINK / AURAIO_HARDLINK in @p flags to the SQE link flag in *@p link. @return 0, or
 * -EINVAL when both are set. */
int auraio__api_link_flag(unsigned flags, uint8_t *link);

#endif
