/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The C half of the Python binding. Completions never call into Python: each request's callback
 * appends a preallocated entry (one per Python-side slot) to a list owned by the thread running
 * the callbacks, and the poll/wait/run wrappers hand that list back as two arrays once the C call
 * has returned. So no callback ever needs the GIL, waits run with the GIL released, and delivery
 * to Python is one call per batch instead of one per completion.
 */
#ifndef PYAURAIO_H
#define PYAURAIO_H

#include <auraio.h>
#include <stdint.h>

struct pya_engine;

/* Create / destroy. pya_destroy runs the engine's last callbacks into the caller's list: drain it
 * with pya_drain before pya_free. */
struct pya_engine *pya_create(const auraio_options_t *options, uint32_t slots);
auraio_engine_t *pya_raw(struct pya_engine *pe);
void pya_destroy(struct pya_engine *pe);
void pya_free(struct pya_engine *pe);

/* Event loop: each returns how many completions it stored in idx/res (at most cap) and the C
 * call's own return value in *rc. Entries beyond cap stay for the next pya_drain. */
int pya_poll(struct pya_engine *pe, uint32_t *idx, int64_t *res, int cap, int *rc);
int pya_wait(struct pya_engine *pe, int timeout_ms, uint32_t *idx, int64_t *res, int cap, int *rc);
int pya_run(struct pya_engine *pe, uint32_t *idx, int64_t *res, int cap, int *rc);
int pya_drain(uint32_t *idx, int64_t *res, int cap);

/* Submissions: slot @p idx is the Python side's; @p timeout_ns arms a deadline (0: none). NULL
 * with errno set on failure, and then no deadline stays armed. */
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

/*
 * A batch: @p n reads (or writes) of @p len bytes, member i at @p offsets[i] into base + i * stride,
 * at most @p depth (0: all) of them in flight at once: the first window is submitted here, and each
 * member's completion submits the next from its callback (the library enters those together), so
 * the whole batch runs without Python. One completion for the batch on slot @p idx. Each member's
 * result (bytes or -errno) lands in pya_batch_results(); a member that could not be submitted
 * carries the -errno, and so do the members after it. @return the batch, or NULL with errno when
 * not even the first member could be submitted (ERANGE: a negative offset, checked first). *done is 1 when every member finished before this
 * returned (then no completion is delivered for the batch).
 */
struct pya_batch;
struct pya_batch *pya_batch_submit(struct pya_engine *pe, uint32_t idx, int write, int fd, char *base, size_t stride,
                                   size_t len, const int64_t *offsets, uint32_t n, uint32_t depth, int *done);
const int64_t *pya_batch_results(const struct pya_batch *b);
int pya_batch_cancel(struct pya_engine *pe, struct pya_batch *b);
void pya_batch_free(struct pya_batch *b);

#endif
