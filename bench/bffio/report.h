/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bffio's reports: fio's normal text and fio 3.33's JSON / json+ layout (stat.c, json.c), with an
 * "auraio" object per job carrying the controller's record.
 */
#ifndef BFFIO_REPORT_H
#define BFFIO_REPORT_H

#include "workload.h"

#include <stdio.h>

struct bffio_report_group {
    struct bffio_group_result r;
    unsigned groupid;
};

void bffio_report_text(FILE *f, const struct bffio_jobset *set, const struct bffio_report_group *groups,
                       unsigned ngroups);
void bffio_report_json(FILE *f, const struct bffio_jobset *set, const struct bffio_report_group *groups,
                       unsigned ngroups, bool plus);

#endif
