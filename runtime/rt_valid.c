/* rt_valid.c - the validation set and early stopping (spec sections 10 and 13).
 *
 * The set is a source (the train block's `validation = SOURCE`, or --validation), or a
 * fraction of the training data held out: a seeded draw of round(n * fraction) samples
 * (at least 1, at most n - 1), fixed for the run; both parts keep the file's order. After
 * every epoch it is evaluated (dropout off: evaluate()), and with patience P the run stops
 * after P epochs in a row without a strictly lower validation loss; the best epoch's
 * weights are kept and are what the run saves. */
#include <math.h>
#include <string.h>

#include "rt_internal.h"

#define RT_STREAM_VALID 0x56414c4944ULL /* "VALID": far from any param index */

/* Rows of d whose flag equals `which`, in order, into out. */
static void take_rows(const NncData *d, const char *held, int which, int n, NncData *out)
{
    rt_data_alloc(out, n, d->in_size, d->tgt_size, d->real_size);
    size_t xb = (size_t)d->in_size * (size_t)d->real_size, tb = (size_t)d->tgt_size * (size_t)d->real_size;
    int k = 0;
    for (int i = 0; i < d->n; i++) {
        if (held[i] != which)
            continue;
        memcpy((char *)out->x + (size_t)k * xb, (const char *)d->x + (size_t)i * xb, xb);
        if (tb)
            memcpy((char *)out->t + (size_t)k * tb, (const char *)d->t + (size_t)i * tb, tb);
        k++;
    }
}

int rt_valid_split(NncRun *run)
{
    NncData *d = &run->train.d;
    double frac = run->m->val_fraction;
    if (d->n < 2)
        return rt_error(run->o.prog, "validation = %g needs at least 2 training samples, the data "
                        "has %d", frac, d->n), -1;
    int k = (int)floor(d->n * frac + 0.5);
    k = k < 1 ? 1 : k > d->n - 1 ? d->n - 1 : k;
    int *idx = rt_alloc(sizeof(int) * (size_t)d->n);
    char *held = rt_alloc((size_t)d->n);
    for (int i = 0; i < d->n; i++)
        idx[i] = i;
    RtRng r;
    rt_rng_seed(&r, run->o.seed, RT_STREAM_VALID);
    for (int i = 0; i < k; i++) { /* the first k of a Fisher-Yates shuffle */
        int j = i + (int)rt_rng_below(&r, (uint64_t)(d->n - i));
        int tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
        held[idx[i]] = 1;
    }
    NncData train, val;
    take_rows(d, held, 0, d->n - k, &train);
    take_rows(d, held, 1, k, &val);
    rt_free(idx);
    rt_free(held);
    nnc_free_data(d);
    *d = train;
    run->val.d = val;
    run->val.loaded = 1;
    run->val.what = "validation";
    run->val.has_acc = run->train.has_acc;
    return 0;
}

void rt_valid_keep(NncRun *run)
{
    const NncModelDesc *m = run->m;
    if (!run->best) {
        run->best = rt_alloc(sizeof(void *) * (size_t)(m->nparams ? m->nparams : 1));
        for (int i = 0; i < m->nparams; i++)
            run->best[i] = rt_alloc((size_t)m->params[i].size * (size_t)run->rs);
    }
    for (int i = 0; i < m->nparams; i++)
        memcpy(run->best[i], run->param[i], (size_t)m->params[i].size * (size_t)run->rs);
}

void rt_valid_epoch(NncRun *run)
{
    if (!run->val.loaded)
        return;
    double loss;
    rt_evaluate_set(run, &run->val, &loss, &run->val_correct);
    run->val_loss = loss / run->val.d.n;
    if (run->m->patience <= 0)
        return;
    if (run->best_epoch == 0 || run->val_loss < run->best_loss) {
        run->best_loss = run->val_loss;
        run->best_epoch = run->epoch + 1;
        rt_valid_keep(run);
    } else if (run->epoch + 1 - run->best_epoch >= run->m->patience) {
        run->early = 1;
    }
}

void rt_valid_finish(NncRun *run)
{
    if (!run->best)
        return;
    for (int i = 0; i < run->m->nparams; i++)
        memcpy(run->param[i], run->best[i], (size_t)run->m->params[i].size * (size_t)run->rs);
    if (run->o.quiet)
        return;
    if (run->early)
        printf("early stop after epoch %d: no lower val_loss in %d epochs; keeping the weights of "
               "epoch %d (val_loss %.6f)\n", run->epochs_done, run->m->patience, run->best_epoch,
               run->best_loss);
    else
        printf("keeping the weights of epoch %d, the lowest val_loss (%.6f)\n", run->best_epoch,
               run->best_loss);
}

void rt_valid_free(NncRun *run)
{
    for (int i = 0; run->best && i < run->m->nparams; i++)
        rt_free(run->best[i]);
    rt_free(run->best);
    nnc_free_data(&run->val.d);
}
