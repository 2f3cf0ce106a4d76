/* SPDX-License-Identifier: Apache-2.0 */
/* Run-time version queries; the numbers live in include/auraio.h. */
#include "auraio.h"

const char *auraio_version(void)
{
    return AURAIO_VERSION_STRING;
}

int auraio_version_int(void)
{
    return AURAIO_VERSION_INT;
}
