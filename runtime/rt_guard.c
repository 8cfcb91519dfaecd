/* rt_guard.c - the last good weights are kept (spec section 7): an optimizer step is
 * applied only if it leaves every weight and optimizer state finite.
 *
 * A finite gradient can still make infinite weights (sgd with lr = 3e38), so the step is
 * checked before it is applied, cheaply: per param the runtime keeps bounds on max |w| and
 * on the states' maxima, and the step reports max |g| of the batch's mean gradient (an
 * upper bound will do; nnc_rt_gmax). With them the step's change is bounded (sgd: lr |g|;
 * momentum: lr (mu |v| + |g|); adam: lr |m^| / (sqrt(v^) + eps), at most the Cauchy-Schwarz
 * bound of an EMA over the root of another, or |m^| / eps; rmsprop and adagrad: |g| over
 * the root of a sum that holds (1 - alpha) g^2, or |g| / eps; weight decay adds wd |w| to
 * the gradient's bound, adamw scales |w| by its decay first), and when w, the states and the
 * change stay below a quarter of the largest real nothing can overflow: the step goes on
 * and the bounds grow by the change. Only when a bound comes near the limit is the step
 * computed here once without storing, with the generated rule's arithmetic in the run's
 * reals: finite, and the bounds become the exact new maxima; not finite, and the run stops
 * before the update, naming the param. In normal training that never happens, so the cost
 * is a few operations a param a step. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "rt_internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF /* the dry run must round as the generated code does */
#endif

struct RtGuard {
    double *gmax;          /* per param: max |g| of the batch's mean gradient, or more */
    double *bw, *bs0, *bs1; /* bounds on max |w|, |state 0| (v or m), |state 1| (adam's v) */
    long long steps;       /* updates applied: adam's t is steps + 1 */
    int stepped;           /* the step applied its update itself (nnc_rt_update_safe) */
};

static double max_abs(const void *buf, int size, int rs)
{
    double m = 0;
    for (int j = 0; j < size; j++) {
        double a = fabs(rt_get(buf, (size_t)j, rs));
        if (!(a <= m)) /* NaN wins */
            m = a;
    }
    return m;
}

int rt_guard_start(NncRun *run)
{
    int np = run->m->nparams, n = np ? np : 1;
    RtGuard *g = calloc(1, sizeof *g);
    if (!g)
        return -1;
    g->gmax = calloc((size_t)n, sizeof(double));
    g->bw = calloc((size_t)n, sizeof(double));
    g->bs0 = calloc((size_t)n, sizeof(double));
    g->bs1 = calloc((size_t)n, sizeof(double));
    run->guard = g;
    g->steps = run->steps0; /* a resumed run's adam goes on at its t */
    if (!g->gmax || !g->bw || !g->bs0 || !g->bs1)
        return -1;
    rt_guard_rebound(run);
    return 0;
}

void rt_guard_rebound(NncRun *run)
{
    RtGuard *g = run->guard;
    for (int i = 0; i < run->m->nparams; i++) {
        int size = run->m->params[i].size;
        g->bw[i] = max_abs(run->param[i], size, run->rs);
        g->bs0[i] = run->state[0][i] ? max_abs(run->state[0][i], size, run->rs) : 0;
        g->bs1[i] = run->state[1][i] ? max_abs(run->state[1][i], size, run->rs) : 0;
    }
}

void rt_guard_free(NncRun *run)
{
    RtGuard *g = run->guard;
    if (!g)
        return;
    free(g->gmax);
    free(g->bw);
    free(g->bs0);
    free(g->bs1);
    free(g);
    run->guard = NULL;
}

double *nnc_rt_gmax(NncRun *run)
{
    return run->guard->gmax;
}

void rt_guard_gmax_from_grads(NncRun *run)
{
    for (int i = 0; i < run->m->nparams; i++)
        run->guard->gmax[i] = max_abs(run->grad[i], run->m->params[i].size, run->rs);
}

/* ---- the bounds ---- */

typedef struct Hyper {
    int opt, nesterov;
    double lr, mu, b1, b2, eps, wd, alpha;
    double bc1, bc2; /* adam's bias corrections at t = steps + 1 */
    double decay;    /* adamw: 1 - lr * wd */
} Hyper;

static Hyper hyper(NncRun *run)
{
    const NncModelDesc *m = run->m;
    Hyper h = {m->opt, m->nesterov, nnc_rt_real(run, NNC_LR), m->momentum, m->beta1, m->beta2,
               m->eps, m->weight_decay, m->alpha, 0, 0, 1};
    double t = (double)(run->guard->steps + 1);
    if (run->rs == 4) { /* as the generated code: the betas as reals, the powers in double */
        h.bc1 = (float)(1 - pow((double)(float)h.b1, t));
        h.bc2 = (float)(1 - pow((double)(float)h.b2, t));
        h.decay = (float)(1 - h.lr * h.wd);
    } else {
        h.bc1 = 1 - pow(h.b1, t);
        h.bc2 = 1 - pow(h.b2, t);
        h.decay = 1 - h.lr * h.wd;
    }
    return h;
}

static int is_adam(const Hyper *h)
{
    return h->opt == NNC_OPT_ADAM || h->opt == NNC_OPT_ADAMW;
}

/* The step of |w| under adam with gradient bound G, new state bounds in s0, s1. */
static double adam_bound(const Hyper *h, double G, double *s0, double *s1)
{
    *s0 = h->b1 * *s0 + (1 - h->b1) * G;
    *s1 = h->b2 * *s1 + (1 - h->b2) * G * G;
    double ratio = h->eps > 0 ? *s0 / h->bc1 / h->eps : INFINITY;
    if (h->b1 * h->b1 < h->b2) { /* |m| <= K sqrt(v) for EMAs of one sequence; twice for rounding */
        double k = (1 - h->b1) / sqrt((1 - h->b2) * (1 - h->b1 * h->b1 / h->b2));
        double cs = 2 * k * sqrt(h->bc2) / h->bc1;
        ratio = cs < ratio ? cs : ratio;
    }
    return fabs(h->lr) * ratio;
}

/* |g| / (sqrt(s) + eps) where s holds c g^2 or more: at most G / eps and 1 / sqrt(c)
 * (twice, for rounding). */
static double scaled_bound(double G, double eps, double c)
{
    double a = G / eps, b = c > 0 ? 2 / sqrt(c) : INFINITY;
    return a < b ? a : b;
}

/* The new bounds of param i after a step with gradient bound G; false when some bound
 * reaches limit (or is not a number), and the step must be checked exactly. */
static int bound_step(const Hyper *h, double limit, double G, double *bw, double *bs0, double *bs1)
{
    double d, s0 = *bs0, s1 = *bs1, w = *bw;
    if (h->opt == NNC_OPT_ADAMW)
        w *= fabs(h->decay);
    else
        G += h->wd * w; /* weight decay added to the gradient */
    if (is_adam(h)) {
        d = adam_bound(h, G, &s0, &s1);
    } else if (h->opt == NNC_OPT_RMSPROP) {
        s0 = h->alpha * s0 + (1 - h->alpha) * G * G;
        double u = scaled_bound(G, h->eps, 1 - h->alpha);
        if (h->mu != 0)
            u = s1 = fabs(h->mu) * s1 + u;
        d = fabs(h->lr) * u;
    } else if (h->opt == NNC_OPT_ADAGRAD) {
        s0 += G * G;
        d = fabs(h->lr) * scaled_bound(G, h->eps, 1);
    } else if (h->mu != 0) {
        s0 = fabs(h->mu) * s0 + G;
        d = fabs(h->lr) * (h->nesterov ? G + fabs(h->mu) * s0 : s0);
    } else {
        d = fabs(h->lr) * G;
    }
    w += d;
    if (!(w < limit && s0 < limit && s1 < limit))
        return 0;
    *bw = w;
    *bs0 = s0;
    *bs1 = s1;
    return 1;
}

/* ---- the exact check: the generated rule's arithmetic, nothing stored ---- */

typedef struct Maxima {
    double w, s0, s1;
} Maxima;

/* One element's step in the generated rule's order (cg_optim.c): the new w, the new
 * states in *a, *b. */
#define RULE_STEP(NAME, REAL, SQRT)                                                           \
    static REAL NAME(const Hyper *h, REAL w, REAL d, REAL s0, REAL s1, REAL *a, REAL *b)      \
    {                                                                                         \
        REAL lr = (REAL)h->lr, mu = (REAL)h->mu, eps = (REAL)h->eps;                          \
        if (h->opt == NNC_OPT_ADAMW && h->wd != 0)                                            \
            w = w * (REAL)h->decay;                                                           \
        else if (h->wd != 0)                                                                  \
            d = d + (REAL)h->wd * w;                                                          \
        if (is_adam(h)) {                                                                     \
            REAL b1 = (REAL)h->b1, b2 = (REAL)h->b2;                                          \
            *a = b1 * s0 + ((REAL)1 - b1) * d;                                                \
            *b = b2 * s1 + ((REAL)1 - b2) * d * d;                                            \
            REAL mhat = *a / (REAL)h->bc1, vhat = *b / (REAL)h->bc2;                          \
            return w - lr * mhat / (SQRT(vhat) + eps);                                        \
        }                                                                                     \
        if (h->opt == NNC_OPT_RMSPROP) {                                                      \
            REAL al = (REAL)h->alpha;                                                         \
            *a = al * s0 + ((REAL)1 - al) * d * d;                                            \
            d = d / (SQRT(*a) + eps);                                                         \
            if (mu != 0)                                                                      \
                d = *b = mu * s1 + d;                                                         \
        } else if (h->opt == NNC_OPT_ADAGRAD) {                                               \
            *a = s0 + d * d;                                                                  \
            d = d / (SQRT(*a) + eps);                                                         \
        } else if (mu != 0) {                                                                 \
            *a = mu * s0 + d;                                                                 \
            d = h->nesterov ? d + mu * *a : *a;                                               \
        }                                                                                     \
        return w - lr * d;                                                                    \
    }
RULE_STEP(rule_step_f32, float, sqrtf)
RULE_STEP(rule_step_f64, double, sqrt)

#define DRY_RUN(NAME, REAL, STEP)                                                             \
    static int NAME(const Hyper *h, int size, const REAL *w, const REAL *g, const REAL *s0,  \
                    const REAL *s1, Maxima *mx)                                               \
    {                                                                                         \
        Maxima m = {0, 0, 0};                                                                 \
        for (int j = 0; j < size; j++) {                                                      \
            REAL a = 0, b = 0;                                                                \
            REAL nw = STEP(h, w[j], g[j], s0 ? s0[j] : 0, s1 ? s1[j] : 0, &a, &b);            \
            if (!isfinite(nw) || !isfinite(a) || !isfinite(b))                                \
                return 0;                                                                     \
            m.w = fmax(m.w, fabs((double)nw));                                                \
            m.s0 = fmax(m.s0, fabs((double)a));                                               \
            m.s1 = fmax(m.s1, fabs((double)b));                                               \
        }                                                                                     \
        *mx = m;                                                                              \
        return 1;                                                                             \
    }
DRY_RUN(dry_run_f32, float, rule_step_f32)
DRY_RUN(dry_run_f64, double, rule_step_f64)

/* The states the rule reads (allocated zeroed on first use, as the step would). */
static void states(NncRun *run, const Hyper *h, int i, void **s0, void **s1)
{
    int one = is_adam(h) || h->opt == NNC_OPT_RMSPROP || h->opt == NNC_OPT_ADAGRAD || h->mu != 0;
    int two = is_adam(h) || (h->opt == NNC_OPT_RMSPROP && h->mu != 0);
    *s0 = one ? nnc_rt_state(run, i, 0) : NULL;
    *s1 = two ? nnc_rt_state(run, i, 1) : NULL;
}

static int exact_step(NncRun *run, const Hyper *h, int i)
{
    RtGuard *g = run->guard;
    int size = run->m->params[i].size;
    void *s0, *s1;
    states(run, h, i, &s0, &s1);
    Maxima mx;
    int ok = run->rs == 4
        ? dry_run_f32(h, size, run->param[i], run->grad[i], s0, s1, &mx)
        : dry_run_f64(h, size, run->param[i], run->grad[i], s0, s1, &mx);
    if (ok) {
        g->bw[i] = mx.w;
        g->bs0[i] = mx.s0;
        g->bs1[i] = mx.s1;
    }
    return ok;
}

/* ---- the two ways in ---- */

static double limit_of(const NncRun *run)
{
    return (run->rs == 4 ? FLT_MAX : DBL_MAX) / 4;
}

int nnc_rt_update_safe(NncRun *run)
{
    RtGuard *g = run->guard;
    Hyper h = hyper(run);
    double limit = limit_of(run);
    int np = run->m->nparams;
    for (int i = 0; i < np; i++) { /* all or none: trial bounds first */
        double bw = g->bw[i], s0 = g->bs0[i], s1 = g->bs1[i];
        if (!bound_step(&h, limit, g->gmax[i], &bw, &s0, &s1))
            return 0;
    }
    for (int i = 0; i < np; i++)
        bound_step(&h, limit, g->gmax[i], &g->bw[i], &g->bs0[i], &g->bs1[i]);
    g->steps++;
    g->stepped = 1;
    return 1;
}

int rt_guard_step(NncRun *run)
{
    RtGuard *g = run->guard;
    if (g->stepped) { /* the step applied it, after nnc_rt_update_safe */
        g->stepped = 0;
        return -1;
    }
    Hyper h = hyper(run);
    double limit = limit_of(run);
    /* A bound committed before a later param fails does not matter: the run stops. */
    for (int i = 0; i < run->m->nparams; i++)
        if (!bound_step(&h, limit, g->gmax[i], &g->bw[i], &g->bs0[i], &g->bs1[i]) &&
            !exact_step(run, &h, i))
            return i;
    g->steps++;
    return -1;
}

long long rt_guard_steps(const NncRun *run)
{
    return run->guard ? run->guard->steps : run->steps0;
}

int rt_guard_stepped(const NncRun *run)
{
    return run->guard && run->guard->stepped;
}
