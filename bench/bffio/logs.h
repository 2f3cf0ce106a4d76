/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fio's log files (write_bw_log, write_iops_log, write_lat_log) in fio 3.33's format: one
 * "time_ms, value, ddir, bs, offset" line per entry, in PREFIX_bw.N.log, PREFIX_iops.N.log and
 * PREFIX_{clat,lat,slat}.N.log, N counting job clones from 1 over the whole run. Bandwidth and
 * IOPS are averaged over log_avg_msec (fio's 500 ms without it); latencies are logged per I/O
 * unless log_avg_msec is set, then averaged as well.
 */
#ifndef BFFIO_LOGS_H
#define BFFIO_LOGS_H

#include "workload.h"

/* Write the logs the group's jobs asked for; @p first_num is the number of its first clone. */
int bffio_write_logs(const struct bffio_group_result *r, unsigned first_num, char *msg, size_t msg_len);

#endif
