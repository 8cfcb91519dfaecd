/* rt_train.c - what generated code calls: the run's numbers and buffers, and the
 * callbacks of its epoch/batch loop (batches, shuffling, the NaN stop, running totals). */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "rt_internal.h"

int nnc_rt_int(NncRun *run, int which)
{
    switch (which) {
    case NNC_NEED_GRADS: return run->gsum != NULL;
    case NNC_FIRST_EPOCH: return run->first_epoch;
    case NNC_STEPS: return (int)(run->steps0 + run->steps_before);
    case NNC_FIRST_BATCH: return run->batch0;
    case NNC_EPOCHS: return run->o.epochs;
    case NNC_PROFILING: return run->o.profile != 0; /* train_profile is what runs */
    default: return run->o.batch;
    }
}

double nnc_rt_real(NncRun *run, int which)
{
    switch (which) {
    case NNC_LR: return run->cur_lr;
    case NNC_MOMENTUM: return run->m->momentum;
    case NNC_BETA1: return run->m->beta1;
    case NNC_BETA2: return run->m->beta2;
    case NNC_WEIGHT_DECAY: return run->m->weight_decay;
    case NNC_ALPHA: return run->m->alpha;
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

void rt_free_workspaces(NncRun *run)
{
    rt_free(run->ws);
    run->ws = NULL;
    while (run->retired) {
        RtBlock *b = run->retired;
        run->retired = b->next;
        rt_free(b->p);
        rt_free(b);
    }
}

/* Fisher-Yates over the previous order, from the shuffle stream. */
void rt_shuffle(NncRun *run)
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
    if (run->stopped || run->early)
        return 0;
    run->epoch = epoch;
    run->loss_sum = 0;
    run->seen = run->correct = 0;
    run->progress_t = run->t0 = rt_now();
    if (run->m->shuffle)
        rt_shuffle(run);
    run->batch0 = 0;
    if (run->resumed && epoch == run->first_epoch && run->first_batch > 0) {
        /* the interrupted epoch goes on: its batches done and running totals */
        run->batch0 = run->first_batch;
        run->loss_sum = run->resume_loss;
        run->seen = run->resume_seen;
        run->correct = run->resume_correct;
    }
    for (int i = 0; run->gsum && i < run->m->nparams; i++)
        memset(run->gsum[i], 0, sizeof(double) * (size_t)run->m->params[i].size);
    run->nbatches = (run->train.d.n + run->o.batch - 1) / run->o.batch;
    rt_sched_epoch(run, epoch);
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
    run->step = run->batches++; /* the dropout masks' step: 0, 1, ... across epochs */
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
    rt_sched_batch(run, b);
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

/* A signal came: stop once the batch is whole. Returns 1 when nothing of batch b was applied. */
static int interrupt_now(NncRun *run, int b)
{
    run->interrupted = 1;
    run->done_batches = b;
    if (rt_guard_stepped(run))
        return 0; /* the step applied it: account for it below, then stop */
    clear_progress(run);
    run->stopped = 1;
    return 1;
}

int nnc_rt_batch_end_checked(NncRun *run, int b, double loss_sum, const void *pred, int n, int bad)
{
    if (run->stopped)
        return 1;
    if (rt_ckpt_signalled() && !run->interrupted && interrupt_now(run, b))
        return 1;
    if (!isfinite(loss_sum) || bad >= 0) {
        char what[300];
        snprintf(what, sizeof what, "the gradient of %s became nan or infinite",
                 bad >= 0 ? run->m->params[bad].name : "");
        stop(run, b, isnan(loss_sum) ? "the loss became nan" : isinf(loss_sum) ? "the loss became infinite" : what);
        rt_nan_origin(run, n); /* the first operation that made a non-finite value */
        return 1;
    }
    rt_clip(run);
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
    if (run->interrupted) { /* batch b was applied by the step */
        clear_progress(run);
        run->done_batches = b + 1;
        run->stopped = 1;
        return 1;
    }
    if (run->tty)
        progress(run, b);
    return 0;
}

void nnc_rt_epoch_end(NncRun *run, int epoch)
{
    if (run->stopped || run->early)
        return;
    double seconds = rt_now() - run->t0;
    clear_progress(run);
    run->epoch = epoch;
    run->epochs_done = epoch + 1;
    rt_valid_epoch(run);
    rt_report_epoch(run, seconds);
    if (run->o.checkpoint && !run->stopped && rt_ckpt_save(run, run->o.checkpoint, epoch + 1, 0) != 0)
        run->stopped = 1; /* as a log that cannot be written: the weights are saved */
}
