/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bffio: fio's interface, auraio's engine. Parses every job first (any error: exit 2 before any
 * I/O), then runs the jobs group by group (a stonewall starts a new group; wait_for only holds its
 * job back until the job it names has finished, as in fio), then prints
 * fio's normal text or JSON. Exit status: 0 ok, 1 a job failed (I/O error, verify mismatch,
 * rate_min), 2 bad input.
 */
#include "files.h"
#include "job.h"
#include "logs.h"
#include "report.h"
#include "workload.h"

#include <auraio.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;

/* Ctrl-C: stop the jobs, drain, report what ran (as fio does); a second one kills. */
static void on_signal(int sig)
{
    interrupted = 1;
    signal(sig, SIG_DFL);
}

static void print_error(const struct bffio_error *e)
{
    if (e->line)
        fprintf(stderr, "bffio: %s:%u: ", e->file, e->line);
    else
        fprintf(stderr, "bffio: %s: ", e->file[0] ? e->file : "command line");
    if (e->option[0])
        fprintf(stderr, "option '%s': ", e->option);
    fprintf(stderr, "%s\n", e->msg);
}

static const char *engine_note(const struct bffio_job *j)
{
    return strcmp(j->ioengine, "io_uring") ? " (run through auraio)" : " (auraio)";
}

static void print_header(FILE *f, const struct bffio_jobset *set)
{
    unsigned group = 0, threads = 0;
    for (unsigned i = 0; i < set->nr; i++) {
        const struct bffio_job *j = &set->jobs[i];
        if (i > 0 && j->stonewall)
            group++;
        threads += j->numjobs;
        char depth[32];
        if (j->iodepth)
            snprintf(depth, sizeof(depth), "%d", j->iodepth);
        else
            snprintf(depth, sizeof(depth), "auto (self-tuned)");
        fprintf(f,
                "%s: (g=%u): rw=%s, bs=(R) %lluB-%lluB, (W) %lluB-%lluB, (T) %lluB-%lluB, ioengine=%s%s, "
                "iodepth=%s\n",
                j->name, group, bffio_rw_name(j), (unsigned long long)j->bs_min[0], (unsigned long long)j->bs_max[0],
                (unsigned long long)j->bs_min[1], (unsigned long long)j->bs_max[1], (unsigned long long)j->bs_min[2],
                (unsigned long long)j->bs_max[2], j->ioengine, engine_note(j), depth);
    }
    fprintf(f, "bffio (auraio %s, fio-3.33 compatible)\nStarting %u thread%s\n", auraio_version(), threads,
            threads == 1 ? "" : "s");
}

int main(int argc, char **argv)
{
    struct bffio_jobset set;
    struct bffio_error err;
    memset(&err, 0, sizeof(err));
    bffio_jobset_init(&set);
    int rc = bffio_parse_args(&set, argc, argv, &err);
    if (rc < 0) {
        print_error(&err);
        bffio_jobset_free(&set);
        return 2;
    }
    if (rc == 1) {
        bffio_jobset_free(&set);
        return 0;
    }
    if (set.showcmd || set.parse_only) {
        if (set.showcmd)
            bffio_jobset_print(&set, true, stdout);
        bffio_jobset_free(&set);
        return 0;
    }
    FILE *out = stdout;
    if (set.output[0]) {
        out = fopen(set.output, "we");
        if (!out) {
            fprintf(stderr, "bffio: option 'output': cannot write '%s': %s\n", set.output, strerror(errno));
            bffio_jobset_free(&set);
            return 2;
        }
    }
    bool text = set.output_format & BFFIO_FMT_NORMAL;
    if (text)
        print_header(out, &set);
    fflush(out);

    struct bffio_run_opts ro = {set.eta, NULL, set.target_p99_ms, &interrupted};
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (set.eta == BFFIO_ETA_ALWAYS || (set.eta == BFFIO_ETA_AUTO && isatty(STDOUT_FILENO)))
        ro.eta_out = stdout;
    struct bffio_report_group *groups = calloc(set.nr, sizeof(*groups));
    unsigned ngroups = 0, log_num = 1;
    int status = 0;
    if (!groups) {
        fprintf(stderr, "bffio: out of memory\n");
        status = 1;
        goto done;
    }
    for (unsigned first = 0; first < set.nr && !interrupted;) {
        unsigned last = first + 1;
        while (last < set.nr && !set.jobs[last].stonewall)
            last++;
        struct bffio_report_group *g = &groups[ngroups];
        g->groupid = ngroups;
        int r = bffio_run_group(&set.jobs[first], last - first, &ro, &g->r);
        if (r < 0) {
            const char *msg = g->r.res && g->r.res[0].errmsg[0] ? g->r.res[0].errmsg : "cannot start the jobs";
            fprintf(stderr, "bffio: %s\n", msg);
            bffio_group_result_free(&g->r);
            bffio_files_remove_created();
            status = 1;
            goto done;
        }
        char logmsg[BFFIO_PATH_MAX + 128];
        if (bffio_write_logs(&g->r, log_num, logmsg, sizeof(logmsg)) < 0) {
            fprintf(stderr, "bffio: %s\n", logmsg);
            status = 1;
        }
        log_num += g->r.nr;
        ngroups++;
        if (r > 0) {
            status = 1;
            for (unsigned i = 0; i < g->r.nr; i++) {
                const struct bffio_result *res = &g->r.res[i];
                /* verify_fatal=0: every bad block, then the count in errmsg */
                for (const char *l = res->verify_log; l && *l;) {
                    const char *e = strchr(l, '\n');
                    int n = e ? (int)(e - l) : (int)strlen(l);
                    fprintf(stderr, "bffio: job '%s': %.*s\n", res->job->name, n, l);
                    l += n + (e != NULL);
                }
                if (res->error)
                    fprintf(stderr, "bffio: job '%s': %s\n", res->job->name, res->errmsg);
            }
        }
        first = last;
    }
    bffio_files_forget_created();
    if (text)
        bffio_report_text(out, &set, groups, ngroups);
    if (set.output_format & BFFIO_FMT_JSON)
        bffio_report_json(out, &set, groups, ngroups, set.output_format & BFFIO_FMT_JSON_PLUS);
done:
    for (unsigned g = 0; groups && g < ngroups; g++)
        bffio_group_result_free(&groups[g].r);
    free(groups);
    if (out != stdout)
        fclose(out);
    bffio_jobset_free(&set);
    return status;
}
