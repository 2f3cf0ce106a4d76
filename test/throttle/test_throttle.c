/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The throttle module (bench/throttle/throttle.h) on the real disk: a read-IOPS cap holds the
 * measured IOPS of O_DIRECT reads through auraio at depth 16 within 15% of the cap (and the same
 * load runs far above it uncapped, measured in the same test), a cap changed mid-run takes effect,
 * and destroy leaves no group behind and the process back where it was; stale groups of dead owners
 * are swept. Skips (77) where no throttle controller is writable.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "throttle.h"
#include "throttle_io.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define DEPTH 16
#define TOLERANCE 0.15

static void expect_near(double iops, double cap, const char *what)
{
    printf("# %s: %.0f IOPS under a cap of %.0f (%.1f%%)\n", what, iops, cap, 100.0 * (iops - cap) / cap);
    if (iops < cap * (1 - TOLERANCE) || iops > cap * (1 + TOLERANCE))
        fail_msg("%s: %.0f IOPS is not within %.0f%% of the cap %.0f", what, iops, TOLERANCE * 100, cap);
}

static throttle_t *make_group(void)
{
    throttle_t *t = NULL;
    int err = throttle_create(&t, tio_dir());
    if (err)
        fail_msg("throttle_create(%s): %s (%s)", tio_dir(), strerror(-err), throttle_last_error());
    return t;
}

static void destroy_group(throttle_t *t)
{
    int err = throttle_destroy(t);
    if (err)
        fail_msg("throttle_destroy: %s (%s)", strerror(-err), throttle_last_error());
}

/* (a) The cap holds, and the same load is far above it without one. */
static void test_cap_holds(void **state)
{
    (void)state;
    struct tio_load l;
    tio_load_init(&l, DEPTH);
    double free_iops = tio_load_run(&l, 0.3);
    printf("# uncapped, depth %d: %.0f IOPS\n", DEPTH, free_iops);

    throttle_t *t = make_group();
    assert_int_equal(throttle_set_read_iops(t, 2000), 0);
    tio_load_run(&l, 0.3); /* the first slices after a change */
    double capped = tio_load_run(&l, 1.0);
    destroy_group(t);
    tio_load_fini(&l);

    expect_near(capped, 2000, "cap 2000");
    if (free_iops < 3 * 2000)
        fail_msg("uncapped %.0f IOPS is not well above the 2000 cap: the disk is too slow to tell", free_iops);
}

/* (b) A cap changed while I/O runs: the IOPS follow the new cap, up and down. */
static void test_cap_change(void **state)
{
    (void)state;
    struct tio_load l;
    tio_load_init(&l, DEPTH);
    throttle_t *t = make_group();
    assert_int_equal(throttle_set_read_iops(t, 5000), 0);
    tio_load_run(&l, 0.3);
    double a = tio_load_run(&l, 0.8);
    assert_int_equal(throttle_set_read_iops(t, 1500), 0);
    tio_load_run(&l, 0.3);
    double b = tio_load_run(&l, 1.0);
    assert_int_equal(throttle_set_read_iops(t, 0), 0);
    double c = tio_load_run(&l, 0.3);
    destroy_group(t);
    tio_load_fini(&l);

    expect_near(a, 5000, "cap 5000");
    expect_near(b, 1500, "cap 5000 -> 1500");
    printf("# cap removed: %.0f IOPS\n", c);
    if (c < 3 * 5000)
        fail_msg("after removing the cap: %.0f IOPS, still near the old caps", c);
}

/* A bandwidth cap: 8 MiB/s of 4 KiB reads is 2048 IOPS. */
static void test_bps_cap(void **state)
{
    (void)state;
    struct tio_load l;
    tio_load_init(&l, DEPTH);
    throttle_t *t = make_group();
    throttle_caps_t caps = {.read_bps = 8u << 20};
    assert_int_equal(throttle_set(t, &caps), 0);
    tio_load_run(&l, 0.3);
    double iops = tio_load_run(&l, 0.8);
    destroy_group(t);
    tio_load_fini(&l);
    expect_near(iops, 2048, "read_bps 8 MiB/s");
}

static bool dir_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Move this process into @p dir (a cgroup directory). */
static void enter(const char *dir)
{
    char procs[4200], pid[32];
    snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    FILE *f = fopen(procs, "w");
    assert_non_null(f);
    assert_true(fputs(pid, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* A thread that exists before the group does (like an engine's threads or io-wq workers). */
static void *idle_thread(void *arg)
{
    char c;
    ssize_t n = read(*(int *)arg, &c, 1);
    (void)n;
    return NULL;
}

/* Asserts that every thread of this process has @p want as its v1 blkio / v2 line. */
static void assert_all_threads_in(const char *want)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    struct dirent *de;
    int threads = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[300], line[1024], got[1024] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/cgroup", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* the thread just exited */
        while (fgets(line, sizeof(line), f)) {
            line[strcspn(line, "\n")] = 0;
            char *c = strchr(line, ':');
            if (c && (strncmp(c, ":blkio:", 7) == 0 || (!got[0] && strncmp(line, "0::", 3) == 0)))
                snprintf(got, sizeof(got), "%s", c + 1);
        }
        fclose(f);
        if (strcmp(got, want) != 0)
            fail_msg("thread %s is in %s, not %s", de->d_name, got, want);
        threads++;
    }
    closedir(d);
    assert_true(threads >= 2);
}

/* (c) Destroy: group directory gone, process back in its original cgroup - a non-root one here, so
 * "back to the hierarchy's root" would not pass for "back where it was". */
static void test_destroy_cleans_up(void **state)
{
    (void)state;
    char before[1024], inside[1024], after[1024], group[4096], orig[4096], start_dir[4096], first[4096];
    /* Our own starting cgroup, named so a crashed run is swept like any stale group. */
    throttle_t *probe = make_group();
    const char *p = throttle_group_path(probe);
    snprintf(start_dir, sizeof(start_dir), "%.*s/" THROTTLE_PREFIX "%ld-start", (int)(strrchr(p, '/') - p), p,
             (long)getpid());
    snprintf(first, sizeof(first), "%s", throttle_original_path(probe));
    destroy_group(probe);
    assert_int_equal(mkdir(start_dir, 0755), 0);
    enter(start_dir);

    int wake[2];
    pthread_t th;
    assert_int_equal(pipe(wake), 0);
    assert_int_equal(pthread_create(&th, NULL, idle_thread, &wake[0]), 0);

    tio_cgroup_line(before, sizeof(before));
    assert_all_threads_in(before);
    throttle_t *t = make_group();
    snprintf(group, sizeof(group), "%s", throttle_group_path(t));
    snprintf(orig, sizeof(orig), "%s", throttle_original_path(t));
    tio_cgroup_line(inside, sizeof(inside));
    assert_true(dir_exists(group));
    assert_non_null(strstr(inside, THROTTLE_PREFIX));
    assert_non_null(strstr(group, strrchr(inside, '/') + 1));
    assert_string_equal(orig, start_dir);
    assert_all_threads_in(inside); /* the whole process moved, not just this thread */
    assert_int_equal(throttle_set_read_iops(t, 1000), 0);
    destroy_group(t);
    tio_cgroup_line(after, sizeof(after));
    assert_all_threads_in(after);
    assert_int_equal(write(wake[1], "x", 1), 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    close(wake[0]);
    close(wake[1]);
    printf("# before %s, inside %s, after %s\n", before, inside, after);
    bool left = dir_exists(group);

    /* Back to where the test started, then remove start_dir. */
    enter(first);
    assert_int_equal(rmdir(start_dir), 0);

    if (left)
        fail_msg("%s still exists after throttle_destroy", group);
    assert_string_equal(before, after);
    /* Destroy of NULL is a no-op. */
    assert_int_equal(throttle_destroy(NULL), 0);
}

/* A group whose owner died without cleaning up is removed by the next create. */
static void test_stale_group_swept(void **state)
{
    (void)state;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        throttle_t *t = NULL;
        char path[4096] = "";
        if (throttle_create(&t, tio_dir()) == 0)
            snprintf(path, sizeof(path), "%s", throttle_group_path(t));
        ssize_t n = write(pipefd[1], path, strlen(path) + 1);
        (void)n;
        _exit(0); /* no destroy: the group stays behind */
    }
    close(pipefd[1]);
    char stale[4096] = "";
    ssize_t n = read(pipefd[0], stale, sizeof(stale) - 1);
    close(pipefd[0]);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(n > 1);
    assert_true(dir_exists(stale));

    throttle_t *t = make_group();
    bool left = dir_exists(stale);
    destroy_group(t);
    if (left) {
        rmdir(stale);
        fail_msg("stale group %s of a dead process survived throttle_create", stale);
    }
}

/* Errors are negative errno with a message naming what failed. */
static void test_errors(void **state)
{
    (void)state;
    throttle_t *t = (throttle_t *)1;
    assert_int_equal(throttle_create(&t, "/nonexistent/file"), -ENOENT);
    assert_null(t);
    assert_non_null(strstr(throttle_last_error(), "/nonexistent/file"));
    unsigned maj, min;
    if (dir_exists("/dev/shm")) {
        int err = throttle_device_of("/dev/shm", &maj, &min);
        assert_int_equal(err, -ENOTBLK);
        assert_non_null(strstr(throttle_last_error(), "tmpfs"));
        char why[700];
        assert_int_equal(throttle_available("/dev/shm", why, sizeof(why)), 0);
        assert_non_null(strstr(why, "tmpfs"));
    }
    assert_int_equal(throttle_device_of(tio_dir(), &maj, &min), 0);
    assert_true(maj > 0);
}

/* No group of this process is left in the hierarchy (checked last). */
static void test_nothing_left(void **state)
{
    (void)state;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), THROTTLE_PREFIX "%ld-", (long)getpid());
    const char *roots[] = {"/sys/fs/cgroup/blkio", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
        DIR *d = opendir(roots[i]);
        if (!d)
            continue;
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
                fail_msg("%s/%s was left behind", roots[i], de->d_name);
        closedir(d);
    }
}

int main(void)
{
    tio_require_throttle();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_destroy_cleans_up),
        cmocka_unit_test(test_stale_group_swept),
        cmocka_unit_test(test_cap_holds),
        cmocka_unit_test(test_cap_change),
        cmocka_unit_test(test_bps_cap),
        cmocka_unit_test(test_nothing_left),
    };
    return cmocka_run_group_tests_name("throttle", tests, NULL, NULL);
}
