/* SPDX-License-Identifier: Apache-2.0 */
/* Argument checks for the public entry points: one macro that returns the error. Unlike dav1d's
 * it never aborts, since tests pass bad arguments on purpose. */
#ifndef AURAIO_VALIDATE_H
#define AURAIO_VALIDATE_H

#include "compiler.h"

#define validate_or_return(cond, err)                                                                 \
    do {                                                                                            \
        if (auraio_unlikely(!(cond)))                                                               \
            return (err);                                                                           \
    } while (0)

#endif
