/* rt_train.c - what generated code calls: the run's numbers and buffers, and the
 * callbacks of its epoch/batch loop (batches, shuffling, the NaN stop, running totals). */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "rt_internal.h"

int nnc_rt_int(NncRun *run, int which)
{
    if (which == NNC_NEED_GRADS)
        return run->gsum != NULL;
    return which == NNC_EPOCHS ? run->o.epochs : run->o.batch;
}

double nnc_rt_real(NncRun *run, int which)
{
    switch (which) {
    case NNC_LR: return run->o.lr;
    case NNC_MOMENTUM: return run->m->momentum;
    case NNC_BETA1: return run->m->beta1;
    case NNC_BETA2: return run->m->beta2;
    default: return run->m->eps;
    }
}

const NncModelDesc *nnc_rt_model(NncRun *run)
{
    return run->m;
}

void *nnc_rt_param(NncRun *run, int i)
{
    return run->param[i];
}

void *nnc_rt_grad(NncRun *run, int i)
{
    return run->grad[i];
}

void *nnc_rt_state(NncRun *run, int i, int k)
{
    void **slot = &run->state[k ? 1 : 0][i];
    if (!*slot)
        *slot = rt_alloc((size_t)run->m->params[i].size * (size_t)run->rs);
    return *slot;
}

void *nnc_rt_workspace(NncRun *run, size_t bytes)
{
    if (bytes <= run->ws_size && run->ws)
        return run->ws;
    if (run->ws) {
        /* Keep the old block alive until the run ends: code may still hold it. */
        RtBlock *b = rt_alloc(sizeof *b);
        b->p = run->ws;
        b->next = run->retired;
        run->retired = b;
    }
    run->ws_size = bytes > run->ws_size * 3 / 2 ? bytes : run->ws_size * 3 / 2;
    run->ws = rt_alloc(run->ws_size);
    return run->ws;
}

/* Fisher-Yates over the previous order, from the shuffle stream. */
static void shuffle(NncRun *run)
{
    for (int i = run->train.d.n - 1; i > 0; i--) {
        int j = (int)rt_rng_below(&run->shuffle, (uint64_t)i + 1);
        int tmp = run->perm[i];
        run->perm[i] = run->perm[j];
        run->perm[j] = tmp;
    }
}

int nnc_rt_epoch_begin(NncRun *run, int epoch)
{
    if (run->stopped)
        return 0;
    run->epoch = epoch;
    run->loss_sum = 0;
    run->seen = run->correct = 0;
    run->progress_t = run->t0 = rt_now();
    if (run->m->shuffle)
        shuffle(run);
    for (int i = 0; run->gsum && i < run->m->nparams; i++)
        memset(run->gsum[i], 0, sizeof(double) * (size_t)run->m->params[i].size);
    run->nbatches = (run->train.d.n + run->o.batch - 1) / run->o.batch;
    return run->nbatches;
}

typedef struct Gather {
    NncRun *run;
    int start;
} Gather;

/* Samples [lo, hi) of the batch starting at start. */
static void gather_rows(void *ctx, long long lo, long long hi)
{
    const Gather *g = ctx;
    NncRun *run = g->run;
    const NncData *d = &run->train.d;
    size_t xb = (size_t)d->in_size * (size_t)run->rs, tb = (size_t)d->tgt_size * (size_t)run->rs;
    for (long long k = lo; k < hi; k++) {
        size_t s = (size_t)run->perm[g->start + k];
        if (k + 1 < hi) { /* the next row's lines, fetched while this one is copied */
            const char *next = (const char *)d->x + (size_t)run->perm[g->start + k + 1] * xb;
            for (size_t o = 0; o < xb; o += 64)
                __builtin_prefetch(next + o);
        }
        memcpy((char *)run->bx + k * xb, (const char *)d->x + s * xb, xb);
        if (tb)
            memcpy((char *)run->bt + k * tb, (const char *)d->t + s * tb, tb);
    }
}

/* Random rows of a large set: memory-bound, so big batches are copied by all threads. */
static void gather(NncRun *run, int start, int n)
{
    Gather g = {run, start};
    size_t bytes = (size_t)n * (size_t)(run->train.d.in_size + run->train.d.tgt_size) * (size_t)run->rs;
    rt_parallel_copy(run, n, bytes, gather_rows, &g);
}

int nnc_rt_batch(NncRun *run, int b, const void **x, const void **t)
{
    const NncData *d = &run->train.d;
    int start = b * run->o.batch;
    int n = start >= d->n ? 0 : d->n - start < run->o.batch ? d->n - start : run->o.batch;
    if (run->m->shuffle) {
        gather(run, start, n);
        *x = run->bx;
        *t = d->tgt_size ? run->bt : NULL;
    } else {
        *x = (const char *)d->x + (size_t)start * (size_t)d->in_size * (size_t)run->rs;
        *t = d->tgt_size ? (const char *)d->t + (size_t)start * (size_t)d->tgt_size * (size_t)run->rs
                         : NULL;
    }
    run->cur_t = *t;
    run->cur_x = *x;
    return n;
}

/* The first param whose gradient holds a NaN or an infinity, or -1. */
static int bad_gradient(NncRun *run)
{
    for (int i = 0; i < run->m->nparams; i++)
        for (int j = 0; j < run->m->params[i].size; j++)
            if (!isfinite(rt_get(run->grad[i], (size_t)j, run->rs)))
                return i;
    return -1;
}

/* Clears the batch progress line, if one is up. */
static void clear_progress(NncRun *run)
{
    if (run->shown)
        fprintf(stderr, "\r%79s\r", "");
    run->shown = 0;
}

static int stop(NncRun *run, int b, const char *what)
{
    clear_progress(run);
    rt_error(run->o.prog, "%s in epoch %d, batch %d of %d; training stopped, saving the "
             "weights from before this step to %s", what, run->epoch + 1, b + 1, run->nbatches,
             run->save_path);
    run->stopped = 1;
    return 1;
}

static void progress(NncRun *run, int b)
{
    double now = rt_now();
    if (now - run->progress_t < 0.1)
        return;
    run->progress_t = now;
    run->shown = 1;
    /* the epoch's time left, at the pace of its batches so far */
    double left = (now - run->t0) / (b + 1) * (run->nbatches - b - 1);
    fprintf(stderr, "\repoch %d  batch %d/%d  loss %.6f  ", run->epoch + 1, b + 1, run->nbatches,
            run->seen ? run->loss_sum / (double)run->seen : 0.0);
    if (left < 60)
        fprintf(stderr, "%.*fs left   ", left < 10 ? 1 : 0, left);
    else
        fprintf(stderr, "%.0fm%02.0fs left   ", floor(left / 60), fmod(floor(left), 60));
    fflush(stderr);
}

int nnc_rt_batch_end(NncRun *run, int b, double loss_sum, const void *pred, int n)
{
    int bad = bad_gradient(run);
    if (bad < 0)
        rt_guard_gmax_from_grads(run);
    return nnc_rt_batch_end_checked(run, b, loss_sum, pred, n, bad);
}

int nnc_rt_batch_end_checked(NncRun *run, int b, double loss_sum, const void *pred, int n, int bad)
{
    if (run->stopped)
        return 1;
    if (!isfinite(loss_sum) || bad >= 0) {
        char what[300];
        snprintf(what, sizeof what, "the gradient of %s became nan or infinite",
                 bad >= 0 ? run->m->params[bad].name : "");
        stop(run, b, isnan(loss_sum) ? "the loss became nan" : isinf(loss_sum) ? "the loss became infinite" : what);
        rt_nan_origin(run, n); /* the first operation that made a non-finite value */
        return 1;
    }
    int wild = rt_guard_step(run);
    if (wild >= 0) {
        char what[400];
        snprintf(what, sizeof what, "the update of %s would make it nan or infinite (is lr %g too large?)",
                 run->m->params[wild].name, nnc_rt_real(run, NNC_LR));
        return stop(run, b, what);
    }
    run->loss_sum += loss_sum;
    run->seen += n;
    if (run->train.has_acc && pred && run->cur_t)
        run->correct += rt_count_correct(run, pred, run->cur_t, n);
    for (int i = 0; run->gsum && i < run->m->nparams; i++)
        for (int j = 0; j < run->m->params[i].size; j++)
            run->gsum[i][j] += (double)n * rt_get(run->grad[i], (size_t)j, run->rs);
    if (run->tty)
        progress(run, b);
    return 0;
}

void nnc_rt_epoch_end(NncRun *run, int epoch)
{
    if (run->stopped)
        return;
    double seconds = rt_now() - run->t0;
    clear_progress(run);
    run->epoch = epoch;
    run->epochs_done = epoch + 1;
    rt_report_epoch(run, seconds);
}
