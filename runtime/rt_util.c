/* rt_util.c - small helpers the runtime's files share: memory, reals of either size,
 * time, paths, whole-file reads through zlib, and the two message formats. */
#define _DEFAULT_SOURCE /* madvise */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
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

/* What a path that is neither a regular file nor a pipe is, for the message. */
static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode) ? "a folder" : S_ISCHR(mode) ? "a character device"
         : S_ISBLK(mode) ? "a block device" : S_ISSOCK(mode) ? "a socket" : "an unusual file";
}

/* Opens path for reading: regular files and pipes only, since a device such as /dev/zero
 * never ends. *size: a regular file's size, else 0. -1 after a message. */
static int open_input(const char *path, off_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rt_data_error(path, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0)
        rt_data_error(path, 0, "cannot read: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
        rt_data_error(path, 0, "cannot read: it is %s, not a file", file_kind(st.st_mode));
    else {
        *size = S_ISREG(st.st_mode) ? st.st_size : 0;
        return fd;
    }
    close(fd);
    return -1;
}

/* Up to n bytes from the file, decompressed when gz is open. */
static long read_some(int fd, gzFile gz, unsigned char *p, size_t n)
{
    if (n > 1u << 30)
        n = 1u << 30;
    if (gz)
        return gzread(gz, p, (unsigned)n);
    ssize_t got;
    do
        got = read(fd, p, n);
    while (got < 0 && errno == EINTR);
    return (long)got;
}

/* Why the read loop stopped, as a message: NULL for the end of the file. */
static const char *read_failure(gzFile gz, long got, int *errnum)
{
    if (got >= 0 && gz) {
        gzerror(gz, errnum);
        /* zlib's Z_BUF_ERROR after the last byte: the stream stopped inside a gzip member */
        return *errnum == Z_BUF_ERROR ? "the gzip data is cut short (truncated file)" : NULL;
    }
    if (got >= 0)
        return NULL;
    if (!gz)
        return strerror(errno);
    const char *why = gzerror(gz, errnum), *colon = strstr(why, ": ");
    if (*errnum == Z_ERRNO)
        return strerror(errno);
    return colon ? colon + 2 : why; /* zlib's "<fd:N>: " before its message */
}

/* The machine's memory in bytes: the most a data file, read whole, can hold. */
static size_t memory_size(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0 || (unsigned long)pages > SIZE_MAX / 2 / (unsigned long)page)
        return SIZE_MAX / 2;
    return (size_t)pages * (size_t)page;
}

/* Reads until the end, an error (*got < 0) or max + 1 bytes: one more than allowed tells
 * "too large". The buffer grows by doubling, never past that; NULL when memory runs out. */
static unsigned char *read_all(int fd, gzFile f, size_t max, size_t *n, long *got)
{
    size_t cap = max < (1 << 16) ? max + 1 : 1 << 16;
    unsigned char *buf = malloc(cap + 1);
    *n = 0;
    *got = 0;
    while (buf && *n <= max && (*got = read_some(fd, f, buf + *n, cap - *n)) > 0) {
        *n += (size_t)*got;
        if (*n == cap && *n <= max) {
            cap = cap > max / 2 ? max + 1 : cap * 2;
            unsigned char *more = realloc(buf, cap + 1);
            if (!more)
                free(buf);
            buf = more;
        }
    }
    return buf;
}

unsigned char *rt_read_file(const char *path, size_t max, int gz, const char *limit, size_t *len)
{
    off_t size;
    int fd = open_input(path, &size);
    if (fd < 0)
        return NULL;
    gzFile f = NULL;
    if (gz && !(f = gzdopen(fd, "rb"))) {
        close(fd);
        rt_data_error(path, 0, "cannot read: out of memory");
        return NULL;
    }
    if (f) /* zlib's 8 KB buffer for small files: large buffers cost more than they save */
        gzbuffer(f, size > 0 && size < 1 << 17 ? 8192 : 1 << 17);
    size_t n;
    long got;
    unsigned char *buf = read_all(fd, f, max, &n, &got);
    int errnum = 0;
    const char *why = buf && n <= max ? read_failure(f, got, &errnum) : NULL;
    if (why)
        rt_data_error(path, 0, "cannot read: %s", why);
    else if (!buf)
        rt_data_error(path, 0, "cannot read: out of memory");
    else if (n > max)
        rt_data_error(path, 0, "too large: more than %zu bytes, %s", max, limit);
    if (f)
        gzclose(f); /* closes fd too */
    else
        close(fd);
    if (why || !buf || n > max) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

void rt_printable(char *dst, size_t cap, const char *src, size_t n)
{
    size_t at = 0;
    for (size_t i = 0; i < n && at + 5 <= cap; i++) {
        unsigned char ch = (unsigned char)src[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            dst[at++] = (char)ch;
        else
            at += (size_t)snprintf(dst + at, cap - at, "\\x%02x", ch);
    }
    if (cap)
        dst[at < cap ? at : cap - 1] = 0;
}

char *rt_temp_name(const char *path)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (tmp)
        snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
    return tmp;
}

static int check_writable(const char *path);

/* The file a symbolic link finally names (its target may not exist yet); malloc'd. */
static char *follow_links(const char *path)
{
    char *cur = strdup(path);
    for (int hops = 0; cur && hops < 40; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode))
            return cur;
        char link[4096];
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0)
            return cur;
        link[n] = 0;
        const char *slash = strrchr(cur, '/');
        char *next;
        if (link[0] == '/' || !slash) {
            next = strdup(link);
        } else { /* relative to the link's folder */
            size_t dir = (size_t)(slash - cur) + 1;
            next = malloc(dir + (size_t)n + 1);
            if (next) {
                memcpy(next, cur, dir);
                memcpy(next + dir, link, (size_t)n + 1);
            }
        }
        free(cur);
        cur = next;
    }
    return cur;
}

char *rt_output_target(const char *path, int *direct)
{
    char *target = follow_links(path);
    struct stat st;
    *direct = target && stat(target, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
    return target;
}

int rt_check_writable(const char *given)
{
    int direct;
    char *path = rt_output_target(given, &direct);
    if (!path) {
        rt_data_error(given, 0, "out of memory");
        return -1;
    }
    int rc = check_writable(path);
    free(path);
    return rc;
}

static int check_writable(const char *path)
{
    struct stat st;
    int exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        rt_data_error(path, 0, "cannot write: it is a folder");
        return -1;
    }
    if (exists && !S_ISREG(st.st_mode))
        return 0; /* a device or a pipe: opened when written */
    char *tmp = rt_temp_name(path);
    if (!tmp) {
        rt_data_error(path, 0, "out of memory");
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666), saved = errno;
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(tmp);
    /* EEXIST: something has the temporary's name, so the probe cannot tell; the save will */
    if (fd < 0 && saved != EEXIST) {
        rt_data_error(path, 0, "cannot write: %s", strerror(saved));
        return -1;
    }
    return 0;
}

unsigned char *rt_read_data(const char *path, size_t *len)
{
    return rt_read_file(path, memory_size(), 1, "this machine's memory (data files are read whole)", len);
}

/* ---- a data file read in pieces (--predict's idx images) ---- */

int rt_stream_open(RtStream *s, const char *path)
{
    off_t size;
    s->path = path;
    s->gz = NULL;
    s->fd = open_input(path, &size);
    if (s->fd < 0)
        return -1;
    gzFile f = gzdopen(s->fd, "rb");
    if (!f) {
        close(s->fd);
        rt_data_error(path, 0, "cannot read: out of memory");
        return -1;
    }
    gzbuffer(f, size > 0 && size < 1 << 17 ? 8192 : 1 << 17); /* as rt_read_file */
    s->gz = f;
    return 0;
}

long rt_stream_read(RtStream *s, void *p, size_t n)
{
    size_t have = 0;
    long got = 0;
    while (have < n && (got = read_some(s->fd, s->gz, (unsigned char *)p + have, n - have)) > 0)
        have += (size_t)got;
    int errnum = 0;
    const char *why = have < n ? read_failure(s->gz, got, &errnum) : NULL;
    if (why) {
        rt_data_error(s->path, 0, "cannot read: %s", why);
        return -1;
    }
    return (long)have;
}

void rt_stream_close(RtStream *s)
{
    if (s->gz)
        gzclose(s->gz); /* closes fd too */
    s->gz = NULL;
}

static _Thread_local char *capture;
static _Thread_local size_t capture_cap;

void rt_capture_errors(char *buf, size_t cap)
{
    capture = cap ? buf : NULL;
    capture_cap = cap;
    if (capture)
        capture[0] = 0;
}

/* Into the capture buffer, when one is set and still empty: 1, else 0 (print it). */
static int captured(const char *file, long row, const char *fmt, va_list ap)
{
    if (!capture)
        return 0;
    if (capture[0])
        return 1;
    int n = !file ? 0 : row > 0 ? snprintf(capture, capture_cap, "%s:%ld: ", file, row)
                                : snprintf(capture, capture_cap, "%s: ", file);
    if (n >= 0 && (size_t)n < capture_cap)
        vsnprintf(capture + n, capture_cap - (size_t)n, fmt, ap);
    return 1;
}

static void message(const char *prog, const char *kind, const char *fmt, va_list ap)
{
    if (kind[0] == 'e' && captured(NULL, 0, fmt, ap))
        return;
    fflush(stdout); /* progress first, then the message, when both go to one place */
    fprintf(stderr, "%s: %s: ", prog, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void rt_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    message(prog, "error", fmt, ap);
    va_end(ap);
}

void rt_note(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    message(prog, "note", fmt, ap);
    va_end(ap);
}

void rt_data_error(const char *file, long row, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (captured(file, row, fmt, ap)) {
        va_end(ap);
        return;
    }
    fflush(stdout);
    if (row > 0)
        fprintf(stderr, "%s:%ld: error: ", file, row);
    else
        fprintf(stderr, "%s: error: ", file);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
