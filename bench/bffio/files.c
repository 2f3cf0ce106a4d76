/* SPDX-License-Identifier: Apache-2.0 */
/* Naming, laying out, opening and cleaning up a job's files (see files.h). */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define LAYOUT_CHUNK (1u << 20)

/* What this run created, so that an error removes exactly that (and never a user's file). */
static char **created;
static unsigned created_nr;
static pthread_mutex_t created_lock = PTHREAD_MUTEX_INITIALIZER;

static void remember_created(const char *path)
{
    pthread_mutex_lock(&created_lock);
    char **n = realloc(created, (created_nr + 1) * sizeof(*n));
    if (n) {
        created = n;
        created[created_nr] = strdup(path);
        if (created[created_nr])
            created_nr++;
    }
    pthread_mutex_unlock(&created_lock);
}

void bffio_files_remove_created(void)
{
    pthread_mutex_lock(&created_lock);
    for (unsigned i = 0; i < created_nr; i++) {
        unlink(created[i]);
        free(created[i]);
    }
    free(created);
    created = NULL;
    created_nr = 0;
    pthread_mutex_unlock(&created_lock);
}

void bffio_files_forget_created(void)
{
    pthread_mutex_lock(&created_lock);
    for (unsigned i = 0; i < created_nr; i++)
        free(created[i]);
    free(created);
    created = NULL;
    created_nr = 0;
    pthread_mutex_unlock(&created_lock);
}

/* fio's filename_format: $jobname, $jobnum, $filenum (and $clientuid, which has no meaning here). */
static void expand_format(const struct bffio_job *job, unsigned clone, unsigned filenum, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = job->filename_format; *p && o + 1 < cap;) {
        char tmp[BFFIO_NAME_MAX];
        const char *add = NULL;
        size_t skip = 0;
        if (!strncmp(p, "$jobname", 8)) {
            add = job->name;
            skip = 8;
        } else if (!strncmp(p, "$jobnum", 7)) {
            snprintf(tmp, sizeof(tmp), "%u", clone);
            add = tmp;
            skip = 7;
        } else if (!strncmp(p, "$filenum", 8)) {
            snprintf(tmp, sizeof(tmp), "%u", filenum);
            add = tmp;
            skip = 8;
        }
        if (add) {
            size_t n = strlen(add);
            if (o + n >= cap)
                n = cap - o - 1;
            memcpy(out + o, add, n);
            o += n;
            p += skip;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

/* The @p idx-th name of a ':' list ("\:" is a literal colon). */
static int list_entry(const char *list, unsigned idx, char *out, size_t cap)
{
    unsigned cur = 0;
    size_t o = 0;
    for (const char *p = list;; p++) {
        if (*p == '\0' || (*p == ':' && !(p > list && p[-1] == '\\'))) {
            if (cur == idx) {
                out[o] = '\0';
                return 0;
            }
            if (!*p)
                return -1;
            cur++;
            o = 0;
            continue;
        }
        if (*p == '\\' && p[1] == ':')
            continue;
        if (cur == idx && o + 1 < cap)
            out[o++] = *p;
    }
}

/* Fill [from, to) with pseudo-random bytes: data no layer can shortcut (zero pages, dedupe). */
static int layout_data(int fd, uint64_t from, uint64_t to, uint64_t seed)
{
    char *chunk = malloc(LAYOUT_CHUNK);
    if (!chunk)
        return -ENOMEM;
    uint64_t s = seed;
    int rc = 0;
    for (uint64_t off = from; off < to;) {
        size_t n = (size_t)(to - off < LAYOUT_CHUNK ? to - off : LAYOUT_CHUNK);
        uint64_t *w = (uint64_t *)(void *)chunk;
        for (size_t i = 0; i < LAYOUT_CHUNK / 8; i++) {
            uint64_t z = (s += 0x9e3779b97f4a7c15ull);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            w[i] = z ^ (z >> 31);
        }
        ssize_t got = pwrite(fd, chunk, n, (off_t)off);
        if (got <= 0) {
            rc = got < 0 ? -errno : -EIO;
            break;
        }
        off += (uint64_t)got;
    }
    free(chunk);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    return rc;
}

static int open_one(const struct bffio_job *job, unsigned clone, unsigned filenum, struct bffio_file *f, char *msg,
                    size_t msg_len)
{
    char name[BFFIO_PATH_MAX];
    if (job->filename[0]) {
        if (list_entry(job->filename, filenum, name, sizeof(name)) < 0) {
            snprintf(msg, msg_len, "job '%s': no file %u in filename list", job->name, filenum);
            return -1;
        }
    } else {
        expand_format(job, clone, filenum, name, sizeof(name));
    }
    if (job->directory[0] && name[0] != '/')
        snprintf(f->path, sizeof(f->path), "%s/%s", job->directory, name);
    else
        snprintf(f->path, sizeof(f->path), "%s", name);
    f->fd = -1;

    struct stat st;
    bool exists = stat(f->path, &st) == 0;
    if (exists && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        snprintf(msg, msg_len, "%s: not a regular file or block device", f->path);
        return -1;
    }
    uint64_t existing = 0;
    if (exists && S_ISREG(st.st_mode))
        existing = (uint64_t)st.st_size;
    if (exists && S_ISBLK(st.st_mode)) {
        int bfd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (bfd >= 0) {
            off_t end = lseek(bfd, 0, SEEK_END);
            existing = end > 0 ? (uint64_t)end : 0;
            close(bfd);
        }
    }
    uint64_t per_file = job->filesize ? job->filesize : job->size / (job->nrfiles ? job->nrfiles : 1);
    if (job->size_pct) {
        if (!exists) {
            snprintf(msg, msg_len, "%s: size=%u%% needs an existing file", f->path, job->size_pct);
            return -1;
        }
        per_file = existing * job->size_pct / 100;
    }
    uint64_t offset = job->offset;
    if (job->offset_pct)
        offset = existing * job->offset_pct / 100;
    offset += (uint64_t)clone * job->offset_increment;
    if (per_file == 0) {
        if (!exists || existing <= offset) {
            snprintf(msg, msg_len, "job '%s': %s does not exist (or is empty) and no size is set", job->name,
                     f->path);
            return -1;
        }
        per_file = existing - offset;
    }
    uint64_t bs_max = 0;
    for (int d = 0; d < BFFIO_DDIRS; d++)
        bs_max = job->bs_max[d] > bs_max ? job->bs_max[d] : bs_max;
    if (per_file < bs_max) {
        snprintf(msg, msg_len, "job '%s': %s: size %llu is smaller than the block size %llu", job->name, f->path,
                 (unsigned long long)per_file, (unsigned long long)bs_max);
        return -1;
    }
    f->start = offset;
    f->end = offset + per_file;
    f->seq_pos = f->start;

    int flags = O_CLOEXEC | (job->rw_write ? O_RDWR : O_RDONLY);
    if (!exists) {
        /* The layout below writes the data; O_EXCL so that a race never adopts someone's file. */
        int fd = open(f->path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
        if (fd < 0) {
            snprintf(msg, msg_len, "cannot create %s: %s", f->path, strerror(errno));
            return -1;
        }
        remember_created(f->path);
        close(fd);
    }
    if (S_ISREG(exists ? st.st_mode : S_IFREG) && existing < f->end) {
        int fd = open(f->path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            snprintf(msg, msg_len, "cannot open %s to lay it out: %s", f->path, strerror(errno));
            return -1;
        }
        int rc;
        if (job->rw_read || job->verify != BFFIO_VERIFY_NONE)
            rc = layout_data(fd, existing, f->end, 0x5eedull ^ f->end);
        else
            rc = posix_fallocate(fd, 0, (off_t)f->end) ? -EIO : 0;
        close(fd);
        if (rc < 0) {
            snprintf(msg, msg_len, "laying out %s: %s", f->path, strerror(-rc));
            return -1;
        }
    }
    f->real_size = existing > f->end ? existing : f->end;
    f->fd = open(f->path, flags | (job->direct ? O_DIRECT : 0));
    if (f->fd < 0) {
        int e = errno;
        if (job->direct && e == EINVAL)
            snprintf(msg, msg_len,
                     "%s: the file system refused O_DIRECT (direct=1); use buffered=1 (or direct=0), or a "
                     "directory on a disk file system",
                     f->path);
        else
            snprintf(msg, msg_len, "cannot open %s: %s", f->path, strerror(e));
        return -1;
    }
    return 0;
}

int bffio_files_open(const struct bffio_job *job, unsigned clone, struct bffio_file **out, unsigned *nr, char *msg,
                     size_t msg_len)
{
    unsigned n = job->nrfiles ? job->nrfiles : 1;
    struct bffio_file *files = calloc(n, sizeof(*files));
    if (!files) {
        snprintf(msg, msg_len, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < n; i++)
        files[i].fd = -1;
    for (unsigned i = 0; i < n; i++) {
        if (open_one(job, clone, i, &files[i], msg, msg_len) < 0) {
            for (unsigned k = 0; k <= i; k++)
                if (files[k].fd >= 0)
                    close(files[k].fd);
            free(files);
            return -1;
        }
    }
    *out = files;
    *nr = n;
    return 0;
}

void bffio_files_close(const struct bffio_job *job, struct bffio_file *files, unsigned nr)
{
    for (unsigned i = 0; i < nr; i++) {
        if (files[i].fd >= 0) {
            if (job->fsync_on_close && job->rw_write)
                fsync(files[i].fd);
            close(files[i].fd);
        }
        if (job->unlink)
            unlink(files[i].path);
    }
    free(files);
}

void bffio_files_disk_name(const char *path, char *name, size_t len)
{
    name[0] = '\0';
    struct stat st;
    if (stat(path, &st) < 0)
        return;
    dev_t dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
    char link[PATH_MAX], target[PATH_MAX];
    snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(dev), minor(dev));
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return;
    target[n] = '\0';
    /* A partition's parent directory is its disk: /sys/.../vda/vda1. */
    char part[PATH_MAX];
    snprintf(part, sizeof(part), "%s/partition", link);
    char *base = strrchr(target, '/');
    if (!base)
        return;
    if (access(part, F_OK) == 0) {
        *base = '\0';
        base = strrchr(target, '/');
        if (!base)
            return;
    }
    snprintf(name, len, "%s", base + 1);
}
