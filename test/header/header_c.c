/* SPDX-License-Identifier: Apache-2.0 */
/* auraio.h must compile alone as strict C11 (no other include before it) and be usable. */
#include "auraio.h"

int main(void)
{
    auraio_options_t o;
    auraio_options_init(&o);
    return auraio_version_int() == AURAIO_VERSION_INT && o.struct_size == sizeof(o) ? 0 : 1;
}
