/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for bffio's job parser: any bytes as a job file (includes refused, so the
 * fuzzer never reads the file system). Built by run.sh with clang -fsanitize=fuzzer,address; the
 * same function replays the corpus in every build (replay.c), so an input that once crashed stays
 * a test.
 */
#include "job.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bffio_jobset set;
    struct bffio_error err;
    bffio_jobset_init(&set);
    memset(&err, 0, sizeof(err));
    int rc = bffio_parse_text(&set, (const char *)data, size, "fuzz.fio", BFFIO_PARSE_NO_INCLUDE, &err);
    if (rc == 0) {
        /* What parsed must be usable: names terminated, counts in range. */
        for (unsigned i = 0; i < set.nr; i++) {
            const struct bffio_job *j = &set.jobs[i];
            if (strnlen(j->name, sizeof(j->name)) == sizeof(j->name) || j->numjobs < 1 ||
                j->percentile_nr > BFFIO_MAX_PCT || j->opts_nr > BFFIO_MAX_JOB_OPTS)
                abort();
        }
    } else if (strnlen(err.msg, sizeof(err.msg)) == 0) {
        abort(); /* every error says why */
    }
    bffio_jobset_free(&set);
    return 0;
}
