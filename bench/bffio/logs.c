/* SPDX-License-Identifier: Apache-2.0 */
/* fio-format log files (see logs.h). */
#include "logs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static FILE *open_log(const char *prefix, const char *kind, unsigned num, char *msg, size_t msg_len)
{
    char path[BFFIO_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s_%s.%u.log", prefix, kind, num);
    FILE *f = fopen(path, "we");
    if (!f)
        snprintf(msg, msg_len, "cannot write %s: %s", path, strerror(errno));
    return f;
}

static int sample_log(const struct bffio_result *res, const char *prefix, const char *kind, unsigned num,
                      char *msg, size_t msg_len)
{
    FILE *f = open_log(prefix, kind, num, msg, msg_len);
    if (!f)
        return -1;
    uint64_t prev = 0;
    for (unsigned i = 0; i < res->samples_nr; i++) {
        const struct bffio_sample *s = &res->samples[i];
        double dt = (double)(s->t_ms - prev) / 1000.0;
        prev = s->t_ms;
        if (dt <= 0)
            continue;
        for (int d = 0; d < 2; d++) {
            bool active = d == 0 ? res->job->rw_read : res->job->rw_write;
            if (!active)
                continue;
            uint64_t v;
            if (!strcmp(kind, "bw"))
                v = (uint64_t)((double)s->bytes[d] / 1024.0 / dt);
            else if (!strcmp(kind, "iops"))
                v = (uint64_t)((double)s->ios[d] / dt);
            else {
                if (!s->ios[d])
                    continue;
                const uint64_t *sum = !strcmp(kind, "lat") ? s->lat_sum_ns : !strcmp(kind, "clat") ? s->clat_sum_ns
                                                                                                   : s->slat_sum_ns;
                v = sum[d] / s->ios[d];
            }
            fprintf(f, "%" PRIu64 ", %" PRIu64 ", %d, 0, 0\n", s->t_ms, v, d);
        }
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int iolog(const struct bffio_result *res, const char *prefix, unsigned num, char *msg, size_t msg_len)
{
    static const char *const kinds[3] = {"clat", "lat", "slat"};
    for (int k = 0; k < 3; k++) {
        FILE *f = open_log(prefix, kinds[k], num, msg, msg_len);
        if (!f)
            return -1;
        for (size_t i = 0; i < res->iolog_nr; i++) {
            const struct bffio_iolog *e = &res->iolog[i];
            uint64_t v = k == 0 ? e->clat_ns : k == 1 ? e->lat_ns : e->slat_ns;
            fprintf(f, "%" PRIu64 ", %" PRIu64 ", %u, %u, 0\n", e->t_ms, v, e->ddir, e->bs);
        }
        if (fclose(f) != 0)
            return -1;
    }
    return 0;
}

int bffio_write_logs(const struct bffio_group_result *r, unsigned first_num, char *msg, size_t msg_len)
{
    for (unsigned i = 0; i < r->nr; i++) {
        const struct bffio_result *res = &r->res[i];
        const struct bffio_job *j = res->job;
        unsigned num = first_num + i;
        if (j->bw_log[0] && sample_log(res, j->bw_log, "bw", num, msg, msg_len) < 0)
            return -1;
        if (j->iops_log[0] && sample_log(res, j->iops_log, "iops", num, msg, msg_len) < 0)
            return -1;
        if (j->lat_log[0]) {
            if (j->log_avg_msec) {
                if (sample_log(res, j->lat_log, "clat", num, msg, msg_len) < 0 ||
                    sample_log(res, j->lat_log, "lat", num, msg, msg_len) < 0 ||
                    sample_log(res, j->lat_log, "slat", num, msg, msg_len) < 0)
                    return -1;
            } else if (iolog(res, j->lat_log, num, msg, msg_len) < 0) {
                return -1;
            }
        }
    }
    return 0;
}
