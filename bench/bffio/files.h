/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The files a job works on: their names (fio's filename lists and filename_format), their layout
 * (real, non-zero data written before a job reads them, as fio's "Laying out IO file"), opening
 * with O_DIRECT, and the record of what this run created so that every error path removes it.
 */
#ifndef BFFIO_FILES_H
#define BFFIO_FILES_H

#include "job.h"

struct bffio_file {
    char path[BFFIO_PATH_MAX];
    int fd;
    uint64_t start, end; /* the job's region of the file: [start, end) */
    uint64_t seq_pos;    /* next sequential offset */
    uint64_t real_size;
};

/*
 * Name, lay out and open clone @p clone's files of @p job. @return 0, or -1 with @p msg filled
 * (files this call created stay recorded for bffio_files_remove_created).
 */
int bffio_files_open(const struct bffio_job *job, unsigned clone, struct bffio_file **out, unsigned *nr, char *msg,
                     size_t msg_len);
/* fsync_on_close, then close; unlink=1 removes them. */
void bffio_files_close(const struct bffio_job *job, struct bffio_file *files, unsigned nr);
/* Remove every file this run created (error paths). */
void bffio_files_remove_created(void);
/* Forget the record (the run ended well; the files stay, as fio leaves them). */
void bffio_files_forget_created(void);
/* The /sys/block device under @p path ("vda"), or "" (disk stats are then skipped). */
void bffio_files_disk_name(const char *path, char *name, size_t len);

#endif
