/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A checker for Prometheus text exposition documents, for what promtool does not check: buckets
 * monotone in `le`, `+Inf` equal to `_count`, no duplicate series, each family's HELP/TYPE once and
 * before its samples, every sample in a declared family, counters non-decreasing between two
 * scrapes. Values are kept as text so that exact decimals (a `_sum` in seconds with ns digits) can
 * be compared exactly. Reads the 0.0.4 text format and OpenMetrics 1.0.0 (families without their
 * counter _total or info _info suffix, "# EOF" last).
 */
#ifndef AURAIO_TEST_EXPO_CHECK_H
#define AURAIO_TEST_EXPO_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXPO_MAX_SAMPLES 8192
#define EXPO_MAX_FAMILIES 128

struct expo_sample {
    char name[96];
    char labels[160]; /* as written, between the braces (our writer's order is fixed) */
    char value[48];
    int family;       /* index into families */
};

struct expo_family {
    char name[96];
    char type[16];
    int help_count, type_count;
};

struct expo {
    struct expo_sample samples[EXPO_MAX_SAMPLES];
    int nsamples;
    struct expo_family families[EXPO_MAX_FAMILIES];
    int nfamilies;
    bool eof; /* an OpenMetrics "# EOF" was seen (nothing may follow) */
};

/* Parse and check one document's structure. @return NULL, or a message (static storage) saying
 * what is wrong and where. */
const char *expo_parse_check(const char *doc, struct expo *out);
/* Counters (and histogram _count/_sum/_bucket) of @p later are >= those of @p earlier, and every
 * series of @p earlier is still there. @return NULL or a message. */
const char *expo_check_counters_monotone(const struct expo *earlier, const struct expo *later);
/* The value text of series @p name{@p labels}, or NULL. */
const char *expo_value(const struct expo *x, const char *name, const char *labels);
/* Exact decimal seconds ("12.000345678") to ns; false when not an exact ns decimal. */
bool expo_seconds_to_ns(const char *text, uint64_t *ns);
/* An unsigned integer value; false when not one. */
bool expo_u64(const char *text, uint64_t *v);

#endif
