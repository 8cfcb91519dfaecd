/* rt_npz.c - weights as a NumPy .npz: a zip archive holding one NAME.npy per param.
 *
 * Saving writes stored (uncompressed) entries with a fixed timestamp, so the same weights
 * give the same bytes, into a temporary beside the target that is renamed into place: the
 * file appears whole or not at all. Each .npy is format 1.0: magic, a header dict
 * ('<f4' for f32 builds, '<f8' for f64, C order, the param's shape) padded to 64 bytes,
 * then the values little-endian. Loading reads the central directory (stored or deflated
 * entries, zip64 sizes, as numpy.savez and savez_compressed write them), checks each
 * entry's CRC-32, accepts '<f4' and '<f8' whatever the build, and checks every name and shape.
 *
 * Why our own zip code rather than libzip: a model's static library must link with just
 * `cc app.c libNAME.a -lm -lz -lpthread` (spec section 11), which a libzip dependency would
 * break, and the saved bytes must stay deterministic (ours: fixed, minimal headers). The
 * reader is small enough to harden instead: every offset and length from the file is checked
 * by subtraction from what remains (see fits()), and it is fuzzed (tests/fuzz/fuzz_npz.c). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "rt_internal.h"

/* ---- little-endian bytes ---- */

typedef struct Buf {
    unsigned char *p;
    size_t len, cap;
} Buf;

static void put(Buf *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "error: out of memory\n");
            exit(1);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put16(Buf *b, unsigned v)
{
    unsigned char c[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    put(b, c, 2);
}

static void put32(Buf *b, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(b, c, 4);
}

static unsigned get16(const unsigned char *p)
{
    return p[0] | (unsigned)p[1] << 8;
}

static uint32_t get32(const unsigned char *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- writing ---- */

/* One .npy: header then data. */
static void npy_bytes(Buf *b, const NncParamDesc *p, const void *data, int rs)
{
    char dict[256], shape[128] = "";
    int at = 0;
    for (int i = 0; i < p->rank; i++)
        at += snprintf(shape + at, sizeof shape - (size_t)at, "%d,%s", p->dims[i],
                       i + 1 < p->rank ? " " : "");
    if (p->rank > 1)
        shape[at - 1] = 0; /* (4, 2) but (4,) for one dim */
    int n = snprintf(dict, sizeof dict, "{'descr': '<f%d', 'fortran_order': False, 'shape': (%s), }",
                     rs, shape);
    size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64; /* magic..dict..'\n' padded to 64 */
    put(b, "\x93NUMPY\x01\x00", 8);
    put16(b, (unsigned)(total - 10));
    put(b, dict, (size_t)n);
    for (size_t i = 10 + (size_t)n; i + 1 < total; i++)
        put(b, " ", 1);
    put(b, "\n", 1);
    for (int i = 0; i < p->size; i++) {
        if (rs == 4) {
            float f = ((const float *)data)[i];
            uint32_t u;
            memcpy(&u, &f, 4);
            put32(b, u);
        } else {
            uint64_t u;
            memcpy(&u, (const double *)data + i, 8);
            put32(b, (uint32_t)u);
            put32(b, (uint32_t)(u >> 32));
        }
    }
}

/* Local header or central directory record of a stored entry. DOS time 0:00, 1980-01-01. */
static void zip_header(Buf *b, int central, const char *name, uint32_t crc, uint32_t size,
                       uint32_t offset)
{
    put32(b, central ? 0x02014b50 : 0x04034b50);
    if (central)
        put16(b, 20);            /* made by: version 2.0 */
    put16(b, 20);                /* needed to extract */
    put16(b, 0);                 /* flags */
    put16(b, 0);                 /* method: stored */
    put16(b, 0);                 /* time */
    put16(b, 0x21);              /* date: 1980-01-01 */
    put32(b, crc);
    put32(b, size);
    put32(b, size);
    put16(b, (unsigned)strlen(name));
    put16(b, 0);                 /* extra */
    if (central) {
        put16(b, 0);             /* comment */
        put16(b, 0);             /* disk */
        put16(b, 0);             /* internal attributes */
        put32(b, 0644u << 16);   /* external: a regular file, rw-r--r-- */
        put32(b, offset);
    }
    put(b, name, strlen(name));
}

typedef struct Entry {
    char name[256];
    uint32_t crc, size, offset;
} Entry;

static int archive(Buf *out, const NncModelDesc *m, void *const *params, const char *path)
{
    Entry *e = calloc((size_t)(m->nparams ? m->nparams : 1), sizeof *e);
    Buf npy = {0};
    int rc = 0;
    if (!e) {
        rt_data_error(path, 0, "out of memory");
        return -1;
    }
    for (int i = 0; i < m->nparams && rc == 0; i++) {
        npy.len = 0;
        npy_bytes(&npy, &m->params[i], params[i], m->real_size);
        snprintf(e[i].name, sizeof e[i].name, "%s.npy", m->params[i].name);
        if (npy.len > 0xffffffffu || out->len > 0xffffffffu - npy.len) {
            rt_data_error(path, 0, "the weights are too large for a zip without zip64");
            rc = -1;
            break;
        }
        e[i].crc = (uint32_t)crc32(0, npy.p, (uInt)npy.len);
        e[i].size = (uint32_t)npy.len;
        e[i].offset = (uint32_t)out->len;
        zip_header(out, 0, e[i].name, e[i].crc, e[i].size, 0);
        put(out, npy.p, npy.len);
    }
    uint32_t dir_at = (uint32_t)out->len;
    for (int i = 0; i < m->nparams && rc == 0; i++)
        zip_header(out, 1, e[i].name, e[i].crc, e[i].size, e[i].offset);
    put32(out, 0x06054b50);
    put16(out, 0);
    put16(out, 0);
    put16(out, (unsigned)m->nparams);
    put16(out, (unsigned)m->nparams);
    put32(out, (uint32_t)(out->len - dir_at - 12));
    put32(out, dir_at);
    put16(out, 0);
    free(npy.p);
    free(e);
    return rc;
}

/* ---- a kill during a save removes the temporary ---- */

static const int guarded[3] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction guard_before[3];
static int guard_set[3];
static const char *volatile guard_tmp; /* prepared before the handlers are installed */

/* Async-signal-safe: unlink, sigaction and raise only. The signal is blocked while this
 * runs, so the raised one is taken, as before the save, once it returns. */
static void on_kill(int sig)
{
    const char *tmp = guard_tmp;
    if (tmp)
        unlink(tmp);
    for (int i = 0; i < 3; i++)
        if (guarded[i] == sig)
            sigaction(sig, &guard_before[i], NULL);
    raise(sig);
}

static void guard_begin(const char *tmp)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_kill;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++)
        sigaddset(&sa.sa_mask, guarded[i]);
    guard_tmp = tmp;
    for (int i = 0; i < 3; i++) {
        /* an ignored signal stays ignored (nohup): it cannot interrupt the save */
        guard_set[i] = sigaction(guarded[i], NULL, &guard_before[i]) == 0 &&
                       guard_before[i].sa_handler != SIG_IGN &&
                       sigaction(guarded[i], &sa, NULL) == 0;
    }
}

static void guard_end(void)
{
    for (int i = 0; i < 3; i++)
        if (guard_set[i])
            sigaction(guarded[i], &guard_before[i], NULL);
    guard_tmp = NULL;
}

/* Into a temporary beside the file the path's links name, renamed over it when whole;
 * a device or a pipe (/dev/null) is written through, never replaced. */
static int write_whole(const char *given, const Buf *b, int guard)
{
    int direct;
    char *path = rt_output_target(given, &direct);
    char *tmp = path && !direct ? rt_temp_name(path) : NULL;
    if (!path || (!direct && !tmp)) {
        rt_data_error(given, 0, "out of memory");
        free(path);
        return -1;
    }
    if (guard && tmp)
        guard_begin(tmp);
    int fd = direct ? open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
                    : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    int ok = fd >= 0;
    for (size_t at = 0; ok && at < b->len;) {
        ssize_t w = write(fd, b->p + at, b->len - at);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        at += ok ? (size_t)w : 0;
    }
    int saved = errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (ok && tmp && rename(tmp, path) != 0) {
        ok = 0;
        saved = errno;
    }
    if (!ok && fd >= 0 && tmp)
        unlink(tmp);
    if (guard && tmp)
        guard_end();
    if (!ok)
        rt_data_error(given, 0, "cannot write: %s", strerror(saved));
    free(tmp);
    free(path);
    return ok ? 0 : -1;
}

int rt_write_file(const char *path, const void *data, size_t len, int guard)
{
    Buf b = {(unsigned char *)data, len, len};
    return write_whole(path, &b, guard);
}

int rt_npz_save(const char *path, const NncModelDesc *m, void *const *params, int guard)
{
    Buf b = {0};
    int rc = archive(&b, m, params, path);
    if (rc == 0)
        rc = write_whole(path, &b, guard);
    free(b.p);
    return rc;
}

/* ---- reading ---- */

/* Every offset and length below comes from the file, so any sum of them may wrap: each is
 * checked against what remains of the buffer, by subtraction, before it is used. */

typedef struct ZipEntry {
    const unsigned char *data; /* as stored */
    size_t csize, size;
    uint32_t crc;
    int method;
    char name[256];
} ZipEntry;

typedef struct Zip {
    const char *path;
    const unsigned char *p;
    size_t len, dir_at, count;
} Zip;

/* Whether [at, at + need) lies inside [0, len). */
static int fits(size_t len, uint64_t at, uint64_t need)
{
    return at <= len && need <= len - at;
}

static int zip_bad(const Zip *z, size_t offset, const char *what)
{
    rt_data_error(z->path, 0, "offset %zu: %s (not a .npz written by nnc or numpy?)", offset, what);
    return -1;
}

/* The zip64 end record, found through the locator just before the end record at `at`. */
static int zip64_end(const Zip *z, size_t at, uint64_t *count, uint64_t *dir_at)
{
    if (at < 20 || get32(z->p + at - 20) != 0x07064b50)
        return zip_bad(z, at, "zip64 archive without its locator");
    uint64_t rec = get64(z->p + at - 12);
    if (!fits(at - 20, rec, 56) || get32(z->p + rec) != 0x06064b50)
        return zip_bad(z, at - 20, "bad zip64 end-of-directory record");
    *count = get64(z->p + rec + 32);
    *dir_at = get64(z->p + rec + 48);
    return 0;
}

static int zip_open(Zip *z)
{
    if (z->len < 22)
        return zip_bad(z, 0, "too short for a zip archive");
    size_t at = z->len - 22, stop = z->len > 22 + 65535 ? z->len - 22 - 65535 : 0;
    while (get32(z->p + at) != 0x06054b50) {
        if (at == stop)
            return zip_bad(z, z->len, "no zip end-of-directory record");
        at--;
    }
    uint64_t count = get16(z->p + at + 10), dir_at = get32(z->p + at + 16);
    if ((dir_at == 0xffffffffu || count == 0xffff) && zip64_end(z, at, &count, &dir_at) != 0)
        return -1;
    if (dir_at > z->len)
        return zip_bad(z, at, "central directory outside the file");
    if (count > (z->len - dir_at) / 46) /* a record takes 46 bytes at least */
        return zip_bad(z, at, "more entries than the central directory can hold");
    z->dir_at = (size_t)dir_at;
    z->count = (size_t)count;
    return 0;
}

/* zip64 extra field: the 0xffffffff ones among size, csize, offset, in that order. A field
 * longer than the n bytes left is ignored (the sizes then fail their own checks). */
static void zip64_extra(const unsigned char *x, size_t n, uint64_t *size, uint64_t *csize,
                        uint64_t *offset)
{
    for (size_t at = 0; n - at >= 4;) {
        size_t id = get16(x + at), len = get16(x + at + 2);
        at += 4;
        if (len > n - at)
            return;
        uint64_t *slots[3] = {size, csize, offset};
        for (size_t i = 0, v = at; id == 1 && i < 3; i++)
            if (*slots[i] == 0xffffffffu && at + len - v >= 8) {
                *slots[i] = get64(x + v);
                v += 8;
            }
        at += len;
    }
}

/* Reads the central directory record at *at and the entry it points to. */
static int zip_entry(const Zip *z, size_t *at, ZipEntry *e)
{
    size_t rec = *at;
    if (!fits(z->len, rec, 46) || get32(z->p + rec) != 0x02014b50)
        return zip_bad(z, rec, "bad central directory record");
    const unsigned char *c = z->p + rec;
    size_t nlen = get16(c + 28), xlen = get16(c + 30), clen = get16(c + 32);
    if (!fits(z->len, rec + 46, nlen + xlen + clen))
        return zip_bad(z, rec, "central directory record past the end");
    uint64_t csize = get32(c + 20), size = get32(c + 24), off = get32(c + 42);
    zip64_extra(c + 46 + nlen, xlen, &size, &csize, &off);
    e->method = (int)get16(c + 10);
    e->crc = get32(c + 16);
    /* escaped for messages; a name with an escape matches no param anyway */
    rt_printable(e->name, sizeof e->name, (const char *)c + 46, nlen);
    *at = rec + 46 + nlen + xlen + clen;
    if (!fits(z->len, off, 30))
        return zip_bad(z, rec, "local file header outside the file");
    if (get32(z->p + off) != 0x04034b50)
        return zip_bad(z, (size_t)off, "bad local file header");
    size_t data = (size_t)off + 30, skip = get16(z->p + off + 26) + (size_t)get16(z->p + off + 28);
    if (!fits(z->len, data, skip) || !fits(z->len, data + skip, csize))
        return zip_bad(z, (size_t)off, "entry data past the end of the file");
    e->data = z->p + data + skip;
    e->csize = (size_t)csize;
    e->size = (size_t)size;
    return 0;
}

/* Inflates a deflated entry into out (e->size bytes); NULL or what went wrong. zlib counts
 * in uInt, so the sizes are fed in slices. */
static const char *inflate_entry(const ZipEntry *e, unsigned char *out)
{
    z_stream s = {0};
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK)
        return "out of memory";
    const size_t slice = 1u << 30;
    size_t in_left = e->csize, out_left = e->size;
    s.next_in = (unsigned char *)e->data;
    s.next_out = out;
    int rc = Z_OK;
    while (rc == Z_OK) {
        uInt ai = (uInt)(in_left < slice ? in_left : slice);
        uInt ao = (uInt)(out_left < slice ? out_left : slice);
        s.avail_in = ai;
        s.avail_out = ao;
        rc = inflate(&s, Z_NO_FLUSH);
        in_left -= ai - s.avail_in;
        out_left -= ao - s.avail_out;
    }
    inflateEnd(&s);
    return rc == Z_STREAM_END && out_left == 0 ? NULL : "corrupt deflated data";
}

static uint32_t crc_of(const unsigned char *p, size_t n)
{
    return (uint32_t)crc32_z(0, p, n);
}

/* The entry's bytes, inflated when deflated and checked against the CRC-32 the zip keeps
 * for it (numpy checks it too); malloc'd. */
static unsigned char *entry_bytes(const Zip *z, const ZipEntry *e)
{
    unsigned char *out = malloc(e->size ? e->size : 1);
    if (!out) {
        rt_data_error(z->path, 0, "%s: out of memory (%zu bytes)", e->name, e->size);
        return NULL;
    }
    const char *bad = NULL;
    if (e->method == 0 && e->csize == e->size)
        memcpy(out, e->data, e->size);
    else if (e->method == 0)
        bad = "stored entry whose two sizes differ";
    else if (e->method == 8)
        bad = inflate_entry(e, out);
    else
        bad = "unsupported zip compression";
    char crc_msg[96];
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    int crc_checked = 0; /* a fuzzer cannot forge CRCs: let it on to the .npy headers */
#else
    int crc_checked = 1;
#endif
    if (!bad && crc_of(out, e->size) != e->crc && crc_checked) {
        snprintf(crc_msg, sizeof crc_msg, "CRC mismatch: the data is damaged (CRC-32 %08x, the zip "
                 "says %08x)", (unsigned)crc_of(out, e->size), (unsigned)e->crc);
        bad = crc_msg;
    }
    if (bad) {
        rt_data_error(z->path, 0, "%s: %s", e->name, bad);
        free(out);
        return NULL;
    }
    return out;
}

/* The value of 'key' in a .npy header dict: after the colon and spaces; NULL if absent. */
static const char *dict_value(const char *hdr, const char *key)
{
    const char *k = strstr(hdr, key);
    if (!k)
        return NULL;
    k += strlen(key);
    while (*k == ' ' || *k == ':')
        k++;
    return k;
}

/* A .npy header longer than this (magic, length and dict) is not one numpy writes for a
 * float array. */
enum { NPY_HEADER_MAX = 4096 };

/* An integer type's size and kind ('i' or 'u'; bool as 'u'), 0 when not one. */
static int int_type(const char *d, char *kind)
{
    static const char *const names[] = {"'|i1'", "'<i2'", "'<i4'", "'<i8'", "'|u1'", "'<u2'",
                                        "'<u4'", "'<u8'", "'|b1'"};
    static const int sizes[] = {1, 2, 4, 8, 1, 2, 4, 8, 1};
    for (int i = 0; d && i < 9; i++)
        if (strncmp(d, names[i], 5) == 0) {
            *kind = i < 4 ? 'i' : 'u';
            return sizes[i];
        }
    return 0;
}

/* Parses a .npy header: element size (4 or 8), shape. Returns the data's offset, 0 on error.
 * With kind, integer arrays are read too (data sources): kind gets 'f', 'i' or 'u'. */
static size_t npy_header_of(const Zip *z, const char *name, const unsigned char *p, size_t n,
                            int *dsize, int *rank, long dims[8], char *kind)
{
    if (n < 10 || memcmp(p, "\x93NUMPY", 6) != 0 || p[6] < 1 || p[6] > 3) {
        rt_data_error(z->path, 0, "%s: not a .npy array", name);
        return 0;
    }
    size_t hl = p[6] == 1 ? get16(p + 8) : (n >= 12 ? get32(p + 8) : n);
    size_t at = p[6] == 1 ? 10 : 12;
    if (at + hl > n || at + hl > NPY_HEADER_MAX) {
        rt_data_error(z->path, 0, "%s: bad .npy header", name);
        return 0;
    }
    char hdr[NPY_HEADER_MAX];
    memcpy(hdr, p + at, hl);
    hdr[hl] = 0;
    const char *d = dict_value(hdr, "'descr'"), *f = dict_value(hdr, "'fortran_order'");
    const char *s = dict_value(hdr, "'shape'");
    *dsize = !d ? 0 : strncmp(d, "'<f4'", 5) == 0 ? 4 : strncmp(d, "'<f8'", 5) == 0 ? 8 : 0;
    if (kind)
        *kind = 'f';
    if (!*dsize && kind)
        *dsize = int_type(d, kind);
    if (!*dsize) {
        char type[64];
        rt_printable(type, sizeof type, d ? d : "(none)", d ? strnlen(d, 12) : 6);
        rt_data_error(z->path, 0, "%s: unsupported array type %s (nnc reads float32 and "
                      "float64: '<f4' or '<f8')", name, type);
        return 0;
    }
    if (!f || strncmp(f, "False", 5) != 0 || !s || *s != '(') {
        rt_data_error(z->path, 0, "%s: %s", name, !f || strncmp(f, "False", 5) != 0 ?
                      "Fortran-ordered arrays are not supported" : "bad shape in the .npy header");
        return 0;
    }
    *rank = 0;
    for (const char *q = s + 1; *q && *q != ')';) {
        char *end;
        long v = strtol(q, &end, 10);
        if (end == q) {
            q++;
            continue;
        }
        if (*rank == 8)
            break;
        dims[(*rank)++] = v;
        q = end;
    }
    return at + hl;
}

static size_t npy_header(const Zip *z, const char *name, const unsigned char *p, size_t n,
                         int *dsize, int *rank, long dims[8])
{
    return npy_header_of(z, name, p, n, dsize, rank, dims, NULL);
}

static void shape_text(char *buf, size_t cap, int rank, const long *ldims, const int *idims)
{
    int at = snprintf(buf, cap, "(");
    for (int i = 0; i < rank; i++)
        at += snprintf(buf + at, cap - (size_t)at, "%s%ld", i ? ", " : "",
                       ldims ? ldims[i] : (long)idims[i]);
    snprintf(buf + at, cap - (size_t)at, rank == 1 ? ",)" : ")");
}

static int check_shape(const Zip *z, const NncParamDesc *p, int rank, const long *dims)
{
    int same = rank == p->rank;
    for (int i = 0; same && i < rank; i++)
        same = dims[i] == p->dims[i];
    if (same)
        return 0;
    char got[128], want[128];
    shape_text(got, sizeof got, rank, dims, NULL);
    shape_text(want, sizeof want, p->rank, NULL, p->dims);
    rt_data_error(z->path, 0, "%s has shape %s, but the model's %s is %s", p->name, got,
                  p->name, want);
    return -1;
}

/* The most bytes a .npy of n values takes: header (npy_header reads up to NPY_HEADER_MAX)
 * and float64 data. */
static size_t npy_most(int n)
{
    return NPY_HEADER_MAX + (size_t)n * 8;
}

/* One array into the param: checks, converts f32/f64 to the build's real type. */
static int load_array(const Zip *z, const ZipEntry *e, const NncParamDesc *p, void *dst, int rs)
{
    if (e->size > npy_most(p->size)) {
        rt_data_error(z->path, 0, "%s: %zu bytes, more than any .npy of param %s's %d value%s",
                      e->name, e->size, p->name, p->size, p->size == 1 ? "" : "s");
        return -1;
    }
    unsigned char *bytes = entry_bytes(z, e);
    if (!bytes)
        return -1;
    int dsize = 0, rank = 0, rc = -1;
    long dims[8];
    size_t at = npy_header(z, e->name, bytes, e->size, &dsize, &rank, dims);
    if (at && check_shape(z, p, rank, dims) == 0) {
        if (e->size - at < (size_t)p->size * (size_t)dsize) {
            rt_data_error(z->path, 0, "%s: %zu bytes of data, %d values need %zu", e->name,
                          e->size - at, p->size, (size_t)p->size * (size_t)dsize);
        } else {
            for (int i = 0; i < p->size; i++) {
                const unsigned char *q = bytes + at + (size_t)i * (size_t)dsize;
                double v;
                if (dsize == 4) {
                    uint32_t u = get32(q);
                    float f;
                    memcpy(&f, &u, 4);
                    v = f;
                } else {
                    uint64_t u = get64(q);
                    memcpy(&v, &u, 8);
                }
                rt_set(dst, (size_t)i, rs, v);
            }
            rc = 0;
        }
    }
    free(bytes);
    return rc;
}

static int find_param(const NncModelDesc *m, const char *entry)
{
    size_t n = strlen(entry);
    for (int i = 0; i < m->nparams; i++) {
        size_t k = strlen(m->params[i].name);
        if (n == k + 4 && strncmp(entry, m->params[i].name, k) == 0 && strcmp(entry + k, ".npy") == 0)
            return i;
    }
    return -1;
}

static int load_entries(const Zip *z, const NncModelDesc *m, void *const *params, char *seen)
{
    size_t at = z->dir_at;
    for (size_t k = 0; k < z->count; k++) {
        ZipEntry e;
        if (zip_entry(z, &at, &e) != 0)
            return -1;
        int i = find_param(m, e.name);
        if (i < 0) {
            rt_data_error(z->path, 0, "holds '%s', which is not a param of model %s", e.name, m->name);
            return -1;
        }
        if (load_array(z, &e, &m->params[i], params[i], m->real_size) != 0)
            return -1;
        seen[i] = 1;
    }
    for (int i = 0; i < m->nparams; i++)
        if (!seen[i]) {
            rt_data_error(z->path, 0, "has no array '%s' (entry %s.npy) for param %s of model %s",
                          m->params[i].name, m->params[i].name, m->params[i].name, m->name);
            return -1;
        }
    return 0;
}

/* The most bytes a .npz of m's params takes: each array deflated (worst case under twice
 * its size), its two headers with name, extra and comment fields of up to 64 KB, and the end
 * records. Reading stops there, so a pipe that never ends is an error, not all memory. */
static size_t npz_most(const NncModelDesc *m)
{
    size_t most = 4 * 65536;
    for (int i = 0; i < m->nparams; i++)
        most += 2 * npy_most(m->params[i].size) + 6 * 65536;
    return most;
}

int rt_npz_load(const char *path, const NncModelDesc *m, void *const *params)
{
    char limit[300];
    snprintf(limit, sizeof limit, "the most a .npz of model %s's weights can take", m->name);
    size_t len;
    unsigned char *bytes = rt_read_file(path, npz_most(m), 0, limit, &len);
    if (!bytes)
        return -1;
    Zip z = {.path = path, .p = bytes, .len = len};
    char *seen = calloc((size_t)m->nparams + 1, 1);
    int rc = -1;
    if (!seen)
        rt_data_error(path, 0, "out of memory");
    else if (zip_open(&z) == 0)
        rc = load_entries(&z, m, params, seen);
    free(seen);
    free(bytes);
    return rc;
}

/* ---- one array of any shape (npz data sources) ---- */

static int find_array(const Zip *z, const char *want, RtNpyArray *a)
{
    size_t at = z->dir_at;
    for (size_t k = 0; k < z->count; k++) {
        ZipEntry e;
        if (zip_entry(z, &at, &e) != 0)
            return -1;
        size_t n = strlen(want);
        if (strncmp(e.name, want, n) != 0 || strcmp(e.name + n, ".npy") != 0)
            continue;
        a->bytes = entry_bytes(z, &e);
        if (!a->bytes)
            return -1;
        size_t off = npy_header_of(z, e.name, a->bytes, e.size, &a->size, &a->rank, a->dims, &a->kind);
        if (!off)
            return -1;
        a->count = 1;
        for (int i = 0; i < a->rank; i++)
            a->count = a->dims[i] < 0 || (a->dims[i] && a->count > SIZE_MAX / 8 / (size_t)a->dims[i])
                     ? SIZE_MAX : a->count * (size_t)a->dims[i];
        if (a->count == SIZE_MAX || e.size - off < a->count * (size_t)a->size)
            return rt_data_error(z->path, 0, "%s: fewer bytes of data than its shape needs", e.name), -1;
        a->data = a->bytes + off;
        return 0;
    }
    rt_data_error(z->path, 0, "has no array '%s' (entry %s.npy)", want, want);
    return -1;
}

int rt_npz_read_array(const char *path, const char *name, RtNpyArray *a)
{
    memset(a, 0, sizeof *a);
    size_t len;
    unsigned char *bytes = rt_read_data(path, &len);
    if (!bytes)
        return -1;
    Zip z = {.path = path, .p = bytes, .len = len};
    int rc = zip_open(&z) == 0 ? find_array(&z, name, a) : -1;
    free(bytes);
    if (rc != 0)
        rt_npy_free(a);
    return rc;
}

double rt_npy_get(const RtNpyArray *a, size_t i)
{
    const unsigned char *q = a->data + i * (size_t)a->size;
    uint64_t u = 0;
    for (int k = a->size - 1; k >= 0; k--)
        u = u << 8 | q[k];
    if (a->kind == 'f' && a->size == 4) {
        float f;
        uint32_t w = (uint32_t)u;
        memcpy(&f, &w, 4);
        return f;
    }
    if (a->kind == 'f') {
        double v;
        memcpy(&v, &u, 8);
        return v;
    }
    if (a->kind == 'u')
        return (double)u;
    int shift = 64 - 8 * a->size; /* sign-extend */
    return (double)((int64_t)(u << shift) >> shift);
}

void rt_npy_free(RtNpyArray *a)
{
    free(a->bytes);
    a->bytes = NULL;
    a->data = NULL;
}
