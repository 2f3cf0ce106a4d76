/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The workload engine (workload.h). One auraio engine per group; one thread per job clone. Each
 * clone owns a set of slots (buffer + request bookkeeping); a slot's completion may be delivered
 * on any thread that waits on the engine, so everything a clone owns is changed under the clone's
 * mutex, taken by the callback (never a library lock: auraio runs callbacks with none held). The
 * callback refills the clone's queue itself, so a resubmission rides the library's batch at the
 * end of that round of callbacks instead of a system call of its own - the way fio's io_uring
 * engine keeps its queue full.
 *
 * Depth: with iodepth=N the clone keeps N requests in flight and the engine's controller is off;
 * without it the clone submits only while auraio_capacity() says the controller has room.
 *
 * Verify: a write job marks each block it writes; its verify pass (do_verify) reads back the marked
 * ones after the writes drain, and with verify_backlog=N it stops every N writes, drains, and
 * reads those N back before writing on (their marks cleared, so the final pass skips them).
 */
#include "workload.h"

#include "files.h"
#include "verify.h"

#include <auraio.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MONITOR_TICK_MS 100
#define DEFAULT_SAMPLE_MS 500  /* fio's bwavgtime / iopsavgtime default */
#define ADAPTIVE_SLOTS 256     /* per clone: the most the controller may ask of one clone */
#define WAIT_MAX_MS 50
#define LIVE_COUNTERS 5 /* bytes, ios, lat, clat, slat per direction */
#define DDIR_SYNC 3
#define ZIPF_MAX_RANGES 10000000u /* fio's ZIPF_MAX_GEN: beyond it zeta is computed on this many */

struct worker;

struct backlog_block {
    unsigned file;
    uint64_t offset;
};

struct slot {
    struct worker *w;
    void *buf;
    size_t buf_len;
    uint64_t offset;
    uint64_t submit_ns;  /* before the submit call */
    uint64_t issued_ns;  /* after it returned: slat = issued - submit */
    uint32_t len;
    uint8_t ddir;
    bool verify_read;
    unsigned file;
    struct slot *next_free;
};

struct worker {
    pthread_mutex_t lock;
    struct group *g;
    const struct bffio_job *job;
    struct bffio_result *res;
    unsigned clone;
    struct bffio_file *files;
    unsigned nfiles, next_file;
    struct slot *slots;
    unsigned nslots;
    struct slot *free_list;
    unsigned outstanding;
    unsigned depth; /* fixed depth, 0 = the controller's */
    uint64_t rng;
    /* random offsets */
    uint64_t unit;           /* offset granularity */
    uint64_t blocks;         /* per file region, in units */
    uint64_t perm_i;         /* next index of the random permutation (randommap) */
    unsigned perm_bits;
    uint64_t perm_key[4];
    uint64_t seq_run;        /* rw=randread:N - I/Os left in the current sequential run */
    double zipf_zetan, zipf_eta, zipf_alpha, zipf_zeta2, pareto_pow;
    uint64_t dist_ranges;
    /* amount */
    uint64_t io_target; /* bytes, UINT64_MAX = until the runtime ends */
    uint64_t issued_bytes;
    uint64_t issued_ios[BFFIO_DDIRS];
    uint64_t writes_since_sync;
    bool sync_due;
    int pending_ddir; /* chosen but held back by a rate limit; -1 = none */
    uint64_t next_ok_ns; /* thinktime */
    bool stop_issuing;
    bool finished;
    /* time */
    uint64_t start_ns, stats_start_ns, end_ns, last_done_ns;
    /* verify */
    bool verify_phase;
    unsigned verify_file;
    uint64_t verify_pos;
    uint8_t **written; /* per file bitmap of blocks written and not verified yet (verify) */
    struct backlog_block *backlog; /* verify_backlog: written since the last backlog check */
    unsigned backlog_nr, backlog_cap, backlog_next;
    bool backlog_due;   /* verify_backlog blocks written: hold writes until they are read back */
    bool backlog_phase; /* reading the backlog back */
    /* live counters for the monitor (written under lock, read without it) */
    _Atomic uint64_t live_bytes[BFFIO_DDIRS], live_ios[BFFIO_DDIRS], live_lat[BFFIO_DDIRS];
    _Atomic uint64_t live_clat[BFFIO_DDIRS], live_slat[BFFIO_DDIRS];
    atomic_bool done;
    /* wait_for: the clones of the waitee job in g->workers ([wait_first, wait_first + wait_nr)) */
    unsigned wait_first, wait_nr;
    atomic_bool waiting; /* still waiting for them: not running yet */
    _Atomic uint64_t started_ns; /* 0 until the clone starts issuing */
    pthread_t thread;
    bool thread_started;
};

struct group {
    auraio_engine_t *engine;
    struct worker *workers;
    unsigned nworkers;
    uint64_t start_ns;
    int fixed_depth; /* sum of iodepth x numjobs when every job has a fixed depth, else 0 */
    int last_fixed;  /* the fixed depth at the last tick anything ran (the monitor's) */
    int most_fixed;  /* the most the clones ran at once: a fixed group's final depth, which
                        must not depend on which clone happened to finish before the last tick */
    atomic_bool abort;
    /* A clone's end is announced under done_lock, so wait_for waiters cannot miss it. */
    pthread_mutex_t done_lock;
    pthread_cond_t done_cond;
};

/* Stop every clone (Ctrl-C, a failed start, a failed wait) and wake wait_for waiters. */
static void group_abort(struct group *g)
{
    pthread_mutex_lock(&g->done_lock);
    atomic_store(&g->abort, true);
    pthread_cond_broadcast(&g->done_cond);
    pthread_mutex_unlock(&g->done_lock);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rnd01(uint64_t *s)
{
    return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

static uint64_t hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* ---------------------------------------------------------------------------------------------
 * Offsets: fio's random map (every block once per pass) as a keyed permutation - a Feistel
 * network over the next power of two, cycle-walked into [0, blocks) - so it costs no memory.
 */

static uint64_t feistel(const struct worker *w, uint64_t x)
{
    unsigned half = (w->perm_bits + 1) / 2;
    uint64_t mask = (1ull << half) - 1;
    uint64_t l = x >> half, r = x & mask;
    for (int i = 0; i < 4; i++) {
        uint64_t f = hash64(r ^ w->perm_key[i]) & mask;
        uint64_t nl = r;
        r = (l ^ f) & mask;
        l = nl;
    }
    return (l << half) | r;
}

static uint64_t permute(const struct worker *w, uint64_t i)
{
    uint64_t x = i;
    do
        x = feistel(w, x);
    while (x >= w->blocks);
    return x;
}

static double zeta(uint64_t n, double theta)
{
    double s = 0;
    for (uint64_t i = 1; i <= n; i++)
        s += pow(1.0 / (double)i, theta);
    return s;
}

static void dist_init(struct worker *w)
{
    const struct bffio_job *j = w->job;
    w->dist_ranges = w->blocks;
    if (j->random_distribution == BFFIO_RAND_ZIPF) {
        double theta = j->dist_param[0];
        uint64_t n = w->blocks < ZIPF_MAX_RANGES ? w->blocks : ZIPF_MAX_RANGES;
        w->zipf_zetan = zeta(n, theta);
        w->zipf_zeta2 = zeta(2, theta);
        w->zipf_alpha = 1.0 / (1.0 - theta);
        w->zipf_eta = (1.0 - pow(2.0 / (double)w->blocks, 1.0 - theta)) / (1.0 - w->zipf_zeta2 / w->zipf_zetan);
    } else if (j->random_distribution == BFFIO_RAND_PARETO) {
        double h = j->dist_param[0];
        w->pareto_pow = log(h) / log(1.0 - h);
    }
}

/* A block index drawn from the job's random_distribution (fio's zipf.c / gauss.c). */
static uint64_t dist_block(struct worker *w)
{
    const struct bffio_job *j = w->job;
    uint64_t n = w->blocks, v;
    switch (j->random_distribution) {
    case BFFIO_RAND_ZIPF: {
        double u = rnd01(&w->rng), uz = u * w->zipf_zetan;
        if (uz < 1.0)
            v = 0;
        else if (uz < 1.0 + pow(0.5, j->dist_param[0]))
            v = 1;
        else
            v = (uint64_t)((double)n * pow(w->zipf_eta * u - w->zipf_eta + 1.0, w->zipf_alpha));
        /* Popular ranks are scattered over the file, as fio hashes them. */
        return hash64(v < n ? v : n - 1) % n;
    }
    case BFFIO_RAND_PARETO:
        v = (uint64_t)((double)(n - 1) * pow(rnd01(&w->rng), w->pareto_pow));
        return hash64(v) % n;
    case BFFIO_RAND_NORMAL: {
        double sum = 0;
        for (int i = 0; i < 12; i++)
            sum += rnd01(&w->rng);
        double dev = (double)n * j->dist_param[0] / 100.0;
        double x = (double)n / 2.0 + (sum - 6.0) * dev;
        if (x < 0)
            x = 0;
        if (x > (double)(n - 1))
            x = (double)(n - 1);
        return hash64((uint64_t)x) % n;
    }
    default:
        if (!j->norandommap) {
            if (w->perm_i >= n) {
                w->perm_i = 0;
            }
            return permute(w, w->perm_i++);
        }
        return rnd(&w->rng) % n;
    }
}

static uint64_t pick_bs(struct worker *w, int d)
{
    const struct bffio_job *j = w->job;
    if (j->bssplit_nr[d]) {
        unsigned r = (unsigned)(rnd(&w->rng) % 100), acc = 0;
        for (unsigned i = 0; i < j->bssplit_nr[d]; i++) {
            acc += j->bssplit[d][i].perc;
            if (r < acc)
                return j->bssplit[d][i].bs;
        }
        return j->bssplit[d][j->bssplit_nr[d] - 1].bs;
    }
    if (j->bs_min[d] != j->bs_max[d]) {
        /* fio's bsrange: a random size in the range, a multiple of the smallest. */
        uint64_t steps = (j->bs_max[d] - j->bs_min[d]) / j->bs_min[d] + 1;
        return j->bs_min[d] * (1 + rnd(&w->rng) % steps);
    }
    return j->bs[d];
}

static int pick_ddir(struct worker *w)
{
    const struct bffio_job *j = w->job;
    if (j->rw_read && j->rw_write)
        return (rnd(&w->rng) % 100) < j->rwmixread ? BFFIO_DDIR_READ : BFFIO_DDIR_WRITE;
    return j->rw_write ? BFFIO_DDIR_WRITE : BFFIO_DDIR_READ;
}

/* Offset of the next I/O of @p len bytes in file @p f. */
static uint64_t pick_offset(struct worker *w, struct bffio_file *f, uint64_t len)
{
    const struct bffio_job *j = w->job;
    uint64_t region = f->end - f->start;
    if (!j->rw_random || (j->rw_nr && w->seq_run > 0)) {
        if (j->rw_random)
            w->seq_run--;
        if (f->seq_pos + len > f->end || f->seq_pos < f->start)
            f->seq_pos = f->start;
        uint64_t off = f->seq_pos;
        f->seq_pos += len + (j->rw_random ? 0 : j->rw_nr);
        return off;
    }
    if (j->rw_nr)
        w->seq_run = j->rw_nr - 1;
    uint64_t off = dist_block(w) * w->unit;
    if (off + len > region)
        off = (region - len) / w->unit * w->unit;
    f->seq_pos = f->start + off + len;
    return f->start + off;
}

/* ---------------------------------------------------------------------------------------------
 * Issue and completion (both under the worker's lock)
 */

static void on_done(auraio_request_t *req, ssize_t result, void *user_data);

static void set_error(struct worker *w, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_error(struct worker *w, int err, const char *fmt, ...)
{
    if (!w->res->error) {
        w->res->error = err ? err : EIO;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->res->errmsg, sizeof(w->res->errmsg), fmt, ap);
        va_end(ap);
    }
    w->stop_issuing = true;
}

static void depth_level(struct worker *w)
{
    unsigned d = w->outstanding, lvl = 0;
    while (lvl < BFFIO_DEPTH_LEVELS - 1 && d >= (2u << lvl))
        lvl++;
    w->res->depth_level[lvl]++;
    w->res->depth_samples++;
}

/* The next block of the verify pass: one the write pass wrote, in file order. */
static bool next_verify_block(struct worker *w, unsigned *file, uint64_t *off)
{
    uint64_t bs = w->job->bs[BFFIO_DDIR_WRITE];
    while (w->verify_file < w->nfiles) {
        struct bffio_file *f = &w->files[w->verify_file];
        uint64_t nb = (f->end - f->start) / bs;
        while (w->verify_pos < nb) {
            uint64_t b = w->verify_pos++;
            if (w->written[w->verify_file][b / 8] & (1u << (b % 8))) {
                *file = w->verify_file;
                *off = f->start + b * bs;
                return true;
            }
        }
        w->verify_file++;
        w->verify_pos = 0;
    }
    return false;
}

static bool rate_held(struct worker *w, int d, uint64_t now)
{
    const struct bffio_job *j = w->job;
    uint64_t per_s = j->rate_iops[d];
    if (!per_s && j->rate[d])
        per_s = j->rate[d] / (j->bs[d] ? j->bs[d] : 1);
    if (!per_s)
        return false;
    uint64_t due = w->start_ns + (uint64_t)((double)w->issued_ios[d] * 1e9 / (double)per_s);
    return now < due;
}

/* A verify block was submitted: the final pass (or, every verify_backlog writes, the backlog check)
 * reads it back. Marked only once the submission took, so a refused one is never checked. */
static void mark_written(struct worker *w, const struct slot *s)
{
    const struct bffio_job *j = w->job;
    uint64_t b = (s->offset - w->files[s->file].start) / j->bs[BFFIO_DDIR_WRITE];
    w->written[s->file][b / 8] |= (uint8_t)(1u << (b % 8));
    if (!j->verify_backlog)
        return;
    if (w->backlog_nr == w->backlog_cap) {
        /* Sized at set-up for min(verify_backlog, blocks); grows only when loops write more. */
        unsigned nc = w->backlog_cap ? w->backlog_cap * 2 : 64;
        struct backlog_block *nb = realloc(w->backlog, nc * sizeof(*nb));
        if (!nb) {
            set_error(w, ENOMEM, "out of memory for verify_backlog");
            return;
        }
        w->backlog = nb;
        w->backlog_cap = nc;
    }
    w->backlog[w->backlog_nr++] = (struct backlog_block){s->file, s->offset};
    if (w->backlog_nr >= j->verify_backlog)
        w->backlog_due = true;
}

/* Issue one I/O into @p s. @return 1 issued, 0 nothing to issue now, -1 error (recorded). */
static int issue(struct worker *w, struct slot *s, uint64_t now)
{
    const struct bffio_job *j = w->job;
    auraio_request_t *req;
    s->verify_read = false;
    if (w->verify_phase || w->backlog_phase) {
        unsigned fi;
        uint64_t off;
        if (w->backlog_phase) {
            if (w->backlog_next == w->backlog_nr)
                return 0;
            fi = w->backlog[w->backlog_next].file;
            off = w->backlog[w->backlog_next++].offset;
        } else if (!next_verify_block(w, &fi, &off)) {
            return 0;
        }
        s->ddir = BFFIO_DDIR_READ;
        s->verify_read = true;
        s->file = fi;
        s->offset = off;
        s->len = (uint32_t)j->bs[BFFIO_DDIR_WRITE];
    } else if (w->sync_due) {
        s->ddir = DDIR_SYNC;
        s->file = w->next_file % w->nfiles;
        s->len = 0;
        s->offset = 0;
    } else if (w->backlog_due) {
        return 0; /* the backlog's writes drain first; refill() then starts reading them back */
    } else {
        if (w->issued_bytes >= w->io_target || (w->end_ns && now >= w->end_ns)) {
            w->stop_issuing = true;
            return 0;
        }
        if (j->thinktime_us && now < w->next_ok_ns)
            return 0;
        int d = w->pending_ddir >= 0 ? w->pending_ddir : pick_ddir(w);
        if (rate_held(w, d, now)) {
            w->pending_ddir = d;
            return 0;
        }
        w->pending_ddir = -1;
        s->ddir = (uint8_t)d;
        s->file = w->next_file++ % w->nfiles;
        struct bffio_file *f = &w->files[s->file];
        uint64_t len = pick_bs(w, d);
        if (len > f->end - f->start)
            len = f->end - f->start;
        s->len = (uint32_t)len;
        s->offset = pick_offset(w, f, len);
        if (d == BFFIO_DDIR_WRITE && j->verify != BFFIO_VERIFY_NONE)
            bffio_verify_fill(j, s->buf, s->len, s->offset);
    }
    int fd = w->files[s->file].fd;
    s->submit_ns = now_ns();
    if (s->ddir == DDIR_SYNC)
        req = auraio_fsync(w->g->engine, fd, j->fdatasync_blocks ? AURAIO_FSYNC_DATASYNC : 0, on_done, s);
    else if (s->ddir == BFFIO_DDIR_WRITE)
        req = auraio_write(w->g->engine, fd, auraio_buf(s->buf), s->len, (int64_t)s->offset, on_done, s);
    else
        req = auraio_read(w->g->engine, fd, auraio_buf(s->buf), s->len, (int64_t)s->offset, on_done, s);
    s->issued_ns = now_ns();
    if (!req) {
        int e = errno;
        if (e == EAGAIN) {
            /* The ring's slots are taken: a completion will make room. A verify read is
             * picked again then. */
            if (s->verify_read && w->backlog_phase)
                w->backlog_next--;
            else if (s->verify_read)
                w->verify_pos--;
            return 0;
        }
        set_error(w, e, "submit to %s failed: %s", w->files[s->file].path, strerror(e));
        return -1;
    }
    if (s->ddir == DDIR_SYNC) {
        w->sync_due = false;
    } else if (s->verify_read) {
        /* Read back: no later pass needs to check this block again. */
        uint64_t b = (s->offset - w->files[s->file].start) / j->bs[BFFIO_DDIR_WRITE];
        w->written[s->file][b / 8] &= (uint8_t) ~(1u << (b % 8));
    } else {
        w->issued_bytes += s->len;
        w->issued_ios[s->ddir]++;
        if (s->ddir == BFFIO_DDIR_WRITE && j->verify != BFFIO_VERIFY_NONE)
            mark_written(w, s);
        if (s->ddir == BFFIO_DDIR_WRITE) {
            unsigned every = j->fsync_blocks ? j->fsync_blocks : j->fdatasync_blocks;
            if (every && ++w->writes_since_sync >= every) {
                w->writes_since_sync = 0;
                w->sync_due = true;
            }
        }
    }
    w->outstanding++;
    depth_level(w);
    return 1;
}

static bool want_more(struct worker *w)
{
    if (atomic_load_explicit(&w->g->abort, memory_order_relaxed))
        w->stop_issuing = true;
    if (w->stop_issuing || !w->free_list)
        return false;
    if (w->depth)
        return w->outstanding < w->depth;
    return auraio_capacity(w->g->engine) > 0;
}

static void refill(struct worker *w)
{
    uint64_t now = now_ns();
    /* verify_backlog: once its writes have drained, read the backlog back; once that is read,
     * write on. */
    if (w->backlog_due && w->outstanding == 0) {
        if (!w->backlog_phase) {
            w->backlog_phase = true;
            w->backlog_next = 0;
        } else if (w->backlog_next == w->backlog_nr) {
            w->backlog_phase = false;
            w->backlog_due = false;
            w->backlog_nr = 0;
        }
    }
    while (want_more(w)) {
        struct slot *s = w->free_list;
        w->free_list = s->next_free;
        int rc = issue(w, s, now);
        if (rc <= 0) {
            s->next_free = w->free_list;
            w->free_list = s;
            break;
        }
    }
    /* Write pass done and drained: the verify pass reads back what it wrote. */
    if (w->stop_issuing && w->outstanding == 0 && !w->verify_phase && !w->res->error &&
        w->job->verify != BFFIO_VERIFY_NONE && w->job->rw_write && w->job->do_verify) {
        w->verify_phase = true;
        w->stop_issuing = false;
        refill(w);
        if (w->outstanding == 0)
            w->stop_issuing = true;
        return;
    }
    if (w->verify_phase && w->outstanding == 0 && w->verify_file >= w->nfiles)
        w->stop_issuing = true;
}

/* One line per bad block (verify_fatal=0). Only on a mismatch, never on a good I/O's path. */
static void verify_log(struct worker *w, const char *msg)
{
    struct bffio_result *r = w->res;
    size_t n = strlen(msg) + 1;
    if (r->verify_log_len + n + 1 > r->verify_log_cap) {
        size_t nc = r->verify_log_cap ? r->verify_log_cap * 2 : 4096;
        while (nc < r->verify_log_len + n + 1)
            nc *= 2;
        char *nl = realloc(r->verify_log, nc);
        if (!nl) {
            set_error(w, ENOMEM, "out of memory for the verify report");
            return;
        }
        r->verify_log = nl;
        r->verify_log_cap = nc;
    }
    memcpy(r->verify_log + r->verify_log_len, msg, n - 1);
    r->verify_log_len += n;
    r->verify_log[r->verify_log_len - 1] = '\n';
    r->verify_log[r->verify_log_len] = '\0';
}

static void account(struct worker *w, struct slot *s, ssize_t result, uint64_t done)
{
    const struct bffio_job *j = w->job;
    if (result < 0) {
        set_error(w, (int)-result, "%s of %u bytes at offset %" PRIu64 " of %s failed: %s",
                  s->ddir == DDIR_SYNC ? "fsync" : s->ddir == BFFIO_DDIR_WRITE ? "write" : "read", s->len,
                  s->offset, w->files[s->file].path, strerror((int)-result));
        return;
    }
    if (s->ddir != DDIR_SYNC && (size_t)result < s->len) {
        w->res->dir[s->ddir].short_ios++;
        if (result == 0) {
            set_error(w, EIO, "read at offset %" PRIu64 " of %s hit the end of the file", s->offset,
                      w->files[s->file].path);
            return;
        }
    }
    if (s->verify_read || (s->ddir == BFFIO_DDIR_READ && j->verify != BFFIO_VERIFY_NONE && !j->rw_write)) {
        char msg[512];
        w->res->verify_checked++;
        if (bffio_verify_check(j, s->buf, s->len, s->offset, w->files[s->file].path, msg, sizeof(msg)) < 0) {
            w->res->verify_bad++;
            if (j->verify_fatal) {
                set_error(w, EILSEQ, "%s", msg);
                return;
            }
            verify_log(w, msg); /* fio's verify_fatal=0: note it, go on, fail the job at its end */
        }
    }
    w->last_done_ns = done;
    if (s->submit_ns < w->stats_start_ns)
        return; /* ramp_time: not counted, as fio resets its stats when the ramp ends */
    /* Another thread can reap the completion (and read the clock) while the submitting thread,
     * holding the clone's lock, is still stamping issued_ns after the submit call: clat is then
     * 0, not a wrapped negative. */
    uint64_t clat = done > s->issued_ns ? done - s->issued_ns : 0;
    uint64_t lat = done > s->submit_ns ? done - s->submit_ns : 0;
    if (s->ddir == DDIR_SYNC) {
        w->res->sync_ios++;
        bffio_lat_add(&w->res->sync_lat, lat);
        return;
    }
    struct bffio_dir_result *r = &w->res->dir[s->ddir];
    r->io_bytes += (uint64_t)result;
    r->ios++;
    bffio_lat_add(&r->slat, s->issued_ns - s->submit_ns);
    bffio_lat_add(&r->clat, clat);
    bffio_lat_add(&r->lat, lat);
    r->clat_hist.bins[bffio_plat_idx(clat)]++;
    r->lat_hist.bins[bffio_plat_idx(lat)]++;
    atomic_store_explicit(&w->live_bytes[s->ddir],
                          atomic_load_explicit(&w->live_bytes[s->ddir], memory_order_relaxed) + (uint64_t)result,
                          memory_order_relaxed);
    atomic_store_explicit(&w->live_ios[s->ddir],
                          atomic_load_explicit(&w->live_ios[s->ddir], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&w->live_lat[s->ddir],
                          atomic_load_explicit(&w->live_lat[s->ddir], memory_order_relaxed) + lat,
                          memory_order_relaxed);
    atomic_store_explicit(&w->live_clat[s->ddir],
                          atomic_load_explicit(&w->live_clat[s->ddir], memory_order_relaxed) + clat,
                          memory_order_relaxed);
    atomic_store_explicit(&w->live_slat[s->ddir],
                          atomic_load_explicit(&w->live_slat[s->ddir], memory_order_relaxed) +
                              (s->issued_ns - s->submit_ns),
                          memory_order_relaxed);
    if (j->lat_log[0] && !j->log_avg_msec) {
        /* Per-I/O log, as fio keeps without log_avg_msec: amortised growth, only when asked for. */
        struct bffio_result *res = w->res;
        if (res->iolog_nr == res->iolog_cap) {
            size_t nc = res->iolog_cap ? res->iolog_cap * 2 : 4096;
            struct bffio_iolog *n = realloc(res->iolog, nc * sizeof(*n));
            if (!n) {
                set_error(w, ENOMEM, "out of memory for the latency log");
                return;
            }
            res->iolog = n;
            res->iolog_cap = nc;
        }
        res->iolog[res->iolog_nr++] = (struct bffio_iolog){(done - w->start_ns) / 1000000,
                                                           s->issued_ns - s->submit_ns, clat, lat, s->len, s->ddir};
    }
}

static void on_done(auraio_request_t *req, ssize_t result, void *user_data)
{
    (void)req;
    struct slot *s = user_data;
    struct worker *w = s->w;
    uint64_t done = now_ns();
    pthread_mutex_lock(&w->lock);
    w->outstanding--;
    account(w, s, result, done);
    if (w->job->thinktime_us)
        w->next_ok_ns = done + w->job->thinktime_us * 1000;
    s->next_free = w->free_list;
    w->free_list = s;
    refill(w);
    pthread_mutex_unlock(&w->lock);
}

/* ---------------------------------------------------------------------------------------------
 * Threads
 */

static void sleep_until(uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void end_fsync(struct worker *w)
{
    for (unsigned i = 0; i < w->nfiles; i++) {
        uint64_t t0 = now_ns();
        if (fsync(w->files[i].fd) < 0) {
            set_error(w, errno, "end_fsync of %s failed: %s", w->files[i].path, strerror(errno));
            return;
        }
        w->res->sync_ios++;
        bffio_lat_add(&w->res->sync_lat, now_ns() - t0);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const struct bffio_job *j = w->job;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_THREAD, &ru0);
    uint64_t base = w->g->start_ns;
    if (w->wait_nr) {
        /* fio's wait_for: start once every clone of the waitee job has finished. */
        struct group *g = w->g;
        pthread_mutex_lock(&g->done_lock);
        for (;;) {
            bool all = true;
            for (unsigned i = 0; i < w->wait_nr; i++)
                all &= atomic_load(&g->workers[w->wait_first + i].done);
            if (all || atomic_load(&g->abort))
                break;
            pthread_cond_wait(&g->done_cond, &g->done_lock);
        }
        pthread_mutex_unlock(&g->done_lock);
        base = now_ns();
    }
    uint64_t t0 = base + j->startdelay_us * 1000;
    if (j->startdelay_us)
        sleep_until(t0);
    atomic_store(&w->waiting, false);
    pthread_mutex_lock(&w->lock);
    w->start_ns = now_ns();
    atomic_store_explicit(&w->started_ns, w->start_ns, memory_order_release);
    w->stats_start_ns = w->start_ns + j->ramp_us * 1000;
    if (j->runtime_us)
        w->end_ns = w->stats_start_ns + j->runtime_us * 1000;
    w->last_done_ns = w->stats_start_ns;
    refill(w);
    pthread_mutex_unlock(&w->lock);
    for (;;) {
        pthread_mutex_lock(&w->lock);
        refill(w);
        bool finished = w->stop_issuing && w->outstanding == 0;
        uint64_t now = now_ns();
        int timeout = WAIT_MAX_MS;
        uint64_t wake = 0;
        if (w->end_ns && w->end_ns > now)
            wake = w->end_ns;
        if (j->thinktime_us && w->next_ok_ns > now && (!wake || w->next_ok_ns < wake))
            wake = w->next_ok_ns;
        if (w->pending_ddir >= 0)
            wake = now + 1000000; /* a rate limit holds: look again in a millisecond */
        unsigned outstanding = w->outstanding;
        pthread_mutex_unlock(&w->lock);
        if (finished)
            break;
        if (wake && wake > now) {
            uint64_t ms = (wake - now + 999999) / 1000000;
            timeout = ms < (uint64_t)timeout ? (int)ms : timeout;
        }
        if (outstanding == 0) {
            /* Nothing of ours in flight: a rate limit or thinktime holds us; sleep instead of spinning. */
            sleep_until(wake && wake > now ? (wake < now + 50000000ull ? wake : now + 50000000ull) : now + 1000000);
            continue;
        }
        int rc = auraio_wait(w->g->engine, timeout);
        if (rc < 0 && rc != -ETIME) {
            pthread_mutex_lock(&w->lock);
            set_error(w, -rc, "auraio_wait failed: %s", strerror(-rc));
            pthread_mutex_unlock(&w->lock);
            group_abort(w->g);
        }
    }
    if (j->end_fsync && j->rw_write && !w->res->error)
        end_fsync(w);
    uint64_t end = w->last_done_ns > w->stats_start_ns ? w->last_done_ns : now_ns();
    if (w->end_ns && end > w->end_ns && j->time_based)
        end = w->end_ns;
    w->res->runtime_ns = end > w->stats_start_ns ? end - w->stats_start_ns : 1;
    getrusage(RUSAGE_THREAD, &ru1);
    double run_us = (double)w->res->runtime_ns / 1000.0 + (double)j->ramp_us;
    double usr = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1e6 +
                 (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec);
    double sys = (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e6 +
                 (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
    w->res->usr_cpu = run_us > 0 ? usr / run_us * 100.0 : 0;
    w->res->sys_cpu = run_us > 0 ? sys / run_us * 100.0 : 0;
    w->res->ctx = (uint64_t)((ru1.ru_nvcsw - ru0.ru_nvcsw) + (ru1.ru_nivcsw - ru0.ru_nivcsw));
    w->res->majf = (uint64_t)(ru1.ru_majflt - ru0.ru_majflt);
    w->res->minf = (uint64_t)(ru1.ru_minflt - ru0.ru_minflt);
    if (w->res->verify_bad && !w->res->error) {
        pthread_mutex_lock(&w->lock);
        set_error(w, EILSEQ, "verify: %" PRIu64 " bad block%s of %" PRIu64 " checked", w->res->verify_bad,
                  w->res->verify_bad == 1 ? "" : "s", w->res->verify_checked);
        pthread_mutex_unlock(&w->lock);
    }
    if (!w->res->error) {
        for (int d = 0; d < 2; d++) {
            uint64_t min = w->job->rate_min[d];
            double secs = (double)w->res->runtime_ns / 1e9;
            if (min && secs > 0 && (double)w->res->dir[d].io_bytes / secs < (double)min) {
                pthread_mutex_lock(&w->lock);
                set_error(w, EIO, "rate_min: %s bandwidth %.0f B/s is below %" PRIu64 " B/s",
                          d ? "write" : "read", (double)w->res->dir[d].io_bytes / secs, min);
                pthread_mutex_unlock(&w->lock);
            }
        }
    }
    pthread_mutex_lock(&w->g->done_lock);
    atomic_store_explicit(&w->done, true, memory_order_release);
    pthread_cond_broadcast(&w->g->done_cond);
    pthread_mutex_unlock(&w->g->done_lock);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Set-up
 */

static int worker_init(struct group *g, struct worker *w, const struct bffio_job *j, unsigned clone,
                       struct bffio_result *res)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->lock, NULL);
    w->g = g;
    w->job = j;
    w->res = res;
    w->clone = clone;
    w->pending_ddir = -1;
    res->job = j;
    res->clone = clone;
    if (bffio_files_open(j, clone, &w->files, &w->nfiles, res->errmsg, sizeof(res->errmsg)) < 0) {
        res->error = EIO;
        return -1;
    }
    /* fio's invalidate: start buffered jobs from a cold page cache. */
    if (!j->direct && j->invalidate)
        for (unsigned i = 0; i < w->nfiles; i++)
            posix_fadvise(w->files[i].fd, 0, 0, POSIX_FADV_DONTNEED);
    w->depth = (unsigned)j->iodepth;
    w->nslots = w->depth ? w->depth : ADAPTIVE_SLOTS;
    uint64_t bs_max = 0, bs_min = UINT64_MAX;
    for (int d = 0; d < 2; d++) {
        if ((d == 0 && !j->rw_read) || (d == 1 && !j->rw_write))
            continue;
        bs_max = j->bs_max[d] > bs_max ? j->bs_max[d] : bs_max;
        bs_min = j->bs_min[d] < bs_min ? j->bs_min[d] : bs_min;
    }
    if (j->verify != BFFIO_VERIFY_NONE)
        bs_max = bs_max > j->bs[BFFIO_DDIR_WRITE] ? bs_max : j->bs[BFFIO_DDIR_WRITE];
    w->slots = calloc(w->nslots, sizeof(*w->slots));
    if (!w->slots)
        goto nomem;
    uint64_t seed = j->randseed ? j->randseed : 0x2545f4914f6cdd1dull;
    w->rng = j->randrepeat || j->randseed ? seed + clone * 0x9e3779b97f4a7c15ull : now_ns() ^ (uint64_t)getpid();
    for (unsigned i = 0; i < w->nslots; i++) {
        struct slot *s = &w->slots[i];
        s->w = w;
        s->buf_len = (size_t)bs_max;
        /* The engine's pool: 4 KiB-aligned, so the same buffers serve O_DIRECT. */
        s->buf = auraio_buffer_alloc(g->engine, s->buf_len);
        if (!s->buf)
            goto nomem;
        /* Writes carry real data: random bytes, as fio's default buffers. */
        uint64_t fill = w->rng ^ (i * 0x632be59bd9b4e019ull);
        for (size_t k = 0; k + 8 <= s->buf_len; k += 8) {
            uint64_t v = rnd(&fill);
            memcpy((char *)s->buf + k, &v, 8);
        }
        s->next_free = w->free_list;
        w->free_list = s;
    }
    w->unit = j->blockalign ? j->blockalign : bs_min;
    uint64_t region = w->files[0].end - w->files[0].start;
    for (unsigned i = 1; i < w->nfiles; i++) {
        uint64_t r = w->files[i].end - w->files[i].start;
        region = r < region ? r : region;
    }
    w->blocks = region / w->unit;
    if (w->blocks == 0)
        w->blocks = 1;
    w->perm_bits = 1;
    while ((1ull << w->perm_bits) < w->blocks)
        w->perm_bits++;
    if (w->perm_bits % 2)
        w->perm_bits++;
    for (int k = 0; k < 4; k++)
        w->perm_key[k] = rnd(&w->rng);
    dist_init(w);
    uint64_t total = 0;
    for (unsigned i = 0; i < w->nfiles; i++)
        total += w->files[i].end - w->files[i].start;
    if (j->time_based)
        w->io_target = UINT64_MAX;
    else
        w->io_target = (j->io_size ? j->io_size : total) * j->loops;
    if (j->verify != BFFIO_VERIFY_NONE) {
        w->written = calloc(w->nfiles, sizeof(*w->written));
        if (!w->written)
            goto nomem;
        for (unsigned i = 0; i < w->nfiles; i++) {
            uint64_t nb = (w->files[i].end - w->files[i].start) / j->bs[BFFIO_DDIR_WRITE] + 1;
            w->written[i] = calloc((size_t)(nb + 7) / 8, 1);
            if (!w->written[i])
                goto nomem;
        }
        if (j->verify_backlog) {
            uint64_t nb = total / j->bs[BFFIO_DDIR_WRITE] + 1;
            w->backlog_cap = (unsigned)(nb < j->verify_backlog ? nb : j->verify_backlog);
            w->backlog = calloc(w->backlog_cap, sizeof(*w->backlog));
            if (!w->backlog)
                goto nomem;
        }
    }
    return 0;
nomem:
    snprintf(res->errmsg, sizeof(res->errmsg), "job '%s': out of memory", j->name);
    res->error = ENOMEM;
    return -1;
}

static void worker_free(struct group *g, struct worker *w)
{
    if (w->slots) {
        for (unsigned i = 0; i < w->nslots; i++)
            if (w->slots[i].buf)
                auraio_buffer_free(g->engine, w->slots[i].buf, w->slots[i].buf_len);
        free(w->slots);
    }
    if (w->written) {
        for (unsigned i = 0; i < w->nfiles; i++)
            free(w->written[i]);
        free(w->written);
    }
    free(w->backlog);
    if (w->files)
        bffio_files_close(w->job, w->files, w->nfiles);
    pthread_mutex_destroy(&w->lock);
}

/* With fixed depths: the iodepth of the clones running now (not waiting for a wait_for job, not
 * finished); between two jobs and at the end, the last such sum. */
static int fixed_depth_now(struct group *g)
{
    int sum = 0;
    for (unsigned i = 0; i < g->nworkers; i++) {
        const struct worker *w = &g->workers[i];
        if (!atomic_load(&w->waiting) && !atomic_load_explicit(&w->done, memory_order_acquire))
            sum += (int)w->depth;
    }
    if (sum > 0)
        g->last_fixed = sum;
    if (g->last_fixed > g->most_fixed)
        g->most_fixed = g->last_fixed;
    return g->last_fixed;
}

/*
 * The group's depth now: the controller's (the in-flight limits of the rings doing I/O), or with
 * fixed depths the sum of the clones' iodepth - the engine's limit is then only the queue size,
 * set high so that it never holds a clone back, and says nothing about the depth that ran.
 * With @p fill, the per-ring record too (a fixed-depth ring's depth is the most it carried at a
 * monitor tick, @p peak).
 */
static int active_depth(struct group *g, struct bffio_controller_record *ctl, bool fill, int *peak)
{
    auraio_engine_t *e = g->engine;
    int rings = auraio_get_ring_count(e), depth = 0;
    for (int r = 0; r < rings; r++) {
        auraio_ring_stats_t rs;
        if (auraio_get_ring_stats(e, r, &rs) < 0)
            continue;
        if (rs.ops_completed > 0)
            depth += rs.in_flight_limit;
        if (peak && r < ctl->rings && rs.pending_count > peak[r])
            peak[r] = rs.pending_count;
        if (fill && ctl->ring && r < ctl->rings) {
            ctl->ring[r].depth = g->fixed_depth && peak ? peak[r] : rs.in_flight_limit;
            ctl->ring[r].phase = rs.phase;
            ctl->ring[r].p99_ms = rs.p99_latency_ms;
            ctl->ring[r].p50_ms = rs.p50_latency_ms;
            ctl->ring[r].infeasible = rs.target_infeasible;
            ctl->ring[r].ops = rs.ops_completed;
        }
    }
    return g->fixed_depth ? fixed_depth_now(g) : depth;
}

/* The controller phase of the ring with the most completions (the one doing the job's I/O). */
static int busiest_phase(auraio_engine_t *e)
{
    int rings = auraio_get_ring_count(e), phase = 0;
    uint64_t most = 0;
    for (int r = 0; r < rings; r++) {
        auraio_ring_stats_t rs;
        if (auraio_get_ring_stats(e, r, &rs) == 0 && (r == 0 || rs.ops_completed > most)) {
            most = rs.ops_completed;
            phase = rs.phase;
        }
    }
    return phase;
}

/* Percentile @p q of the samples that arrived since @p prev (the last interval's lifetime buckets,
 * updated to @p now), from the library's histogram; 0 when there were none. */
static uint64_t interval_percentile(const uint64_t *now, const uint64_t *prev, uint64_t total, double q)
{
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)total), seen = 0;
    for (int b = 0; b < AURAIO_HISTOGRAM_BUCKETS; b++) {
        seen += now[b] - prev[b];
        if (seen >= rank && rank > 0)
            return auraio_histogram_bucket_lower_ns(b);
    }
    return auraio_histogram_bucket_lower_ns(AURAIO_HISTOGRAM_BUCKETS - 1);
}

static void read_disk(const char *disk, uint64_t v[11], bool *ok)
{
    char path[128];
    snprintf(path, sizeof(path), "/sys/block/%s/stat", disk);
    FILE *f = fopen(path, "re");
    if (!f) {
        *ok = false;
        return;
    }
    int n = 0;
    for (int i = 0; i < 11; i++)
        n += fscanf(f, "%" SCNu64, &v[i]) == 1;
    fclose(f);
    if (n != 11)
        *ok = false;
}

static void human_bw(double bps, char *out, size_t len)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (bps >= 1024 && i < 4) {
        bps /= 1024;
        i++;
    }
    snprintf(out, len, "%.*f%s/s", bps < 10 ? 1 : 0, bps, u[i]);
}

static void human_num(double v, char *out, size_t len)
{
    if (v >= 1e6)
        snprintf(out, len, "%.1fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(out, len, "%.1fk", v / 1e3);
    else
        snprintf(out, len, "%.0f", v);
}

static void eta_line(FILE *out, struct group *g, double pct, double bw[2], double iops[2], uint64_t left_s,
                     int depth)
{
    unsigned running = 0;
    char marks[64];
    size_t m = 0;
    for (unsigned i = 0; i < g->nworkers && m + 2 < sizeof(marks); i++) {
        bool done = atomic_load_explicit(&g->workers[i].done, memory_order_acquire);
        running += !done;
        const struct bffio_job *j = g->workers[i].job;
        char c = done ? '_' : j->rw_read && j->rw_write ? (j->rw_random ? 'm' : 'M')
                        : j->rw_write                  ? (j->rw_random ? 'w' : 'W')
                                                       : (j->rw_random ? 'r' : 'R');
        marks[m++] = c;
    }
    marks[m] = '\0';
    char b0[32], b1[32], i0[32], i1[32];
    human_bw(bw[0], b0, sizeof(b0));
    human_bw(bw[1], b1, sizeof(b1));
    human_num(iops[0], i0, sizeof(i0));
    human_num(iops[1], i1, sizeof(i1));
    fprintf(out, "\rJobs: %u (f=%u): [%s][%.1f%%][r=%s,w=%s][r=%s,w=%s IOPS][depth=%d][eta %02" PRIu64 "m:%02" PRIu64
                 "s]   ",
            running, running, marks, pct, b0, b1, i0, i1, depth, left_s / 60, left_s % 60);
    fflush(out);
}

int bffio_run_group(const struct bffio_job *jobs, unsigned nr, const struct bffio_run_opts *opts,
                    struct bffio_group_result *out)
{
    memset(out, 0, sizeof(*out));
    unsigned nworkers = 0;
    bool adaptive = false;
    uint64_t fixed_total = 0;
    double target = 0;
    for (unsigned i = 0; i < nr; i++) {
        nworkers += jobs[i].numjobs;
        if (jobs[i].iodepth == 0)
            adaptive = true;
        else
            fixed_total += (uint64_t)jobs[i].iodepth * jobs[i].numjobs;
        double t = jobs[i].target_p99_ms > 0 ? jobs[i].target_p99_ms : opts->target_p99_ms;
        if (t > 0 && (target == 0 || t < target))
            target = t; /* one engine: the strictest target of the group's jobs */
    }
    out->res = calloc(nworkers, sizeof(*out->res));
    struct group *g = calloc(1, sizeof(*g));
    if (!out->res || !g) {
        free(g);
        return -1;
    }
    out->nr = nworkers;
    auraio_options_t o;
    auraio_options_init(&o);
    /* A ring per CPU, but no more rings than threads: a single job talks to one ring, as fio's
     * io_uring engine does, instead of spilling to a ring no thread of its own polls first. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o.ring_count = (int)(cpus > 0 && (long)nworkers > cpus ? cpus : (long)nworkers);
    if (adaptive) {
        o.max_p99_latency_ms = target;
    } else {
        /* Fixed depths: every clone keeps its iodepth in flight; the library must not hold any back. */
        uint64_t qd = fixed_total * 2 < 256 ? 256 : fixed_total * 2;
        o.queue_depth = (int)(qd > 32768 ? 32768 : qd);
        o.initial_in_flight = o.queue_depth;
        o.max_in_flight = o.queue_depth;
        o.disable_adaptive = true;
    }
    g->engine = auraio_create_with_options(&o);
    if (!g->engine) {
        int e = errno;
        snprintf(out->res[0].errmsg, sizeof(out->res[0].errmsg), "auraio_create: %s%s", strerror(e),
                 e == ENOSYS || e == EPERM ? " (io_uring is unavailable here)" : "");
        out->res[0].error = e;
        free(g);
        return -1;
    }
    pthread_mutex_init(&g->done_lock, NULL);
    pthread_cond_init(&g->done_cond, NULL);
    g->fixed_depth = adaptive ? 0 : (int)(fixed_total > INT32_MAX ? INT32_MAX : fixed_total);
    out->ctl.adaptive = adaptive;
    out->ctl.fixed_depth = adaptive ? 0 : jobs[0].iodepth;
    out->ctl.target_p99_ms = target;
    out->ctl.rings = auraio_get_ring_count(g->engine);
    out->ctl.ring = calloc((size_t)out->ctl.rings, sizeof(*out->ctl.ring));
    int *ring_peak = calloc((size_t)out->ctl.rings + 1, sizeof(*ring_peak));
    g->workers = calloc(nworkers, sizeof(*g->workers));
    g->nworkers = nworkers;
    int rc = -1;
    unsigned k = 0, inited = 0;
    if (!g->workers || !out->ctl.ring || !ring_peak)
        goto out;
    for (unsigned i = 0; i < nr; i++) {
        for (unsigned c = 0; c < jobs[i].numjobs; c++, k++) {
            if (worker_init(g, &g->workers[k], &jobs[i], c, &out->res[k]) < 0) {
                inited = k + 1;
                if (k != 0) {
                    memcpy(out->res[0].errmsg, out->res[k].errmsg, sizeof(out->res[0].errmsg));
                    out->res[0].error = out->res[k].error;
                }
                goto out;
            }
            inited = k + 1;
        }
    }
    /* wait_for: the waitee's clones, when it is a job of this group (an earlier group's is done). */
    for (unsigned i = 0, first = 0; i < nr; first += jobs[i].numjobs, i++) {
        if (!jobs[i].wait_for[0])
            continue;
        unsigned wf = 0;
        for (unsigned m = 0; m < i; wf += jobs[m].numjobs, m++) {
            if (strcmp(jobs[m].name, jobs[i].wait_for))
                continue;
            for (unsigned c = 0; c < jobs[i].numjobs; c++) {
                g->workers[first + c].wait_first = wf;
                g->workers[first + c].wait_nr = jobs[m].numjobs;
                atomic_store(&g->workers[first + c].waiting, true);
            }
        }
    }
    g->last_fixed = 0;
    for (unsigned i = 0; i < nworkers; i++)
        if (!g->workers[i].wait_nr)
            g->last_fixed += (int)g->workers[i].depth;
    g->most_fixed = g->last_fixed;
    bffio_files_disk_name(g->workers[0].files[0].path, out->disk, sizeof(out->disk));
    out->disk_ok = out->disk[0] != '\0';
    if (out->disk_ok)
        read_disk(out->disk, out->disk_before, &out->disk_ok);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t unix_ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
    g->start_ns = now_ns();
    for (unsigned i = 0; i < nworkers; i++) {
        out->res[i].start_unix_ms = unix_ms;
        if (pthread_create(&g->workers[i].thread, NULL, worker_main, &g->workers[i]) != 0) {
            group_abort(g);
            snprintf(out->res[i].errmsg, sizeof(out->res[i].errmsg), "cannot start a thread");
            out->res[i].error = EAGAIN;
            break;
        }
        g->workers[i].thread_started = true;
    }

    /* Monitor: per-interval samples, the depth trace, and the progress line. */
    uint64_t max_ms = 0;
    uint64_t *job_end_ms = calloc(nr, sizeof(*job_end_ms)); /* a wait_for job ends after its waitee's */
    for (unsigned i = 0; job_end_ms && i < nr; i++) {
        uint64_t t = (jobs[i].startdelay_us + jobs[i].ramp_us + jobs[i].runtime_us) / 1000;
        for (unsigned m = 0; jobs[i].wait_for[0] && m < i; m++)
            if (!strcmp(jobs[m].name, jobs[i].wait_for))
                t += job_end_ms[m];
        job_end_ms[i] = t;
        max_ms = t > max_ms ? t : max_ms;
    }
    free(job_end_ms);
    bool eta = opts->eta_out && opts->eta != BFFIO_ETA_NEVER;
    uint64_t *last_bytes = calloc(nworkers * BFFIO_DDIRS * LIVE_COUNTERS, sizeof(uint64_t));
    /* The library's lifetime histogram at the last sample: the difference is the interval's. */
    auraio_metrics_t *met_now = calloc(2, sizeof(*met_now)), *met_prev = met_now ? met_now + 1 : NULL;
    /* The first sample closes the first full interval: one taken at the first tick would log a
     * near-empty interval whenever the monitor starts a millisecond late (slow thread start). */
    uint64_t next_sample = g->workers[0].job->log_avg_msec ? g->workers[0].job->log_avg_msec : DEFAULT_SAMPLE_MS;
    uint64_t tick = 0;
    int last_depth = -1;
    uint64_t depth_changed_ns = g->start_ns;
    unsigned trace_cap = 0;
    double eta_bw[2] = {0, 0}, eta_iops[2] = {0, 0};
    uint64_t eta_last_ns = g->start_ns, eta_prev[2] = {0, 0}, eta_prev_ios[2] = {0, 0};
    for (;;) {
        bool all_done = true;
        for (unsigned i = 0; i < nworkers; i++)
            all_done &= !g->workers[i].thread_started ||
                        atomic_load_explicit(&g->workers[i].done, memory_order_acquire);
        uint64_t now = now_ns();
        uint64_t el_ms = (now - g->start_ns) / 1000000;
        int depth = active_depth(g, &out->ctl, false, ring_peak);
        if (depth != last_depth) {
            last_depth = depth;
            depth_changed_ns = now;
        }
        if (out->ctl.depth_trace_nr == trace_cap) {
            unsigned nc = trace_cap ? trace_cap * 2 : 256;
            int *nt = realloc(out->ctl.depth_trace, nc * sizeof(*nt));
            if (nt) {
                out->ctl.depth_trace = nt;
                trace_cap = nc;
            }
        }
        if (out->ctl.depth_trace_nr < trace_cap)
            out->ctl.depth_trace[out->ctl.depth_trace_nr++] = depth;
        if (last_bytes && (el_ms >= next_sample || all_done)) {
            uint64_t p50 = 0, p99 = 0;
            if (met_now && auraio_get_metrics(g->engine, AURAIO_ALL_RINGS, met_now) == 0) {
                uint64_t n = met_now->latency_count - met_prev->latency_count;
                p50 = interval_percentile(met_now->latency_buckets, met_prev->latency_buckets, n, 0.50);
                p99 = interval_percentile(met_now->latency_buckets, met_prev->latency_buckets, n, 0.99);
                memcpy(met_prev, met_now, sizeof(*met_now));
            }
            int phase = busiest_phase(g->engine);
            for (unsigned i = 0; i < nworkers; i++) {
                struct worker *w = &g->workers[i];
                unsigned period = w->job->log_avg_msec ? w->job->log_avg_msec : DEFAULT_SAMPLE_MS;
                (void)period;
                struct bffio_result *r = &out->res[i];
                struct bffio_sample sm;
                memset(&sm, 0, sizeof(sm));
                sm.t_ms = el_ms;
                sm.depth = depth;
                sm.p50_ns = p50;
                sm.p99_ns = p99;
                sm.phase = phase;
                for (int d = 0; d < BFFIO_DDIRS; d++) {
                    uint64_t v[LIVE_COUNTERS] = {
                        atomic_load_explicit(&w->live_bytes[d], memory_order_relaxed),
                        atomic_load_explicit(&w->live_ios[d], memory_order_relaxed),
                        atomic_load_explicit(&w->live_lat[d], memory_order_relaxed),
                        atomic_load_explicit(&w->live_clat[d], memory_order_relaxed),
                        atomic_load_explicit(&w->live_slat[d], memory_order_relaxed),
                    };
                    uint64_t *lb = &last_bytes[(i * BFFIO_DDIRS + (unsigned)d) * LIVE_COUNTERS];
                    sm.bytes[d] = v[0] - lb[0];
                    sm.ios[d] = v[1] - lb[1];
                    sm.lat_sum_ns[d] = v[2] - lb[2];
                    sm.clat_sum_ns[d] = v[3] - lb[3];
                    sm.slat_sum_ns[d] = v[4] - lb[4];
                    memcpy(lb, v, sizeof(v));
                }
                uint64_t started = atomic_load_explicit(&w->started_ns, memory_order_acquire);
                bool ramping = !started || now < started + w->job->ramp_us * 1000;
                if (!ramping && el_ms > 0) {
                    struct bffio_sample *ns = realloc(r->samples, (r->samples_nr + 1) * sizeof(*ns));
                    if (ns) {
                        r->samples = ns;
                        r->samples[r->samples_nr++] = sm;
                    }
                }
            }
            unsigned period = g->workers[0].job->log_avg_msec ? g->workers[0].job->log_avg_msec : DEFAULT_SAMPLE_MS;
            next_sample = el_ms + period;
        }
        if (eta && tick % 10 == 0 && !all_done) {
            uint64_t cur[2] = {0, 0}, cur_ios[2] = {0, 0};
            for (unsigned i = 0; i < nworkers; i++)
                for (int d = 0; d < 2; d++) {
                    cur[d] += atomic_load_explicit(&g->workers[i].live_bytes[d], memory_order_relaxed);
                    cur_ios[d] += atomic_load_explicit(&g->workers[i].live_ios[d], memory_order_relaxed);
                }
            double dt = (double)(now - eta_last_ns) / 1e9;
            if (dt > 0.5) {
                for (int d = 0; d < 2; d++) {
                    eta_bw[d] = (double)(cur[d] - eta_prev[d]) / dt;
                    eta_iops[d] = (double)(cur_ios[d] - eta_prev_ios[d]) / dt;
                    eta_prev[d] = cur[d];
                    eta_prev_ios[d] = cur_ios[d];
                }
                eta_last_ns = now;
            }
            double pct = max_ms ? 100.0 * (double)el_ms / (double)max_ms : 0;
            uint64_t left = max_ms > el_ms ? (max_ms - el_ms + 999) / 1000 : 0;
            eta_line(opts->eta_out, g, pct > 100 ? 100 : pct, eta_bw, eta_iops, left, depth);
        }
        if (all_done)
            break;
        if (opts->stop && *opts->stop && !atomic_load(&g->abort))
            group_abort(g);
        tick++;
        sleep_until(g->start_ns + tick * MONITOR_TICK_MS * 1000000ull);
    }
    if (eta) {
        fprintf(opts->eta_out, "\r%*s\r", 100, "");
        fflush(opts->eta_out);
    }
    free(last_bytes);
    free(met_now);
    for (unsigned i = 0; i < nworkers; i++)
        if (g->workers[i].thread_started)
            pthread_join(g->workers[i].thread, NULL);
    out->elapsed_ms = (now_ns() - g->start_ns) / 1000000;
    out->ctl.final_depth = active_depth(g, &out->ctl, true, ring_peak);
    if (g->fixed_depth)
        out->ctl.final_depth = g->most_fixed;
    uint64_t measured_from = g->start_ns + jobs[0].startdelay_us * 1000 + jobs[0].ramp_us * 1000;
    out->ctl.converge_s =
        depth_changed_ns > measured_from ? (double)(depth_changed_ns - measured_from) / 1e9 : 0.0;
    auraio_stats_t st;
    if (auraio_get_stats(g->engine, &st) == 0)
        out->ctl.p99_ms = st.p99_latency_ms;
    /* The device model per device (issue #16), for the report. */
    auraio_device_stats_t dst[BFFIO_DEVICES_MAX];
    int nd = auraio_get_device_stats(g->engine, dst, BFFIO_DEVICES_MAX);
    out->ctl.devices = nd < 0 ? 0 : nd > BFFIO_DEVICES_MAX ? BFFIO_DEVICES_MAX : nd;
    for (int d = 0; d < out->ctl.devices; d++)
        auraio_format_device_model(&dst[d], out->ctl.device_model[d], sizeof(out->ctl.device_model[d]));
    if (out->disk_ok)
        read_disk(out->disk, out->disk_after, &out->disk_ok);
    rc = 0;
    for (unsigned i = 0; i < nworkers; i++)
        if (out->res[i].error)
            rc = 1;
out:
    for (unsigned i = 0; i < inited; i++)
        worker_free(g, &g->workers[i]);
    free(g->workers);
    free(ring_peak);
    pthread_cond_destroy(&g->done_cond);
    pthread_mutex_destroy(&g->done_lock);
    auraio_destroy(g->engine);
    free(g);
    return rc;
}

void bffio_group_result_free(struct bffio_group_result *r)
{
    for (unsigned i = 0; i < r->nr; i++) {
        free(r->res[i].samples);
        free(r->res[i].iolog);
        free(r->res[i].verify_log);
    }
    free(r->res);
    free(r->ctl.ring);
    free(r->ctl.depth_trace);
    memset(r, 0, sizeof(*r));
}
