/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The embedded /metrics server: answers (200 with a document the checker accepts, HEAD, 400, 404,
 * 405, 431), argument errors, and abuse - malformed and oversized requests, slow and idle clients,
 * a flood of connections - while the engine does I/O that must be unaffected; an idle connection
 * is closed at its deadline; the thread exits on stop and on destroy with the fd count back where
 * it was.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "expo_check.h"
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#if defined(AURAIO_HAVE_VALGRIND)
#include <sched.h>
#include <valgrind/valgrind.h>
#endif

#define BLOCK 4096
#define NBLOCKS 64
/* The server's own bound (metrics_http.c) and how late the test lets it be. */
#define SERVER_TIMEOUT_MS 5000

static struct expo parsed;

static int open_fd_count(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A blocking client socket whose reads give up after @p timeout_ms (the test's bound). */
static int connect_to(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

/* recv, going round again when a signal interrupts it (the receive timeout still bounds it). */
static ssize_t recv_retry(int fd, void *buf, size_t len)
{
    ssize_t n;
    do
        n = recv(fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n;
}

/* Everything the server sends until it closes; NULL when the read timed out first. */
static char *read_to_eof(int fd)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (len + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t n = recv_retry(fd, buf + len, cap - 1 - len);
        if (n == 0)
            break;
        if (n < 0) {
            free(buf);
            return NULL;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

static char *exchange(int port, const char *request)
{
    int fd = connect_to(port, 10000);
    send_all(fd, request, strlen(request));
    char *resp = read_to_eof(fd);
    close(fd);
    assert_non_null(resp);
    return resp;
}

static void expect_status(int port, const char *request, const char *status)
{
    char *resp = exchange(port, request);
    if (strncmp(resp, status, strlen(status)))
        fail_msg("%s -> %.60s, expected %s", request, resp, status);
    assert_non_null(strstr(resp, "Connection: close\r\n"));
    free(resp);
}

/* Status 200 and a body that is a valid exposition of exactly Content-Length bytes. */
static void expect_metrics(int port)
{
    char *resp = exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17), 0);
    assert_non_null(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
    assert_null(strstr(resp, "# EOF"));
    const char *cl = strstr(resp, "Content-Length: ");
    const char *body = strstr(resp, "\r\n\r\n");
    assert_non_null(cl);
    assert_non_null(body);
    body += 4;
    assert_int_equal(strtoul(cl + 16, NULL, 10), strlen(body));
    const char *err = expo_parse_check(body, &parsed);
    if (err)
        fail_msg("served document: %s", err);
    free(resp);
}

static auraio_engine_t *make(void)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 2;
    o.queue_depth = 64;
    return auraio_create_with_options(&o);
}

static void test_answers(void **state)
{
    (void)state;
    auraio_engine_t *e = make();
    assert_non_null(e);
    auraio_metrics_server_t *s = auraio_metrics_server_start(e, NULL, 0);
    assert_non_null(s);
    int port = auraio_metrics_server_port(s);
    assert_true(port > 0);
    expect_metrics(port);
    expect_status(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK");
    expect_status(port, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found");
    expect_status(port, "GET /metricsX HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found");
    expect_status(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed");
    expect_status(port, "hello\r\n\r\n", "HTTP/1.1 400 Bad Request");
    expect_status(port, "GET /metrics SMTP/1.0\r\n\r\n", "HTTP/1.1 400 Bad Request");
    expect_status(port, "GET metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request");
    expect_status(port, "\r\n\r\n", "HTTP/1.1 400 Bad Request");
    /* OpenMetrics for a client that accepts it (Prometheus asks for it first). */
    char *resp = exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\naccept: application/openmetrics-text;version=1.0.0,"
                          "text/plain;version=0.0.4;q=0.5\r\n\r\n");
    assert_int_equal(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17), 0);
    assert_non_null(strstr(resp, "Content-Type: application/openmetrics-text; version=1.0.0"));
    const char *om_body = strstr(resp, "\r\n\r\n");
    assert_non_null(om_body);
    const char *om_err = expo_parse_check(om_body + 4, &parsed);
    if (om_err)
        fail_msg("served OpenMetrics: %s", om_err);
    assert_true(parsed.eof);
    free(resp);
    /* HEAD: the headers, no body. */
    resp = exchange(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_int_equal(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17), 0);
    assert_string_equal(strstr(resp, "\r\n\r\n"), "\r\n\r\n");
    free(resp);
    /* Oversized: 431 once the bound is reached, without waiting for the end of the request. */
    static char big[16384];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    int fd = connect_to(port, 10000);
    send_all(fd, big, sizeof(big));
    resp = read_to_eof(fd);
    close(fd);
    assert_non_null(resp);
    assert_int_equal(strncmp(resp, "HTTP/1.1 431", 12), 0);
    free(resp);

    /* Argument errors. */
    errno = 0;
    assert_null(auraio_metrics_server_start(e, NULL, 0));
    assert_int_equal(errno, EBUSY);
    assert_int_equal(auraio_metrics_server_stop(s), 0);
    EXPECT_NULL_ERRNO(auraio_metrics_server_start(NULL, NULL, 0), EINVAL);
    EXPECT_NULL_ERRNO(auraio_metrics_server_start(e, NULL, 65536), EINVAL);
    EXPECT_NULL_ERRNO(auraio_metrics_server_start(e, NULL, -1), EINVAL);
    EXPECT_NULL_ERRNO(auraio_metrics_server_start(e, "localhost", 0), EINVAL);
    /* A port already taken. */
    int taken = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(taken, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(taken, 1), 0);
    assert_int_equal(getsockname(taken, (struct sockaddr *)&a, &alen), 0);
    EXPECT_NULL_ERRNO(auraio_metrics_server_start(e, "127.0.0.1", ntohs(a.sin_port)), EADDRINUSE);
    close(taken);
    /* IPv6 loopback, where the machine has it. */
    s = auraio_metrics_server_start(e, "::1", 0);
    if (s)
        assert_int_equal(auraio_metrics_server_stop(s), 0);
    else
        assert_true(errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT);
    assert_int_equal(auraio_metrics_server_port(NULL), -EINVAL);
    assert_int_equal(auraio_metrics_server_stop(NULL), 0);
    auraio_destroy(e);
}

/* ---- abuse while I/O runs ---- */

struct abuse {
    int port;
    _Atomic bool done;
    char error[256];
    uint64_t scrape_ms; /* how long the real scrape took amid the abuse */
};

static void *abuse_main(void *arg)
{
    struct abuse *a = arg;
    enum { IDLE = 40 };
    int idle[IDLE];
    /* A flood of idle connections (more than the server keeps), some with half a request. */
    for (int i = 0; i < IDLE; i++) {
        idle[i] = connect_to(a->port, 10000);
        if (i % 2)
            send_all(idle[i], "GET /met", 8);
    }
    /* Garbage and oversized requests. */
    static const char *const junk[] = {"\x01\x02\x03\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/9\r\n\r\n"};
    for (int i = 0; i < 3; i++) {
        int fd = connect_to(a->port, 10000);
        send_all(fd, junk[i], strlen(junk[i]));
        char *r = read_to_eof(fd);
        close(fd);
        if (!r || strncmp(r, "HTTP/1.1 4", 10)) {
            snprintf(a->error, sizeof(a->error), "junk request %d: %.40s", i, r ? r : "(timeout)");
            free(r);
            goto out;
        }
        free(r);
    }
    /* A slow client: the request a byte at a time; it is still answered. */
    {
        const char *req = "GET /metrics HTTP/1.1\r\n\r\n";
        int fd = connect_to(a->port, 10000);
        for (const char *p = req; *p; p++) {
            send_all(fd, p, 1);
            usleep(2000); /* the slowness under test, not a synchronisation */
        }
        char *r = read_to_eof(fd);
        close(fd);
        if (!r || strncmp(r, "HTTP/1.1 200", 12)) {
            snprintf(a->error, sizeof(a->error), "slow client: %.40s", r ? r : "(timeout)");
            free(r);
            goto out;
        }
        free(r);
    }
    /* With all that open, a real scrape still gets through, promptly. */
    uint64_t t0 = now_ms();
    {
        int fd = connect_to(a->port, 10000);
        send_all(fd, "GET /metrics HTTP/1.1\r\n\r\n", 25);
        char *r = read_to_eof(fd);
        close(fd);
        if (!r || strncmp(r, "HTTP/1.1 200", 12)) {
            snprintf(a->error, sizeof(a->error), "scrape amid idle connections: %.40s", r ? r : "(timeout)");
            free(r);
            goto out;
        }
        free(r);
    }
    a->scrape_ms = now_ms() - t0;
out:
    for (int i = 0; i < IDLE; i++)
        close(idle[i]);
    atomic_store(&a->done, true);
    return NULL;
}

struct load {
    auraio_engine_t *e;
    int fd;
    bool stop;
    long done, bad;
    unsigned char bufs[16][BLOCK];
};

static void reread(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct load *l = ud;
    l->done++;
    if (res != BLOCK)
        l->bad++;
    if (l->stop)
        return;
    long i = l->done;
    if (!auraio_read(l->e, l->fd, auraio_buf(l->bufs[i % 16]), BLOCK, (int64_t)(i % NBLOCKS) * BLOCK, reread, l))
        l->bad++;
}

static void test_abuse_leaves_io_alone(void **state)
{
    (void)state;
    int fds_before = open_fd_count();
    auraio_engine_t *e = make();
    assert_non_null(e);
    auraio_metrics_server_t *s = auraio_metrics_server_start(e, NULL, 0);
    assert_non_null(s);
    static struct load l;
    memset(&l, 0, sizeof(l));
    l.e = e;
    l.fd = harness_pattern_file(BLOCK * NBLOCKS, 8);
    assert_true(l.fd >= 0);
    for (int i = 0; i < 16; i++)
        assert_non_null(auraio_read(e, l.fd, auraio_buf(l.bufs[i]), BLOCK, (int64_t)i * BLOCK, reread, &l));
    struct abuse a = {.port = auraio_metrics_server_port(s)};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, abuse_main, &a), 0);
    uint64_t t0 = now_ms();
    long done_at_start = l.done;
    while (!atomic_load(&a.done) && now_ms() - t0 < 30000) {
        assert_true(auraio_wait(e, 10) >= 0);
#if defined(AURAIO_HAVE_VALGRIND)
        /* valgrind runs one thread at a time and this loop never blocks (cached reads): yield
         * where valgrind hands over, or the server and the client starve past their deadlines. */
        if (RUNNING_ON_VALGRIND)
            sched_yield();
#endif
    }
    long during = l.done - done_at_start;
    pthread_join(t, NULL);
    if (a.error[0])
        fail_msg("%s", a.error);
    /* The I/O went on the whole time, every read correct. */
    assert_true(during > 1000);
    assert_int_equal(l.bad, 0);
    assert_true(a.scrape_ms < 2000);
    print_message("%ld reads during the abuse; a scrape amid 40 idle connections took %llu ms\n", during,
                  (unsigned long long)a.scrape_ms);
    /* Destroy stops the server with connections still open on the client side: none here now,
     * but the server also had evicted and lingering ones. The fd count comes back. */
    l.stop = true;
    auraio_destroy(e);
    close(l.fd);
    assert_int_equal(open_fd_count(), fds_before);
}

/* An idle connection is closed by the server at its deadline, not kept for ever. */
static void test_idle_connection_times_out(void **state)
{
    (void)state;
    auraio_engine_t *e = make();
    assert_non_null(e);
    auraio_metrics_server_t *s = auraio_metrics_server_start(e, NULL, 0);
    assert_non_null(s);
    int fd = connect_to(auraio_metrics_server_port(s), SERVER_TIMEOUT_MS + 3000);
    send_all(fd, "GET /metr", 9);
    uint64_t t0 = now_ms();
    char c;
    ssize_t n = recv_retry(fd, &c, 1);
    uint64_t waited = now_ms() - t0;
    if (n != 0)
        fail_msg("recv: %zd, %s", n, strerror(errno)); /* closed by the server, not our timeout */
    assert_true(waited >= SERVER_TIMEOUT_MS - 100 && waited < SERVER_TIMEOUT_MS + 2000);
    close(fd);
    auraio_destroy(e);
}

/* Stop and destroy with clients connected, mid-request: the thread exits, every fd is closed. */
static void test_stop_restores_fds(void **state)
{
    (void)state;
    int before = open_fd_count();
    auraio_engine_t *e = make();
    assert_non_null(e);
    int with_engine = open_fd_count();
    for (int round = 0; round < 2; round++) {
        auraio_metrics_server_t *s = auraio_metrics_server_start(e, "127.0.0.1", 0);
        assert_non_null(s);
        int port = auraio_metrics_server_port(s);
        expect_metrics(port);
        int clients[5];
        for (int i = 0; i < 5; i++) {
            clients[i] = connect_to(port, 10000);
            send_all(clients[i], "GET /", 5);
        }
        /* One more complete exchange: the five are accepted and held by now. */
        expect_status(port, "GET /x HTTP/1.1\r\n\r\n", "HTTP/1.1 404");
        if (round == 0) {
            uint64_t t0 = now_ms();
            assert_int_equal(auraio_metrics_server_stop(s), 0);
            assert_true(now_ms() - t0 < 1000); /* no waiting for the clients' deadlines */
        } else {
            auraio_destroy(e); /* stops the server itself */
        }
        /* The server closed its ends: each client sees EOF at once. */
        for (int i = 0; i < 5; i++) {
            char c;
            ssize_t n = recv_retry(clients[i], &c, 1);
            /* A reset when the server had not read the partial request yet. */
            assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
            close(clients[i]);
        }
        assert_int_equal(open_fd_count(), round == 0 ? with_engine : before);
    }
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers),
        cmocka_unit_test(test_abuse_leaves_io_alone),
        cmocka_unit_test(test_stop_restores_fds),
        cmocka_unit_test(test_idle_connection_times_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
