/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bffio's workload engine: run a group of jobs (the jobs between two stonewalls) on one auraio
 * engine, one thread per job clone (numjobs), and hand back each clone's results and per-interval
 * samples plus what the depth controller did. Reusable on its own: job descriptions in (job.h),
 * results out, nothing printed except the optional progress line.
 */
#ifndef BFFIO_WORKLOAD_H
#define BFFIO_WORKLOAD_H

#include "job.h"
#include "lathist.h"

#include <signal.h>
#include <stdio.h>

struct bffio_dir_result {
    uint64_t io_bytes, ios, short_ios;
    struct bffio_lat slat, clat, lat;
    struct bffio_hist clat_hist, lat_hist;
};

/* One interval of one clone (log_avg_msec, or fio's 500 ms when none is set). */
struct bffio_sample {
    uint64_t t_ms;                /* end of the interval, from the group's start */
    uint64_t bytes[BFFIO_DDIRS];  /* in the interval */
    uint64_t ios[BFFIO_DDIRS];
    uint64_t lat_sum_ns[BFFIO_DDIRS];
    uint64_t clat_sum_ns[BFFIO_DDIRS];
    uint64_t slat_sum_ns[BFFIO_DDIRS];
    int depth;                    /* the engine's in-flight limit at the end of the interval */
    /* Engine-wide (all clones) over the interval, from the library's lifetime latency histogram
     * (submit to reap, reads and writes): 0 when the interval had no sample. */
    uint64_t p50_ns, p99_ns;
    int phase; /* the controller phase of the busiest ring at the end (auraio_phase_name) */
};

/* One I/O of a per-I/O latency log (write_lat_log without log_avg_msec). */
struct bffio_iolog {
    uint64_t t_ms; /* from the clone's start */
    uint64_t slat_ns, clat_ns, lat_ns;
    uint32_t bs;
    uint8_t ddir;
};

#define BFFIO_DEPTH_LEVELS 7 /* fio's iodepth_level buckets: 1, 2, 4, 8, 16, 32, >=64 */

struct bffio_result {
    const struct bffio_job *job;
    unsigned clone;
    struct bffio_dir_result dir[BFFIO_DDIRS];
    uint64_t sync_ios;
    struct bffio_lat sync_lat;
    uint64_t runtime_ns; /* measured time, ramp excluded */
    uint64_t start_unix_ms;
    double usr_cpu, sys_cpu; /* percent of runtime */
    uint64_t ctx, majf, minf;
    uint64_t depth_level[BFFIO_DEPTH_LEVELS];
    uint64_t depth_samples;
    int error;         /* errno of the first failure, 0 = none */
    char errmsg[512];
    /* verify: blocks checked and found bad; with verify_fatal=0 the job goes on past a bad block
     * and every one is described here, one line each (error is then EILSEQ once the job ends). */
    uint64_t verify_checked, verify_bad;
    char *verify_log;
    size_t verify_log_len, verify_log_cap;
    struct bffio_sample *samples;
    unsigned samples_nr;
    struct bffio_iolog *iolog;
    size_t iolog_nr, iolog_cap;
};

struct bffio_ring_record {
    int depth;
    int phase;
    double p99_ms, p50_ms;
    bool infeasible;
    uint64_t ops;
};

/* What the controller did over the group (the JSON "auraio" object). */
/* Devices whose model a group reports (an engine has at most 7). */
#define BFFIO_DEVICES_MAX 7

struct bffio_controller_record {
    bool adaptive;
    int fixed_depth;       /* iodepth when every job set one */
    double target_p99_ms;  /* 0 = none */
    int final_depth;       /* sum of the in-flight limits of the rings that did I/O */
    double converge_s;     /* when the depth last changed, from the start of the measured time */
    double p99_ms;         /* the engine's last-window P99 */
    int rings;
    struct bffio_ring_record *ring;
    /* The depth over time, one point each monitor tick (100 ms). */
    int *depth_trace;
    unsigned depth_trace_nr;
    /* What the controller learned of each device at the end (auraio_format_device_model). */
    char device_model[BFFIO_DEVICES_MAX][192];
    int devices;
};

struct bffio_group_result {
    struct bffio_result *res; /* one per clone, jobs in order, clones in order */
    unsigned nr;
    struct bffio_controller_record ctl;
    uint64_t elapsed_ms;
    /* /sys/block/<disk>/stat before and after, when the first file is on a disk we can name */
    char disk[64];
    uint64_t disk_before[11], disk_after[11];
    bool disk_ok;
};

struct bffio_run_opts {
    int eta;              /* BFFIO_ETA_* */
    FILE *eta_out;        /* where the progress line goes (a terminal) */
    double target_p99_ms; /* from --target-p99, for jobs without their own */
    /* Set (by a signal handler, say) to stop the jobs early; what ran is still reported. */
    volatile sig_atomic_t *stop;
};

/*
 * Run @p nr jobs concurrently (one group); a job whose wait_for names an earlier job of the group
 * starts when every clone of that job has finished (a name outside the group has finished). Files are laid out and opened first; an error there
 * returns -1 with @p out->res[0].errmsg filled before any I/O. @return 0 when every clone ran
 * without error, 1 when the run finished but some clone failed (its errmsg says why, e.g. a
 * verify mismatch naming the offset), -1 when it could not start.
 */
int bffio_run_group(const struct bffio_job *jobs, unsigned nr, const struct bffio_run_opts *opts,
                    struct bffio_group_result *out);
void bffio_group_result_free(struct bffio_group_result *r);

#endif
