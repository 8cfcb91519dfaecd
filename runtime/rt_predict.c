/* rt_predict.c - `./MODEL --predict SRC [--load W.npz] [--out FILE.csv]` (spec section 11).
 *
 *   weights (--load, else MODEL.npz) -> SRC's inputs -> evaluate() in large batches on the
 *   run's threads -> csv: a header, then one row a sample
 *
 * SRC is read as the train block's source kind with its options; the targets in it, if
 * any, are read and checked as for training (the same file:row messages), then ignored. A
 * csv may hold the inputs alone, and idx the images alone (no ",LABELS"). idx images and
 * csv rows are read in pieces of a batch into one buffer, each piece's forward pass and rows
 * made before the next is read: memory and cache hold a batch of inputs, not the data set
 * (a csv's text is read whole, as training reads it). The csv is
 * made in memory and written whole: to --out through a temporary renamed into place, so a
 * failure (also one found in the last piece) leaves no partial file. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt_internal.h"

/* Samples an evaluate() call: enough to keep the threads busy on each product. */
enum { PREDICT_BATCH = 1024 };

static int alloc_params(NncRun *run)
{
    int np = run->m->nparams;
    run->param = calloc((size_t)(np ? np : 1), sizeof(void *));
    if (!run->param)
        return rt_error(run->o.prog, "out of memory"), -1;
    for (int i = 0; i < np; i++)
        run->param[i] = rt_alloc((size_t)run->m->params[i].size * (size_t)run->rs);
    return 0;
}

/* --load, or MODEL.npz when it exists: predictions from the initialisers would be noise. */
static int load_weights(NncRun *run)
{
    if (alloc_params(run) != 0)
        return -1;
    if (run->o.load)
        return rt_npz_load(run->o.load, run->m, run->param);
    size_t n = strlen(run->m->name) + 5;
    char *path = malloc(n);
    if (!path)
        return rt_error(run->o.prog, "out of memory"), -1;
    snprintf(path, n, "%s.npz", run->m->name);
    int rc;
    if (access(path, F_OK) != 0) {
        rt_error(run->o.prog, "--predict needs trained weights: %s does not exist "
                 "(train first, or give --load W.npz)", path);
        rc = -1;
    } else {
        rc = rt_npz_load(path, run->m, run->param);
    }
    free(path);
    return rc;
}

/* SRC as the train block's kind; an idx source may name the images alone. */
static int source_of(NncRun *run, NncSourceDesc *src, char **owned)
{
    const char *arg = run->o.predict;
    if (run->m->data.kind != NNC_SRC_IDX || strchr(arg, ','))
        return rt_source_from_arg(run->o.prog, "--predict", arg, &run->m->data, src, owned);
    memset(src, 0, sizeof *src);
    src->kind = NNC_SRC_IDX;
    src->path = *owned = strdup(arg);
    return *owned ? 0 : (rt_error(run->o.prog, "out of memory"), -1);
}

/* The inputs: idx images and csv rows read piece by piece, npz and inline data loaded whole. */
typedef struct Inputs {
    RtIdxIn *idx; /* or */
    RtCsvIn *csv; /* or all in d */
    NncData d;
    int n;
    void *x; /* idx: the current piece */
    char *owned; /* the source's strings, which idx's messages name */
} Inputs;

static void close_inputs(Inputs *in)
{
    rt_idx_in_close(in->idx);
    rt_csv_in_close(in->csv);
    rt_free(in->x);
    nnc_free_data(&in->d);
    free(in->owned);
    memset(in, 0, sizeof *in);
}

static int open_inputs(NncRun *run, Inputs *in)
{
    const NncModelDesc *m = run->m;
    NncSourceDesc src;
    memset(in, 0, sizeof *in);
    if (source_of(run, &src, &in->owned) != 0)
        return -1;
    int rc = 0;
    if (src.kind == NNC_SRC_CSV)
        rc = (in->csv = rt_csv_in_open(&src, src.path, m->in_size, m->tgt_size, run->rs)) ? 0 : -1;
    else if (src.kind == NNC_SRC_IDX)
        rc = (in->idx = rt_idx_in_open(src.path, src.path2, m->in_size, m->tgt_size)) ? 0 : -1;
    else
        rc = nnc_load_data(&src, NULL, m->in_size, m->tgt_size, run->rs, &in->d);
    if (rc != 0)
        close_inputs(in);
    in->n = in->idx ? rt_idx_in_count(in->idx) : in->csv ? rt_csv_in_rows(in->csv) : in->d.n;
    return rc;
}

/* Samples [at, at + n)'s inputs; NULL after a message. */
static const void *inputs_at(const NncRun *run, Inputs *in, int at, int n)
{
    if (!in->idx && !in->csv)
        return (const char *)in->d.x + (size_t)at * (size_t)run->m->in_size * (size_t)run->rs;
    if (!in->x)
        in->x = rt_alloc((size_t)run->o.batch * (size_t)run->m->in_size * (size_t)run->rs);
    int rc = in->idx ? rt_idx_in_read(in->idx, in->x, n, run->rs) : rt_csv_in_read(in->csv, in->x, n);
    return rc == 0 ? in->x : NULL;
}

/* Whether accuracy applies to the model (spec 8), judged from its train block's data, as
 * training reports it: idx and class labels always; other data when every target is one-hot
 * (or one element in {0, 1}). Data that cannot be read here (a csv left behind where the
 * model was trained) counts as not a classifier. */
static int is_classifier(NncRun *run)
{
    const NncModelDesc *m = run->m;
    const NncSourceDesc *s = &m->data;
    if (m->tgt_size == 0 || m->tgt_size != m->out_size || s->kind == NNC_SRC_NONE)
        return 0;
    if (s->kind == NNC_SRC_IDX || s->label)
        return 1;
    if (s->kind != NNC_SRC_INLINE) {
        char *path = rt_join(m->base_dir, s->path ? s->path : "");
        int readable = path && access(path, R_OK) == 0;
        free(path);
        if (!readable)
            return 0;
    }
    NncData d;
    if (nnc_load_data(s, m->base_dir, m->in_size, m->tgt_size, run->rs, &d) != 0)
        return 0;
    int yes = rt_data_has_accuracy(&d);
    nnc_free_data(&d);
    return yes;
}

/* ---- the csv, made in memory ---- */

typedef struct Text {
    char *p;
    size_t len, cap;
    int failed; /* out of memory */
} Text;

/* Room for n more bytes (and a NUL): where they go, or NULL when memory ran out. */
static char *room(Text *t, size_t n)
{
    if (t->failed)
        return NULL;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1 << 16;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = 1;
            return NULL;
        }
        t->p = p;
        t->cap = cap;
    }
    return t->p + t->len;
}

static void put(Text *t, const char *fmt, ...) RT_PRINTF(2, 3);
static void put(Text *t, const char *fmt, ...)
{
    char small[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof small) { /* nothing here is that long */
        t->failed = 1;
        return;
    }
    char *p = room(t, (size_t)n);
    if (p) {
        memcpy(p, small, (size_t)n + 1);
        t->len += (size_t)n;
    }
}

/* The argmax, or for one output 1 where it is > 0.5 (spec 11). */
static int class_of(const void *pred, size_t at, int n, int rs)
{
    if (n == 1)
        return rt_get(pred, at, rs) > 0.5;
    int best = 0;
    for (int k = 1; k < n; k++)
        if (rt_get(pred, at + (size_t)k, rs) > rt_get(pred, at + (size_t)best, rs))
            best = k;
    return best;
}

static void put_header(Text *t, const NncRun *run, int classes)
{
    int no = run->m->out_size;
    if (classes)
        put(t, "class%s", no ? "," : "");
    for (int k = 0; k < no; k++)
        put(t, "y%d%s", k, k + 1 < no ? "," : "");
    put(t, "\n");
}

/* %.9g of a float, byte for byte, without printf (which took a fifth of --predict's time
 * on Fashion-MNIST). Exact: the float is m * 2^s; for 0 < s <= 127 and a decimal exponent X
 * with 0 <= 8 - X <= 31, m * 10^(8-X) fits 128 bits, and its shift by s rounds half to
 * even as glibc does. (Checked against snprintf on 20M random floats, every 8th float of
 * [1e-6, 10] and 4000 around each power of ten.) Elsewhere (and for 0, inf, nan): snprintf. Returns the length; out holds 32 bytes. */
static int g9_printf(char *out, float f)
{
    return snprintf(out, 32, "%.9g", (double)f);
}

static int g9(char *out, float f)
{
    static const unsigned long long p10[20] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL,
        1000000ULL, 10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL,
        1000000000000ULL, 10000000000000ULL, 100000000000000ULL, 1000000000000000ULL,
        10000000000000000ULL, 100000000000000000ULL, 1000000000000000000ULL,
        10000000000000000000ULL};
    int ex;
    double a = fabs((double)f);
    if (!(a > 0) || !isfinite(a))
        return g9_printf(out, f);
    double fr = frexp(a, &ex); /* a = fr * 2^ex, fr in [0.5, 1) */
    unsigned long long m = (unsigned long long)ldexp(fr, 24);
    int s = 24 - ex; /* a = m / 2^s, m < 2^24 */
    int x = (int)floor(log10(a));
    if (s <= 0 || s > 127)
        return g9_printf(out, f);
    unsigned long long d;
    for (;;) {
        int q = 8 - x;
        if (q < 0 || q > 31)
            return g9_printf(out, f);
        unsigned __int128 p = q <= 19 ? (unsigned __int128)p10[q]
                                      : (unsigned __int128)p10[19] * p10[q - 19];
        unsigned __int128 n = (unsigned __int128)m * p;
        unsigned __int128 fl = n >> s, rem = n - (fl << s), half = (unsigned __int128)1 << (s - 1);
        if (fl >= 1000000000ULL) {
            x++;
            continue;
        }
        if (fl < 100000000ULL) {
            x--;
            continue;
        }
        d = (unsigned long long)fl;
        if (rem > half || (rem == half && (d & 1)))
            d++;
        if (d == 1000000000ULL) {
            d = 100000000ULL;
            x++;
        }
        break;
    }
    char dig[9];
    for (int i = 8; i >= 0; i--, d /= 10)
        dig[i] = (char)('0' + d % 10);
    int nd = 9;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    int at = 0;
    if (f < 0)
        out[at++] = '-';
    if (x < -4 || x >= 9) {
        out[at++] = dig[0];
        if (nd > 1) {
            out[at++] = '.';
            memcpy(out + at, dig + 1, (size_t)nd - 1);
            at += nd - 1;
        }
        int ax = x < 0 ? -x : x;
        out[at++] = 'e';
        out[at++] = x < 0 ? '-' : '+';
        if (ax >= 100)
            out[at++] = (char)('0' + ax / 100);
        out[at++] = (char)('0' + ax / 10 % 10);
        out[at++] = (char)('0' + ax % 10);
    } else if (x >= 0) {
        memcpy(out + at, dig, (size_t)x + 1);
        at += x + 1;
        if (nd > x + 1) {
            out[at++] = '.';
            memcpy(out + at, dig + x + 1, (size_t)(nd - x - 1));
            at += nd - x - 1;
        }
    } else {
        out[at++] = '0';
        out[at++] = '.';
        for (int i = 0; i < -x - 1; i++)
            out[at++] = '0';
        memcpy(out + at, dig, (size_t)nd);
        at += nd;
    }
    out[at] = 0;
    return at;
}

/* An f32 row: "%.9g" values as put_rows makes them, through g9. */
static void put_row4(Text *t, const float *y, int no, int classes)
{
    char *p = room(t, 16 + 32 * (size_t)no);
    if (!p)
        return;
    char *at = p;
    if (classes)
        at += snprintf(at, 16, "%d%s", class_of(y, 0, no, 4), no ? "," : "");
    for (int k = 0; k < no; k++) {
        at += g9(at, y[k]);
        *at++ = k + 1 < no ? ',' : '\n';
    }
    if (!no)
        *at++ = '\n';
    t->len += (size_t)(at - p);
}

/* n rows of pred. Values with enough digits to read back the same real: 9 for f32, 17
 * for f64. */
static void put_rows(Text *t, const NncRun *run, const void *pred, int n, int classes)
{
    int no = run->m->out_size, rs = run->rs, digits = rs == 4 ? 9 : 17;
    for (int i = 0; i < n; i++) {
        size_t at = (size_t)i * (size_t)no;
        if (rs == 4) {
            put_row4(t, (const float *)pred + at, no, classes);
            continue;
        }
        if (classes)
            put(t, "%d%s", class_of(pred, at, no, rs), no ? "," : "");
        for (int k = 0; k < no; k++)
            put(t, "%.*g%s", digits, rt_get(pred, at + (size_t)k, rs), k + 1 < no ? "," : "");
        put(t, "\n");
    }
}

/* Batches of the inputs through evaluate(), each batch's rows after the header. */
static int predict_all(NncRun *run, Inputs *in, Text *t)
{
    const NncModelDesc *m = run->m;
    int chunk = run->o.batch > PREDICT_BATCH ? run->o.batch : PREDICT_BATCH;
    run->o.batch = chunk < in->n ? chunk : in->n; /* evaluate() sizes its workspace by it */
    int no = m->out_size, classes = is_classifier(run);
    void *pred = rt_alloc((size_t)run->o.batch * (size_t)(no ? no : 1) * (size_t)run->rs);
    put_header(t, run, classes);
    int rc = 0;
    for (int at = 0; at < in->n && rc == 0; at += run->o.batch) {
        int n = in->n - at < run->o.batch ? in->n - at : run->o.batch;
        const void *x = inputs_at(run, in, at, n);
        if (!x) {
            rc = -1;
            break;
        }
        m->evaluate(run, x, NULL, n, pred);
        put_rows(t, run, pred, n, classes);
    }
    rt_free(pred);
    if (rc == 0 && in->idx)
        rc = rt_idx_in_finish(in->idx);
    return rc;
}

static int write_csv(NncRun *run, const Text *t)
{
    if (run->o.out)
        return rt_write_file(run->o.out, t->p, t->len, 1);
    size_t wrote = fwrite(t->p, 1, t->len, stdout);
    if (fflush(stdout) != 0 || wrote != t->len) {
        rt_error(run->o.prog, "cannot write the predictions to standard output: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int rt_predict(NncRun *run)
{
    if (!run->m->evaluate || (run->m->real_size != 4 && run->m->real_size != 8))
        return rt_error(run->o.prog, "malformed model descriptor (a bug in nnc)"), 1;
    if (run->o.out && rt_check_writable(run->o.out) != 0)
        return 1;
    Inputs in;
    if (load_weights(run) != 0 || open_inputs(run, &in) != 0)
        return 1;
    Text t = {0};
    int rc = predict_all(run, &in, &t);
    if (rc == 0)
        rc = t.failed ? (rt_error(run->o.prog, "out of memory"), -1) : write_csv(run, &t);
    free(t.p);
    close_inputs(&in);
    return rc == 0 ? 0 : 1;
}
