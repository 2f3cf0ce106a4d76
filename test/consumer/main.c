/* SPDX-License-Identifier: Apache-2.0 */
/* A consumer program: reads its own executable through auraio and checks the bytes against
 * pread. Built by test/consumer/run.sh against the library as a Meson subproject and through
 * pkg-config after `meson install`. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <auraio.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static ssize_t got = -1;

static void on_read(auraio_request_t *req, ssize_t result, void *user_data)
{
    (void)req;
    (void)user_data;
    got = result;
}

int main(int argc, char **argv)
{
    (void)argc;
    char buf[4096], expect[4096];
    int fd = open(argv[0], O_RDONLY);
    auraio_engine_t *engine = auraio_create();
    if (fd < 0 || !engine) {
        perror("setup");
        return 1;
    }
    if (!auraio_read(engine, fd, auraio_buf(buf), sizeof(buf), 0, on_read, NULL)) {
        perror("auraio_read");
        return 1;
    }
    while (got < 0 && auraio_wait(engine, 1000) >= 0)
        ;
    ssize_t n = pread(fd, expect, sizeof(expect), 0);
    auraio_destroy(engine);
    close(fd);
    if (got != n || memcmp(buf, expect, (size_t)n) != 0) {
        fprintf(stderr, "mismatch: auraio %zd bytes, pread %zd\n", got, n);
        return 1;
    }
    printf("auraio %s read %zd bytes\n", auraio_version(), got);
    return 0;
}
