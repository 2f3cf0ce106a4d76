/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The block-throttle group behind throttle.h: finding the disk under a file, finding a writable
 * blkio (cgroup v1) or io (cgroup v2) hierarchy in /proc/self/mountinfo, creating a group named
 * THROTTLE_PREFIX<pid>-<seq>, writing caps, and the cleanup that moves every process back out and
 * removes the directory. The cleanup path (throttle_release) uses only async-signal-safe calls on
 * strings prepared at create time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "throttle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

struct throttle {
    throttle_kind_t kind;
    unsigned major, minor;
    throttle_caps_t caps;
    bool released;
    char mount[PATH_MAX];       /* hierarchy mount point; groups are created in it */
    char group[PATH_MAX];       /* our group's directory */
    char group_procs[PATH_MAX]; /* group/cgroup.procs */
    char orig_procs[PATH_MAX];  /* cgroup.procs of where the process was before create */
    char orig[PATH_MAX];
};

/* A controller found in mountinfo. */
struct hier {
    throttle_kind_t kind;
    char mount[PATH_MAX]; /* where the hierarchy is mounted */
    char root[PATH_MAX];  /* which cgroup of the hierarchy the mount shows ("/" normally) */
};

static _Thread_local char last_error[640];
static unsigned group_seq;

const char *throttle_last_error(void)
{
    return last_error;
}

__attribute__((format(printf, 1, 2))) static void set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
}

/* snprintf through a wrapper: paths are checked by the callers that build them, and messages may
 * be cut short (gcc's -Wformat-truncation cannot see that through vsnprintf). */
__attribute__((format(printf, 3, 4))) static int sfmt(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, size, fmt, ap);
    va_end(ap);
    return n;
}

/* dst = a + b; -ENAMETOOLONG when it does not fit. */
static int join(char *dst, size_t size, const char *a, const char *b)
{
    int n = sfmt(dst, size, "%s%s", a, b);
    if (n < 0 || (size_t)n >= size) {
        set_error("path too long: %s%s", a, b);
        return -ENAMETOOLONG;
    }
    return 0;
}

/* Write all of @p s to @p path (one write: cgroup files take a whole rule per write). No message. */
static int write_raw(const char *path, const char *s, size_t len)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, s, len);
    int err = n < 0 ? -errno : (size_t)n != len ? -EIO : 0;
    close(fd);
    return err;
}

static int write_file(const char *path, const char *s)
{
    int err = write_raw(path, s, strlen(s));
    if (err)
        set_error("writing \"%s\" to %s: %s", s, path, strerror(-err));
    return err;
}

/* Read up to size-1 bytes of a (small) file, NUL-terminated. Async-signal-safe. */
static ssize_t read_raw(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got + 1 < size) {
        ssize_t n = read(fd, buf + got, size - 1 - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = -errno;
            close(fd);
            return err;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = 0;
    close(fd);
    return (ssize_t)got;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* ---------------------------------------------------------------------------------------------
 * The disk under a file
 */

static const char *fs_name(const char *path)
{
    struct statfs sfs;
    if (statfs(path, &sfs) < 0)
        return "unknown file system";
    switch ((unsigned long)sfs.f_type) {
    case 0x01021994ul:
        return "tmpfs";
    case 0x794c7630ul:
        return "overlayfs";
    case 0x9123683eul:
        return "btrfs";
    case 0x6969ul:
        return "nfs";
    case 0x65735546ul:
        return "fuse";
    case 0x2fc12fc1ul:
        return "zfs";
    default:
        return "a file system without a block device";
    }
}

int throttle_device_of(const char *path, unsigned *major_out, unsigned *minor_out)
{
    struct stat st;
    if (!path || !major_out || !minor_out) {
        set_error("throttle_device_of: NULL argument");
        return -EINVAL;
    }
    if (stat(path, &st) < 0) {
        int err = -errno;
        set_error("stat %s: %s", path, strerror(errno));
        return err;
    }
    unsigned maj = major(st.st_dev), min = minor(st.st_dev);
    char sys[128], buf[64];
    sfmt(sys, sizeof(sys), "/sys/dev/block/%u:%u", maj, min);
    if (maj == 0 || access(sys, F_OK) < 0) {
        set_error("%s is on %s (device %u:%u has no %s): no disk to throttle; use a file on a disk", path,
                  fs_name(path), maj, min, sys);
        return -ENOTBLK;
    }
    /* A partition: blk-throttle rules name the whole disk (the parent directory in sysfs). */
    sfmt(sys, sizeof(sys), "/sys/dev/block/%u:%u/partition", maj, min);
    if (access(sys, F_OK) == 0) {
        sfmt(sys, sizeof(sys), "/sys/dev/block/%u:%u/../dev", maj, min);
        ssize_t n = read_raw(sys, buf, sizeof(buf));
        if (n < 0 || sscanf(buf, "%u:%u", &maj, &min) != 2) {
            set_error("%s is on partition %u:%u but %s does not name its disk", path, maj, min, sys);
            return n < 0 ? (int)n : -EIO;
        }
    }
    *major_out = maj;
    *minor_out = min;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Finding the hierarchy
 */

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

static bool has_token(const char *list, const char *tok, char sep)
{
    size_t len = strlen(tok);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, sep);
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && memcmp(p, tok, len) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* The v1 blkio and v2 hierarchies from /proc/self/mountinfo (kind 0 when absent). */
static int find_hierarchies(struct hier *v1, struct hier *v2)
{
    memset(v1, 0, sizeof(*v1));
    memset(v2, 0, sizeof(*v2));
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) {
        int err = -errno;
        set_error("open /proc/self/mountinfo: %s", strerror(errno));
        return err;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        /* id parent maj:min root mountpoint options [optional...] - fstype source superoptions */
        char root[PATH_MAX], mnt[PATH_MAX], fstype[64], super[1024];
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
            sscanf(dash + 3, "%63s %*s %1023s", fstype, super) != 2)
            continue;
        struct hier *h = NULL;
        if (strcmp(fstype, "cgroup") == 0 && has_token(super, "blkio", ',') && !v1->kind)
            h = v1, h->kind = THROTTLE_CGROUP_V1;
        else if (strcmp(fstype, "cgroup2") == 0 && !v2->kind)
            h = v2, h->kind = THROTTLE_CGROUP_V2;
        if (!h)
            continue;
        unescape(root);
        unescape(mnt);
        memcpy(h->mount, mnt, sizeof(mnt));
        memcpy(h->root, root, sizeof(root));
    }
    free(line);
    fclose(f);
    return 0;
}

/* The directory of this process's cgroup in @p h (from /proc/self/cgroup). */
static int original_cgroup(const struct hier *h, char *out, size_t size)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) {
        int err = -errno;
        set_error("open /proc/self/cgroup: %s", strerror(errno));
        return err;
    }
    char *line = NULL;
    size_t cap = 0;
    int err = -ENOENT;
    while (err && getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = 0;
        /* hierarchy-id:controller-list:path; v2 is "0::path" */
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        bool match =
            h->kind == THROTTLE_CGROUP_V1 ? has_token(c1 + 1, "blkio", ',') : (strcmp(line, "0:") == 0 && c1[1] == 0);
        if (!match)
            continue;
        const char *rel = c2 + 1;
        size_t rl = strlen(h->root);
        /* A mount of a sub-tree (containers): strip the part the mount point already stands for. */
        if (strcmp(h->root, "/") != 0 && strncmp(rel, h->root, rl) == 0)
            rel += rl;
        if (strcmp(rel, "/") == 0)
            rel = "";
        err = join(out, size, h->mount, rel);
        if (!err)
            break;
    }
    if (err == -ENOENT)
        set_error("/proc/self/cgroup has no %s line", h->kind == THROTTLE_CGROUP_V1 ? "blkio" : "cgroup v2 (0::)");
    free(line);
    fclose(f);
    return err;
}

/* Pick v1 blkio when mounted and writable, else v2 with the io controller. */
static int pick_hierarchy(struct hier *out)
{
    struct hier v1, v2;
    int err = find_hierarchies(&v1, &v2);
    if (err)
        return err;
    char p[PATH_MAX + 64];
    char why1[256] = "no cgroup v1 blkio hierarchy is mounted";
    if (v1.kind) {
        sfmt(p, sizeof(p), "%s/blkio.throttle.read_iops_device", v1.mount);
        if (access(p, F_OK) < 0)
            sfmt(why1, sizeof(why1), "%s is missing (kernel without CONFIG_BLK_DEV_THROTTLING?)", p);
        else if (access(v1.mount, W_OK) < 0)
            sfmt(why1, sizeof(why1), "%s is not writable (%s; not root?)", v1.mount, strerror(errno));
        else {
            *out = v1;
            return 0;
        }
    }
    if (v2.kind) {
        char ctl[512];
        sfmt(p, sizeof(p), "%s/cgroup.controllers", v2.mount);
        ssize_t n = read_raw(p, ctl, sizeof(ctl));
        if (n >= 0)
            ctl[strcspn(ctl, "\n")] = 0;
        if (n < 0)
            set_error("%s; and reading %s: %s", why1, p, strerror((int)-n));
        else if (!has_token(ctl, "io", ' '))
            set_error("%s; and the cgroup v2 hierarchy at %s has no io controller (controllers: \"%s\"; "
                      "blkio bound to v1?)",
                      why1, v2.mount, ctl);
        else if (access(v2.mount, W_OK) < 0)
            set_error("%s; and %s is not writable (%s; not root?)", why1, v2.mount, strerror(errno));
        else {
            *out = v2;
            return 0;
        }
        return -ENOTSUP;
    }
    set_error("%s, and no cgroup v2 hierarchy either", why1);
    return -ENOTSUP;
}

/* ---------------------------------------------------------------------------------------------
 * Cleanup (async-signal-safe)
 */

/* Move every process listed in @p from_procs into @p to_procs, until the list reads empty. */
static int move_all(const char *from_procs, const char *to_procs)
{
    char buf[4096];
    int first_err = 0;
    for (int round = 0; round < 50; round++) {
        ssize_t n = read_raw(from_procs, buf, sizeof(buf));
        if (n < 0)
            return n == -ENOENT ? 0 : (int)n;
        if (n == 0)
            return 0;
        for (char *p = buf; *p;) {
            char *end = p + strcspn(p, "\n");
            size_t len = (size_t)(end - p);
            if (len > 0) {
                int err = write_raw(to_procs, p, len);
                /* ESRCH: the process exited between the read and the write. */
                if (err && err != -ESRCH && !first_err)
                    first_err = err;
            }
            p = *end ? end + 1 : end;
        }
        if (first_err)
            return first_err;
    }
    return -EBUSY;
}

/* rmdir, retrying while the kernel still counts exiting tasks in the group. */
static int remove_dir(const char *dir)
{
    for (int i = 0; i < 200; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            return -errno;
        nap_ms(5);
    }
    return -EBUSY;
}

static int release_group(const char *group, const char *group_procs, const char *dest_procs)
{
    int err = move_all(group_procs, dest_procs);
    int err2 = remove_dir(group);
    return err ? err : err2;
}

int throttle_release(throttle_t *t)
{
    if (!t || t->released)
        return 0;
    int err = release_group(t->group, t->group_procs, t->orig_procs);
    if (!err)
        t->released = true;
    return err;
}

int throttle_destroy(throttle_t *t)
{
    if (!t)
        return 0;
    int err = 0;
    if (!t->released) {
        err = throttle_release(t);
        if (err)
            set_error("removing throttle group %s (moving its processes to %s, then rmdir): %s", t->group,
                      t->orig_procs, strerror(-err));
    }
    free(t);
    return err;
}

static int sweep_in(const struct hier *h)
{
    DIR *d = opendir(h->mount);
    if (!d) {
        int err = -errno;
        set_error("opendir %s: %s", h->mount, strerror(errno));
        return err;
    }
    char root_procs[PATH_MAX], dir[PATH_MAX], procs[PATH_MAX];
    int removed = 0, err = join(root_procs, sizeof(root_procs), h->mount, "/cgroup.procs");
    struct dirent *de;
    while (!err && (de = readdir(d)) != NULL) {
        const size_t pl = strlen(THROTTLE_PREFIX);
        if (strncmp(de->d_name, THROTTLE_PREFIX, pl) != 0)
            continue;
        char *end;
        long pid = strtol(de->d_name + pl, &end, 10);
        if (end == de->d_name + pl || *end != '-' || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
            continue; /* its owner is alive (EPERM: alive, someone else's) */
        if (sfmt(dir, sizeof(dir), "%s/%s", h->mount, de->d_name) >= (int)sizeof(dir) ||
            sfmt(procs, sizeof(procs), "%s/cgroup.procs", dir) >= (int)sizeof(procs))
            continue;
        int e = release_group(dir, procs, root_procs);
        if (e) {
            set_error("removing stale throttle group %s (owner %ld is gone): %s", dir, pid, strerror(-e));
            err = e;
        } else {
            removed++;
        }
    }
    closedir(d);
    return err ? err : removed;
}

int throttle_sweep_stale(void)
{
    struct hier h;
    int err = pick_hierarchy(&h);
    return err ? err : sweep_in(&h);
}

/* ---------------------------------------------------------------------------------------------
 * Caps
 */

static void fmt_v2(char *dst, size_t size, const char *key, uint64_t v)
{
    if (v)
        sfmt(dst, size, " %s=%" PRIu64, key, v);
    else
        sfmt(dst, size, " %s=max", key);
}

int throttle_set(throttle_t *t, const throttle_caps_t *caps)
{
    if (!t || !caps || t->released) {
        set_error("throttle_set: %s", !t || !caps ? "NULL argument" : "group already released");
        return -EINVAL;
    }
    char rule[256], file[PATH_MAX + 64];
    if (t->kind == THROTTLE_CGROUP_V2) {
        char a[48], b[48], c[48], d[48];
        fmt_v2(a, sizeof(a), "rbps", caps->read_bps);
        fmt_v2(b, sizeof(b), "wbps", caps->write_bps);
        fmt_v2(c, sizeof(c), "riops", caps->read_iops);
        fmt_v2(d, sizeof(d), "wiops", caps->write_iops);
        sfmt(rule, sizeof(rule), "%u:%u%s%s%s%s", t->major, t->minor, a, b, c, d);
        sfmt(file, sizeof(file), "%s/io.max", t->group);
        int err = write_file(file, rule);
        if (!err)
            t->caps = *caps;
        return err;
    }
    /* v1: one file per cap. Only changed caps are written: each write restarts the group's
     * throttle slice. */
    static const char *const names[4] = {"read_iops", "read_bps", "write_iops", "write_bps"};
    const uint64_t want[4] = {caps->read_iops, caps->read_bps, caps->write_iops, caps->write_bps};
    uint64_t *have[4] = {&t->caps.read_iops, &t->caps.read_bps, &t->caps.write_iops, &t->caps.write_bps};
    for (int i = 0; i < 4; i++) {
        if (want[i] == *have[i])
            continue;
        sfmt(rule, sizeof(rule), "%u:%u %" PRIu64, t->major, t->minor, want[i]);
        sfmt(file, sizeof(file), "%s/blkio.throttle.%s_device", t->group, names[i]);
        int err = write_file(file, rule);
        if (err)
            return err;
        *have[i] = want[i];
    }
    return 0;
}

int throttle_set_read_iops(throttle_t *t, uint64_t iops)
{
    throttle_caps_t c = throttle_get_caps(t);
    c.read_iops = iops;
    return throttle_set(t, &c);
}

int throttle_set_read_bps(throttle_t *t, uint64_t bps)
{
    throttle_caps_t c = throttle_get_caps(t);
    c.read_bps = bps;
    return throttle_set(t, &c);
}

int throttle_set_write_iops(throttle_t *t, uint64_t iops)
{
    throttle_caps_t c = throttle_get_caps(t);
    c.write_iops = iops;
    return throttle_set(t, &c);
}

int throttle_set_write_bps(throttle_t *t, uint64_t bps)
{
    throttle_caps_t c = throttle_get_caps(t);
    c.write_bps = bps;
    return throttle_set(t, &c);
}

throttle_caps_t throttle_get_caps(const throttle_t *t)
{
    throttle_caps_t none = {0, 0, 0, 0};
    return t ? t->caps : none;
}

const char *throttle_group_path(const throttle_t *t)
{
    return t ? t->group : "";
}

const char *throttle_original_path(const throttle_t *t)
{
    return t ? t->orig : "";
}

throttle_kind_t throttle_kind(const throttle_t *t)
{
    return t ? t->kind : (throttle_kind_t)0;
}

void throttle_device(const throttle_t *t, unsigned *major_out, unsigned *minor_out)
{
    if (major_out)
        *major_out = t ? t->major : 0;
    if (minor_out)
        *minor_out = t ? t->minor : 0;
}

int throttle_attach(throttle_t *t, pid_t pid)
{
    if (!t || t->released || pid < 0) {
        set_error("throttle_attach: %s", !t || pid < 0 ? "bad argument" : "group already released");
        return -EINVAL;
    }
    char s[32];
    sfmt(s, sizeof(s), "%ld", (long)(pid ? pid : getpid()));
    return write_file(t->group_procs, s);
}

/* ---------------------------------------------------------------------------------------------
 * Create
 */

/* A group directory in @p h: mkdir, and on v2 enable io for the root's children first. */
static int make_group(const struct hier *h, const char *name, char *dir, size_t size)
{
    int err = 0;
    if (h->kind == THROTTLE_CGROUP_V2) {
        char sub[PATH_MAX], ctl[512];
        err = join(sub, sizeof(sub), h->mount, "/cgroup.subtree_control");
        ssize_t n = err ? err : read_raw(sub, ctl, sizeof(ctl));
        if (n < 0 && !err) {
            err = (int)n;
            set_error("reading %s: %s", sub, strerror((int)-n));
        } else if (n >= 0) {
            ctl[strcspn(ctl, "\n")] = 0;
            if (!has_token(ctl, "io", ' '))
                err = write_file(sub, "+io");
        }
    }
    if (!err && sfmt(dir, size, "%s/%s", h->mount, name) >= (int)size) {
        set_error("path too long: %s/%s", h->mount, name);
        err = -ENAMETOOLONG;
    }
    if (!err && mkdir(dir, 0755) < 0) {
        err = -errno;
        set_error("mkdir %s: %s", dir, strerror(errno));
    }
    return err;
}

int throttle_create(throttle_t **out, const char *path)
{
    if (!out || !path) {
        set_error("throttle_create: NULL argument");
        return -EINVAL;
    }
    *out = NULL;
    throttle_t *t = calloc(1, sizeof(*t));
    if (!t) {
        set_error("throttle_create: out of memory");
        return -ENOMEM;
    }
    struct hier h;
    char name[64], pid[32];
    int err = throttle_device_of(path, &t->major, &t->minor);
    if (!err)
        err = pick_hierarchy(&h);
    if (err)
        goto fail;
    /* A stale group that cannot be removed does not stop a new one (the caller sees it in the
     * hierarchy; throttle_sweep_stale() reports it). */
    (void)sweep_in(&h);
    t->kind = h.kind;
    memcpy(t->mount, h.mount, sizeof(h.mount));
    err = original_cgroup(&h, t->orig, sizeof(t->orig));
    if (!err)
        err = join(t->orig_procs, sizeof(t->orig_procs), t->orig, "/cgroup.procs");
    sfmt(name, sizeof(name), THROTTLE_PREFIX "%ld-%u", (long)getpid(), group_seq++);
    if (!err)
        err = make_group(&h, name, t->group, sizeof(t->group));
    if (err)
        goto fail;
    err = join(t->group_procs, sizeof(t->group_procs), t->group, "/cgroup.procs");
    sfmt(pid, sizeof(pid), "%ld", (long)getpid());
    if (!err)
        err = write_file(t->group_procs, pid);
    if (err) {
        char msg[sizeof(last_error)];
        memcpy(msg, last_error, sizeof(msg));
        throttle_release(t);
        memcpy(last_error, msg, sizeof(msg));
        goto fail;
    }
    *out = t;
    return 0;
fail:
    free(t);
    return err;
}

int throttle_available(const char *path, char *why, size_t whylen)
{
    char dummy[1];
    if (!why || whylen == 0)
        why = dummy, whylen = sizeof(dummy);
    unsigned maj, min;
    struct hier h;
    char name[64], dir[PATH_MAX], file[PATH_MAX + 64], rule[64];
    int err = throttle_device_of(path, &maj, &min);
    if (!err)
        err = pick_hierarchy(&h);
    sfmt(name, sizeof(name), THROTTLE_PREFIX "%ld-probe", (long)getpid());
    if (!err)
        err = make_group(&h, name, dir, sizeof(dir));
    if (!err) {
        /* The rule is what a real group writes first; a device blk-throttle cannot handle fails it. */
        if (h.kind == THROTTLE_CGROUP_V1) {
            sfmt(file, sizeof(file), "%s/blkio.throttle.read_iops_device", dir);
            sfmt(rule, sizeof(rule), "%u:%u 0", maj, min);
        } else {
            sfmt(file, sizeof(file), "%s/io.max", dir);
            sfmt(rule, sizeof(rule), "%u:%u riops=max", maj, min);
        }
        err = write_file(file, rule);
        if (rmdir(dir) < 0 && !err) {
            err = -errno;
            set_error("rmdir %s: %s", dir, strerror(errno));
        }
    }
    if (err) {
        sfmt(why, whylen, "%s", last_error);
        return 0;
    }
    sfmt(why, whylen, "cgroup %s at %s, device %u:%u", h.kind == THROTTLE_CGROUP_V1 ? "v1 blkio" : "v2 io.max", h.mount,
         maj, min);
    return 1;
}
