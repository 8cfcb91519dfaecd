/* fuzz_rt.h - what the runtime's fuzz targets (fuzz_npz.c, fuzz_csv.c, fuzz_idx.c) share:
 * the input bytes as a file the readers open by path. A memfd is a regular file in memory,
 * reopened through /proc/self/fd like any path, so the whole read (open, type check, zlib,
 * limits) is fuzzed too, without touching the disk. The readers' messages go to stderr:
 * run the targets with -close_fd_mask=2. */
#ifndef FUZZ_RT_H
#define FUZZ_RT_H

#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct FuzzFile {
    int fd;
    char path[48];
} FuzzFile;

/* Makes f's file hold bytes [data, data + size); its path is f->path. */
static void fuzz_file(FuzzFile *f, const uint8_t *data, size_t size)
{
    if (!f->path[0]) {
        f->fd = memfd_create("fuzz", 0);
        if (f->fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    }
    if (ftruncate(f->fd, 0) != 0 || (size && pwrite(f->fd, data, size, 0) != (ssize_t)size)) {
        perror("memfd write");
        abort();
    }
}

#endif
