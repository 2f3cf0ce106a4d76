/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auraio.bench's C half: bffio's parser and workload engine run in-process, exactly as the bffio
 * command runs them (bench/bffio/main.c), so a job's numbers from Python and from the command
 * agree and the I/O loop never runs Python code.
 */
#ifndef PYBFFIO_H
#define PYBFFIO_H

#include "report.h"
#include "workload.h"

#include <stddef.h>

struct pyb_run {
    struct bffio_jobset set;
    struct bffio_report_group *groups;
    unsigned ngroups;
    int status; /* 0 ok, 1 a job failed, 2 bad input, 3 could not start */
    char err[1024];
};

/*
 * Parse @p text (a fio job file, @p name for messages) and run its groups. @p eta: 1 prints the
 * progress line on stdout. @p stop: set to non-zero (any thread) to end the run early.
 * @return the run (always, unless out of memory: NULL); its status and err say how it went.
 */
struct pyb_run *pyb_run(const char *text, size_t len, const char *name, double target_p99_ms, int eta, int *stop);
/* A parse only (status 2 and err on bad input). */
struct pyb_run *pyb_parse(const char *text, size_t len, const char *name);
/* fio's JSON (json+ when @p plus) or normal text report of the run; free with pyb_free_str. */
char *pyb_report(struct pyb_run *r, int json, int plus);
void pyb_free_str(char *s);
void pyb_free(struct pyb_run *r);

#endif
