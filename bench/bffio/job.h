/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bffio's job description: what one fio job asks for, after the parser has applied fio's defaults,
 * [global] inheritance, units and substitutions. The workload engine (workload.h) takes these in;
 * nothing here touches a file or the engine, so the parser can be tested and fuzzed on its own.
 */
#ifndef BFFIO_JOB_H
#define BFFIO_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BFFIO_NAME_MAX 256
#define BFFIO_PATH_MAX 4096
#define BFFIO_MAX_PCT 64        /* fio's FIO_IO_U_LIST_MAX_LEN */
#define BFFIO_MAX_BSSPLIT 64    /* fio's BSSPLIT_MAX */
#define BFFIO_MAX_JOB_OPTS 64   /* options echoed in the JSON "job options" object */
#define BFFIO_OPT_VAL_MAX 512
#define BFFIO_MAX_JOBS 256      /* job sections per run (numjobs clones are counted separately) */
#define BFFIO_MAX_NUMJOBS 256
#define BFFIO_MAX_IODEPTH 4096

/* fio's data directions, in fio's order (the JSON has read, write, trim; sync is separate). */
enum bffio_ddir { BFFIO_DDIR_READ = 0, BFFIO_DDIR_WRITE = 1, BFFIO_DDIR_TRIM = 2, BFFIO_DDIRS = 3 };

enum bffio_rand_dist {
    BFFIO_RAND_UNIFORM = 0,
    BFFIO_RAND_ZIPF,
    BFFIO_RAND_PARETO,
    BFFIO_RAND_NORMAL,
};

enum bffio_verify { BFFIO_VERIFY_NONE = 0, BFFIO_VERIFY_CRC32C, BFFIO_VERIFY_MD5, BFFIO_VERIFY_PATTERN };

struct bffio_bssplit {
    uint64_t bs;
    unsigned perc; /* 0 = share the rest equally with the other 0 entries, as fio does */
};

/* One option as written, for the JSON "job options" / "global options" objects. */
struct bffio_kv {
    char key[64];
    char val[BFFIO_OPT_VAL_MAX];
};

struct bffio_job {
    char name[BFFIO_NAME_MAX];
    char description[BFFIO_NAME_MAX];
    char filename[BFFIO_PATH_MAX]; /* ':' separated list ("\:" is a literal colon); "" = generated */
    char directory[BFFIO_PATH_MAX];
    char filename_format[BFFIO_NAME_MAX];
    unsigned nrfiles;
    uint64_t size;       /* total bytes over the job's files; 0 = the files' existing size */
    unsigned size_pct;   /* size=N%: of the existing file size */
    uint64_t filesize;   /* per file; 0 = size / nrfiles */
    uint64_t offset;
    unsigned offset_pct;
    uint64_t offset_increment;
    uint64_t io_size; /* bytes to transfer; 0 = size */
    bool rw_read, rw_write, rw_random;
    uint64_t rw_nr; /* rw=...:N - random: new offset every N I/Os; sequential: N bytes skipped */
    unsigned rwmixread;
    uint64_t bs[BFFIO_DDIRS];
    uint64_t bs_min[BFFIO_DDIRS], bs_max[BFFIO_DDIRS]; /* bsrange; equal to bs when not given */
    struct bffio_bssplit bssplit[BFFIO_DDIRS][BFFIO_MAX_BSSPLIT];
    unsigned bssplit_nr[BFFIO_DDIRS];
    uint64_t blockalign; /* 0 = the block size */
    int iodepth;       /* 0 = not given: the controller chooses */
    int iodepth_batch_submit;
    unsigned numjobs;
    bool thread;
    uint64_t runtime_us;
    uint64_t ramp_us;
    uint64_t startdelay_us;
    bool time_based;
    unsigned loops;
    bool direct;
    bool invalidate;
    unsigned fsync_blocks, fdatasync_blocks;
    bool end_fsync, fsync_on_close, create_on_open, unlink;
    bool randrepeat;
    uint64_t randseed;
    bool norandommap;
    enum bffio_rand_dist random_distribution;
    double dist_param[2];
    uint64_t rate[BFFIO_DDIRS];      /* bytes/s per direction, 0 = none */
    uint64_t rate_iops[BFFIO_DDIRS];
    uint64_t rate_min[BFFIO_DDIRS];
    uint64_t thinktime_us;
    bool group_reporting;
    double percentile_list[BFFIO_MAX_PCT];
    unsigned percentile_nr;
    bool lat_percentiles, clat_percentiles;
    unsigned log_avg_msec;
    char bw_log[BFFIO_PATH_MAX], lat_log[BFFIO_PATH_MAX], iops_log[BFFIO_PATH_MAX];
    enum bffio_verify verify;
    bool do_verify;
    bool verify_fatal;
    unsigned verify_backlog;
    uint8_t verify_pattern[64];
    unsigned verify_pattern_len;
    char ioengine[32];
    double target_p99_ms; /* 0 = none: the controller looks for the knee */
    bool stonewall;
    char wait_for[BFFIO_NAME_MAX];
    unsigned kb_base;
    /* Where the section began, for messages about the job as a whole. */
    char src_file[BFFIO_PATH_MAX];
    unsigned src_line;
    struct bffio_kv opts[BFFIO_MAX_JOB_OPTS];
    unsigned opts_nr;
};

/* The whole command: jobs in file order plus the run-wide settings. */
struct bffio_jobset {
    struct bffio_job *jobs;
    unsigned nr;
    struct bffio_kv global_opts[BFFIO_MAX_JOB_OPTS]; /* the first [global]'s options, for JSON */
    unsigned global_opts_nr;
    /* Run-wide (fio command-line only) settings. */
    char output[BFFIO_PATH_MAX];
    int output_format; /* BFFIO_FMT_* bits */
    int eta;           /* BFFIO_ETA_* */
    bool parse_only;
    bool showcmd;
    double target_p99_ms; /* --target-p99: applies to jobs that set none */
};

enum { BFFIO_FMT_NORMAL = 1, BFFIO_FMT_JSON = 2, BFFIO_FMT_JSON_PLUS = 4, BFFIO_FMT_TERSE = 8 };
enum { BFFIO_ETA_AUTO = 0, BFFIO_ETA_ALWAYS, BFFIO_ETA_NEVER };

/* A parse error: where and about which option, and why. */
struct bffio_error {
    char file[BFFIO_PATH_MAX];
    unsigned line; /* 0 = command line */
    char option[64];
    char msg[512];
};

/* Flags for the parse calls. */
#define BFFIO_PARSE_NO_INCLUDE 1u /* the fuzzer: an include is an error rather than a file read */

/* fio's defaults for a job (what [global] starts from). */
void bffio_job_defaults(struct bffio_job *job);

void bffio_jobset_init(struct bffio_jobset *set);
void bffio_jobset_free(struct bffio_jobset *set);

/*
 * Parse job-file text (@p name is the file name used in messages and for relative includes) and
 * append its jobs to @p set. @return 0, or -1 with @p err filled (file, line, option, reason).
 */
int bffio_parse_text(struct bffio_jobset *set, const char *text, size_t len, const char *name, unsigned flags,
                     struct bffio_error *err);
/* Read and parse a job file. */
int bffio_parse_file(struct bffio_jobset *set, const char *path, unsigned flags, struct bffio_error *err);

/*
 * Parse fio's command line: run-wide flags (--output, --output-format, --eta, --parse-only,
 * --showcmd, --target-p99), job options as --name=value (options before the first --name go to
 * the command line's global section) and job file names. @return 0, 1 when a flag that only prints
 * (--help, --version) was handled, or -1 with @p err filled.
 */
int bffio_parse_args(struct bffio_jobset *set, int argc, char **argv, struct bffio_error *err);

/* fio's unit parsing, exposed for tests. @return 0 or -1. */
int bffio_parse_size(const char *s, unsigned kb_base, uint64_t *out);
int bffio_parse_time_us(const char *s, uint64_t default_unit_us, uint64_t *out);

/* The read/write/trim share of a job's I/O as fio prints it ("randrw" etc.). */
const char *bffio_rw_name(const struct bffio_job *job);

/* Print the jobs back as a job file (--showcmd prints them as a command line). */
void bffio_jobset_print(const struct bffio_jobset *set, bool as_cmdline, void *stream);

#endif
