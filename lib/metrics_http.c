/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An embeddable /metrics endpoint: one thread, one listening socket (127.0.0.1 unless told
 * otherwise), non-blocking connections multiplexed with poll(). Optional: nothing in the engine
 * references this file; a started server registers its stop function with the engine so that
 * auraio_destroy stops it first. libc only, no allocation on the I/O path (each scrape allocates
 * its document on this thread).
 *
 * Bounded in every direction, so that no client can hurt the engine or hold the endpoint:
 *  - a request is at most REQUEST_MAX bytes of headers (431 beyond), parsed once complete;
 *  - each connection has CONNECTION_TIMEOUT_MS from accept to the last byte of the answer;
 *  - at most MAX_CONNECTIONS at once: a new one evicts the oldest (a flood of idle connections
 *    only shortens each other's lives, a real scrape still gets through);
 *  - answers are written non-blocking; a reader that stops reading times out like a slow writer.
 * Anything but `GET /metrics` (or HEAD) gets 400, 404, 405 or 431 and the connection is closed.
 *
 * Unlike the rest of lib/, this module makes its own system calls (sockets, poll, pipe) and reads
 * errno locally: it is separate from the io_uring layer that uring_sys.c isolates.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "auraio.h"

#include "clock.h"
#include "engine.h"
#include "log.h"
#include "metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_BIND_ADDRESS "127.0.0.1"
#define REQUEST_MAX 4096
#define MAX_CONNECTIONS 16
#define CONNECTION_TIMEOUT_MS 5000
#define LISTEN_BACKLOG 64
#define LINGER_MS 1000
/* First guess for a scrape's document; the size contract corrects it. */
#define DOCUMENT_SLACK 1024

/* After the answer: the write side is shut and whatever the client still sends is read and
 * dropped until it closes (or LINGER_MS), so the close cannot reset the answer away. */
enum conn_state { CONN_FREE, CONN_READING, CONN_WRITING, CONN_DRAINING };

struct conn {
    int fd;
    enum conn_state state;
    uint64_t deadline_ns;
    uint64_t accepted_ns;
    size_t req_len;
    char req[REQUEST_MAX];
    char *resp;
    size_t resp_len, resp_off;
};

struct auraio_metrics_server {
    struct auraio_engine *engine;
    int listen_fd;
    int stop_pipe[2];
    int port;
    pthread_t thread;
    struct conn conns[MAX_CONNECTIONS];
};

static void conn_close(struct conn *c)
{
    if (c->state == CONN_FREE)
        return;
    close(c->fd);
    free(c->resp);
    c->resp = NULL;
    c->state = CONN_FREE;
}

/* Queue a complete answer; the body is copied after the headers in one allocation. */
static void respond(struct conn *c, const char *status, const char *extra_headers, const char *type,
                    const char *body, size_t body_len, bool head)
{
    char headers[512];
    int n = snprintf(headers, sizeof(headers),
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n", status,
                     type, body_len, extra_headers);
    size_t send_body = head ? 0 : body_len;
    char *out = n > 0 ? malloc((size_t)n + send_body) : NULL;
    if (!out) {
        conn_close(c);
        return;
    }
    memcpy(out, headers, (size_t)n);
    if (send_body)
        memcpy(out + n, body, send_body);
    free(c->resp);
    c->resp = out;
    c->resp_len = (size_t)n + send_body;
    c->resp_off = 0;
    c->state = CONN_WRITING;
}

static void respond_text(struct conn *c, const char *status, const char *extra_headers, const char *text)
{
    respond(c, status, extra_headers, "text/plain; charset=utf-8", text, strlen(text), false);
}

/* The client lists OpenMetrics in its Accept header (Prometheus does, first, since 2.5). */
static bool wants_openmetrics(const char *request)
{
    for (const char *line = strchr(request, '\n'); line; line = strchr(line + 1, '\n')) {
        if (strncasecmp(line + 1, "accept:", 7) != 0)
            continue;
        size_t n = strcspn(line + 1, "\r\n");
        char value[REQUEST_MAX];
        snprintf(value, sizeof(value), "%.*s", (int)n, line + 1);
        return strcasestr(value, "application/openmetrics-text") != NULL;
    }
    return false;
}

static void serve_metrics(struct auraio_metrics_server *s, struct conn *c, bool head)
{
    bool om = wants_openmetrics(c->req);
    size_t cap = DOCUMENT_SLACK;
    for (;;) {
        char *doc = malloc(cap);
        if (!doc) {
            respond_text(c, "500 Internal Server Error", "", "out of memory\n");
            return;
        }
        int n = om ? auraio_metrics_openmetrics(s->engine, doc, cap) : auraio_metrics_prometheus(s->engine, doc, cap);
        if (n >= 0 && (size_t)n < cap) {
            respond(c, "200 OK", "",
                    om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                       : "text/plain; version=0.0.4; charset=utf-8",
                    doc, (size_t)n, head);
            free(doc);
            return;
        }
        free(doc);
        if (n < 0) {
            respond_text(c, "500 Internal Server Error", "", "metrics unavailable\n");
            return;
        }
        cap = (size_t)n + DOCUMENT_SLACK; /* counters may gain digits before the retry */
    }
}

/* A complete request head is in c->req: answer it. */
static void handle_request(struct auraio_metrics_server *s, struct conn *c)
{
    char method[16], target[256], version[16];
    c->req[c->req_len] = '\0';
    size_t line_len = strcspn(c->req, "\r\n");
    char line[512];
    if (line_len >= sizeof(line)) {
        respond_text(c, "414 URI Too Long", "", "request line too long\n");
        return;
    }
    memcpy(line, c->req, line_len);
    line[line_len] = '\0';
    char extra;
    if (sscanf(line, "%15s %255s %15s %c", method, target, version, &extra) != 3 || strncmp(version, "HTTP/1.", 7) ||
        target[0] != '/') {
        respond_text(c, "400 Bad Request", "", "malformed request\n");
        return;
    }
    bool head = !strcmp(method, "HEAD");
    if (strcmp(method, "GET") && !head) {
        respond_text(c, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", "only GET /metrics\n");
        return;
    }
    size_t path_len = strcspn(target, "?");
    if (path_len == strlen("/metrics") && !strncmp(target, "/metrics", path_len))
        serve_metrics(s, c, head);
    else
        respond_text(c, "404 Not Found", "", "only /metrics is served here\n");
}

static bool head_complete(const struct conn *c)
{
    /* Search only what can contain the terminator; requests are small. */
    for (size_t i = 0; i + 1 < c->req_len; i++) {
        if (c->req[i] == '\n' && (c->req[i + 1] == '\n' || (c->req[i + 1] == '\r' && i + 2 < c->req_len &&
                                                            c->req[i + 2] == '\n')))
            return true;
    }
    return false;
}

static void on_readable(struct auraio_metrics_server *s, struct conn *c)
{
    ssize_t n = recv(c->fd, c->req + c->req_len, REQUEST_MAX - 1 - c->req_len, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        conn_close(c);
        return;
    }
    if (n < 0)
        return;
    c->req_len += (size_t)n;
    if (head_complete(c))
        handle_request(s, c);
    else if (c->req_len >= REQUEST_MAX - 1)
        respond_text(c, "431 Request Header Fields Too Large", "", "request too large\n");
}

static void on_writable(struct conn *c)
{
    ssize_t n = send(c->fd, c->resp + c->resp_off, c->resp_len - c->resp_off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->resp_off += (size_t)n;
    if (c->resp_off == c->resp_len) {
        shutdown(c->fd, SHUT_WR);
        free(c->resp);
        c->resp = NULL;
        c->state = CONN_DRAINING;
        uint64_t linger = auraio__now_ns() + (uint64_t)LINGER_MS * 1000000u;
        if (linger < c->deadline_ns)
            c->deadline_ns = linger;
    }
}

static void on_drainable(struct conn *c)
{
    char scratch[REQUEST_MAX];
    ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        conn_close(c);
}

static void accept_one(struct auraio_metrics_server *s, uint64_t now)
{
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return; /* EAGAIN, a connection reset before accept, or EMFILE: try again next round */
    struct conn *slot = NULL, *oldest = NULL;
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        struct conn *c = &s->conns[i];
        if (c->state == CONN_FREE) {
            slot = c;
            break;
        }
        if (!oldest || c->accepted_ns < oldest->accepted_ns)
            oldest = c;
    }
    if (!slot) {
        conn_close(oldest);
        slot = oldest;
    }
    slot->fd = fd;
    slot->state = CONN_READING;
    slot->req_len = 0;
    slot->accepted_ns = now;
    slot->deadline_ns = now + (uint64_t)CONNECTION_TIMEOUT_MS * 1000000u;
}

static void *server_main(void *arg)
{
    struct auraio_metrics_server *s = arg;
    struct pollfd pfds[2 + MAX_CONNECTIONS];
    int owner[2 + MAX_CONNECTIONS];
    for (;;) {
        uint64_t now = auraio__now_ns();
        int timeout_ms = -1;
        int n = 0;
        pfds[n++] = (struct pollfd){.fd = s->stop_pipe[0], .events = POLLIN};
        pfds[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
        for (int i = 0; i < MAX_CONNECTIONS; i++) {
            struct conn *c = &s->conns[i];
            if (c->state == CONN_FREE)
                continue;
            if (now >= c->deadline_ns) {
                conn_close(c);
                continue;
            }
            int left = (int)((c->deadline_ns - now + 999999) / 1000000);
            if (timeout_ms < 0 || left < timeout_ms)
                timeout_ms = left;
            owner[n] = i;
            pfds[n++] = (struct pollfd){.fd = c->fd, .events = c->state == CONN_WRITING ? POLLOUT : POLLIN};
        }
        if (poll(pfds, (nfds_t)n, timeout_ms) < 0) {
            if (errno == EINTR)
                continue;
            auraio__log(AURAIO_LOG_ERROR, "metrics_server: poll failed (errno %d); the server stops", errno);
            break;
        }
        if (pfds[0].revents)
            break;
        now = auraio__now_ns();
        for (int k = 2; k < n; k++) {
            struct conn *c = &s->conns[owner[k]];
            if (!pfds[k].revents || c->state == CONN_FREE)
                continue;
            if (c->state == CONN_READING)
                on_readable(s, c);
            else if (c->state == CONN_WRITING)
                on_writable(c);
            else
                on_drainable(c);
        }
        if (pfds[1].revents & POLLIN)
            accept_one(s, now);
    }
    for (int i = 0; i < MAX_CONNECTIONS; i++)
        conn_close(&s->conns[i]);
    return NULL;
}

static void server_free(struct auraio_metrics_server *s)
{
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->stop_pipe[0] >= 0)
        close(s->stop_pipe[0]);
    if (s->stop_pipe[1] >= 0)
        close(s->stop_pipe[1]);
    free(s);
}

static void server_stop(struct auraio_metrics_server *s)
{
    char byte = 1;
    /* The pipe is empty but for this byte, so the write cannot block or fail short. */
    while (write(s->stop_pipe[1], &byte, 1) < 0 && errno == EINTR)
        ;
    pthread_join(s->thread, NULL);
    server_free(s);
}

static int open_listener(struct auraio_metrics_server *s, const char *address, int port)
{
    struct sockaddr_storage ss;
    socklen_t ss_len;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, address, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        ss_len = sizeof(*in4);
    } else if (inet_pton(AF_INET6, address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        ss_len = sizeof(*in6);
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, ss_len) < 0 || listen(fd, LISTEN_BACKLOG) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &ss_len) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    s->listen_fd = fd;
    s->port = ss.ss_family == AF_INET ? ntohs(in4->sin_port) : ntohs(in6->sin6_port);
    return 0;
}

int auraio__metrics_server_start(struct auraio_engine *e, const char *address, int port,
                                 struct auraio_metrics_server **out)
{
    struct auraio_metrics_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->engine = e;
    s->listen_fd = s->stop_pipe[0] = s->stop_pipe[1] = -1;
    int rc = open_listener(s, address ? address : DEFAULT_BIND_ADDRESS, port);
    if (rc == 0 && pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        rc = -errno;
    if (rc < 0) {
        server_free(s);
        return rc;
    }
    struct auraio_metrics_server *none = NULL;
    e->metrics_server_stop = server_stop;
    if (!atomic_compare_exchange_strong(&e->metrics_server, &none, s)) {
        server_free(s);
        return -EBUSY;
    }
    rc = pthread_create(&s->thread, NULL, server_main, s);
    if (rc != 0) {
        atomic_store(&e->metrics_server, NULL);
        server_free(s);
        return -rc;
    }
    *out = s;
    return 0;
}

int auraio__metrics_server_stop(struct auraio_metrics_server *s)
{
    struct auraio_metrics_server *expected = s;
    /* Whoever takes it out of the engine stops it: this call, or the engine's destroy. */
    if (!atomic_compare_exchange_strong(&s->engine->metrics_server, &expected, NULL))
        return -EINVAL;
    server_stop(s);
    return 0;
}

int auraio__metrics_server_port(const struct auraio_metrics_server *s)
{
    return s->port;
}
