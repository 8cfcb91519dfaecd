/* rt_predict.c - `./MODEL --predict SRC [--load W.npz] [--out FILE.csv]` (spec section 11).
 *
 *   weights (--load, else MODEL.npz) -> SRC's inputs -> evaluate() in large batches on the
 *   run's threads -> csv: a header, then one row a sample
 *
 * SRC is read as the train block's source kind with its options; the targets in it, if
 * any, are read and checked as for training (the same file:row messages), then ignored. A
 * csv may hold the inputs alone, and idx the images alone (no ",LABELS"). The csv is made
 * in memory and written whole: to --out through a temporary renamed into place, so a
 * failure leaves no partial file. */
#include <errno.h>
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

static int load_inputs(NncRun *run, NncData *d)
{
    const NncModelDesc *m = run->m;
    NncSourceDesc src;
    char *owned = NULL;
    memset(d, 0, sizeof *d);
    if (source_of(run, &src, &owned) != 0)
        return -1;
    int rc;
    if (src.kind == NNC_SRC_CSV)
        rc = rt_load_csv_inputs(&src, src.path, m->in_size, m->tgt_size, run->rs, d);
    else if (src.kind == NNC_SRC_IDX)
        rc = rt_load_idx(src.path, src.path2, m->in_size, src.path2 ? m->tgt_size : 0, run->rs, d);
    else
        rc = nnc_load_data(&src, NULL, m->in_size, m->tgt_size, run->rs, d);
    free(owned);
    if (rc != 0)
        nnc_free_data(d);
    return rc;
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

/* The forward pass of every sample into pred (n * out_size reals). */
static void forward(NncRun *run, const NncData *d, void *pred)
{
    const NncModelDesc *m = run->m;
    int chunk = run->o.batch > PREDICT_BATCH ? run->o.batch : PREDICT_BATCH;
    run->o.batch = chunk < d->n ? chunk : d->n; /* evaluate() sizes its workspace by it */
    size_t xb = (size_t)m->in_size * (size_t)run->rs, pb = (size_t)m->out_size * (size_t)run->rs;
    for (int at = 0; at < d->n; at += run->o.batch) {
        int n = d->n - at < run->o.batch ? d->n - at : run->o.batch;
        m->evaluate(run, (const char *)d->x + (size_t)at * xb, NULL, n, (char *)pred + (size_t)at * pb);
    }
}

/* ---- the csv, made in memory ---- */

typedef struct Text {
    char *p;
    size_t len, cap;
    int failed; /* out of memory */
} Text;

static void put(Text *t, const char *fmt, ...) RT_PRINTF(2, 3);
static void put(Text *t, const char *fmt, ...)
{
    char small[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0 || t->failed || (size_t)n >= sizeof small) { /* nothing here is that long */
        t->failed = 1;
        return;
    }
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1 << 16;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, small, (size_t)n + 1);
    t->len += (size_t)n;
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

/* Values with enough digits to read back the same real: 9 for f32, 17 for f64. */
static void make_csv(Text *t, const NncRun *run, const void *pred, int n, int classes)
{
    int no = run->m->out_size, rs = run->rs, digits = rs == 4 ? 9 : 17;
    if (classes)
        put(t, "class%s", no ? "," : "");
    for (int k = 0; k < no; k++)
        put(t, "y%d%s", k, k + 1 < no ? "," : "");
    put(t, "\n");
    for (int i = 0; i < n; i++) {
        size_t at = (size_t)i * (size_t)no;
        if (classes)
            put(t, "%d%s", class_of(pred, at, no, rs), no ? "," : "");
        for (int k = 0; k < no; k++)
            put(t, "%.*g%s", digits, rt_get(pred, at + (size_t)k, rs), k + 1 < no ? "," : "");
        put(t, "\n");
    }
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
    NncData d;
    if (load_weights(run) != 0 || load_inputs(run, &d) != 0)
        return 1;
    int no = run->m->out_size;
    void *pred = rt_alloc((size_t)d.n * (size_t)(no ? no : 1) * (size_t)run->rs);
    forward(run, &d, pred);
    Text t = {0};
    make_csv(&t, run, pred, d.n, is_classifier(run));
    int rc = t.failed ? (rt_error(run->o.prog, "out of memory"), -1) : write_csv(run, &t);
    free(t.p);
    rt_free(pred);
    nnc_free_data(&d);
    return rc == 0 ? 0 : 1;
}
