/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fio's job-file and command-line syntax (fio's HOWTO.rst "Job file format" and options.c):
 * INI sections, [global] sections whose options every later job starts from, `include`, `;` and
 * `#` comments, ${ENV} and $ncpus/$pagesize/$mb_memory substitutions, parenthesised arithmetic,
 * and the same options as --name=value flags. Every option fio has that bffio does not implement
 * is refused by name: a job must never run with part of its description ignored.
 */
#include "job.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_INCLUDE_DEPTH 8
#define MAX_LINE 8192

struct pctx {
    struct bffio_jobset *set;
    struct bffio_job global;   /* what the next job starts from */
    int cur;                   /* index of the job being filled; -1 = a [global] section */
    bool recording_global;     /* the first [global]: its options go to the JSON "global options" */
    bool seen_global;
    unsigned flags;
    unsigned depth;
    const char *file;
    unsigned line;
    struct bffio_error *err;
};

static void set_err(struct pctx *c, const char *option, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(struct pctx *c, const char *option, const char *fmt, ...)
{
    struct bffio_error *e = c->err;
    snprintf(e->file, sizeof(e->file), "%s", c->file ? c->file : "command line");
    e->line = c->line;
    snprintf(e->option, sizeof(e->option), "%s", option ? option : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------------------------------
 * Defaults
 */

void bffio_job_defaults(struct bffio_job *j)
{
    memset(j, 0, sizeof(*j));
    snprintf(j->filename_format, sizeof(j->filename_format), "$jobname.$jobnum.$filenum");
    j->nrfiles = 1;
    j->rw_read = true;
    j->rwmixread = 50;
    for (int d = 0; d < BFFIO_DDIRS; d++)
        j->bs[d] = j->bs_min[d] = j->bs_max[d] = 4096;
    j->iodepth_batch_submit = 1;
    j->numjobs = 1;
    j->loops = 1;
    j->invalidate = true;
    j->randrepeat = true;
    j->do_verify = true;
    j->verify_fatal = false;
    j->clat_percentiles = true;
    static const double pct[] = {1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99};
    memcpy(j->percentile_list, pct, sizeof(pct));
    j->percentile_nr = sizeof(pct) / sizeof(pct[0]);
    j->log_avg_msec = 0;
    snprintf(j->ioengine, sizeof(j->ioengine), "psync");
    j->kb_base = 1024;
}

void bffio_jobset_init(struct bffio_jobset *set)
{
    memset(set, 0, sizeof(*set));
    set->output_format = BFFIO_FMT_NORMAL;
}

void bffio_jobset_free(struct bffio_jobset *set)
{
    free(set->jobs);
    set->jobs = NULL;
    set->nr = 0;
}

/* ---------------------------------------------------------------------------------------------
 * Value helpers
 */

static int copy_str(struct pctx *c, const char *opt, char *dst, size_t cap, const char *val)
{
    if (strlen(val) >= cap) {
        set_err(c, opt, "value is too long (at most %zu characters)", cap - 1);
        return -1;
    }
    memcpy(dst, val, strlen(val) + 1);
    return 0;
}

static int parse_bool(struct pctx *c, const char *opt, const char *val, bool *out)
{
    if (!*val || !strcmp(val, "1") || !strcasecmp(val, "true") || !strcasecmp(val, "on") ||
        !strcasecmp(val, "yes")) {
        *out = true;
        return 0;
    }
    if (!strcmp(val, "0") || !strcasecmp(val, "false") || !strcasecmp(val, "off") || !strcasecmp(val, "no")) {
        *out = false;
        return 0;
    }
    set_err(c, opt, "'%s' is not a boolean (0 or 1)", val);
    return -1;
}

static int parse_uint(struct pctx *c, const char *opt, const char *val, unsigned kb_base, uint64_t lo, uint64_t hi,
                      uint64_t *out)
{
    uint64_t v;
    if (bffio_parse_size(val, kb_base, &v) < 0) {
        set_err(c, opt, "'%s' is not a number", val);
        return -1;
    }
    if (v < lo || v > hi) {
        set_err(c, opt, "%llu is out of range [%llu, %llu]", (unsigned long long)v, (unsigned long long)lo,
                (unsigned long long)hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* A size, or N% when @p pct is non-NULL. */
static int parse_size_pct(struct pctx *c, const char *opt, const char *val, unsigned kb_base, uint64_t *out,
                          unsigned *pct)
{
    size_t n = strlen(val);
    if (pct && n > 1 && val[n - 1] == '%') {
        char num[32];
        if (n - 1 >= sizeof(num)) {
            set_err(c, opt, "'%s' is not a percentage", val);
            return -1;
        }
        memcpy(num, val, n - 1);
        num[n - 1] = '\0';
        char *end;
        long p = strtol(num, &end, 10);
        if (*end || end == num || p < 1 || p > 100) {
            set_err(c, opt, "'%s' is not a percentage from 1%% to 100%%", val);
            return -1;
        }
        *pct = (unsigned)p;
        *out = 0;
        return 0;
    }
    if (bffio_parse_size(val, kb_base, out) < 0) {
        set_err(c, opt, "'%s' is not a size (e.g. 4k, 1g, 512KiB%s)", val, pct ? ", 50%" : "");
        return -1;
    }
    if (pct)
        *pct = 0;
    return 0;
}

/* fio's per-direction lists: "r,w,t"; a single value applies to all; an empty field keeps it. */
static int parse_ddir_sizes(struct pctx *c, const char *opt, const char *val, unsigned kb_base, uint64_t lo,
                            uint64_t out[BFFIO_DDIRS])
{
    char buf[256];
    if (copy_str(c, opt, buf, sizeof(buf), val) < 0)
        return -1;
    uint64_t v[BFFIO_DDIRS];
    bool given[BFFIO_DDIRS] = {false, false, false};
    int n = 0;
    char *save = NULL, *p = buf;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (n >= BFFIO_DDIRS) {
            set_err(c, opt, "at most three comma-separated values (read,write,trim)");
            return -1;
        }
        if (*p) {
            if (bffio_parse_size(p, kb_base, &v[n]) < 0 || v[n] < lo) {
                set_err(c, opt, "'%s' is not a valid value", p);
                return -1;
            }
            given[n] = true;
        }
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    (void)save;
    if (n == 1) {
        for (int d = 0; d < BFFIO_DDIRS; d++)
            out[d] = v[0];
    } else {
        /* fio: "bs=,8k" leaves reads at their value; a missing trim field copies write. */
        for (int d = 0; d < n; d++)
            if (given[d])
                out[d] = v[d];
        if (n == 2 && given[1])
            out[BFFIO_DDIR_TRIM] = v[1];
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Option handlers
 */

typedef int (*opt_fn)(struct pctx *c, struct bffio_job *j, const char *opt, const char *val);

#define STR_OPT(fn, field)                                                                             \
    static int fn(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)              \
    {                                                                                                  \
        return copy_str(c, opt, j->field, sizeof(j->field), val);                                      \
    }
#define BOOL_OPT(fn, field)                                                                            \
    static int fn(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)              \
    {                                                                                                  \
        return parse_bool(c, opt, val, &j->field);                                                     \
    }
#define UINT_OPT(fn, field, lo, hi)                                                                    \
    static int fn(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)              \
    {                                                                                                  \
        uint64_t v;                                                                                    \
        if (parse_uint(c, opt, val, j->kb_base, lo, hi, &v) < 0)                                      \
            return -1;                                                                                 \
        j->field = (__typeof__(j->field))v;                                                            \
        return 0;                                                                                      \
    }
#define TIME_OPT(fn, field, unit)                                                                      \
    static int fn(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)              \
    {                                                                                                  \
        if (bffio_parse_time_us(val, unit, &j->field) < 0) {                                           \
            set_err(c, opt, "'%s' is not a time (e.g. 10, 500ms, 2m)", val);                         \
            return -1;                                                                                 \
        }                                                                                              \
        return 0;                                                                                      \
    }

STR_OPT(o_name, name)
STR_OPT(o_description, description)
STR_OPT(o_directory, directory)
STR_OPT(o_filename_format, filename_format)
STR_OPT(o_wait_for, wait_for)
BOOL_OPT(o_thread, thread)
BOOL_OPT(o_time_based, time_based)
BOOL_OPT(o_direct, direct)
BOOL_OPT(o_invalidate, invalidate)
BOOL_OPT(o_end_fsync, end_fsync)
BOOL_OPT(o_fsync_on_close, fsync_on_close)
BOOL_OPT(o_create_on_open, create_on_open)
BOOL_OPT(o_unlink, unlink)
BOOL_OPT(o_randrepeat, randrepeat)
BOOL_OPT(o_norandommap, norandommap)
BOOL_OPT(o_group_reporting, group_reporting)
BOOL_OPT(o_lat_percentiles, lat_percentiles)
BOOL_OPT(o_clat_percentiles, clat_percentiles)
BOOL_OPT(o_do_verify, do_verify)
BOOL_OPT(o_verify_fatal, verify_fatal)
UINT_OPT(o_nrfiles, nrfiles, 1, 4096)
UINT_OPT(o_iodepth, iodepth, 1, BFFIO_MAX_IODEPTH)
UINT_OPT(o_iodepth_batch, iodepth_batch_submit, 0, BFFIO_MAX_IODEPTH)
UINT_OPT(o_numjobs, numjobs, 1, BFFIO_MAX_NUMJOBS)
UINT_OPT(o_loops, loops, 1, 1000000)
UINT_OPT(o_fsync, fsync_blocks, 0, UINT32_MAX)
UINT_OPT(o_fdatasync, fdatasync_blocks, 0, UINT32_MAX)
UINT_OPT(o_randseed, randseed, 0, UINT64_MAX)
UINT_OPT(o_log_avg_msec, log_avg_msec, 0, 86400000)
UINT_OPT(o_verify_backlog, verify_backlog, 0, UINT32_MAX)
TIME_OPT(o_runtime, runtime_us, 1000000)
TIME_OPT(o_ramp_time, ramp_us, 1000000)
TIME_OPT(o_startdelay, startdelay_us, 1000000)
TIME_OPT(o_thinktime, thinktime_us, 1)

static int o_filename(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    if (!*val) {
        set_err(c, opt, "needs a file name");
        return -1;
    }
    return copy_str(c, opt, j->filename, sizeof(j->filename), val);
}

static int o_size(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    return parse_size_pct(c, opt, val, j->kb_base, &j->size, &j->size_pct);
}

static int o_filesize(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    return parse_size_pct(c, opt, val, j->kb_base, &j->filesize, NULL);
}

static int o_offset(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    return parse_size_pct(c, opt, val, j->kb_base, &j->offset, &j->offset_pct);
}

static int o_offset_increment(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    return parse_size_pct(c, opt, val, j->kb_base, &j->offset_increment, NULL);
}

static int o_io_size(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    return parse_size_pct(c, opt, val, j->kb_base, &j->io_size, NULL);
}

static int o_rw(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    static const struct {
        const char *name;
        bool r, w, rnd;
    } modes[] = {
        {"read", true, false, false},      {"write", false, true, false},    {"randread", true, false, true},
        {"randwrite", false, true, true},  {"rw", true, true, false},        {"readwrite", true, true, false},
        {"randrw", true, true, true},
    };
    char mode[32];
    const char *colon = strchr(val, ':');
    size_t n = colon ? (size_t)(colon - val) : strlen(val);
    if (n >= sizeof(mode))
        n = sizeof(mode) - 1;
    memcpy(mode, val, n);
    mode[n] = '\0';
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcmp(mode, modes[i].name))
            continue;
        j->rw_read = modes[i].r;
        j->rw_write = modes[i].w;
        j->rw_random = modes[i].rnd;
        j->rw_nr = 0;
        if (colon) {
            if (bffio_parse_size(colon + 1, j->kb_base, &j->rw_nr) < 0 || (j->rw_random && j->rw_nr == 0)) {
                set_err(c, opt, "'%s': the number after ':' is not valid", val);
                return -1;
            }
        }
        return 0;
    }
    if (!strcmp(mode, "trim") || !strcmp(mode, "randtrim") || !strcmp(mode, "trimwrite") ||
        !strcmp(mode, "randtrimwrite")) {
        set_err(c, opt, "'%s' is a fio mode bffio does not support (no trim through auraio)", mode);
        return -1;
    }
    set_err(c, opt, "'%s' is not a valid mode (read, write, randread, randwrite, rw, readwrite, randrw)", val);
    return -1;
}

static int o_rwmixread(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    uint64_t v;
    if (parse_uint(c, opt, val, 1000, 0, 100, &v) < 0)
        return -1;
    j->rwmixread = (unsigned)v;
    return 0;
}

static int o_rwmixwrite(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    uint64_t v;
    if (parse_uint(c, opt, val, 1000, 0, 100, &v) < 0)
        return -1;
    j->rwmixread = 100 - (unsigned)v;
    return 0;
}

static int o_bs(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    if (parse_ddir_sizes(c, opt, val, j->kb_base, 1, j->bs) < 0)
        return -1;
    for (int d = 0; d < BFFIO_DDIRS; d++) {
        if (j->bs[d] > (64u << 20)) {
            set_err(c, opt, "block size %llu is above bffio's 64 MiB limit", (unsigned long long)j->bs[d]);
            return -1;
        }
        j->bs_min[d] = j->bs_max[d] = j->bs[d];
        j->bssplit_nr[d] = 0;
    }
    return 0;
}

static int o_bsrange(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    char buf[256];
    if (copy_str(c, opt, buf, sizeof(buf), val) < 0)
        return -1;
    char *fields[BFFIO_DDIRS];
    int n = 0;
    for (char *p = buf;;) {
        if (n == BFFIO_DDIRS) {
            set_err(c, opt, "at most three ranges (read,write,trim)");
            return -1;
        }
        fields[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    for (int d = 0; d < BFFIO_DDIRS; d++) {
        char *f = fields[d < n ? d : n - 1];
        char *dash = strchr(f, '-');
        uint64_t lo, hi;
        if (dash)
            *dash = '\0';
        if (!dash || bffio_parse_size(f, j->kb_base, &lo) < 0 || bffio_parse_size(dash + 1, j->kb_base, &hi) < 0 ||
            lo == 0 || hi < lo || hi > (64u << 20)) {
            if (dash)
                *dash = '-';
            set_err(c, opt, "'%s' is not a range like 4k-64k", f);
            return -1;
        }
        *dash = '-';
        j->bs_min[d] = lo;
        j->bs_max[d] = hi;
        j->bs[d] = lo;
        j->bssplit_nr[d] = 0;
    }
    return 0;
}

/* bssplit=4k/10:64k/50:32k/40[,write list] - fio's weighted block sizes. */
static int o_bssplit(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    char buf[1024];
    if (copy_str(c, opt, buf, sizeof(buf), val) < 0)
        return -1;
    struct bffio_bssplit lists[BFFIO_DDIRS][BFFIO_MAX_BSSPLIT];
    unsigned nr[BFFIO_DDIRS] = {0, 0, 0};
    int dirs = 0;
    char *p = buf;
    for (;;) {
        if (dirs == BFFIO_DDIRS) {
            set_err(c, opt, "at most three lists (read,write,trim)");
            return -1;
        }
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        unsigned total = 0, zero = 0;
        for (char *e = p; e && *e;) {
            char *colon = strchr(e, ':');
            if (colon)
                *colon = '\0';
            if (nr[dirs] == BFFIO_MAX_BSSPLIT) {
                set_err(c, opt, "more than %d entries", BFFIO_MAX_BSSPLIT);
                return -1;
            }
            char *slash = strchr(e, '/');
            uint64_t bs, perc = 0;
            if (slash)
                *slash = '\0';
            if (bffio_parse_size(e, j->kb_base, &bs) < 0 || bs == 0 || bs > (64u << 20) ||
                (slash && (bffio_parse_size(slash + 1, 1000, &perc) < 0 || perc > 100))) {
                set_err(c, opt, "'%s' is not a size/percent entry (e.g. 4k/30)", e);
                return -1;
            }
            lists[dirs][nr[dirs]].bs = bs;
            lists[dirs][nr[dirs]].perc = (unsigned)perc;
            nr[dirs]++;
            total += (unsigned)perc;
            zero += perc == 0;
            e = colon ? colon + 1 : NULL;
        }
        if (nr[dirs] == 0 || total > 100 || (zero == 0 && total != 100)) {
            set_err(c, opt, "the percentages must add up to 100 (entries without one share the rest)");
            return -1;
        }
        /* fio gives entries without a percentage equal shares of what is left. */
        if (zero) {
            unsigned share = (100 - total) / zero, extra = (100 - total) % zero;
            for (unsigned i = 0; i < nr[dirs]; i++)
                if (lists[dirs][i].perc == 0)
                    lists[dirs][i].perc = share + (extra ? (extra--, 1) : 0);
        }
        dirs++;
        if (!comma)
            break;
        p = comma + 1;
    }
    for (int d = 0; d < BFFIO_DDIRS; d++) {
        int src = d < dirs ? d : dirs - 1;
        memcpy(j->bssplit[d], lists[src], sizeof(lists[src]));
        j->bssplit_nr[d] = nr[src];
        uint64_t lo = UINT64_MAX, hi = 0;
        for (unsigned i = 0; i < nr[src]; i++) {
            lo = lists[src][i].bs < lo ? lists[src][i].bs : lo;
            hi = lists[src][i].bs > hi ? lists[src][i].bs : hi;
        }
        j->bs[d] = j->bs_min[d] = lo;
        j->bs_max[d] = hi;
    }
    return 0;
}

static int o_blockalign(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    uint64_t v[BFFIO_DDIRS] = {0, 0, 0};
    if (parse_ddir_sizes(c, opt, val, j->kb_base, 1, v) < 0)
        return -1;
    j->blockalign = v[0];
    return 0;
}

static int o_buffered(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    bool b;
    if (parse_bool(c, opt, val, &b) < 0)
        return -1;
    j->direct = !b;
    return 0;
}

static int o_random_distribution(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    char mode[32];
    const char *colon = strchr(val, ':');
    size_t n = colon ? (size_t)(colon - val) : strlen(val);
    if (n >= sizeof(mode)) {
        set_err(c, opt, "'%s' is not a distribution", val);
        return -1;
    }
    memcpy(mode, val, n);
    mode[n] = '\0';
    double param = 0;
    if (colon) {
        char *end;
        param = strtod(colon + 1, &end);
        if (end == colon + 1 || (*end && *end != ':') || !isfinite(param)) {
            set_err(c, opt, "'%s': the parameter after ':' is not a number", val);
            return -1;
        }
        if (*end == ':') {
            set_err(c, opt, "'%s': bffio takes one parameter (no centre point)", val);
            return -1;
        }
    }
    if (!strcmp(mode, "random")) {
        j->random_distribution = BFFIO_RAND_UNIFORM;
    } else if (!strcmp(mode, "zipf")) {
        if (!colon || param <= 0 || param == 1.0) {
            set_err(c, opt, "zipf needs a theta > 0 and != 1 (e.g. zipf:1.2)");
            return -1;
        }
        j->random_distribution = BFFIO_RAND_ZIPF;
    } else if (!strcmp(mode, "pareto")) {
        if (!colon || param <= 0 || param >= 1) {
            set_err(c, opt, "pareto needs a power in (0, 1) (e.g. pareto:0.9)");
            return -1;
        }
        j->random_distribution = BFFIO_RAND_PARETO;
    } else if (!strcmp(mode, "normal") || !strcmp(mode, "gauss")) {
        if (!colon || param <= 0 || param > 100) {
            set_err(c, opt, "%s needs a deviation in percent, (0, 100] (e.g. normal:20)", mode);
            return -1;
        }
        j->random_distribution = BFFIO_RAND_NORMAL;
    } else {
        set_err(c, opt, "'%s' is not a distribution (random, zipf, pareto, normal, gauss)", mode);
        return -1;
    }
    j->dist_param[0] = param;
    return 0;
}

static int o_rate(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    return parse_ddir_sizes(c, opt, val, j->kb_base, 0, j->rate);
}

static int o_rate_iops(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    return parse_ddir_sizes(c, opt, val, 1000, 0, j->rate_iops);
}

static int o_rate_min(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    return parse_ddir_sizes(c, opt, val, j->kb_base, 0, j->rate_min);
}

static int o_percentile_list(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    char buf[1024];
    if (copy_str(c, opt, buf, sizeof(buf), val) < 0)
        return -1;
    unsigned n = 0;
    for (char *p = buf; p && *p;) {
        char *colon = strchr(p, ':');
        if (colon)
            *colon = '\0';
        char *end;
        double v = strtod(p, &end);
        if (end == p || *end || !(v >= 0.0 && v <= 100.0)) {
            set_err(c, opt, "'%s' is not a percentile in [0, 100]", p);
            return -1;
        }
        if (n == BFFIO_MAX_PCT) {
            set_err(c, opt, "more than %d percentiles", BFFIO_MAX_PCT);
            return -1;
        }
        j->percentile_list[n++] = v;
        p = colon ? colon + 1 : NULL;
    }
    if (n == 0) {
        set_err(c, opt, "needs at least one percentile");
        return -1;
    }
    j->percentile_nr = n;
    return 0;
}

static int log_opt(struct pctx *c, struct bffio_job *j, const char *opt, const char *val, char *dst, size_t cap)
{
    /* fio: a bare write_bw_log uses the job's name as the file prefix. */
    return copy_str(c, opt, dst, cap, *val ? val : (*j->name ? j->name : "bffio"));
}

static int o_write_bw_log(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    return log_opt(c, j, opt, val, j->bw_log, sizeof(j->bw_log));
}

static int o_write_lat_log(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    return log_opt(c, j, opt, val, j->lat_log, sizeof(j->lat_log));
}

static int o_write_iops_log(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    return log_opt(c, j, opt, val, j->iops_log, sizeof(j->iops_log));
}

static int o_verify(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    if (!strcmp(val, "0") || !strcmp(val, "null"))
        j->verify = BFFIO_VERIFY_NONE;
    else if (!strcmp(val, "crc32c") || !strcmp(val, "crc32c-intel") || !strcmp(val, "1"))
        j->verify = BFFIO_VERIFY_CRC32C;
    else if (!strcmp(val, "md5"))
        j->verify = BFFIO_VERIFY_MD5;
    else if (!strcmp(val, "pattern"))
        j->verify = BFFIO_VERIFY_PATTERN;
    else {
        set_err(c, opt, "'%s' is not supported (crc32c, md5, pattern, 0)", val);
        return -1;
    }
    return 0;
}

/* verify_pattern=0xff00ff00 (hex bytes) or a decimal number (stored little-endian, as fio does). */
static int o_verify_pattern(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    if (val[0] == '0' && (val[1] == 'x' || val[1] == 'X')) {
        const char *h = val + 2;
        size_t n = strlen(h);
        if (n == 0 || n % 2 || n / 2 > sizeof(j->verify_pattern)) {
            set_err(c, opt, "'%s' is not an even number of hex digits (at most %zu bytes)", val,
                    sizeof(j->verify_pattern));
            return -1;
        }
        for (size_t i = 0; i < n / 2; i++) {
            char byte[3] = {h[2 * i], h[2 * i + 1], 0};
            char *end;
            unsigned long b = strtoul(byte, &end, 16);
            if (*end) {
                set_err(c, opt, "'%s' is not hexadecimal", val);
                return -1;
            }
            j->verify_pattern[i] = (uint8_t)b;
        }
        j->verify_pattern_len = (unsigned)(n / 2);
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (end == val || *end || errno || v > UINT32_MAX) {
        set_err(c, opt, "'%s' is not a pattern (0x hex bytes or a 32-bit number)", val);
        return -1;
    }
    for (int i = 0; i < 4; i++)
        j->verify_pattern[i] = (uint8_t)(v >> (8 * i));
    j->verify_pattern_len = 4;
    return 0;
}

static int o_ioengine(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    static const char *const ok[] = {"io_uring", "libaio", "psync", "sync", "pvsync", "pvsync2", "posixaio"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!strcmp(val, ok[i]))
            return copy_str(c, opt, j->ioengine, sizeof(j->ioengine), val);
    set_err(c, opt, "'%s' is not an engine bffio can stand in for (io_uring, libaio, psync, sync, pvsync, "
            "pvsync2, posixaio all run through auraio)", val);
    return -1;
}

static int o_target_p99(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    uint64_t us;
    /* A bare number is milliseconds, as in auraio_options_t.max_p99_latency_ms. */
    if (bffio_parse_time_us(val, 1000, &us) < 0 || us == 0) {
        set_err(c, opt, "'%s' is not a positive time (e.g. 2ms, 500us)", val);
        return -1;
    }
    j->target_p99_ms = (double)us / 1000.0;
    return 0;
}

static int o_kb_base(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    if (!strcmp(val, "1024"))
        j->kb_base = 1024;
    else if (!strcmp(val, "1000"))
        j->kb_base = 1000;
    else {
        set_err(c, opt, "'%s' must be 1024 or 1000", val);
        return -1;
    }
    return 0;
}

static int o_wait_on_last(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    return parse_bool(c, opt, val, &j->stonewall);
}

static int o_file_service_type(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    (void)j;
    if (!strcmp(val, "roundrobin"))
        return 0;
    set_err(c, opt, "only 'roundrobin' (fio's default) is supported, not '%s'", val);
    return -1;
}

static int o_fallocate(struct pctx *c, struct bffio_job *j, const char *opt, const char *val)
{
    (void)j;
    /* Only the layout of write-only jobs could differ; bffio lays files out with real data. */
    static const char *const ok[] = {"none", "native", "posix", "keep", "0", "1"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!strcmp(val, ok[i]))
            return 0;
    set_err(c, opt, "'%s' is not a fallocate mode (none, native, posix, keep, 0, 1)", val);
    return -1;
}

struct opt_def {
    const char *name;
    const char *alias;
    opt_fn fn;
};

static const struct opt_def options[] = {
    {"name", NULL, o_name},
    {"description", NULL, o_description},
    {"filename", NULL, o_filename},
    {"directory", NULL, o_directory},
    {"filename_format", NULL, o_filename_format},
    {"nrfiles", "nr_files", o_nrfiles},
    {"size", NULL, o_size},
    {"filesize", NULL, o_filesize},
    {"offset", "fileoffset", o_offset},
    {"offset_increment", NULL, o_offset_increment},
    {"io_size", "io_limit", o_io_size},
    {"rw", "readwrite", o_rw},
    {"rwmixread", NULL, o_rwmixread},
    {"rwmixwrite", NULL, o_rwmixwrite},
    {"bs", "blocksize", o_bs},
    {"bsrange", "blocksize_range", o_bsrange},
    {"bssplit", NULL, o_bssplit},
    {"blockalign", "ba", o_blockalign},
    {"iodepth", NULL, o_iodepth},
    {"iodepth_batch_submit", "iodepth_batch", o_iodepth_batch},
    {"numjobs", NULL, o_numjobs},
    {"thread", NULL, o_thread},
    {"runtime", "timeout", o_runtime},
    {"time_based", NULL, o_time_based},
    {"ramp_time", NULL, o_ramp_time},
    {"startdelay", NULL, o_startdelay},
    {"loops", NULL, o_loops},
    {"direct", NULL, o_direct},
    {"buffered", NULL, o_buffered},
    {"invalidate", NULL, o_invalidate},
    {"fsync", NULL, o_fsync},
    {"fdatasync", NULL, o_fdatasync},
    {"end_fsync", NULL, o_end_fsync},
    {"fsync_on_close", NULL, o_fsync_on_close},
    {"create_on_open", NULL, o_create_on_open},
    {"unlink", NULL, o_unlink},
    {"randrepeat", NULL, o_randrepeat},
    {"randseed", NULL, o_randseed},
    {"norandommap", NULL, o_norandommap},
    {"random_distribution", NULL, o_random_distribution},
    {"rate", NULL, o_rate},
    {"rate_iops", NULL, o_rate_iops},
    {"rate_min", NULL, o_rate_min},
    {"thinktime", NULL, o_thinktime},
    {"group_reporting", NULL, o_group_reporting},
    {"percentile_list", "clat_percentile_list", o_percentile_list},
    {"lat_percentiles", NULL, o_lat_percentiles},
    {"clat_percentiles", NULL, o_clat_percentiles},
    {"log_avg_msec", NULL, o_log_avg_msec},
    {"write_bw_log", NULL, o_write_bw_log},
    {"write_lat_log", NULL, o_write_lat_log},
    {"write_iops_log", NULL, o_write_iops_log},
    {"verify", NULL, o_verify},
    {"do_verify", NULL, o_do_verify},
    {"verify_fatal", NULL, o_verify_fatal},
    {"verify_backlog", NULL, o_verify_backlog},
    {"verify_pattern", NULL, o_verify_pattern},
    {"ioengine", NULL, o_ioengine},
    {"target_p99", NULL, o_target_p99},
    {"stonewall", "wait_on_last", o_wait_on_last},
    {"wait_for", NULL, o_wait_for},
    {"kb_base", NULL, o_kb_base},
    {"file_service_type", NULL, o_file_service_type},
    {"fallocate", NULL, o_fallocate},
};

/* Options fio has that bffio does not implement (from fio 3.33's options.c): refused by name. */
static const char *const unsupported[] = {
    "allow_file_create", "allow_mounted_write", "allrandrepeat", "atomic", "bs_is_seq_rand",
    "bs_unaligned", "buffer_compress_chunk", "buffer_compress_percentage", "buffer_pattern",
    "cgroup", "cgroup_nodelete", "cgroup_weight", "clocksource",
    "cmdprio", "cmdprio_bssplit", "cmdprio_class", "cmdprio_percentage", "continue_on_error",
    "cpuchunks", "cpuload", "cpumask", "cpus_allowed", "cpus_allowed_policy", "create_fsync",
    "create_only", "create_serialize", "dedupe_mode", "dedupe_percentage", "dedupe_working_set_percentage",
    "disable_bw_measurement", "disable_clat", "disable_lat", "disable_slat", "disk_util",
    "error_dump", "exec_postrun", "exec_prerun", "exit_what", "exitall", "exitall_on_error",
    "experimental_verify", "file_append", "fill_device", "fill_fs", "fixedbufs", "flow", "flow_id",
    "flow_sleep", "flow_watermark", "gid", "gtod_cpu", "gtod_reduce", "hipri", "hugepage-size",
    "ignore_error", "ignore_zone_limits", "io_submit_mode", "iodepth_batch_complete",
    "iodepth_batch_complete_max", "iodepth_batch_complete_min", "iodepth_low", "ioprio",
    "ioprio_class", "iomem", "iomem_align", "job_max_open_zones", "latency_percentile",
    "latency_run", "latency_target", "latency_window", "lockfile", "lockmem", "log_compression",
    "log_hist_coarseness", "log_hist_msec", "log_max_value", "log_offset", "log_prio",
    "log_store_compressed", "log_unix_epoch", "max_latency", "max_open_zones", "mem", "memory_limit",
    "new_group", "nice", "nonvectored", "number_ios", "numa_cpu_nodes", "numa_mem_policy",
    "offset_align", "openfiles", "overwrite", "per_job_logs", "percentage_random", "pre_read",
    "prio", "prioclass", "profile", "random_generator", "rate_cycle", "rate_ignore_thinktime",
    "rate_process", "read_iolog", "read_iolog_chunked", "refill_buffers", "registerfiles",
    "replay_align", "replay_no_stall", "replay_redirect", "replay_scale", "replay_skip",
    "replay_time_scale", "rw_sequencer", "scramble_buffers", "serialize_overlap", "significant_figures",
    "sqthread_poll", "sqthread_poll_cpu", "sqthread_poll_idle", "steadystate", "steadystate_duration",
    "steadystate_ramp_time", "ss", "ss_dur", "ss_ramp", "sync", "sync_file_range", "thinktime_blocks",
    "thinktime_blocks_type", "thinktime_iotime", "thinktime_spin", "trim_backlog", "trim_backlog_batch",
    "trim_percentage", "trim_verify_zero", "uid", "unified_rw_reporting", "unique_filename",
    "unlink_each_loop", "uncached", "verify_async", "verify_async_cpus", "verify_dump",
    "verify_header_seed", "verify_interval", "verify_offset", "verify_only", "verify_state_load",
    "verify_state_save", "write_barrier", "write_hint", "write_hist_log", "write_iolog",
    "zone_reset_frequency", "zone_reset_threshold", "zonecapacity", "zonemode", "zonerange",
    "zoneskip", "zonesize", "fadvise_hint", "readfua",
    "writefua", "sg_write_mode", "busy_poll",
    "bwavgtime", "iopsavgtime", "stats", "exit_on_io_done",
    "dedupe_global", "block_error_percentiles",
    "ramp_size", "rate_iops_min", "log_entries", "log_alternate_epoch", "log_alternate_epoch_clock_id",
    "zero_buffers",
};

static const struct opt_def *find_option(const char *name)
{
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
        if (!strcmp(options[i].name, name) || (options[i].alias && !strcmp(options[i].alias, name)))
            return &options[i];
    return NULL;
}

static bool is_unsupported(const char *name)
{
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
        if (!strcmp(unsupported[i], name))
            return true;
    return false;
}

/* ---------------------------------------------------------------------------------------------
 * Substitutions: ${ENV}, $ncpus / $pagesize / $mb_memory, then "(arithmetic)" as fio evaluates it.
 */

static long sysval(int which)
{
    long v = sysconf(which);
    return v > 0 ? v : 1;
}

static int substitute(struct pctx *c, const char *opt, const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = in; *p;) {
        char tmp[64];
        const char *add = NULL;
        size_t skip = 1;
        if (p[0] == '$' && p[1] == '{') {
            const char *close = strchr(p + 2, '}');
            if (!close) {
                set_err(c, opt, "'${' without a closing '}'");
                return -1;
            }
            char var[256];
            size_t n = (size_t)(close - (p + 2));
            if (n == 0 || n >= sizeof(var)) {
                set_err(c, opt, "bad environment variable reference");
                return -1;
            }
            memcpy(var, p + 2, n);
            var[n] = '\0';
            add = getenv(var);
            if (!add) {
                set_err(c, opt, "environment variable '%s' is not set", var);
                return -1;
            }
            skip = n + 3;
        } else if (!strncmp(p, "$ncpus", 6)) {
            snprintf(tmp, sizeof(tmp), "%ld", sysval(_SC_NPROCESSORS_ONLN));
            add = tmp;
            skip = 6;
        } else if (!strncmp(p, "$pagesize", 9)) {
            snprintf(tmp, sizeof(tmp), "%ld", sysval(_SC_PAGESIZE));
            add = tmp;
            skip = 9;
        } else if (!strncmp(p, "$mb_memory", 10)) {
            snprintf(tmp, sizeof(tmp), "%lld",
                     (long long)sysval(_SC_PHYS_PAGES) * sysval(_SC_PAGESIZE) / (1024 * 1024));
            add = tmp;
            skip = 10;
        }
        if (add) {
            size_t n = strlen(add);
            if (o + n >= cap) {
                set_err(c, opt, "value too long after substitution");
                return -1;
            }
            memcpy(out + o, add, n);
            o += n;
            p += skip;
        } else {
            if (o + 1 >= cap) {
                set_err(c, opt, "value too long");
                return -1;
            }
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return 0;
}

/* A tiny recursive-descent evaluator for fio's "(expr)" values: + - * / % ^ and parentheses. */
struct expr {
    const char *p;
    int depth;
    bool bad;
};

static double expr_sum(struct expr *e);

static void expr_ws(struct expr *e)
{
    while (isspace((unsigned char)*e->p))
        e->p++;
}

static double expr_atom(struct expr *e)
{
    expr_ws(e);
    if (*e->p == '(') {
        if (++e->depth > 32) {
            e->bad = true;
            return 0;
        }
        e->p++;
        double v = expr_sum(e);
        expr_ws(e);
        if (*e->p != ')')
            e->bad = true;
        else
            e->p++;
        e->depth--;
        return v;
    }
    if (*e->p == '-') {
        e->p++;
        return -expr_atom(e);
    }
    char *end;
    double v = strtod(e->p, &end);
    if (end == e->p || !isfinite(v))
        e->bad = true;
    e->p = end;
    return v;
}

static double expr_pow(struct expr *e)
{
    double v = expr_atom(e);
    expr_ws(e);
    if (*e->p == '^') {
        e->p++;
        v = pow(v, expr_pow(e));
    }
    return v;
}

static double expr_prod(struct expr *e)
{
    double v = expr_pow(e);
    for (;;) {
        expr_ws(e);
        char op = *e->p;
        if (op != '*' && op != '/' && op != '%')
            return v;
        e->p++;
        double r = expr_pow(e);
        if (op == '*')
            v *= r;
        else if (r == 0)
            e->bad = true;
        else if (op == '/')
            v /= r;
        else
            v = fmod(v, r);
    }
}

static double expr_sum(struct expr *e)
{
    double v = expr_prod(e);
    for (;;) {
        expr_ws(e);
        char op = *e->p;
        if (op != '+' && op != '-')
            return v;
        e->p++;
        double r = expr_prod(e);
        v = op == '+' ? v + r : v - r;
    }
}

/* "(2*4)k" -> "8k"; values not starting with '(' are left alone. */
static int eval_parens(struct pctx *c, const char *opt, char *val, size_t cap)
{
    if (val[0] != '(')
        return 0;
    struct expr e = {val, 0, false};
    double v = expr_sum(&e);
    for (const char *q = e.p; *q && !e.bad; q++)
        e.bad = !isalpha((unsigned char)*q) && *q != '%';
    if (e.bad || !isfinite(v) || v < 0 || v > 1.8e19) {
        set_err(c, opt, "'%s' is not a valid expression", val);
        return -1;
    }
    char rest[64];
    if (strlen(e.p) >= sizeof(rest)) {
        set_err(c, opt, "'%s' has too long a suffix", val);
        return -1;
    }
    snprintf(rest, sizeof(rest), "%s", e.p);
    double ip;
    if (modf(v, &ip) == 0.0)
        snprintf(val, cap, "%.0f%s", v, rest);
    else
        snprintf(val, cap, "%.6f%s", v, rest);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Applying one option
 */

static void record(struct bffio_kv *kv, unsigned *nr, const char *key, const char *val)
{
    for (unsigned i = 0; i < *nr; i++) {
        if (!strcmp(kv[i].key, key)) {
            snprintf(kv[i].val, sizeof(kv[i].val), "%s", val);
            return;
        }
    }
    if (*nr < BFFIO_MAX_JOB_OPTS) {
        snprintf(kv[*nr].key, sizeof(kv[*nr].key), "%s", key);
        snprintf(kv[*nr].val, sizeof(kv[*nr].val), "%s", val);
        (*nr)++;
    }
}

static int apply_option(struct pctx *c, struct bffio_job *j, const char *key, const char *raw)
{
    const struct opt_def *d = find_option(key);
    if (!d) {
        if (is_unsupported(key))
            set_err(c, key, "fio option '%s' is not supported by bffio (yet); remove it or see doc/bffio.md",
                    key);
        else
            set_err(c, key, "unknown option '%s'", key);
        return -1;
    }
    char val[BFFIO_PATH_MAX];
    if (substitute(c, key, raw, val, sizeof(val)) < 0 || eval_parens(c, key, val, sizeof(val)) < 0)
        return -1;
    if (d->fn(c, j, key, val) < 0)
        return -1;
    if (c->cur >= 0)
        record(j->opts, &j->opts_nr, key, val);
    else if (c->recording_global)
        record(c->set->global_opts, &c->set->global_opts_nr, key, val);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Sections and jobs
 */

static struct bffio_job *cur_job(struct pctx *c)
{
    return c->cur >= 0 ? &c->set->jobs[c->cur] : &c->global;
}

/* Checks that need the whole job (fio's fixup_options): reported at the job's section line. */
static int finish_job(struct pctx *c)
{
    if (c->cur < 0)
        return 0;
    struct bffio_job *j = &c->set->jobs[c->cur];
    unsigned saved_line = c->line;
    const char *saved_file = c->file;
    c->line = j->src_line;
    c->file = j->src_file;
    int rc = -1;
    if (j->time_based && j->runtime_us == 0) {
        set_err(c, "time_based", "job '%s': time_based needs a runtime", j->name);
        goto out;
    }
    if (j->verify != BFFIO_VERIFY_NONE) {
        /* Write-only jobs write verify blocks and read them back; read-only jobs check the blocks
         * an earlier write job left (fio's usual two-job pattern). */
        int d = j->rw_write ? BFFIO_DDIR_WRITE : BFFIO_DDIR_READ;
        if (j->rw_read && j->rw_write) {
            set_err(c, "verify", "job '%s': bffio verifies write-only jobs, or read jobs checking an earlier "
                    "write job's blocks, not mixed ones", j->name);
            goto out;
        }
        if (j->time_based) {
            set_err(c, "verify", "job '%s': verify needs a job that is not time_based", j->name);
            goto out;
        }
        if (j->bssplit_nr[d] || j->bs_min[d] != j->bs_max[d]) {
            set_err(c, "verify", "job '%s': verify needs one block size (no bsrange/bssplit)", j->name);
            goto out;
        }
        if (j->verify != BFFIO_VERIFY_PATTERN && j->bs[d] < 64) {
            set_err(c, "verify", "job '%s': verify blocks need bs >= 64 for their header", j->name);
            goto out;
        }
    }
    if (j->verify == BFFIO_VERIFY_PATTERN && j->verify_pattern_len == 0) {
        set_err(c, "verify_pattern", "job '%s': verify=pattern needs verify_pattern", j->name);
        goto out;
    }
    for (int d = 0; d < BFFIO_DDIRS; d++) {
        if (j->direct && (j->bs_min[d] % 512)) {
            set_err(c, "bs", "job '%s': O_DIRECT needs block sizes that are multiples of 512 (got %llu)", j->name,
                    (unsigned long long)j->bs_min[d]);
            goto out;
        }
    }
    if (j->rate_min[0] || j->rate_min[1]) {
        if ((j->rate[0] && j->rate_min[0] > j->rate[0]) || (j->rate[1] && j->rate_min[1] > j->rate[1])) {
            set_err(c, "rate_min", "job '%s': rate_min is above rate", j->name);
            goto out;
        }
    }
    if (j->wait_for[0]) {
        int found = 0;
        for (int i = 0; i < c->cur; i++)
            found += !strcmp(c->set->jobs[i].name, j->wait_for);
        if (!found) {
            set_err(c, "wait_for", "job '%s' waits for '%s', which is not an earlier job", j->name, j->wait_for);
            goto out;
        }
        if (found > 1) {
            /* fio's rule: a waitee's name must be unique */
            set_err(c, "wait_for", "job '%s' waits for '%s', a name %d earlier jobs have", j->name, j->wait_for,
                    found);
            goto out;
        }
    }
    /* Count the files a ':' list names; nrfiles follows it as in fio. */
    if (j->filename[0]) {
        unsigned n = 1;
        for (const char *p = j->filename; *p; p++) {
            if (*p == '\\' && p[1] == ':')
                p++;
            else if (*p == ':')
                n++;
        }
        j->nrfiles = n;
    }
    rc = 0;
out:
    c->line = saved_line;
    c->file = saved_file;
    return rc;
}

static int start_section(struct pctx *c, const char *name)
{
    if (finish_job(c) < 0)
        return -1;
    if (!strcmp(name, "global")) {
        c->cur = -1;
        c->recording_global = !c->seen_global;
        c->seen_global = true;
        return 0;
    }
    if (!*name) {
        set_err(c, "name", "empty job name '[]'");
        return -1;
    }
    if (c->set->nr >= BFFIO_MAX_JOBS) {
        set_err(c, "name", "more than %d jobs", BFFIO_MAX_JOBS);
        return -1;
    }
    struct bffio_job *jobs = realloc(c->set->jobs, (c->set->nr + 1) * sizeof(*jobs));
    if (!jobs) {
        set_err(c, "name", "out of memory");
        return -1;
    }
    c->set->jobs = jobs;
    struct bffio_job *j = &jobs[c->set->nr];
    memcpy(j, &c->global, sizeof(*j));
    j->opts_nr = 0;
    j->stonewall = false;
    j->wait_for[0] = '\0';
    if (copy_str(c, "name", j->name, sizeof(j->name), name) < 0)
        return -1;
    snprintf(j->src_file, sizeof(j->src_file), "%s", c->file ? c->file : "command line");
    j->src_line = c->line;
    c->cur = (int)c->set->nr++;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int parse_text(struct pctx *c, const char *text, size_t len, const char *name);

static int do_include(struct pctx *c, const char *arg)
{
    if (c->flags & BFFIO_PARSE_NO_INCLUDE) {
        set_err(c, "include", "include is disabled here");
        return -1;
    }
    if (c->depth >= MAX_INCLUDE_DEPTH) {
        set_err(c, "include", "includes nested deeper than %d", MAX_INCLUDE_DEPTH);
        return -1;
    }
    char path[BFFIO_PATH_MAX];
    if (arg[0] == '/' || !c->file || !strchr(c->file, '/')) {
        snprintf(path, sizeof(path), "%s", arg);
    } else {
        int dirlen = (int)(strrchr(c->file, '/') - c->file);
        snprintf(path, sizeof(path), "%.*s/%s", dirlen, c->file, arg);
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        set_err(c, "include", "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap >= (16u << 20)) {
            free(buf);
            buf = NULL;
            break;
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (!buf) {
        set_err(c, "include", "'%s' is too large or memory ran out", path);
        return -1;
    }
    const char *saved_file = c->file;
    unsigned saved_line = c->line;
    c->depth++;
    int rc = parse_text(c, buf, n, path);
    c->depth--;
    free(buf);
    if (rc == 0) {
        c->file = saved_file;
        c->line = saved_line;
    }
    return rc;
}

/* Strip a comment: a line starting with ';' or '#', or one after whitespace. */
static void strip_comment(char *s)
{
    for (char *p = s; *p; p++) {
        if ((*p == ';' || *p == '#') && (p == s || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            return;
        }
    }
}

static int parse_line(struct pctx *c, char *raw)
{
    strip_comment(raw);
    char *s = trim(raw);
    if (!*s)
        return 0;
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close || *trim(close + 1)) {
            set_err(c, "", "malformed section header '%s'", s);
            return -1;
        }
        *close = '\0';
        return start_section(c, trim(s + 1));
    }
    if (!strncmp(s, "include", 7) && isspace((unsigned char)s[7]))
        return do_include(c, trim(s + 8));
    char *eq = strchr(s, '=');
    char *key = s, *val = (char *)"";
    if (eq) {
        *eq = '\0';
        key = trim(s);
        val = trim(eq + 1);
    }
    if (!*key) {
        set_err(c, "", "'=' without an option name");
        return -1;
    }
    if (c->cur < 0 && !c->seen_global) {
        set_err(c, key, "option '%s' outside of any section", key);
        return -1;
    }
    return apply_option(c, cur_job(c), key, val);
}

static int parse_text(struct pctx *c, const char *text, size_t len, const char *name)
{
    c->file = name;
    c->line = 0;
    char line[MAX_LINE];
    size_t pos = 0;
    while (pos < len) {
        size_t n = 0;
        c->line++;
        while (pos < len && text[pos] != '\n') {
            if (text[pos] == '\0') {
                set_err(c, "", "NUL byte in the job file");
                return -1;
            }
            if (n + 1 >= sizeof(line)) {
                set_err(c, "", "line longer than %d characters", MAX_LINE - 1);
                return -1;
            }
            line[n++] = text[pos++];
        }
        pos++;
        line[n] = '\0';
        if (parse_line(c, line) < 0)
            return -1;
    }
    return 0;
}

static void ctx_init(struct pctx *c, struct bffio_jobset *set, unsigned flags, struct bffio_error *err)
{
    memset(c, 0, sizeof(*c));
    c->set = set;
    c->cur = -1;
    c->flags = flags;
    c->err = err;
    bffio_job_defaults(&c->global);
}

static int parse_into(struct pctx *c, const char *text, size_t len, const char *name)
{
    /* A job file starts outside any section, with the command line's global options. */
    c->cur = -1;
    c->seen_global = false;
    c->recording_global = false;
    if (parse_text(c, text, len, name) < 0)
        return -1;
    c->file = name;
    return finish_job(c);
}

int bffio_parse_text(struct bffio_jobset *set, const char *text, size_t len, const char *name, unsigned flags,
                     struct bffio_error *err)
{
    struct pctx *c = malloc(sizeof(*c));
    if (!c) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return -1;
    }
    ctx_init(c, set, flags, err);
    int rc = parse_into(c, text, len, name);
    free(c);
    return rc;
}

static int read_whole(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            return -ENOMEM;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap >= (16u << 20)) {
            free(buf);
            fclose(f);
            return -EFBIG;
        }
        char *nb = realloc(buf, cap *= 2);
        if (!nb)
            free(buf);
        buf = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return -EIO;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int parse_file_ctx(struct pctx *c, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_whole(path, &text, &len);
    if (rc < 0) {
        c->file = path;
        c->line = 0;
        set_err(c, "", "cannot read job file: %s", strerror(-rc));
        return -1;
    }
    rc = parse_into(c, text, len, path);
    free(text);
    return rc;
}

int bffio_parse_file(struct bffio_jobset *set, const char *path, unsigned flags, struct bffio_error *err)
{
    struct pctx *c = malloc(sizeof(*c));
    if (!c) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return -1;
    }
    ctx_init(c, set, flags, err);
    int rc = parse_file_ctx(c, path);
    free(c);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The command line
 */

static void usage(void)
{
    printf("usage: bffio [options] [job files]\n"
           "  A fio-compatible benchmark whose only engine is auraio. Job options are fio's, as\n"
           "  --name=value flags or in job files; options before the first --name are global.\n"
           "  Without a job, bffio runs its default job: 4 KiB random reads on a temporary\n"
           "  256 MiB file for 5 s with the depth chosen by auraio's controller.\n"
           "  --output=FILE           write the report to FILE\n"
           "  --output-format=F       normal, json, json+ or terse (comma-separated)\n"
           "  --eta=auto|always|never the progress line (default: on a terminal)\n"
           "  --target-p99=T          P99 target for the controller (e.g. 2ms)\n"
           "  --parse-only            check the jobs and exit\n"
           "  --showcmd               print the jobs as a command line and exit\n"
           "  --version, --help\n"
           "  See doc/bffio.md for the supported options.\n");
}

/* The default job: what `bffio` alone runs (README's first command). */
static const char default_job[] = "[bffio-default]\n"
                                  "rw=randread\n"
                                  "bs=4k\n"
                                  "size=256m\n"
                                  "direct=1\n"
                                  "runtime=5\n"
                                  "time_based=1\n"
                                  "unlink=1\n";

static int set_output_format(struct pctx *c, struct bffio_jobset *set, const char *val)
{
    char buf[128];
    if (copy_str(c, "output-format", buf, sizeof(buf), val) < 0)
        return -1;
    int fmt = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "normal"))
            fmt |= BFFIO_FMT_NORMAL;
        else if (!strcmp(tok, "json"))
            fmt |= BFFIO_FMT_JSON;
        else if (!strcmp(tok, "json+"))
            fmt |= BFFIO_FMT_JSON | BFFIO_FMT_JSON_PLUS;
        else if (!strcmp(tok, "terse")) {
            set_err(c, "output-format", "terse output is not implemented by bffio");
            return -1;
        } else {
            set_err(c, "output-format", "'%s' is not a format (normal, json, json+)", tok);
            return -1;
        }
    }
    if (!fmt) {
        set_err(c, "output-format", "needs a format");
        return -1;
    }
    set->output_format = fmt;
    return 0;
}

/* Run-wide flags. @return 1 handled, 0 not one of them, -1 error, 2 printed and done. */
static int run_flag(struct pctx *c, struct bffio_jobset *set, const char *key, const char *val, bool has_val)
{
    if (!strcmp(key, "help") || !strcmp(key, "h")) {
        usage();
        return 2;
    }
    if (!strcmp(key, "version")) {
        printf("bffio (auraio) fio-3.33-compatible\n");
        return 2;
    }
    if (!strcmp(key, "output"))
        return has_val ? (copy_str(c, key, set->output, sizeof(set->output), val) < 0 ? -1 : 1)
                       : (set_err(c, key, "needs a file name"), -1);
    if (!strcmp(key, "output-format"))
        return set_output_format(c, set, val) < 0 ? -1 : 1;
    if (!strcmp(key, "eta")) {
        if (!strcmp(val, "always"))
            set->eta = BFFIO_ETA_ALWAYS;
        else if (!strcmp(val, "never"))
            set->eta = BFFIO_ETA_NEVER;
        else if (!strcmp(val, "auto"))
            set->eta = BFFIO_ETA_AUTO;
        else {
            set_err(c, key, "'%s' is not auto, always or never", val);
            return -1;
        }
        return 1;
    }
    if (!strcmp(key, "parse-only")) {
        set->parse_only = true;
        return 1;
    }
    if (!strcmp(key, "showcmd")) {
        set->showcmd = true;
        return 1;
    }
    if (!strcmp(key, "target-p99")) {
        struct bffio_job tmp;
        bffio_job_defaults(&tmp);
        if (o_target_p99(c, &tmp, key, val) < 0)
            return -1;
        set->target_p99_ms = tmp.target_p99_ms;
        return 1;
    }
    static const char *const fio_only[] = {"minimal", "append-terse", "terse-version", "status-interval",
                                           "client", "server", "daemonize", "section", "alloc-size",
                                           "warnings-fatal", "max-jobs", "trigger", "trigger-file",
                                           "trigger-timeout", "aux-path", "cpuclock-test", "crctest",
                                           "debug", "inflate-log", "idle-prof", "latency-log", "bandwidth-log",
                                           "readonly", "merge-blktrace-only", "remote-config", "eta-newline",
                                           "eta-interval", "cmdhelp", "enghelp", "write_iolog", "explicit"};
    for (size_t i = 0; i < sizeof(fio_only) / sizeof(fio_only[0]); i++) {
        if (!strcmp(key, fio_only[i])) {
            set_err(c, key, "fio flag '--%s' is not supported by bffio", key);
            return -1;
        }
    }
    return 0;
}

int bffio_parse_args(struct bffio_jobset *set, int argc, char **argv, struct bffio_error *err)
{
    struct pctx *c = malloc(sizeof(*c));
    if (!c) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return -1;
    }
    ctx_init(c, set, 0, err);
    /* Command-line global options, replayed onto the default job when no job is given. */
    struct bffio_kv *replay = calloc(BFFIO_MAX_JOB_OPTS, sizeof(*replay));
    unsigned replay_nr = 0;
    int rc = -1;
    if (!replay) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        goto out;
    }
    bool in_cmd_job = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        c->file = NULL;
        c->line = 0;
        if (arg[0] != '-' || arg[1] == '\0') {
            if (in_cmd_job && finish_job(c) < 0)
                goto out;
            in_cmd_job = false;
            struct bffio_job saved;
            memcpy(&saved, &c->global, sizeof(saved));
            if (parse_file_ctx(c, arg) < 0)
                goto out;
            memcpy(&c->global, &saved, sizeof(saved)); /* a file's [global] ends with the file */
            c->cur = -1;
            continue;
        }
        const char *key0 = arg + (arg[1] == '-' ? 2 : 1);
        char key[128];
        const char *eq = strchr(key0, '=');
        size_t kn = eq ? (size_t)(eq - key0) : strlen(key0);
        if (kn == 0 || kn >= sizeof(key)) {
            set_err(c, key0, "malformed flag '%s'", arg);
            goto out;
        }
        memcpy(key, key0, kn);
        key[kn] = '\0';
        const char *val = eq ? eq + 1 : "";
        int f = run_flag(c, set, key, val, eq != NULL);
        if (f < 0)
            goto out;
        if (f == 2) {
            rc = 1;
            goto out;
        }
        if (f == 1)
            continue;
        if (!strcmp(key, "name")) {
            if (in_cmd_job && finish_job(c) < 0)
                goto out;
            if (!*val) {
                set_err(c, "name", "--name needs a value");
                goto out;
            }
            if (start_section(c, val) < 0)
                goto out;
            record(set->jobs[c->cur].opts, &set->jobs[c->cur].opts_nr, "name", val);
            in_cmd_job = true;
            continue;
        }
        /* fio's getopt also takes "--bs 4k"; a value-less option followed by a non-flag is that. */
        const struct opt_def *d = find_option(key);
        if (!eq && d && i + 1 < argc && argv[i + 1][0] != '-' && d->fn != o_time_based &&
            d->fn != o_group_reporting && d->fn != o_norandommap && d->fn != o_thread && d->fn != o_wait_on_last &&
            !strstr(argv[i + 1], ".fio")) {
            val = argv[++i];
        }
        if (!in_cmd_job) {
            c->cur = -1;
            c->recording_global = true;
            c->seen_global = true;
            if (replay_nr < BFFIO_MAX_JOB_OPTS) {
                snprintf(replay[replay_nr].key, sizeof(replay[replay_nr].key), "%s", key);
                snprintf(replay[replay_nr].val, sizeof(replay[replay_nr].val), "%s", val);
                replay_nr++;
            } else {
                set_err(c, key, "more than %d global options on the command line", BFFIO_MAX_JOB_OPTS);
                goto out;
            }
        }
        if (apply_option(c, cur_job(c), key, val) < 0)
            goto out;
    }
    if (in_cmd_job && finish_job(c) < 0)
        goto out;
    if (set->nr == 0) {
        /* No job: the default one, with the command line's options on top of it. */
        c->cur = -1;
        c->seen_global = true;
        c->recording_global = false;
        c->file = "(default job)";
        if (parse_text(c, default_job, sizeof(default_job) - 1, "(default job)") < 0)
            goto out;
        struct bffio_job *j = &set->jobs[c->cur];
        const char *tmpdir = getenv("TMPDIR");
        if (!j->directory[0] && !j->filename[0])
            snprintf(j->directory, sizeof(j->directory), "%s", tmpdir && *tmpdir ? tmpdir : "/var/tmp");
        snprintf(j->filename_format, sizeof(j->filename_format), "bffio-default-%ld.$jobnum.$filenum",
                 (long)getpid());
        c->file = NULL;
        for (unsigned k = 0; k < replay_nr; k++) {
            if (apply_option(c, j, replay[k].key, replay[k].val) < 0)
                goto out;
            record(j->opts, &j->opts_nr, replay[k].key, replay[k].val);
        }
        if (finish_job(c) < 0)
            goto out;
    }
    rc = 0;
out:
    free(replay);
    free(c);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Printing
 */

const char *bffio_rw_name(const struct bffio_job *j)
{
    if (j->rw_read && j->rw_write)
        return j->rw_random ? "randrw" : "rw";
    if (j->rw_write)
        return j->rw_random ? "randwrite" : "write";
    return j->rw_random ? "randread" : "read";
}

void bffio_jobset_print(const struct bffio_jobset *set, bool as_cmdline, void *stream)
{
    FILE *f = stream;
    if (as_cmdline) {
        fprintf(f, "bffio");
        for (unsigned g = 0; g < set->global_opts_nr; g++)
            fprintf(f, " --%s=%s", set->global_opts[g].key, set->global_opts[g].val);
        for (unsigned i = 0; i < set->nr; i++) {
            const struct bffio_job *j = &set->jobs[i];
            bool named = false;
            for (unsigned k = 0; k < j->opts_nr; k++)
                named |= !strcmp(j->opts[k].key, "name");
            if (!named)
                fprintf(f, " --name=%s", j->name);
            for (unsigned k = 0; k < j->opts_nr; k++)
                fprintf(f, " --%s=%s", j->opts[k].key, j->opts[k].val);
        }
        fprintf(f, "\n");
        return;
    }
    if (set->global_opts_nr) {
        fprintf(f, "[global]\n");
        for (unsigned g = 0; g < set->global_opts_nr; g++)
            fprintf(f, "%s=%s\n", set->global_opts[g].key, set->global_opts[g].val);
    }
    for (unsigned i = 0; i < set->nr; i++) {
        fprintf(f, "[%s]\n", set->jobs[i].name);
        for (unsigned k = 0; k < set->jobs[i].opts_nr; k++)
            fprintf(f, "%s=%s\n", set->jobs[i].opts[k].key, set->jobs[i].opts[k].val);
    }
}
