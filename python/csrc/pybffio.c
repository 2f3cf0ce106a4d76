/* SPDX-License-Identifier: Apache-2.0 */
/* auraio.bench's C half (pybffio.h); the group loop is bench/bffio/main.c's. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "pybffio.h"

#include "files.h"
#include "logs.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct pyb_run *parse(const char *text, size_t len, const char *name)
{
    struct pyb_run *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    bffio_jobset_init(&r->set);
    struct bffio_error err;
    memset(&err, 0, sizeof(err));
    if (bffio_parse_text(&r->set, text, len, name, 0, &err) < 0) {
        r->status = 2;
        if (err.option[0])
            snprintf(r->err, sizeof(r->err), "%s:%u: option '%s': %s", err.file, err.line, err.option, err.msg);
        else
            snprintf(r->err, sizeof(r->err), "%s:%u: %s", err.file, err.line, err.msg);
    } else if (r->set.nr == 0) {
        r->status = 2;
        snprintf(r->err, sizeof(r->err), "%s: no job", name);
    }
    return r;
}

struct pyb_run *pyb_parse(const char *text, size_t len, const char *name)
{
    return parse(text, len, name);
}

struct pyb_run *pyb_run(const char *text, size_t len, const char *name, double target_p99_ms, int eta, int *stop)
{
    struct pyb_run *r = parse(text, len, name);
    if (!r || r->status)
        return r;
    struct bffio_run_opts ro = {eta ? BFFIO_ETA_ALWAYS : BFFIO_ETA_NEVER, eta ? stdout : NULL, target_p99_ms,
                                (volatile sig_atomic_t *)stop};
    r->groups = calloc(r->set.nr, sizeof(*r->groups));
    if (!r->groups) {
        r->status = 3;
        snprintf(r->err, sizeof(r->err), "out of memory");
        return r;
    }
    unsigned log_num = 1;
    for (unsigned first = 0; first < r->set.nr && !(stop && *stop);) {
        unsigned last = first + 1;
        while (last < r->set.nr && !r->set.jobs[last].stonewall && !r->set.jobs[last].wait_for[0])
            last++;
        struct bffio_report_group *g = &r->groups[r->ngroups];
        g->groupid = r->ngroups;
        int rc = bffio_run_group(&r->set.jobs[first], last - first, &ro, &g->r);
        if (rc < 0) {
            const char *msg = g->r.res && g->r.res[0].errmsg[0] ? g->r.res[0].errmsg : "cannot start the jobs";
            snprintf(r->err, sizeof(r->err), "%s", msg);
            bffio_group_result_free(&g->r);
            bffio_files_remove_created();
            r->status = 3;
            return r;
        }
        char logmsg[BFFIO_PATH_MAX + 128];
        if (bffio_write_logs(&g->r, log_num, logmsg, sizeof(logmsg)) < 0) {
            snprintf(r->err, sizeof(r->err), "%s", logmsg);
            r->status = 1;
        }
        log_num += g->r.nr;
        r->ngroups++;
        if (rc > 0) {
            r->status = 1;
            for (unsigned i = 0; i < g->r.nr; i++)
                if (g->r.res[i].error && !r->err[0])
                    snprintf(r->err, sizeof(r->err), "job '%s': %s", g->r.res[i].job->name, g->r.res[i].errmsg);
        }
        first = last;
    }
    bffio_files_forget_created();
    return r;
}

char *pyb_report(struct pyb_run *r, int json, int plus)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    if (json)
        bffio_report_json(f, &r->set, r->groups, r->ngroups, plus != 0);
    else
        bffio_report_text(f, &r->set, r->groups, r->ngroups);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

void pyb_free_str(char *s)
{
    free(s);
}

void pyb_free(struct pyb_run *r)
{
    if (!r)
        return;
    for (unsigned g = 0; r->groups && g < r->ngroups; g++)
        bffio_group_result_free(&r->groups[g].r);
    free(r->groups);
    bffio_jobset_free(&r->set);
    free(r);
}
