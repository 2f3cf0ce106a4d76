/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fio's units (HOWTO.rst, "Parameter types"): sizes with k/m/g/t/p suffixes whose base kb_base
 * decides (1024: k = kb = KiB = 1024; 1000: k = kb = 1000 and KiB = 1024, the IEC spelling always
 * meaning powers of two), and times with us/ms/s/m/h/d suffixes and a per-option default unit.
 */
#include "job.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Multiplier for a size suffix ("", "k", "KiB", "mb", ...); 0 when it is not one. */
static uint64_t size_mult(const char *suf, unsigned kb_base)
{
    static const char prefixes[] = "kmgtpe";
    if (!*suf || !strcasecmp(suf, "b"))
        return 1;
    const char *p = strchr(prefixes, tolower((unsigned char)suf[0]));
    if (!p)
        return 0;
    unsigned power = (unsigned)(p - prefixes) + 1;
    const char *rest = suf + 1;
    uint64_t base;
    if (!*rest || !strcasecmp(rest, "b"))
        base = kb_base;
    else if (!strcasecmp(rest, "ib") || !strcasecmp(rest, "i"))
        base = 1024;
    else
        return 0;
    uint64_t m = 1;
    for (unsigned i = 0; i < power; i++)
        m *= base;
    return m;
}

int bffio_parse_size(const char *s, unsigned kb_base, uint64_t *out)
{
    while (isspace((unsigned char)*s))
        s++;
    if (!*s || *s == '-')
        return -1;
    char *end;
    errno = 0;
    double v;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        unsigned long long h = strtoull(s, &end, 16);
        v = (double)h;
        if (end == s + 2)
            return -1;
    } else {
        v = strtod(s, &end);
    }
    if (end == s || errno || !isfinite(v) || v < 0)
        return -1;
    char suf[8];
    size_t n = strlen(end);
    while (n && isspace((unsigned char)end[n - 1]))
        n--;
    if (n >= sizeof(suf))
        return -1;
    memcpy(suf, end, n);
    suf[n] = '\0';
    uint64_t m = size_mult(suf, kb_base ? kb_base : 1024);
    if (!m)
        return -1;
    double r = v * (double)m;
    if (r >= 18446744073709551615.0)
        return -1;
    *out = (uint64_t)(r + 0.5);
    return 0;
}

int bffio_parse_time_us(const char *s, uint64_t default_unit_us, uint64_t *out)
{
    while (isspace((unsigned char)*s))
        s++;
    if (!*s || *s == '-')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0)
        return -1;
    static const struct {
        const char *suf;
        uint64_t us;
    } units[] = {
        {"", 0},          {"us", 1},           {"usec", 1},         {"ms", 1000},        {"msec", 1000},
        {"s", 1000000},   {"sec", 1000000},    {"m", 60000000},     {"min", 60000000},   {"h", 3600000000ull},
        {"d", 86400000000ull},
    };
    size_t n = strlen(end);
    while (n && isspace((unsigned char)end[n - 1]))
        n--;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i].suf) == n && !strncasecmp(end, units[i].suf, n)) {
            uint64_t unit = units[i].us ? units[i].us : default_unit_us;
            double r = v * (double)unit;
            if (r >= 9.2e18)
                return -1;
            *out = (uint64_t)(r + 0.5);
            return 0;
        }
    }
    return -1;
}
