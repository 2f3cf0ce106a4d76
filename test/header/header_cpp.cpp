// SPDX-License-Identifier: Apache-2.0
// auraio.h must compile alone as C++ (extern "C", no C-only constructs) and link.
#include "auraio.h"

int main()
{
    auraio_options_t o;
    auraio_options_init(&o);
    auraio_buf_t b = auraio_buf(nullptr);
    return auraio_version_int() == AURAIO_VERSION_INT && b.type == AURAIO_BUF_UNREGISTERED ? 0 : 1;
}
