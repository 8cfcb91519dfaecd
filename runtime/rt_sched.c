/* rt_sched.c - the lr in force and gradient clipping (spec sections 10 and 13), as
 * PyTorch 1.13 computes them, so a run matches torch.optim.lr_scheduler.* and
 * torch.nn.utils.clip_grad_norm_:
 *   warm-up: step i of the first `warmup` epochs' S steps has lr * (i + 1) / S;
 *   after it the schedule is stepped once an epoch, k = epoch - warmup = 0, 1, ...,
 *   in the classes' own recursive ("chainable") forms, from the base lr:
 *     step:        lr_k = lr_{k-1} * gamma when k % every == 0 (k > 0)
 *     exponential: lr_k = lr_{k-1} * gamma (k > 0)
 *     cosine:      lr_k = (1 + cos(pi k / T)) / (1 + cos(pi (k - 1) / T)) * (lr_{k-1} - min)
 *                         + min,  T = the train block's epochs - warmup; where that
 *                  denominator is 0 (k - 1 - T a multiple of 2T: past T, the cosine's
 *                  turn) lr_k = lr_{k-1} + (lr_0 - min) (1 - cos(pi / T)) / 2, as PyTorch
 * Each epoch recomputes lr_k from lr_0, so a resumed run gets the same value.
 * Clipping scales the batch's mean gradients by max_norm / (norm + 1e-6) when that is
 * below 1, norm the L2 norm of the per-param norms, before the optimizer step. */
#include <math.h>

#include "rt_internal.h"

/* One step of the schedule's recursion: lr_k from lr_{k-1}. */
static double sched_next(const NncModelDesc *m, double lr, double base, int k, int tmax)
{
    switch (m->sched) {
    case NNC_SCHED_STEP: return k % m->sched_every == 0 ? lr * m->gamma : lr;
    case NNC_SCHED_EXPONENTIAL: return lr * m->gamma;
    case NNC_SCHED_COSINE: {
        double pi = 3.141592653589793;
        if ((k - 1 - tmax) % (2 * tmax) == 0)
            return lr + (base - m->min_lr) * (1 - cos(pi / tmax)) / 2;
        return (1 + cos(pi * k / tmax)) / (1 + cos(pi * (k - 1) / tmax)) * (lr - m->min_lr) + m->min_lr;
    }
    default: return lr;
    }
}

void rt_sched_epoch(NncRun *run, int epoch)
{
    const NncModelDesc *m = run->m;
    /* cosine's T from the train block's epochs, not --epochs: k epochs and a --resume to
     * the block's E anneal as E epochs straight do (at least 1: warmup may equal epochs) */
    int k = epoch - m->warmup, tmax = m->epochs - m->warmup > 1 ? m->epochs - m->warmup : 1;
    double lr = run->o.lr;
    for (int j = 1; j <= k; j++)
        lr = sched_next(m, lr, run->o.lr, j, tmax);
    run->epoch_lr = lr;
    run->cur_lr = lr;
}

void rt_sched_batch(NncRun *run, int b)
{
    int warmup = run->m->warmup;
    if (run->epoch >= warmup)
        return;
    double steps = (double)warmup * run->nbatches;
    double i = (double)run->epoch * run->nbatches + b;
    run->cur_lr = run->o.lr * (i + 1) / steps;
}

void rt_clip(NncRun *run)
{
    const NncModelDesc *m = run->m;
    if (m->clip <= 0)
        return;
    double total = 0;
    for (int i = 0; i < m->nparams; i++) {
        double sq = 0;
        for (int j = 0; j < m->params[i].size; j++) {
            double g = rt_get(run->grad[i], (size_t)j, run->rs);
            sq += g * g;
        }
        total += sq;
    }
    double coef = m->clip / (sqrt(total) + 1e-6);
    if (!(coef < 1))
        return;
    for (int i = 0; i < m->nparams; i++)
        for (int j = 0; j < m->params[i].size; j++)
            rt_set(run->grad[i], (size_t)j, run->rs, rt_get(run->grad[i], (size_t)j, run->rs) * coef);
}
