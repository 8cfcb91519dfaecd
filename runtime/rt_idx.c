/* rt_idx.c - idx("images", "labels"): the IDX format MNIST and Fashion-MNIST ship in,
 * gzipped or not. Header: two zero bytes, a type code (0x08: unsigned bytes), the number
 * of dims, then each dim as a big-endian u32; the data follows. Images become floats in
 * [0, 1] filling the input whatever its shape, if the element counts agree; labels are
 * class indices, one-hot encoded to the target's size. Messages give byte offsets. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "rt_internal.h"

typedef struct Idx {
    const char *path;
    unsigned char *buf;
    size_t len;
    int ndims;
    unsigned dims[8];
    size_t data_at, count;
    uint64_t per, total; /* per: product of dims[1..]; total: count * per */
    int per_over, total_over; /* the product passed 2^64 - 1 (then 0) */
} Idx;

static unsigned be32(const unsigned char *p)
{
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

/* a * b, for factors that are not 0; sets *over, and gives 0, when that passes 2^64 - 1
 * (or *over is already set). */
static uint64_t mul_checked(uint64_t a, uint64_t b, int *over)
{
    if (*over || a > UINT64_MAX / b) {
        *over = 1;
        return 0;
    }
    return a * b;
}

/* "AxBxC" of dims[from..]. */
static void dims_text(const Idx *f, int from, char *buf, size_t cap)
{
    int at = 0;
    buf[0] = 0;
    for (int i = from; i < f->ndims && (size_t)at < cap; i++)
        at += snprintf(buf + at, cap - (size_t)at, "%s%u", i > from ? "x" : "", f->dims[i]);
}

/* The header's dims and their products: 0 exactly when a factor is 0, however large the
 * others. */
static void read_dims(Idx *f)
{
    int zero = 0;
    for (int i = 0; i < f->ndims; i++) {
        f->dims[i] = be32(f->buf + 4 + 4 * i);
        zero |= i > 0 && f->dims[i] == 0;
    }
    f->count = f->dims[0];
    f->per = zero ? 0 : 1;
    f->per_over = 0;
    for (int i = 1; i < f->ndims && !zero; i++)
        f->per = mul_checked(f->per, f->dims[i], &f->per_over);
    f->total_over = f->per_over && f->count != 0;
    f->total = zero || f->count == 0 ? 0 : mul_checked(f->count, f->per, &f->total_over);
}

/* Checks that the data is as long as the header says. */
static int check_size(const Idx *f)
{
    size_t have = f->len - f->data_at;
    if (f->total_over || f->total > have) {
        char dims[128];
        dims_text(f, 0, dims, sizeof dims);
        if (f->total_over)
            rt_data_error(f->path, 0, "offset %zu: the file ends before the data its header "
                          "promises: %s bytes, more than 2^64", f->len, dims);
        else
            rt_data_error(f->path, 0, "offset %zu: the file ends before the %llu bytes of data its "
                          "header promises (%s)", f->len, (unsigned long long)f->total, dims);
        return -1;
    }
    if (f->total < have) {
        rt_data_error(f->path, 0, "offset %zu: %zu bytes follow the data the header describes",
                      f->data_at + (size_t)f->total, have - (size_t)f->total);
        return -1;
    }
    return 0;
}

/* Checks the header in f->buf (f->len bytes of it, or of the whole file) and reads its dims. */
static int check_header(Idx *f, const char *what)
{
    if (f->len < 4 || f->buf[0] || f->buf[1] || f->buf[2] != 0x08) {
        unsigned magic = f->len >= 4 ? be32(f->buf) : 0;
        rt_data_error(f->path, 0, "offset 0: bad magic number 0x%08x, expected 0x000008NN "
                      "(IDX %s of unsigned bytes, NN dims)", magic, what);
        return -1;
    }
    f->ndims = f->buf[3];
    if (f->ndims < 1 || f->ndims > 8) {
        rt_data_error(f->path, 0, "offset 3: %d dims; IDX %s have 1 to 8", f->ndims, what);
        return -1;
    }
    f->data_at = 4 + 4 * (size_t)f->ndims;
    if (f->len < f->data_at) {
        rt_data_error(f->path, 0, "offset %zu: the file ends inside its header", f->len);
        return -1;
    }
    read_dims(f);
    return 0;
}

/* Reads and checks the header and the file's size. */
static int idx_open(Idx *f, const char *path, const char *what)
{
    f->path = path;
    f->buf = rt_read_data(path, &f->len);
    if (!f->buf)
        return -1;
    return check_header(f, what) == 0 ? check_size(f) : -1;
}

static int check_images(const Idx *f, int in_size)
{
    if (!f->per_over && f->per == (uint64_t)in_size && f->count <= 0x7fffffff)
        return 0;
    char shape[128], values[48];
    dims_text(f, 1, shape, sizeof shape);
    if (f->per_over)
        snprintf(values, sizeof values, "more than 2^64");
    else
        snprintf(values, sizeof values, "%llu", (unsigned long long)f->per);
    if (f->count > 0x7fffffff)
        rt_data_error(f->path, 0, "offset 4: %zu images are too many", f->count);
    else if (f->ndims > 2)
        rt_data_error(f->path, 0, "offset 8: each image has %s = %s values, but the input has %d",
                      shape, values, in_size);
    else
        rt_data_error(f->path, 0, "offset %d: each image has %s value%s, but the input has %d",
                      f->ndims == 1 ? 3 : 8, values, f->per == 1 ? "" : "s", in_size);
    return -1;
}

static int check_labels(const Idx *img, const Idx *lab)
{
    if (lab->ndims != 1) {
        rt_data_error(lab->path, 0, "offset 3: labels have 1 dim, this file has %d", lab->ndims);
        return -1;
    }
    if (lab->count != img->count) {
        rt_data_error(lab->path, 0, "offset 4: %zu labels, but %s holds %zu images",
                      lab->count, img->path, img->count);
        return -1;
    }
    return 0;
}

/* Label i, checked against the target's size. */
static int label_at(const Idx *lab, size_t i, int tgt_size)
{
    int top = tgt_size == 1 ? 1 : tgt_size - 1, label = lab->buf[lab->data_at + i];
    if (label > top) {
        rt_data_error(lab->path, 0, "offset %zu: label %d of sample %zu is out of range 0..%d "
                      "(the target has %d element%s)", lab->data_at + i, label, i + 1, top,
                      tgt_size, tgt_size == 1 ? "" : "s");
        return -1;
    }
    return label;
}

static int fill(NncData *out, const Idx *img, const Idx *lab, int tgt_size)
{
    size_t nx = (size_t)img->total;
    for (size_t i = 0; i < nx; i++)
        rt_set(out->x, i, out->real_size, img->buf[img->data_at + i] / 255.0);
    if (tgt_size == 0)
        return 0;
    for (size_t i = 0; i < lab->count; i++) {
        int label = label_at(lab, i, tgt_size);
        if (label < 0)
            return -1;
        rt_data_set_label(out, (int)i, label);
    }
    return 0;
}

int rt_load_idx(const char *images, const char *labels, int in_size, int tgt_size,
                int real_size, NncData *out)
{
    Idx img = {0}, lab = {0};
    int rc = -1;
    if (idx_open(&img, images, "images") == 0 && check_images(&img, in_size) == 0 &&
        (!labels || (idx_open(&lab, labels, "labels") == 0 && check_labels(&img, &lab) == 0))) {
        if (img.count == 0) {
            rt_data_error(images, 0, "offset 4: no images");
        } else {
            rt_data_alloc(out, (int)img.count, in_size, tgt_size, real_size);
            rc = fill(out, &img, &lab, tgt_size);
        }
    }
    free(img.buf);
    free(lab.buf);
    return rc;
}

/* ---- the images read in pieces (--predict) ---- */

/* The pieces are read ahead by a thread of their own into two buffers, so that inflating
 * the next piece overlaps the forward pass and csv rows of this one (Fashion-MNIST's t10k:
 * zlib took a third of the command's time, in series with the rest). */
enum { SLOT_EMPTY, SLOT_FULL, SLOT_FAILED };

struct RtIdxIn {
    Idx img, lab;
    unsigned char head[4 + 4 * 8];
    RtStream s;
    int opened, tgt_size;
    size_t piece;            /* images a piece: the first read's count */
    size_t done;             /* images the reader has read */
    size_t taken;            /* pieces taken by rt_idx_in_read */
    unsigned char *raw[2];   /* piece k's bytes in raw[k % 2] */
    int state[2];            /* SLOT_* */
    int started, stop;
    pthread_t reader;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    float scale4[256];       /* a byte's value as the model's real: what rt_load_idx stores */
    double scale8[256];
};

/* The header from the stream: 4 bytes, then the dims they announce. */
static int stream_header(RtIdxIn *in, const char *path)
{
    Idx *f = &in->img;
    f->path = path;
    f->buf = in->head;
    long got = rt_stream_read(&in->s, in->head, 4);
    if (got < 0)
        return -1;
    f->len = (size_t)got;
    if (got == 4 && !in->head[0] && !in->head[1] && in->head[2] == 0x08 && in->head[3] >= 1 &&
        in->head[3] <= 8) {
        long more = rt_stream_read(&in->s, in->head + 4, 4 * (size_t)in->head[3]);
        if (more < 0)
            return -1;
        f->len += (size_t)more;
    }
    return check_header(f, "images");
}

RtIdxIn *rt_idx_in_open(const char *images, const char *labels, int in_size, int tgt_size)
{
    RtIdxIn *in = calloc(1, sizeof *in);
    if (!in) {
        rt_data_error(images, 0, "cannot read: out of memory");
        return NULL;
    }
    in->tgt_size = labels ? tgt_size : 0;
    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->cv, NULL);
    for (int b = 0; b < 256; b++) {
        in->scale4[b] = (float)(b / 255.0);
        in->scale8[b] = b / 255.0;
    }
    int ok = rt_stream_open(&in->s, images) == 0;
    in->opened = ok;
    ok = ok && stream_header(in, images) == 0 && check_images(&in->img, in_size) == 0 &&
         (!labels || (idx_open(&in->lab, labels, "labels") == 0 && check_labels(&in->img, &in->lab) == 0));
    if (ok && in->img.count == 0) {
        rt_data_error(images, 0, "offset 4: no images");
        ok = 0;
    }
    if (!ok) {
        rt_idx_in_close(in);
        return NULL;
    }
    return in;
}

int rt_idx_in_count(const RtIdxIn *in)
{
    return (int)in->img.count;
}

/* The file ended at offset `at`, before the data the header promises: check_size's message. */
static int ended_early(RtIdxIn *in, size_t at)
{
    in->img.len = at;
    check_size(&in->img);
    return -1;
}

/* Piece k's bytes into raw[k % 2]: 0, or -1 after a message. */
static int read_piece(RtIdxIn *in, unsigned char *raw)
{
    size_t per = (size_t)in->img.per, left = in->img.count - in->done;
    size_t n = left < in->piece ? left : in->piece, bytes = n * per;
    long got = rt_stream_read(&in->s, raw, bytes);
    if (got < 0)
        return -1;
    if ((size_t)got < bytes)
        return ended_early(in, in->img.data_at + in->done * per + (size_t)got);
    in->done += n;
    return 0;
}

/* The reader thread: every piece in turn, each into a buffer the converter has emptied;
 * it stops after the last piece or a failure (its message already given). */
static void *reader_main(void *arg)
{
    RtIdxIn *in = arg;
    for (size_t k = 0; in->done < in->img.count; k++) {
        pthread_mutex_lock(&in->mu);
        while (in->state[k % 2] != SLOT_EMPTY && !in->stop)
            pthread_cond_wait(&in->cv, &in->mu);
        int stop = in->stop;
        pthread_mutex_unlock(&in->mu);
        if (stop)
            break;
        int rc = read_piece(in, in->raw[k % 2]);
        pthread_mutex_lock(&in->mu);
        in->state[k % 2] = rc == 0 ? SLOT_FULL : SLOT_FAILED;
        pthread_cond_broadcast(&in->cv);
        pthread_mutex_unlock(&in->mu);
        if (rc != 0)
            break;
    }
    return NULL;
}

/* At the first read: the buffers and the reader thread; without a thread, pieces are read
 * in turn by rt_idx_in_read. */
static int start_reader(RtIdxIn *in, int n)
{
    size_t bytes = (size_t)n * (size_t)in->img.per;
    in->piece = (size_t)n;
    in->raw[0] = malloc(bytes);
    in->raw[1] = malloc(bytes);
    if (!in->raw[0] || !in->raw[1]) {
        rt_data_error(in->img.path, 0, "cannot read: out of memory");
        return -1;
    }
    in->started = pthread_create(&in->reader, NULL, reader_main, in) == 0 ? 1 : -1;
    return 0;
}

/* Piece k's bytes, once read: NULL when the reading failed. */
static const unsigned char *take_piece(RtIdxIn *in, size_t k)
{
    if (in->started < 0) /* no thread */
        return read_piece(in, in->raw[k % 2]) == 0 ? in->raw[k % 2] : NULL;
    pthread_mutex_lock(&in->mu);
    while (in->state[k % 2] == SLOT_EMPTY)
        pthread_cond_wait(&in->cv, &in->mu);
    int state = in->state[k % 2];
    pthread_mutex_unlock(&in->mu);
    return state == SLOT_FULL ? in->raw[k % 2] : NULL;
}

/* Piece k's buffer may take piece k + 2. */
static void give_back(RtIdxIn *in, size_t k)
{
    pthread_mutex_lock(&in->mu);
    in->state[k % 2] = SLOT_EMPTY;
    pthread_cond_broadcast(&in->cv);
    pthread_mutex_unlock(&in->mu);
}

int rt_idx_in_read(RtIdxIn *in, void *x, int n, int real_size)
{
    if (!in->started && start_reader(in, n) != 0)
        return -1;
    size_t k = in->taken;
    const unsigned char *raw = take_piece(in, k);
    if (!raw)
        return -1;
    size_t bytes = (size_t)n * (size_t)in->img.per;
    if (real_size == 4)
        for (size_t i = 0; i < bytes; i++)
            ((float *)x)[i] = in->scale4[raw[i]];
    else
        for (size_t i = 0; i < bytes; i++)
            ((double *)x)[i] = in->scale8[raw[i]];
    give_back(in, k);
    in->taken++;
    return 0;
}

/* Stops the reader thread, if any, and waits for it. */
static void stop_reader(RtIdxIn *in)
{
    if (in->started <= 0)
        return;
    pthread_mutex_lock(&in->mu);
    in->stop = 1;
    pthread_cond_broadcast(&in->cv);
    pthread_mutex_unlock(&in->mu);
    pthread_join(in->reader, NULL);
    in->started = 0;
}

int rt_idx_in_finish(RtIdxIn *in)
{
    stop_reader(in); /* it has read the last piece: the stream is this thread's again */
    size_t at = in->img.data_at + (size_t)in->img.total, extra = 0;
    unsigned char rest[4096];
    long got;
    while ((got = rt_stream_read(&in->s, rest, sizeof rest)) > 0)
        extra += (size_t)got;
    if (got < 0)
        return -1;
    if (extra) {
        rt_data_error(in->img.path, 0, "offset %zu: %zu bytes follow the data the header describes",
                      at, extra);
        return -1;
    }
    for (size_t i = 0; i < in->lab.count && in->tgt_size; i++)
        if (label_at(&in->lab, i, in->tgt_size) < 0)
            return -1;
    return 0;
}

void rt_idx_in_close(RtIdxIn *in)
{
    if (!in)
        return;
    stop_reader(in);
    if (in->opened)
        rt_stream_close(&in->s);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->cv);
    free(in->lab.buf);
    free(in->raw[0]);
    free(in->raw[1]);
    free(in);
}
