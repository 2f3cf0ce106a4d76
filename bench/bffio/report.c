/* SPDX-License-Identifier: Apache-2.0 */
/* Text and JSON reports in fio's shapes (see report.h). */
#include "report.h"

#include <auraio.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const ddir_name[BFFIO_DDIRS] = {"read", "write", "trim"};

/* One report entry: a clone, or a whole group under group_reporting. */
struct unit {
    struct bffio_result r; /* merged (samples point into a private array) */
    const struct bffio_job *job;
    const struct bffio_controller_record *ctl;
    unsigned groupid;
    unsigned jobs;
    bool own_samples;
};

static void merge_into(struct unit *u, const struct bffio_result *src)
{
    struct bffio_result *r = &u->r;
    if (u->jobs == 0) {
        *r = *src;
        r->samples = NULL;
        r->samples_nr = 0;
    } else {
        for (int d = 0; d < BFFIO_DDIRS; d++) {
            struct bffio_dir_result *a = &r->dir[d];
            const struct bffio_dir_result *b = &src->dir[d];
            a->io_bytes += b->io_bytes;
            a->ios += b->ios;
            a->short_ios += b->short_ios;
            bffio_lat_merge(&a->slat, &b->slat);
            bffio_lat_merge(&a->clat, &b->clat);
            bffio_lat_merge(&a->lat, &b->lat);
            bffio_hist_merge(&a->clat_hist, &b->clat_hist);
            bffio_hist_merge(&a->lat_hist, &b->lat_hist);
        }
        r->sync_ios += src->sync_ios;
        bffio_lat_merge(&r->sync_lat, &src->sync_lat);
        r->runtime_ns = src->runtime_ns > r->runtime_ns ? src->runtime_ns : r->runtime_ns;
        r->usr_cpu += src->usr_cpu;
        r->sys_cpu += src->sys_cpu;
        r->ctx += src->ctx;
        r->majf += src->majf;
        r->minf += src->minf;
        for (int i = 0; i < BFFIO_DEPTH_LEVELS; i++)
            r->depth_level[i] += src->depth_level[i];
        r->depth_samples += src->depth_samples;
        if (!r->error && src->error) {
            r->error = src->error;
            memcpy(r->errmsg, src->errmsg, sizeof(r->errmsg));
        }
    }
    /* Samples: interval by interval, summed over the merged clones. */
    unsigned n = src->samples_nr;
    if (n > r->samples_nr) {
        struct bffio_sample *ns = realloc(r->samples, n * sizeof(*ns));
        if (!ns)
            return;
        memset(ns + r->samples_nr, 0, (n - r->samples_nr) * sizeof(*ns));
        r->samples = ns;
        r->samples_nr = n;
    }
    for (unsigned i = 0; i < n; i++) {
        r->samples[i].t_ms = src->samples[i].t_ms;
        r->samples[i].depth = src->samples[i].depth;
        for (int d = 0; d < BFFIO_DDIRS; d++) {
            r->samples[i].bytes[d] += src->samples[i].bytes[d];
            r->samples[i].ios[d] += src->samples[i].ios[d];
            r->samples[i].lat_sum_ns[d] += src->samples[i].lat_sum_ns[d];
        }
    }
    u->own_samples = true;
    u->jobs++;
}

static struct unit *build_units(const struct bffio_report_group *groups, unsigned ngroups, unsigned *nunits)
{
    unsigned max = 0;
    for (unsigned g = 0; g < ngroups; g++)
        max += groups[g].r.nr;
    struct unit *u = calloc(max ? max : 1, sizeof(*u));
    if (!u)
        return NULL;
    unsigned n = 0;
    for (unsigned g = 0; g < ngroups; g++) {
        const struct bffio_group_result *gr = &groups[g].r;
        bool grouped = false;
        for (unsigned i = 0; i < gr->nr; i++)
            grouped |= gr->res[i].job->group_reporting;
        for (unsigned i = 0; i < gr->nr; i++) {
            if (!grouped || i == 0) {
                u[n].job = gr->res[i].job;
                u[n].ctl = &gr->ctl;
                u[n].groupid = groups[g].groupid;
                n++;
            }
            merge_into(&u[n - 1], &gr->res[i]);
        }
    }
    *nunits = n;
    return u;
}

static void free_units(struct unit *u, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        free(u[i].r.samples);
    free(u);
}

struct sample_stats {
    double min, max, mean, dev;
    unsigned n;
};

/* fio's bw/iops sample statistics, over the per-interval samples (KiB/s or IOPS). */
static struct sample_stats sample_stats(const struct bffio_result *r, int d, bool iops)
{
    struct sample_stats s = {0, 0, 0, 0, 0};
    double sum = 0, sumsq = 0;
    uint64_t prev = 0;
    for (unsigned i = 0; i < r->samples_nr; i++) {
        uint64_t t = r->samples[i].t_ms;
        double dt = (double)(t - prev) / 1000.0;
        prev = t;
        if (dt <= 0)
            continue;
        double v = iops ? (double)r->samples[i].ios[d] / dt : (double)r->samples[i].bytes[d] / 1024.0 / dt;
        if (s.n == 0 || v < s.min)
            s.min = v;
        if (v > s.max)
            s.max = v;
        sum += v;
        sumsq += v * v;
        s.n++;
    }
    if (s.n) {
        s.mean = sum / s.n;
        double var = s.n > 1 ? (sumsq - s.n * s.mean * s.mean) / (s.n - 1) : 0;
        s.dev = var > 0 ? sqrt(var) : 0;
    }
    return s;
}

static double runtime_ms(const struct bffio_result *r)
{
    return (double)r->runtime_ns / 1e6;
}

/* ---------------------------------------------------------------------------------------------
 * JSON
 */

struct jw {
    FILE *f;
    int depth;
    bool first[32];
};

static void jw_indent(struct jw *w)
{
    for (int i = 0; i < w->depth; i++)
        fputs("  ", w->f);
}

static void jw_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void jw_key(struct jw *w, const char *key)
{
    if (!w->first[w->depth])
        fputs(",\n", w->f);
    else
        fputc('\n', w->f);
    w->first[w->depth] = false;
    jw_indent(w);
    if (key) {
        jw_str(w->f, key);
        fputs(" : ", w->f);
    }
}

static void jw_open(struct jw *w, const char *key, char c)
{
    jw_key(w, key);
    fputc(c, w->f);
    w->depth++;
    w->first[w->depth] = true;
}

static void jw_close(struct jw *w, char c)
{
    bool empty = w->first[w->depth];
    w->depth--;
    if (!empty) {
        fputc('\n', w->f);
        jw_indent(w);
    }
    fputc(c, w->f);
}

static void jw_u64(struct jw *w, const char *key, uint64_t v)
{
    jw_key(w, key);
    fprintf(w->f, "%" PRIu64, v);
}

static void jw_dbl(struct jw *w, const char *key, double v)
{
    jw_key(w, key);
    if (!isfinite(v))
        v = 0;
    /* fio prints doubles with %f-like precision and always a fractional part. */
    if (v == floor(v) && fabs(v) < 1e15)
        fprintf(w->f, "%.1f", v);
    else
        fprintf(w->f, "%.6f", v);
}

static void jw_s(struct jw *w, const char *key, const char *v)
{
    jw_key(w, key);
    jw_str(w->f, v);
}

static void jw_bool(struct jw *w, const char *key, bool v)
{
    jw_key(w, key);
    fputs(v ? "true" : "false", w->f);
}

static void json_lat(struct jw *w, const char *key, const struct bffio_lat *l, const struct bffio_hist *h,
                     const struct bffio_job *job, bool pct, bool plus)
{
    jw_open(w, key, '{');
    jw_u64(w, "min", l->n ? l->min : 0);
    jw_u64(w, "max", l->max);
    jw_dbl(w, "mean", bffio_lat_mean(l));
    jw_dbl(w, "stddev", bffio_lat_stddev(l));
    jw_u64(w, "N", l->n);
    if (pct && h && l->n) {
        uint64_t vals[BFFIO_MAX_PCT];
        bffio_hist_percentiles(h, l->n, job->percentile_list, job->percentile_nr, vals);
        jw_open(w, "percentile", '{');
        for (unsigned i = 0; i < job->percentile_nr; i++) {
            char k[32];
            snprintf(k, sizeof(k), "%f", job->percentile_list[i]);
            jw_u64(w, k, vals[i]);
        }
        jw_close(w, '}');
        if (plus) {
            jw_open(w, "bins", '{');
            for (unsigned i = 0; i < BFFIO_PLAT_NR; i++) {
                if (!h->bins[i])
                    continue;
                char k[32];
                snprintf(k, sizeof(k), "%" PRIu64, bffio_plat_val(i));
                jw_u64(w, k, h->bins[i]);
            }
            jw_close(w, '}');
        }
    }
    jw_close(w, '}');
}

static void json_ddir(struct jw *w, const struct unit *u, int d, double group_bw, bool plus)
{
    const struct bffio_dir_result *r = &u->r.dir[d];
    const struct bffio_job *job = u->job;
    double ms = r->ios ? runtime_ms(&u->r) : 0;
    double bw_bytes = ms > 0 ? (double)r->io_bytes / (ms / 1000.0) : 0;
    jw_open(w, ddir_name[d], '{');
    jw_u64(w, "io_bytes", r->io_bytes);
    jw_u64(w, "io_kbytes", r->io_bytes / 1024);
    jw_u64(w, "bw_bytes", (uint64_t)bw_bytes);
    jw_u64(w, "bw", (uint64_t)(bw_bytes / 1024));
    jw_dbl(w, "iops", ms > 0 ? (double)r->ios / (ms / 1000.0) : 0);
    jw_u64(w, "runtime", (uint64_t)(ms + 0.5));
    jw_u64(w, "total_ios", r->ios);
    jw_u64(w, "short_ios", r->short_ios);
    jw_u64(w, "drop_ios", 0);
    json_lat(w, "slat_ns", &r->slat, NULL, job, false, false);
    json_lat(w, "clat_ns", &r->clat, &r->clat_hist, job, job->clat_percentiles, plus);
    json_lat(w, "lat_ns", &r->lat, &r->lat_hist, job, job->lat_percentiles, plus);
    struct sample_stats bw = sample_stats(&u->r, d, false), io = sample_stats(&u->r, d, true);
    if (!r->ios)
        bw = io = (struct sample_stats){0, 0, 0, 0, 0};
    jw_u64(w, "bw_min", (uint64_t)bw.min);
    jw_u64(w, "bw_max", (uint64_t)bw.max);
    jw_dbl(w, "bw_agg", group_bw > 0 ? bw.mean / group_bw * 100.0 : 0);
    jw_dbl(w, "bw_mean", bw.mean);
    jw_dbl(w, "bw_dev", bw.dev);
    jw_u64(w, "bw_samples", bw.n);
    jw_u64(w, "iops_min", (uint64_t)io.min);
    jw_u64(w, "iops_max", (uint64_t)io.max);
    jw_dbl(w, "iops_mean", io.mean);
    jw_dbl(w, "iops_stddev", io.dev);
    jw_u64(w, "iops_samples", io.n);
    jw_close(w, '}');
}

/* fio's io_u_lat_{n,u,m}: the share of I/Os per latency range, from the total-latency histograms. */
static void lat_buckets(const struct unit *u, double n[10], double us[10], double ms[12])
{
    static const uint64_t lim[10] = {2, 4, 10, 20, 50, 100, 250, 500, 750, 1000};
    static const uint64_t mlim[11] = {2, 4, 10, 20, 50, 100, 250, 500, 750, 1000, 2000};
    memset(n, 0, 10 * sizeof(double));
    memset(us, 0, 10 * sizeof(double));
    memset(ms, 0, 12 * sizeof(double));
    uint64_t total = 0;
    for (int d = 0; d < BFFIO_DDIRS; d++)
        total += u->r.dir[d].lat.n;
    if (!total)
        return;
    for (int d = 0; d < BFFIO_DDIRS; d++) {
        const struct bffio_hist *h = &u->r.dir[d].lat_hist;
        for (unsigned i = 0; i < BFFIO_PLAT_NR; i++) {
            if (!h->bins[i])
                continue;
            uint64_t v = bffio_plat_val(i);
            double share = 100.0 * (double)h->bins[i] / (double)total;
            if (v < 1000) {
                int k = 0;
                while (k < 9 && v > lim[k])
                    k++;
                n[k] += share;
            } else if (v < 1000000) {
                int k = 0;
                while (k < 9 && v / 1000 > lim[k])
                    k++;
                us[k] += share;
            } else {
                int k = 0;
                while (k < 11 && v / 1000000 > mlim[k])
                    k++;
                ms[k] += share;
            }
        }
    }
}

static void json_auraio(struct jw *w, const struct unit *u)
{
    const struct bffio_controller_record *c = u->ctl;
    jw_open(w, "auraio", '{');
    jw_s(w, "version", auraio_version());
    jw_s(w, "mode", c->adaptive ? "adaptive" : "fixed");
    if (c->adaptive)
        jw_u64(w, "iodepth", 0);
    else
        jw_u64(w, "iodepth", (uint64_t)c->fixed_depth);
    jw_u64(w, "final_depth", (uint64_t)(c->final_depth > 0 ? c->final_depth : 0));
    jw_dbl(w, "converge_s", c->converge_s);
    jw_dbl(w, "p99_target_ms", c->target_p99_ms);
    jw_dbl(w, "p99_ms", c->p99_ms);
    if (c->target_p99_ms > 0)
        jw_bool(w, "p99_met", c->p99_ms <= c->target_p99_ms);
    jw_u64(w, "ring_count", (uint64_t)c->rings);
    jw_open(w, "rings", '[');
    for (int i = 0; i < c->rings; i++) {
        jw_open(w, NULL, '{');
        jw_u64(w, "ring", (uint64_t)i);
        jw_u64(w, "depth", (uint64_t)(c->ring[i].depth > 0 ? c->ring[i].depth : 0));
        jw_s(w, "phase", auraio_phase_name(c->ring[i].phase));
        jw_dbl(w, "p50_ms", c->ring[i].p50_ms);
        jw_dbl(w, "p99_ms", c->ring[i].p99_ms);
        jw_bool(w, "target_infeasible", c->ring[i].infeasible);
        jw_u64(w, "ops", c->ring[i].ops);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_open(w, "depth_trace_100ms", '[');
    for (unsigned i = 0; i < c->depth_trace_nr; i++) {
        jw_key(w, NULL);
        fprintf(w->f, "%d", c->depth_trace[i]);
    }
    jw_close(w, ']');
    jw_close(w, '}');
}

static void json_kv(struct jw *w, const char *key, const struct bffio_kv *kv, unsigned n)
{
    jw_open(w, key, '{');
    for (unsigned i = 0; i < n; i++)
        jw_s(w, kv[i].key, kv[i].val);
    jw_close(w, '}');
}

void bffio_report_json(FILE *f, const struct bffio_jobset *set, const struct bffio_report_group *groups,
                       unsigned ngroups, bool plus)
{
    unsigned nunits;
    struct unit *units = build_units(groups, ngroups, &nunits);
    if (!units)
        return;
    struct jw w = {f, 0, {true}};
    time_t now = time(NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char tbuf[64];
    ctime_r(&now, tbuf);
    tbuf[strcspn(tbuf, "\n")] = '\0';
    fputc('{', f);
    w.depth = 1;
    w.first[1] = true;
    char ver[64];
    snprintf(ver, sizeof(ver), "bffio-%s", auraio_version());
    jw_s(&w, "fio version", ver);
    jw_u64(&w, "timestamp", (uint64_t)now);
    jw_u64(&w, "timestamp_ms", (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
    jw_s(&w, "time", tbuf);
    if (set->global_opts_nr)
        json_kv(&w, "global options", set->global_opts, set->global_opts_nr);
    jw_open(&w, "jobs", '[');
    for (unsigned i = 0; i < nunits; i++) {
        const struct unit *u = &units[i];
        double group_bw[BFFIO_DDIRS] = {0, 0, 0};
        for (unsigned k = 0; k < nunits; k++)
            if (units[k].groupid == u->groupid)
                for (int d = 0; d < BFFIO_DDIRS; d++)
                    group_bw[d] += sample_stats(&units[k].r, d, false).mean;
        jw_open(&w, NULL, '{');
        jw_s(&w, "jobname", u->job->name);
        jw_u64(&w, "groupid", u->groupid);
        jw_u64(&w, "error", (uint64_t)u->r.error);
        jw_u64(&w, "eta", 0);
        jw_u64(&w, "elapsed", (uint64_t)((runtime_ms(&u->r) + (double)u->job->ramp_us / 1000.0) / 1000.0 + 0.999));
        json_kv(&w, "job options", u->job->opts, u->job->opts_nr);
        for (int d = 0; d < BFFIO_DDIRS; d++)
            json_ddir(&w, u, d, group_bw[d], plus);
        jw_open(&w, "sync", '{');
        jw_u64(&w, "total_ios", u->r.sync_ios);
        json_lat(&w, "lat_ns", &u->r.sync_lat, NULL, u->job, false, false);
        jw_close(&w, '}');
        jw_u64(&w, "job_runtime", (uint64_t)(runtime_ms(&u->r) + 0.5));
        jw_dbl(&w, "usr_cpu", u->r.usr_cpu);
        jw_dbl(&w, "sys_cpu", u->r.sys_cpu);
        jw_u64(&w, "ctx", u->r.ctx);
        jw_u64(&w, "majf", u->r.majf);
        jw_u64(&w, "minf", u->r.minf);
        static const char *const lvl[BFFIO_DEPTH_LEVELS] = {"1", "2", "4", "8", "16", "32", ">=64"};
        jw_open(&w, "iodepth_level", '{');
        for (int k = 0; k < BFFIO_DEPTH_LEVELS; k++)
            jw_dbl(&w, lvl[k],
                   u->r.depth_samples ? 100.0 * (double)u->r.depth_level[k] / (double)u->r.depth_samples : 0);
        jw_close(&w, '}');
        /* Submission and completion batches are auraio's business; reported as fio does for one. */
        static const char *const sub[] = {"0", "4", "8", "16", "32", "64", ">=64"};
        jw_open(&w, "iodepth_submit", '{');
        for (int k = 0; k < 7; k++)
            jw_dbl(&w, sub[k], k == 1 ? 100.0 : 0.0);
        jw_close(&w, '}');
        jw_open(&w, "iodepth_complete", '{');
        for (int k = 0; k < 7; k++)
            jw_dbl(&w, sub[k], k == 1 ? 100.0 : 0.0);
        jw_close(&w, '}');
        double ln[10], lu[10], lm[12];
        lat_buckets(u, ln, lu, lm);
        static const char *const l10[] = {"2", "4", "10", "20", "50", "100", "250", "500", "750", "1000"};
        static const char *const l12[] = {"2",   "4",   "10",  "20",   "50",   "100",
                                          "250", "500", "750", "1000", "2000", ">=2000"};
        jw_open(&w, "latency_ns", '{');
        for (int k = 0; k < 10; k++)
            jw_dbl(&w, l10[k], ln[k]);
        jw_close(&w, '}');
        jw_open(&w, "latency_us", '{');
        for (int k = 0; k < 10; k++)
            jw_dbl(&w, l10[k], lu[k]);
        jw_close(&w, '}');
        jw_open(&w, "latency_ms", '{');
        for (int k = 0; k < 12; k++)
            jw_dbl(&w, l12[k], lm[k]);
        jw_close(&w, '}');
        jw_u64(&w, "latency_depth", (uint64_t)(u->job->iodepth ? u->job->iodepth : u->ctl->final_depth));
        jw_u64(&w, "latency_target", 0);
        jw_dbl(&w, "latency_percentile", 100.0);
        jw_u64(&w, "latency_window", 0);
        json_auraio(&w, u);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');
    /* disk_util: one entry per disk of the run (the first group's disk). */
    jw_open(&w, "disk_util", '[');
    for (unsigned g = 0; g < ngroups && g < 1; g++) {
        const struct bffio_group_result *r = &groups[g].r;
        if (!r->disk_ok)
            continue;
        const uint64_t *a = r->disk_before, *b = r->disk_after;
        jw_open(&w, NULL, '{');
        jw_s(&w, "name", r->disk);
        jw_u64(&w, "read_ios", b[0] - a[0]);
        jw_u64(&w, "write_ios", b[4] - a[4]);
        jw_u64(&w, "read_merges", b[1] - a[1]);
        jw_u64(&w, "write_merges", b[5] - a[5]);
        jw_u64(&w, "read_ticks", b[3] - a[3]);
        jw_u64(&w, "write_ticks", b[7] - a[7]);
        jw_u64(&w, "in_queue", b[10] - a[10]);
        double util = r->elapsed_ms ? 100.0 * (double)(b[9] - a[9]) / (double)r->elapsed_ms : 0;
        jw_dbl(&w, "util", util > 100 ? 100 : util);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');
    fputs("\n}\n", f);
    free_units(units, nunits);
}

/* ---------------------------------------------------------------------------------------------
 * Text
 */

/* fio's num2str for bandwidth: "15.8MiB/s (16.5MB/s)". */
static void bw_str(double bps, char *out, size_t len)
{
    const char *iec[] = {"B", "KiB", "MiB", "GiB", "TiB"}, *si[] = {"B", "kB", "MB", "GB", "TB"};
    double a = bps, b = bps;
    int i = 0, k = 0;
    while (a >= 1024 * 10 && i < 4) {
        a /= 1024;
        i++;
    }
    while (b >= 1000 * 10 && k < 4) {
        b /= 1000;
        k++;
    }
    snprintf(out, len, "%.*f%s/s (%.*f%s/s)", a < 100 ? 1 : 0, a, iec[i], b < 100 ? 1 : 0, b, si[k]);
}

static void size_str(double bytes, char *out, size_t len)
{
    const char *iec[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (bytes >= 1024 * 10 && i < 4) {
        bytes /= 1024;
        i++;
    }
    snprintf(out, len, "%.*f%s", bytes < 100 ? 1 : 0, bytes, iec[i]);
}

/* fio picks the unit so numbers stay short: nsec, usec or msec. */
static void lat_line(FILE *f, const char *label, const struct bffio_lat *l)
{
    if (!l->n)
        return;
    double div = 1;
    const char *unit = "nsec";
    if (l->min >= 10000 || l->max >= 10000000) {
        div = 1000;
        unit = "usec";
    }
    if (l->min >= 10000000) {
        div = 1000000;
        unit = "msec";
    }
    fprintf(f, "    %s (%s): min=%.0f, max=%.0f, avg=%.2f, stdev=%.2f\n", label, unit, (double)l->min / div,
            (double)l->max / div, bffio_lat_mean(l) / div, bffio_lat_stddev(l) / div);
}

static void pct_block(FILE *f, const char *label, const struct bffio_lat *l, const struct bffio_hist *h,
                      const struct bffio_job *job)
{
    if (!l->n)
        return;
    uint64_t vals[BFFIO_MAX_PCT];
    bffio_hist_percentiles(h, l->n, job->percentile_list, job->percentile_nr, vals);
    uint64_t maxv = 0, minv = UINT64_MAX;
    for (unsigned i = 0; i < job->percentile_nr; i++) {
        maxv = vals[i] > maxv ? vals[i] : maxv;
        minv = vals[i] < minv ? vals[i] : minv;
    }
    /* fio's show_clat_percentiles scaling rule. */
    double div = 1;
    if (minv > 2000 && maxv > 99999)
        div = 1000;
    if (minv > 2000000 && maxv > 99999999)
        div = 1000000;
    fprintf(f, "    %s percentiles (%s):\n", label, div == 1 ? "nsec" : div == 1000 ? "usec" : "msec");
    for (unsigned i = 0; i < job->percentile_nr; i++) {
        if (i % 4 == 0)
            fprintf(f, "     |");
        fprintf(f, " %5.2fth=[%5.0f]%s", job->percentile_list[i], (double)vals[i] / div,
                (i % 4 == 3 || i + 1 == job->percentile_nr) ? (i + 1 == job->percentile_nr ? "\n" : ",\n") : ",");
    }
    fprintf(f, "     |\n");
}

static void text_ddir(FILE *f, const struct unit *u, int d)
{
    const struct bffio_dir_result *r = &u->r.dir[d];
    if (!r->ios)
        return;
    double ms = runtime_ms(&u->r);
    double bps = ms > 0 ? (double)r->io_bytes / (ms / 1000.0) : 0;
    double iops = ms > 0 ? (double)r->ios / (ms / 1000.0) : 0;
    char bw[64], io[32];
    bw_str(bps, bw, sizeof(bw));
    size_str((double)r->io_bytes, io, sizeof(io));
    char iops_s[32];
    if (iops >= 10000)
        snprintf(iops_s, sizeof(iops_s), "%.1fk", iops / 1000);
    else
        snprintf(iops_s, sizeof(iops_s), "%.0f", iops);
    fprintf(f, "  %s: IOPS=%s, BW=%s(%s/%.0fmsec)\n", ddir_name[d], iops_s, bw, io, ms);
    lat_line(f, "slat", &r->slat);
    lat_line(f, "clat", &r->clat);
    lat_line(f, " lat", &r->lat);
    if (u->job->clat_percentiles)
        pct_block(f, "clat", &r->clat, &r->clat_hist, u->job);
    if (u->job->lat_percentiles)
        pct_block(f, " lat", &r->lat, &r->lat_hist, u->job);
    struct sample_stats b = sample_stats(&u->r, d, false), i = sample_stats(&u->r, d, true);
    fprintf(f, "   bw (  KiB/s): min=%.0f, max=%.0f, avg=%.2f, stdev=%.2f, samples=%u\n", b.min, b.max, b.mean, b.dev,
            b.n);
    fprintf(f, "   iops        : min=%.0f, max=%.0f, avg=%.2f, stdev=%.2f, samples=%u\n", i.min, i.max, i.mean,
            i.dev, i.n);
}

static void text_auraio(FILE *f, const struct unit *u)
{
    const struct bffio_controller_record *c = u->ctl;
    uint64_t p99 = 0;
    for (int d = 0; d < 2; d++) {
        const struct bffio_dir_result *r = &u->r.dir[d];
        if (!r->ios)
            continue;
        double p = 99.0;
        uint64_t v;
        bffio_hist_percentiles(&r->lat_hist, r->lat.n, &p, 1, &v);
        p99 = v > p99 ? v : p99;
    }
    if (c->adaptive) {
        fprintf(f, "  auraio       : self-tuned depth=%d (converged after %.1fs), P99=%.3fms", c->final_depth,
                c->converge_s, (double)p99 / 1e6);
        if (c->target_p99_ms > 0)
            fprintf(f, " vs target %.3fms (%s)", c->target_p99_ms,
                    c->p99_ms <= c->target_p99_ms ? "met" : "not met");
        fprintf(f, "\n");
        for (int r = 0; r < c->rings; r++)
            if (c->ring[r].ops)
                fprintf(f, "     ring %d    : depth=%d, phase=%s, p50=%.3fms, p99=%.3fms%s\n", r, c->ring[r].depth,
                        auraio_phase_name(c->ring[r].phase), c->ring[r].p50_ms, c->ring[r].p99_ms,
                        c->ring[r].infeasible ? ", target infeasible" : "");
    } else {
        fprintf(f, "  auraio       : fixed depth=%d (controller off, like fio's iodepth), P99=%.3fms\n",
                c->fixed_depth, (double)p99 / 1e6);
    }
}

void bffio_report_text(FILE *f, const struct bffio_jobset *set, const struct bffio_report_group *groups,
                       unsigned ngroups)
{
    (void)set;
    unsigned nunits;
    struct unit *units = build_units(groups, ngroups, &nunits);
    if (!units)
        return;
    for (unsigned i = 0; i < nunits; i++) {
        const struct unit *u = &units[i];
        time_t t = (time_t)(u->r.start_unix_ms / 1000);
        char tb[64];
        ctime_r(&t, tb);
        tb[strcspn(tb, "\n")] = '\0';
        fprintf(f, "%s: (groupid=%u, jobs=%u): err=%2d: pid=%d: %s\n", u->job->name, u->groupid, u->jobs, u->r.error,
                (int)getpid(), tb);
        if (u->r.error)
            fprintf(f, "  error: %s\n", u->r.errmsg);
        for (int d = 0; d < BFFIO_DDIRS; d++)
            text_ddir(f, u, d);
        text_auraio(f, u);
        double n[10], us[10], ms[12];
        lat_buckets(u, n, us, ms);
        static const int lim[10] = {2, 4, 10, 20, 50, 100, 250, 500, 750, 1000};
        static const int mlim[12] = {2, 4, 10, 20, 50, 100, 250, 500, 750, 1000, 2000, 2000};
        const char *names[3] = {"nsec", "usec", "msec"};
        double *arr[3] = {n, us, ms};
        for (int k = 0; k < 3; k++) {
            int cnt = k == 2 ? 12 : 10;
            bool any = false;
            for (int b = 0; b < cnt; b++) {
                if (arr[k][b] < 0.01)
                    continue;
                if (!any)
                    fprintf(f, "  lat (%s)   : ", names[k]);
                fprintf(f, "%s%s%d=%.2f%%", any ? ", " : "", k == 2 && b == 11 ? ">=" : "",
                        k == 2 ? mlim[b] : lim[b], arr[k][b]);
                any = true;
            }
            if (any)
                fprintf(f, "\n");
        }
        fprintf(f, "  cpu          : usr=%.2f%%, sys=%.2f%%, ctx=%" PRIu64 ", majf=%" PRIu64 ", minf=%" PRIu64 "\n",
                u->r.usr_cpu, u->r.sys_cpu, u->r.ctx, u->r.majf, u->r.minf);
        fprintf(f, "  IO depths    :");
        static const char *const lvl[BFFIO_DEPTH_LEVELS] = {"1", "2", "4", "8", "16", "32", ">=64"};
        for (int k = 0; k < BFFIO_DEPTH_LEVELS; k++)
            fprintf(f, " %s=%.1f%%%s", lvl[k],
                    u->r.depth_samples ? 100.0 * (double)u->r.depth_level[k] / (double)u->r.depth_samples : 0,
                    k + 1 < BFFIO_DEPTH_LEVELS ? "," : "\n");
        fprintf(f, "     issued rwts: total=%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 " short=%" PRIu64 ",%" PRIu64
                   ",0,0 dropped=0,0,0,0\n",
                u->r.dir[0].ios, u->r.dir[1].ios, u->r.dir[2].ios, u->r.sync_ios, u->r.dir[0].short_ios,
                u->r.dir[1].short_ios);
        fprintf(f, "     latency   : target=0, window=0, percentile=100.00%%, depth=%d\n\n",
                u->job->iodepth ? u->job->iodepth : u->ctl->final_depth);
    }
    /* Run status per group. */
    for (unsigned g = 0; g < ngroups; g++) {
        fprintf(f, "Run status group %u (all jobs):\n", groups[g].groupid);
        for (int d = 0; d < 2; d++) {
            uint64_t bytes = 0;
            double minbw = 0, maxbw = 0, minrt = 0, maxrt = 0;
            bool any = false;
            for (unsigned i = 0; i < nunits; i++) {
                const struct unit *u = &units[i];
                if (u->groupid != groups[g].groupid || !u->r.dir[d].ios)
                    continue;
                double ms = runtime_ms(&u->r);
                double bw = ms > 0 ? (double)u->r.dir[d].io_bytes / (ms / 1000.0) : 0;
                bytes += u->r.dir[d].io_bytes;
                if (!any || bw < minbw)
                    minbw = bw;
                if (!any || bw > maxbw)
                    maxbw = bw;
                if (!any || ms < minrt)
                    minrt = ms;
                if (!any || ms > maxrt)
                    maxrt = ms;
                any = true;
            }
            if (!any)
                continue;
            char agg[64], lo[64], hi[64], io[32];
            bw_str(maxrt > 0 ? (double)bytes / (maxrt / 1000.0) : 0, agg, sizeof(agg));
            bw_str(minbw, lo, sizeof(lo));
            bw_str(maxbw, hi, sizeof(hi));
            size_str((double)bytes, io, sizeof(io));
            fprintf(f, "  %5s: bw=%s, %s-%s, io=%s, run=%.0f-%.0fmsec\n", d ? "WRITE" : "READ", agg, lo, hi, io, minrt,
                    maxrt);
        }
        const struct bffio_group_result *r = &groups[g].r;
        if (g == 0 && r->disk_ok) {
            const uint64_t *a = r->disk_before, *b = r->disk_after;
            double util = r->elapsed_ms ? 100.0 * (double)(b[9] - a[9]) / (double)r->elapsed_ms : 0;
            fprintf(f, "\nDisk stats (read/write):\n  %s: ios=%" PRIu64 "/%" PRIu64 ", merge=%" PRIu64 "/%" PRIu64
                       ", ticks=%" PRIu64 "/%" PRIu64 ", in_queue=%" PRIu64 ", util=%.2f%%\n",
                    r->disk, b[0] - a[0], b[4] - a[4], b[1] - a[1], b[5] - a[5], b[3] - a[3], b[7] - a[7],
                    b[10] - a[10], util > 100 ? 100 : util);
        }
    }
    /* One line per job with what matters most: IOPS and P99 next to the depth that produced them. */
    fprintf(f, "\nSummary:\n");
    for (unsigned i = 0; i < nunits; i++) {
        const struct unit *u = &units[i];
        double iops = 0;
        uint64_t p99 = 0;
        for (int d = 0; d < 2; d++) {
            const struct bffio_dir_result *r = &u->r.dir[d];
            double ms = runtime_ms(&u->r);
            iops += ms > 0 ? (double)r->ios / (ms / 1000.0) : 0;
            if (r->ios) {
                double p = 99.0;
                uint64_t v;
                bffio_hist_percentiles(&r->lat_hist, r->lat.n, &p, 1, &v);
                p99 = v > p99 ? v : p99;
            }
        }
        if (u->ctl->adaptive) {
            fprintf(f, "  %s: IOPS=%.0f, P99=%.3fms, depth=%d (self-tuned by auraio, converged after %.1fs)\n",
                    u->job->name, iops, (double)p99 / 1e6, u->ctl->final_depth, u->ctl->converge_s);
            /* What the controller learned of each device the group used (issue #16). */
            for (int d = 0; d < u->ctl->devices; d++)
                fprintf(f, "    %s\n", u->ctl->device_model[d]);
        } else
            fprintf(f, "  %s: IOPS=%.0f, P99=%.3fms, depth=%d (fixed iodepth)\n", u->job->name, iops,
                    (double)p99 / 1e6, u->ctl->fixed_depth);
    }
    free_units(units, nunits);
}
