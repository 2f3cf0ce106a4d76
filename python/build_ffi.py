# SPDX-License-Identifier: Apache-2.0
"""cffi builder (API mode) for auraio._auraio: the C library, bffio's workload engine and the
binding's C half compiled into one extension module, so the wheel needs nothing else."""
import glob
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
# setup.py copies the repository's lib/, include/ and bench/bffio/ here (an sdist carries them).
VENDOR = "_vendor"
BFFIO_SOURCES = ["job_parser.c", "units.c", "workload.c", "files.c", "lathist.c", "verify.c", "report.c", "logs.c"]

CDEF = r"""
typedef long... ssize_t;
typedef unsigned int... mode_t;
struct iovec { void *iov_base; size_t iov_len; };

typedef struct auraio_engine auraio_engine_t;
typedef struct auraio_request auraio_request_t;
typedef enum { AURAIO_SELECT_ADAPTIVE, AURAIO_SELECT_CPU_LOCAL, AURAIO_SELECT_ROUND_ROBIN,
               AURAIO_SELECT_THREAD_LOCAL, ... } auraio_ring_select_t;
typedef struct {
    size_t struct_size; int ring_count; int queue_depth; int initial_in_flight; int max_in_flight;
    double max_p99_latency_ms; auraio_ring_select_t ring_select; bool disable_adaptive;
    bool single_issuer; bool enable_sqpoll; int sqpoll_idle_ms; ...;
} auraio_options_t;
typedef struct {
    uint64_t ops_completed; uint64_t bytes_transferred; uint64_t submissions_at_limit;
    uint64_t adaptive_spills; int pending_count; int in_flight_limit; double throughput_bps;
    double p99_latency_ms; ...;
} auraio_stats_t;
typedef struct {
    uint64_t ops_completed; uint64_t bytes_transferred; uint64_t submissions_at_limit;
    int pending_count; int in_flight_limit; int batch_threshold; int queue_depth; int phase;
    bool target_infeasible; double p99_latency_ms; double p50_latency_ms; double throughput_bps; ...;
} auraio_ring_stats_t;
#define AURAIO_HISTOGRAM_BUCKETS ...
typedef struct {
    uint32_t bucket_count; uint64_t total_count; uint64_t overflow_count; uint64_t buckets[...]; ...;
} auraio_histogram_t;
typedef struct {
    uint64_t total_allocated_bytes; uint64_t total_buffers; uint64_t cached_bytes;
    uint64_t cached_buffers; int shard_count; ...;
} auraio_buffer_stats_t;
#define AURAIO_OP_KIND_COUNT ...
#define AURAIO_ERR_CLASS_COUNT ...
#define AURAIO_ALL_RINGS ...
typedef struct {
    uint64_t ops[...]; uint64_t bytes[...]; uint64_t errors[4][3];
    uint64_t submissions_at_limit; uint64_t adaptive_spills; uint64_t latency_count;
    uint64_t latency_sum_ns; uint64_t latency_overflow; uint64_t latency_buckets[...];
    int backlog_length; int in_flight; int in_flight_limit; int queue_depth; int phase;
    bool target_infeasible; uint64_t p50_ns; uint64_t p99_ns; uint64_t target_p99_ns; ...;
} auraio_metrics_t;
typedef enum { AURAIO_REG_BUFFERS, AURAIO_REG_FILES, ... } auraio_reg_type_t;
#define AURAIO_FIXED_FILE ...
#define AURAIO_LINK ...
#define AURAIO_HARDLINK ...
#define AURAIO_FSYNC_DATASYNC ...

const char *auraio_version(void);
int auraio_version_int(void);
void auraio_options_init(auraio_options_t *options);
int auraio_cancel(auraio_engine_t *engine, auraio_request_t *req);
int auraio_request_pending(auraio_engine_t *engine, const auraio_request_t *req);
int auraio_cancel_fd(auraio_engine_t *engine, int fd);
int auraio_stop(auraio_engine_t *engine);
int auraio_flush(auraio_engine_t *engine);
int auraio_get_poll_fd(const auraio_engine_t *engine);
int auraio_pending_count(const auraio_engine_t *engine);
int auraio_capacity(const auraio_engine_t *engine);
int auraio_get_ring_count(const auraio_engine_t *engine);
int auraio_get_stats(const auraio_engine_t *engine, auraio_stats_t *stats);
int auraio_get_ring_stats(const auraio_engine_t *engine, int ring_index, auraio_ring_stats_t *stats);
int auraio_get_histogram(const auraio_engine_t *engine, int ring_index, auraio_histogram_t *hist);
uint64_t auraio_histogram_bucket_lower_ns(int bucket);
const char *auraio_phase_name(int phase);
int auraio_set_max_p99_latency(auraio_engine_t *engine, double max_p99_latency_ms);
int auraio_get_metrics(const auraio_engine_t *engine, int ring_index, auraio_metrics_t *metrics);
int auraio_metrics_prometheus(const auraio_engine_t *engine, char *buf, size_t len);
int auraio_metrics_openmetrics(const auraio_engine_t *engine, char *buf, size_t len);
typedef struct auraio_metrics_server auraio_metrics_server_t;
auraio_metrics_server_t *auraio_metrics_server_start(auraio_engine_t *engine, const char *bind_address, int port);
int auraio_metrics_server_port(const auraio_metrics_server_t *server);
int auraio_metrics_server_stop(auraio_metrics_server_t *server);
void *auraio_buffer_alloc(auraio_engine_t *engine, size_t size);
int auraio_buffer_free(auraio_engine_t *engine, void *buf, size_t size);
int auraio_get_buffer_stats(const auraio_engine_t *engine, auraio_buffer_stats_t *stats);
int auraio_register_buffers(auraio_engine_t *engine, const struct iovec *iovs, int count);
int auraio_register_files(auraio_engine_t *engine, const int *fds, int count);
int auraio_update_file(auraio_engine_t *engine, int index, int fd);
int auraio_unregister(auraio_engine_t *engine, auraio_reg_type_t type);

struct statx_timestamp { int64_t tv_sec; uint32_t tv_nsec; ...; };
struct statx {
    uint32_t stx_mask; uint32_t stx_blksize; uint64_t stx_attributes; uint32_t stx_nlink;
    uint32_t stx_uid; uint32_t stx_gid; uint16_t stx_mode; uint64_t stx_ino; uint64_t stx_size;
    uint64_t stx_blocks; uint64_t stx_attributes_mask;
    struct statx_timestamp stx_atime; struct statx_timestamp stx_btime;
    struct statx_timestamp stx_ctime; struct statx_timestamp stx_mtime;
    uint32_t stx_dev_major; uint32_t stx_dev_minor; ...;
};

struct pya_engine;
struct pya_engine *pya_create(const auraio_options_t *options, uint32_t slots);
auraio_engine_t *pya_raw(struct pya_engine *pe);
void pya_destroy(struct pya_engine *pe);
void pya_free(struct pya_engine *pe);
int pya_poll(struct pya_engine *pe, uint32_t *idx, int64_t *res, int cap, int *rc);
int pya_wait(struct pya_engine *pe, int timeout_ms, uint32_t *idx, int64_t *res, int cap, int *rc);
int pya_run(struct pya_engine *pe, uint32_t *idx, int64_t *res, int cap, int *rc);
int pya_drain(uint32_t *idx, int64_t *res, int cap);
auraio_request_t *pya_read(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, void *buf, size_t len,
                           int64_t offset, unsigned flags);
auraio_request_t *pya_write(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, const void *buf,
                            size_t len, int64_t offset, unsigned flags);
auraio_request_t *pya_read_fixed(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, int buf_index,
                                 size_t buf_offset, size_t len, int64_t offset, unsigned flags);
auraio_request_t *pya_write_fixed(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, int buf_index,
                                  size_t buf_offset, size_t len, int64_t offset, unsigned flags);
auraio_request_t *pya_readv(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, const struct iovec *iov,
                            int iovcnt, int64_t offset, unsigned flags);
auraio_request_t *pya_writev(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd,
                             const struct iovec *iov, int iovcnt, int64_t offset, unsigned flags);
auraio_request_t *pya_fsync(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, unsigned flags);
auraio_request_t *pya_openat(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int dirfd, const char *path,
                             int open_flags, unsigned mode, int file_index, unsigned flags);
auraio_request_t *pya_close(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, unsigned flags);
auraio_request_t *pya_statx(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int dirfd, const char *path,
                            int statx_flags, unsigned mask, void *statxbuf, unsigned flags);
auraio_request_t *pya_fallocate(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, int mode,
                                int64_t offset, int64_t len, unsigned flags);
auraio_request_t *pya_ftruncate(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, int64_t length,
                                unsigned flags);
auraio_request_t *pya_sync_file_range(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd,
                                      int64_t offset, uint32_t nbytes, unsigned sync_flags, unsigned flags);
auraio_request_t *pya_fadvise(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, int64_t offset,
                              int64_t len, int advice, unsigned flags);
auraio_request_t *pya_madvise(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, void *addr, size_t len,
                              int advice, unsigned flags);
auraio_request_t *pya_timer(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns);
struct pya_batch;
struct pya_batch *pya_batch_submit(struct pya_engine *pe, uint32_t idx, int write, int fd, char *base, size_t stride,
                                   size_t len, const int64_t *offsets, uint32_t n, uint32_t depth, int *done);
const int64_t *pya_batch_results(const struct pya_batch *b);
int pya_batch_cancel(struct pya_engine *pe, struct pya_batch *b);
void pya_batch_free(struct pya_batch *b);

struct bffio_job { char name[...]; int iodepth; uint64_t runtime_us; uint64_t ramp_us; uint64_t startdelay_us;
                   unsigned log_avg_msec; unsigned numjobs; ...; };
struct bffio_sample { uint64_t t_ms; uint64_t bytes[3]; uint64_t ios[3]; uint64_t lat_sum_ns[3];
                      uint64_t clat_sum_ns[3]; int depth; uint64_t p50_ns; uint64_t p99_ns; int phase; ...; };
struct bffio_result { const struct bffio_job *job; unsigned clone; uint64_t runtime_ns; int error;
                      char errmsg[...]; struct bffio_sample *samples; unsigned samples_nr; ...; };
struct bffio_ring_record { int depth; int phase; double p99_ms; double p50_ms; bool infeasible; uint64_t ops; ...; };
struct bffio_controller_record { bool adaptive; int fixed_depth; double target_p99_ms; int final_depth;
                                 double converge_s; double p99_ms; int rings; struct bffio_ring_record *ring;
                                 int *depth_trace; unsigned depth_trace_nr; ...; };
struct bffio_group_result { struct bffio_result *res; unsigned nr; struct bffio_controller_record ctl;
                            uint64_t elapsed_ms; ...; };
struct bffio_report_group { struct bffio_group_result r; unsigned groupid; ...; };
struct bffio_jobset { struct bffio_job *jobs; unsigned nr; ...; };
struct pyb_run { struct bffio_jobset set; struct bffio_report_group *groups; unsigned ngroups; int status;
                 char err[...]; ...; };
struct pyb_run *pyb_run(const char *text, size_t len, const char *name, double target_p99_ms, int eta, int *stop);
struct pyb_run *pyb_parse(const char *text, size_t len, const char *name);
char *pyb_report(struct pyb_run *r, int json, int plus);
void pyb_free_str(char *s);
void pyb_free(struct pyb_run *r);
"""


def sources(root=VENDOR):
    lib = sorted(glob.glob(os.path.join(root, "lib", "*.c")))
    bffio = [os.path.join(root, "bffio", f) for f in BFFIO_SOURCES]
    return lib + bffio + [os.path.join("csrc", "pyauraio.c"), os.path.join("csrc", "pybffio.c")]


ffi = FFI()
ffi.cdef(CDEF)
ffi.set_source(
    "auraio._auraio",
    '#include <sys/stat.h>\n#include "pyauraio.h"\n#include "pybffio.h"\n',
    sources=sources(),
    include_dirs=[os.path.join(VENDOR, "include"), os.path.join(VENDOR, "lib"), os.path.join(VENDOR, "bffio"), "csrc"],
    define_macros=[("_GNU_SOURCE", None)],
    # gnu11: the library is C11; the generated module and bffio use a few GNU/POSIX names.
    extra_compile_args=["-std=gnu11", "-O2", "-fvisibility=hidden", "-pthread", "-Wno-format-truncation"],
    extra_link_args=["-pthread"],
    libraries=["m"],
    # One abi3 module for every CPython >= 3.9; AURAIO_NO_ABI3=1 builds a version-specific one
    # (bench/python/abi3_cost.py measured the difference: doc/python.md).
    py_limited_api=os.environ.get("AURAIO_NO_ABI3") != "1",
)

if __name__ == "__main__":
    ffi.compile(verbose=True)
