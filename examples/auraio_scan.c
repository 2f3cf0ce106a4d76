/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auraio-scan: read every regular file under a directory tree, with the per-file work on the ring.
 * The tree is listed with readdir (io_uring has no getdents); for each file, a chain
 * openat -> read of the first chunk goes into a registered file slot (auraio_openat_direct: no
 * file descriptor is created, and the read names the slot with AURAIO_FIXED_FILE, so it can be
 * linked to the open before the open has run), alongside a statx of its path; further chunks are
 * read as the previous one arrives, and the slot is emptied with a fixed-file auraio_close. Prints
 * the files read, their bytes (checked against statx), a checksum and the throughput.
 *
 *   auraio-scan [--files N] [--chunk KIB] DIR
 *
 * --files is how many files are read at once (one registered slot each).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <auraio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 256

struct file {
    struct scan *s;
    int slot;
    bool busy;
    char path[PATH_MAX];
    struct statx sx;
    unsigned char *buf;
    int64_t off;
    int64_t bytes;
    uint64_t sum; /* h = h * 31 + byte over the file's bytes in order */
    int pending; /* the statx and the current read still to come */
    bool eof;
    bool open_failed;
};

struct scan {
    auraio_engine_t *e;
    size_t chunk;
    int nfiles;
    uint64_t files_done, bytes, checksum, mismatches, errors;
    int active;
    struct file files[MAX_FILES];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void read_cb(auraio_request_t *req, ssize_t res, void *ud);

static void finish_file(struct file *f)
{
    struct scan *s = f->s;
    if (!f->open_failed && f->bytes != (int64_t)f->sx.stx_size) /* statx and the reads agree */
        s->mismatches++;
    s->files_done++;
    s->checksum += f->sum; /* files finish in any order: a sum of per-file hashes */
    f->busy = false;
    s->active--;
}

static void close_cb(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct file *f = ud;
    if (res < 0)
        f->s->errors++;
    finish_file(f);
}

/* Once the last read and the statx are in: empty the slot through the ring. */
static void maybe_close(struct file *f)
{
    if (!f->eof || f->pending > 0)
        return;
    if (f->open_failed) {
        finish_file(f);
        return;
    }
    if (!auraio_close(f->s->e, f->slot, AURAIO_FIXED_FILE, close_cb, f)) {
        f->s->errors++;
        finish_file(f);
    }
}

static void open_cb(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct file *f = ud;
    if (res < 0) {
        f->open_failed = true; /* the linked read gets -ECANCELED */
        f->s->errors++;
    }
}

static void statx_cb(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct file *f = ud;
    if (res < 0)
        f->s->errors++;
    f->pending--;
    maybe_close(f);
}

static void read_next(struct file *f)
{
    f->pending++;
    if (!auraio_read_ex(f->s->e, f->slot, auraio_buf(f->buf), f->s->chunk, f->off, AURAIO_FIXED_FILE, read_cb, f)) {
        f->pending--;
        f->s->errors++;
        f->eof = true;
    }
}

static void read_cb(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct file *f = ud;
    struct scan *s = f->s;
    f->pending--;
    if (res < 0) {
        if (res != -ECANCELED || !f->open_failed)
            s->errors++;
        f->eof = true;
    } else {
        for (ssize_t i = 0; i < res; i++)
            f->sum = f->sum * 31 + f->buf[i];
        f->bytes += res;
        s->bytes += (uint64_t)res;
        f->off += res;
        if ((size_t)res == s->chunk)
            read_next(f); /* more may follow; a short or empty read is the end */
        else
            f->eof = true;
    }
    maybe_close(f);
}

static void start_file(struct scan *s, struct file *f, const char *path)
{
    snprintf(f->path, sizeof(f->path), "%s", path);
    f->busy = true;
    f->off = 0;
    f->bytes = 0;
    f->sum = 0;
    f->eof = false;
    f->open_failed = false;
    f->pending = 2; /* the first read and the statx; the open always precedes the read */
    s->active++;
    /* The path and statx buffer live in the file's slot until its callbacks ran. */
    if (!auraio_openat_direct(s->e, AT_FDCWD, f->path, O_RDONLY, 0, f->slot, AURAIO_LINK, open_cb, f) ||
        !auraio_read_ex(s->e, f->slot, auraio_buf(f->buf), s->chunk, 0, AURAIO_FIXED_FILE, read_cb, f) ||
        !auraio_statx(s->e, AT_FDCWD, f->path, 0, STATX_SIZE, &f->sx, 0, statx_cb, f)) {
        fprintf(stderr, "auraio-scan: submit for %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static struct file *free_file(struct scan *s)
{
    for (;;) {
        for (int i = 0; i < s->nfiles; i++) {
            if (!s->files[i].busy)
                return &s->files[i];
        }
        if (auraio_wait(s->e, -1) < 0) {
            perror("auraio_wait");
            exit(1);
        }
    }
}

static void walk(struct scan *s, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        s->errors++;
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path)) {
            s->errors++;
            continue;
        }
        unsigned char type = de->d_type;
        if (type == DT_UNKNOWN) {
            struct stat st;
            if (lstat(path, &st) < 0)
                continue;
            type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
        }
        if (type == DT_DIR)
            walk(s, path);
        else if (type == DT_REG)
            start_file(s, free_file(s), path);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    static struct scan s;
    s.nfiles = 16;
    s.chunk = 128 * 1024;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--files") && i + 1 < argc)
            s.nfiles = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            s.chunk = (size_t)strtoul(argv[++i], NULL, 10) * 1024;
        else
            break;
    }
    if (argc - i != 1 || s.nfiles < 1 || s.nfiles > MAX_FILES || s.chunk == 0) {
        fprintf(stderr, "usage: auraio-scan [--files N] [--chunk KIB] DIR\n");
        return 2;
    }
    /* One ring: registered files live in a ring's own table (see auraio_openat_direct). */
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    s.e = auraio_create_with_options(&o);
    if (!s.e) {
        perror("auraio_create");
        return 1;
    }
    int empty[MAX_FILES];
    for (int k = 0; k < s.nfiles; k++) {
        empty[k] = -1;
        s.files[k].s = &s;
        s.files[k].slot = k;
        s.files[k].buf = auraio_buffer_alloc(s.e, s.chunk);
        if (!s.files[k].buf) {
            perror("auraio_buffer_alloc");
            return 1;
        }
    }
    int rc = auraio_register_files(s.e, empty, s.nfiles);
    if (rc < 0) {
        fprintf(stderr, "auraio_register_files: %s\n", strerror(-rc));
        return 1;
    }
    double t0 = now_s();
    walk(&s, argv[i]);
    while (s.active > 0) {
        if (auraio_wait(s.e, -1) < 0)
            break;
    }
    double secs = now_s() - t0;
    for (int k = 0; k < s.nfiles; k++)
        auraio_buffer_free(s.e, s.files[k].buf, s.chunk);
    auraio_destroy(s.e);
    printf("files %llu bytes %llu checksum %016llx in %.3f s: %.1f MiB/s, %.0f files/s\n",
           (unsigned long long)s.files_done, (unsigned long long)s.bytes, (unsigned long long)s.checksum, secs,
           (double)s.bytes / (1024.0 * 1024.0) / secs, (double)s.files_done / secs);
    if (s.errors || s.mismatches) {
        fprintf(stderr, "auraio-scan: %llu errors, %llu size mismatches\n", (unsigned long long)s.errors,
                (unsigned long long)s.mismatches);
        return 1;
    }
    return 0;
}
