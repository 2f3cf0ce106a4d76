/* SPDX-License-Identifier: Apache-2.0 */
/* Semantic checks of a Prometheus text exposition that promtool lacks (see expo_check.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "expo_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char msg[512];

static int find_family(const struct expo *x, const char *name)
{
    for (int i = 0; i < x->nfamilies; i++) {
        if (!strcmp(x->families[i].name, name))
            return i;
    }
    return -1;
}

/* The family a sample name belongs to: itself, or a histogram's base for _bucket/_sum/_count. */
static int family_of(const struct expo *x, const char *sample)
{
    int f = find_family(x, sample);
    if (f >= 0)
        return f;
    /* Suffixed samples: a histogram's, and in OpenMetrics a counter's _total and an info's _info
     * (families there are named without them). */
    static const struct {
        const char *suffix, *type;
    } suffixes[] = {{"_bucket", "histogram"}, {"_sum", "histogram"}, {"_count", "histogram"},
                    {"_total", "counter"},    {"_info", "info"}};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t n = strlen(sample), k = strlen(suffixes[i].suffix);
        if (n > k && !strcmp(sample + n - k, suffixes[i].suffix)) {
            char base[96];
            snprintf(base, sizeof(base), "%.*s", (int)(n - k), sample);
            f = find_family(x, base);
            if (f >= 0 && !strcmp(x->families[f].type, suffixes[i].type))
                return f;
        }
    }
    return -1;
}

static const char *comment(struct expo *x, const char *line, int lineno)
{
    char kind[8], name[96], rest[256];
    if (sscanf(line, "# %7s %95s %255[^\n]", kind, name, rest) < 3)
        return NULL; /* a plain comment */
    if (strcmp(kind, "HELP") && strcmp(kind, "TYPE"))
        return NULL;
    int f = find_family(x, name);
    if (f < 0) {
        /* A family's comments come before its samples, so a new one may not follow a sample of it. */
        for (int i = 0; i < x->nsamples; i++) {
            if (!strcmp(x->samples[i].name, name)) {
                snprintf(msg, sizeof(msg), "line %d: %s of %s after its samples", lineno, kind, name);
                return msg;
            }
        }
        if (x->nfamilies == EXPO_MAX_FAMILIES)
            return "too many families";
        f = x->nfamilies++;
        memset(&x->families[f], 0, sizeof(x->families[f]));
        snprintf(x->families[f].name, sizeof(x->families[f].name), "%s", name);
    }
    struct expo_family *fam = &x->families[f];
    if (!strcmp(kind, "HELP")) {
        fam->help_count++;
    } else {
        fam->type_count++;
        snprintf(fam->type, sizeof(fam->type), "%.15s", rest);
        if (strcmp(rest, "counter") && strcmp(rest, "gauge") && strcmp(rest, "histogram") &&
            strcmp(rest, "summary") && strcmp(rest, "untyped") && strcmp(rest, "info")) {
            snprintf(msg, sizeof(msg), "line %d: unknown type %s", lineno, rest);
            return msg;
        }
    }
    if (fam->help_count > 1 || fam->type_count > 1) {
        snprintf(msg, sizeof(msg), "line %d: %s given twice for %s", lineno, kind, name);
        return msg;
    }
    return NULL;
}

static const char *sample(struct expo *x, const char *line, int lineno)
{
    if (x->nsamples == EXPO_MAX_SAMPLES)
        return "too many samples";
    struct expo_sample *s = &x->samples[x->nsamples];
    memset(s, 0, sizeof(*s));
    size_t n = strcspn(line, "{ ");
    if (n == 0 || n >= sizeof(s->name))
        goto bad;
    memcpy(s->name, line, n);
    const char *p = line + n;
    if (*p == '{') {
        const char *end = strchr(p, '}');
        if (!end || (size_t)(end - p - 1) >= sizeof(s->labels))
            goto bad;
        memcpy(s->labels, p + 1, (size_t)(end - p - 1));
        p = end + 1;
    }
    if (*p != ' ' || sscanf(p + 1, "%47s", s->value) != 1)
        goto bad;
    char *endv;
    strtod(s->value, &endv);
    if (*endv && strcmp(s->value, "+Inf") && strcmp(s->value, "NaN"))
        goto bad;
    s->family = family_of(x, s->name);
    if (s->family < 0) {
        snprintf(msg, sizeof(msg), "line %d: sample %s has no HELP/TYPE family", lineno, s->name);
        return msg;
    }
    if (!x->families[s->family].type_count || !x->families[s->family].help_count) {
        snprintf(msg, sizeof(msg), "line %d: %s lacks HELP or TYPE", lineno, s->name);
        return msg;
    }
    for (int i = 0; i < x->nsamples; i++) {
        if (!strcmp(x->samples[i].name, s->name) && !strcmp(x->samples[i].labels, s->labels)) {
            snprintf(msg, sizeof(msg), "line %d: duplicate series %s{%s}", lineno, s->name, s->labels);
            return msg;
        }
    }
    /* Families are contiguous: a sample may only belong to the latest family or continue it. */
    if (x->nsamples > 0 && x->samples[x->nsamples - 1].family != s->family && s->family != x->nfamilies - 1) {
        snprintf(msg, sizeof(msg), "line %d: %s is separated from its family", lineno, s->name);
        return msg;
    }
    x->nsamples++;
    return NULL;
bad:
    snprintf(msg, sizeof(msg), "line %d: malformed sample: %.200s", lineno, line);
    return msg;
}

/* The labels of a histogram sample without its le pair, and the le text. */
static void split_le(const char *labels, char *rest, size_t rest_len, char *le, size_t le_len)
{
    const char *p = strstr(labels, "le=\"");
    le[0] = '\0';
    if (!p) {
        snprintf(rest, rest_len, "%s", labels);
        return;
    }
    const char *q = strchr(p + 4, '"');
    snprintf(le, le_len, "%.*s", (int)(q - p - 4), p + 4);
    int before = (int)(p - labels);
    if (before > 0 && labels[before - 1] == ',')
        before--;
    snprintf(rest, rest_len, "%.*s%s", before, labels, q[1] == ',' && before == 0 ? q + 2 : q + 1);
}

static const char *check_histograms(const struct expo *x)
{
    for (int i = 0; i < x->nsamples; i++) {
        const struct expo_sample *s = &x->samples[i];
        const struct expo_family *f = &x->families[s->family];
        if (strcmp(f->type, "histogram") || strcmp(s->name + strlen(f->name), "_count"))
            continue;
        /* Walk this series' buckets in document order: le increasing, counts non-decreasing. */
        char bucket_name[112];
        snprintf(bucket_name, sizeof(bucket_name), "%s_bucket", f->name);
        double prev_le = -1, prev_count = -1;
        const char *inf = NULL;
        int buckets = 0;
        for (int j = 0; j < x->nsamples; j++) {
            const struct expo_sample *b = &x->samples[j];
            if (strcmp(b->name, bucket_name))
                continue;
            char rest[160], le[48];
            split_le(b->labels, rest, sizeof(rest), le, sizeof(le));
            if (strcmp(rest, s->labels))
                continue;
            if (!le[0]) {
                snprintf(msg, sizeof(msg), "%s{%s} has no le", b->name, b->labels);
                return msg;
            }
            double lev = !strcmp(le, "+Inf") ? 1e308 : strtod(le, NULL);
            double c = strtod(b->value, NULL);
            if (lev <= prev_le || c < prev_count) {
                snprintf(msg, sizeof(msg), "%s{%s}: le or count not increasing", b->name, b->labels);
                return msg;
            }
            prev_le = lev;
            prev_count = c;
            buckets++;
            if (!strcmp(le, "+Inf"))
                inf = b->value;
        }
        if (!inf || buckets < 2) {
            snprintf(msg, sizeof(msg), "%s{%s}: no +Inf bucket", f->name, s->labels);
            return msg;
        }
        if (strcmp(inf, s->value)) {
            snprintf(msg, sizeof(msg), "%s{%s}: +Inf %s != _count %s", f->name, s->labels, inf, s->value);
            return msg;
        }
        char sum_name[112];
        snprintf(sum_name, sizeof(sum_name), "%s_sum", f->name);
        if (!expo_value(x, sum_name, s->labels)) {
            snprintf(msg, sizeof(msg), "%s{%s}: no _sum", f->name, s->labels);
            return msg;
        }
    }
    return NULL;
}

const char *expo_parse_check(const char *doc, struct expo *x)
{
    memset(x, 0, sizeof(*x));
    int lineno = 0;
    const char *p = doc;
    char line[1024];
    while (*p) {
        size_t n = strcspn(p, "\n");
        lineno++;
        if (p[n] != '\n') {
            snprintf(msg, sizeof(msg), "line %d: the document does not end with a newline", lineno);
            return msg;
        }
        if (n >= sizeof(line)) {
            snprintf(msg, sizeof(msg), "line %d: too long", lineno);
            return msg;
        }
        memcpy(line, p, n);
        line[n] = '\0';
        p += n + 1;
        const char *err = NULL;
        if (x->eof) {
            snprintf(msg, sizeof(msg), "line %d: after # EOF", lineno);
            return msg;
        }
        if (n == 0)
            err = "empty line";
        else if (!strcmp(line, "# EOF"))
            x->eof = true;
        else if (line[0] == '#')
            err = comment(x, line, lineno);
        else
            err = sample(x, line, lineno);
        if (err)
            return err;
    }
    for (int i = 0; i < x->nfamilies; i++) {
        if (x->families[i].help_count != 1 || x->families[i].type_count != 1) {
            snprintf(msg, sizeof(msg), "family %s: HELP %d times, TYPE %d times", x->families[i].name,
                     x->families[i].help_count, x->families[i].type_count);
            return msg;
        }
    }
    return check_histograms(x);
}

const char *expo_value(const struct expo *x, const char *name, const char *labels)
{
    for (int i = 0; i < x->nsamples; i++) {
        if (!strcmp(x->samples[i].name, name) && !strcmp(x->samples[i].labels, labels))
            return x->samples[i].value;
    }
    return NULL;
}

const char *expo_check_counters_monotone(const struct expo *a, const struct expo *b)
{
    for (int i = 0; i < a->nsamples; i++) {
        const struct expo_sample *s = &a->samples[i];
        const char *type = a->families[s->family].type;
        if (strcmp(type, "counter") && strcmp(type, "histogram"))
            continue;
        const char *later = expo_value(b, s->name, s->labels);
        if (!later) {
            snprintf(msg, sizeof(msg), "%s{%s} disappeared", s->name, s->labels);
            return msg;
        }
        if (strtold(later, NULL) < strtold(s->value, NULL)) {
            snprintf(msg, sizeof(msg), "%s{%s} went from %s to %s", s->name, s->labels, s->value, later);
            return msg;
        }
    }
    return NULL;
}

bool expo_seconds_to_ns(const char *text, uint64_t *ns)
{
    uint64_t whole = 0, frac = 0;
    const char *p = text;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++)
        whole = whole * 10 + (uint64_t)(*p - '0');
    int digits = 0;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits == 9)
                return false; /* finer than a nanosecond: not what we print */
            frac = frac * 10 + (uint64_t)(*p - '0');
        }
        if (digits == 0)
            return false;
    }
    if (*p)
        return false;
    for (; digits < 9; digits++)
        frac *= 10;
    *ns = whole * 1000000000u + frac;
    return true;
}

bool expo_u64(const char *text, uint64_t *v)
{
    char *end;
    if (!text || *text < '0' || *text > '9')
        return false;
    *v = strtoull(text, &end, 10);
    return *end == '\0';
}
