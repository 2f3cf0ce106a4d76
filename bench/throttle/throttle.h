/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A real capped device: the kernel's block throttle (blk-throttle) applied to the whole calling
 * process for the disk that backs a file. cgroup v1 `blkio.throttle.*_device` files where the blkio
 * hierarchy is mounted and writable, else cgroup v2 `io.max`. See doc/throttle.md.
 *
 * Every function returns 0 (or a value >= 0) on success and -errno on failure; on failure
 * throttle_last_error() names the file or step that failed. Not thread-safe: one thread sets a group
 * up, changes its caps and destroys it (the I/O threads may run meanwhile: caps apply to them too).
 */
#ifndef AURAIO_BENCH_THROTTLE_H
#define AURAIO_BENCH_THROTTLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Group directories are named THROTTLE_PREFIX "<pid>-<seq>"; the pid lets a later create sweep
 * groups whose owner died without cleaning up (SIGKILL, crash). */
#define THROTTLE_PREFIX "auraio-thr-"

typedef struct throttle throttle_t;

/** Caps for the throttled device. 0 = uncapped. */
typedef struct {
    uint64_t read_iops;
    uint64_t read_bps;
    uint64_t write_iops;
    uint64_t write_bps;
} throttle_caps_t;

typedef enum {
    THROTTLE_CGROUP_V1 = 1, /**< blkio.throttle.{read,write}_{iops,bps}_device */
    THROTTLE_CGROUP_V2 = 2, /**< io.max */
} throttle_kind_t;

/** Message about the last failure on this thread (static storage; "" when none). */
const char *throttle_last_error(void);

/**
 * The whole disk behind @p path: st_dev of the file, and the parent disk when st_dev is a
 * partition. -ENOTBLK when the file system is not on a block device (tmpfs, overlay, btrfs
 * subvolumes report anonymous devices).
 */
int throttle_device_of(const char *path, unsigned *major, unsigned *minor);

/**
 * Whether a throttle group for the disk behind @p path can be created here: finds the controller,
 * creates a probe group, writes an uncapped rule for the device into it and removes it again.
 * @return 1 when it works; 0 when it cannot, with the reason in @p why (e.g. "not root", "file is
 *         on tmpfs"); never leaves a group behind.
 */
int throttle_available(const char *path, char *why, size_t whylen);

/**
 * Create a throttle group for the disk behind @p path and move the calling process into it (all
 * threads, including io_uring's io-wq workers, through cgroup.procs). Starts uncapped. Sweeps stale
 * groups of dead processes first.
 * @param out receives the handle; destroy it with throttle_destroy().
 */
int throttle_create(throttle_t **out, const char *path);

/** Set all four caps at once (0 = uncapped). Takes effect for I/O dispatched from now on. */
int throttle_set(throttle_t *t, const throttle_caps_t *caps);
/** Change one cap, keeping the others. */
int throttle_set_read_iops(throttle_t *t, uint64_t iops);
int throttle_set_read_bps(throttle_t *t, uint64_t bps);
int throttle_set_write_iops(throttle_t *t, uint64_t iops);
int throttle_set_write_bps(throttle_t *t, uint64_t bps);
/** The caps last set. */
throttle_caps_t throttle_get_caps(const throttle_t *t);

/** Move another process (all its threads) into the group, e.g. a child that was forked before. */
int throttle_attach(throttle_t *t, pid_t pid);

/** The group's directory, e.g. "/sys/fs/cgroup/blkio/auraio-thr-1234-0". */
const char *throttle_group_path(const throttle_t *t);
/** The directory of the cgroup the process was in before create (where destroy moves it back). */
const char *throttle_original_path(const throttle_t *t);
throttle_kind_t throttle_kind(const throttle_t *t);
void throttle_device(const throttle_t *t, unsigned *major, unsigned *minor);

/**
 * Undo create: move every process still in the group (this one and any children) back to the
 * original cgroup and remove the group directory. Frees @p t (NULL is a no-op). Returns the first
 * error but always frees and always tries every step.
 */
int throttle_destroy(throttle_t *t);

/**
 * The same cleanup without freeing and without formatting a message: only open/read/write/close/
 * rmdir/nanosleep, so a signal handler or an atexit hook may call it. Idempotent; throttle_destroy()
 * after it only frees.
 */
int throttle_release(throttle_t *t);

/**
 * Remove groups named THROTTLE_PREFIX "<pid>-..." whose pid no longer exists (their processes go
 * to the hierarchy's root). throttle_create() calls it. @return the number removed, or -errno.
 */
int throttle_sweep_stale(void);

#ifdef __cplusplus
}
#endif

#endif
