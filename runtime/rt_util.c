/* rt_util.c - small helpers the runtime's files share: memory, reals of either size,
 * time, paths, whole-file reads through zlib, and the two message formats. */
#define _DEFAULT_SOURCE /* madvise */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <zlib.h>

#include "rt_internal.h"

/* Buffers of this size or more (the data sets, a large workspace) are aligned to 2 MB and
 * asked for transparent huge pages. With 4 KB pages, on this project's VMs, the first pass
 * over a freshly loaded Fashion-MNIST set cost about 5 us a page (a mapping made again at
 * the hypervisor, presumably), which made the first epoch 2.4x slower than the later ones;
 * with huge pages the first epoch runs as fast as the others and the whole run of
 * bench/mlp_a.nn is 0.5 s shorter (1.65 -> 1.14 s). */
enum { HUGE_AT = 4 << 20, HUGE_ALIGN = 2 << 20 };

void *rt_alloc(size_t bytes)
{
    size_t align = bytes >= HUGE_AT ? HUGE_ALIGN : 64;
    size_t rounded = (bytes + align - 1) / align * align;
    void *p = aligned_alloc(align, rounded ? rounded : 64);
#ifdef MADV_HUGEPAGE
    if (p && align == HUGE_ALIGN)
        madvise(p, rounded, MADV_HUGEPAGE); /* advice only: without THP, 4 KB pages */
#endif
    if (!p) {
        /* Nothing sensible can go on without memory; this is the one exit in the library. */
        fprintf(stderr, "error: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

void rt_free(void *p)
{
    free(p);
}

double rt_get(const void *buf, size_t i, int real_size)
{
    return real_size == 4 ? (double)((const float *)buf)[i] : ((const double *)buf)[i];
}

void rt_set(void *buf, size_t i, int real_size, double v)
{
    if (real_size == 4)
        ((float *)buf)[i] = (float)v;
    else
        ((double *)buf)[i] = v;
}

double rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

char *rt_join(const char *base_dir, const char *path)
{
    int keep = path[0] == '/' || !base_dir || !base_dir[0] || strcmp(base_dir, ".") == 0;
    size_t nb = keep ? 0 : strlen(base_dir), np = strlen(path);
    char *out = malloc(nb + np + 2);
    if (!out)
        return NULL;
    if (keep) {
        memcpy(out, path, np + 1);
    } else {
        memcpy(out, base_dir, nb);
        size_t at = nb;
        if (base_dir[nb - 1] != '/')
            out[at++] = '/';
        memcpy(out + at, path, np + 1);
    }
    return out;
}

unsigned char *rt_read_file(const char *path, size_t *len)
{
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        rt_data_error(path, 0, "cannot open: %s", errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    gzbuffer(f, 1 << 17);
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap + 1);
    int got = 0;
    while (buf && (got = gzread(f, buf + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)got;
        if (n == cap) {
            unsigned char *more = realloc(buf, (cap *= 2) + 1);
            if (!more)
                free(buf);
            buf = more;
        }
    }
    int errnum = 0;
    const char *why = got < 0 ? gzerror(f, &errnum) : NULL;
    if (got < 0)
        rt_data_error(path, 0, "cannot read: %s", errnum == Z_ERRNO ? strerror(errno) : why);
    else if (!buf)
        rt_data_error(path, 0, "cannot read: out of memory");
    gzclose(f);
    if (got < 0 || !buf) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

void rt_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout); /* progress first, then the error, when both go to one place */
    fprintf(stderr, "%s: error: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void rt_data_error(const char *file, long row, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    if (row > 0)
        fprintf(stderr, "%s:%ld: error: ", file, row);
    else
        fprintf(stderr, "%s: error: ", file);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
