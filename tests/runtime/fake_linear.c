/* fake_linear.c - a hand-written stand-in for what nnc generates, to test the runtime
 * library before (and apart from) the code generator. One linear layer
 *     u = W @ x + h.b,  z = s * u,  y = act(z)
 * with params W[OUT, IN], h.b[OUT] and the scalar s, trained through the nnc_rt.h protocol
 * with the spec's optimizers. The variant (-DFAKE_LOGIC, ...) picks loss, precision,
 * optimizer and data source:
 *   LOGIC    f32, bce(sigmoid) computed naively (a huge lr reaches log(0)), sgd, inline OR
 *   LOGIC64  the same in f64 with sgd momentum
 *   REG      f32, mse regression x[3] -> t[2], sgd momentum, csv with header (+ test)
 *   CLS      f32, cross_entropy(softmax), x[1,2,2] -> t[3], sgd, idx (gzipped images)
 *   CLS_CSV  the same with adam and csv(label = true) */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnc_rt.h"

enum { LOSS_MSE, LOSS_BCE, LOSS_CE };

#if defined(FAKE_LOGIC) || defined(FAKE_LOGIC64)
#define IN 2
#define OUT 1
#define LOSS LOSS_BCE
#define IN_RANK 1, {2}
#define TGT_RANK 1, {1}
#define W_INIT NNC_INIT_XAVIER, 0, 0
#define B_INIT NNC_INIT_ZEROS, 0, 0
static const double or_x[] = {0, 0, 0, 1, 1, 0, 1, 1, 1, 1};
static const double or_t[] = {0, 1, 1, 1, 1};
#define DATA {NNC_SRC_INLINE, NULL, NULL, 0, 0, 5, or_x, or_t}
#define TEST {NNC_SRC_NONE, NULL, NULL, 0, 0, 0, NULL, NULL}
#define EPOCHS 40
#define BATCH 3
#define SEED 1
#define BASE_DIR "."
#ifdef FAKE_LOGIC64
#define NAME "logic64"
#define REAL double
#define OPT NNC_OPT_SGD, 0.5, 0.9
#else
#define NAME "logic"
#define REAL float
#define OPT NNC_OPT_SGD, 0.5, 0.0
#endif
#elif defined(FAKE_REG)
#define NAME "reg"
#define REAL float
#define IN 3
#define OUT 2
#define LOSS LOSS_MSE
#define IN_RANK 1, {3}
#define TGT_RANK 1, {2}
#define W_INIT NNC_INIT_HE, 0, 0
#define B_INIT NNC_INIT_UNIFORM, -0.1, 0.1
#define DATA {NNC_SRC_CSV, "lin.csv", NULL, 1, 0, 0, NULL, NULL}
#define TEST {NNC_SRC_CSV, "lin_test.csv", NULL, 1, 0, 0, NULL, NULL}
#define EPOCHS 30
#define BATCH 8
#define SEED 5
#define BASE_DIR "data"
#define OPT NNC_OPT_SGD, 0.02, 0.9
#elif defined(FAKE_CLS) || defined(FAKE_CLS_CSV)
#define REAL float
#define IN 4
#define OUT 3
#define LOSS LOSS_CE
#define IN_RANK 3, {1, 2, 2}
#define TGT_RANK 1, {3}
#define W_INIT NNC_INIT_NORMAL, 0, 0.1
#define B_INIT NNC_INIT_ZEROS, 0, 0
#define TEST {NNC_SRC_NONE, NULL, NULL, 0, 0, 0, NULL, NULL}
#define EPOCHS 20
#define BATCH 16
#define SEED 2
#ifdef FAKE_CLS
#define NAME "cls"
#define DATA {NNC_SRC_IDX, "img.idx.gz", "lab.idx", 0, 0, 0, NULL, NULL}
#define BASE_DIR "data"
#define OPT NNC_OPT_SGD, 0.5, 0.0
#else
#define NAME "cls_csv"
#define DATA {NNC_SRC_CSV, "cls.csv", NULL, 0, 1, 0, NULL, NULL}
#define BASE_DIR "."
#define OPT NNC_OPT_ADAM, 0.05, 0.0
#endif
#else
#error "pick a variant: -DFAKE_LOGIC, -DFAKE_LOGIC64, -DFAKE_REG, -DFAKE_CLS, -DFAKE_CLS_CSV"
#endif

enum { P_W, P_B, P_S };

/* Forward and (when grads are given) backward for one sample; returns its loss. */
static double sample(const REAL *W, const REAL *b, REAL s, const REAL *x, const REAL *t,
                     REAL *y, double *gW, double *gb, double *gs, double scale)
{
    double u[OUT], z[OUT], dz[OUT], loss = 0, zmax = -INFINITY, sum = 0;
    for (int o = 0; o < OUT; o++) {
        u[o] = b[o];
        for (int i = 0; i < IN; i++)
            u[o] += (double)W[o * IN + i] * x[i];
        z[o] = s * u[o];
        zmax = z[o] > zmax ? z[o] : zmax;
    }
    for (int o = 0; o < OUT; o++)
        sum += exp(z[o] - zmax);
    for (int o = 0; o < OUT; o++) {
        if (LOSS == LOSS_MSE) {
            y[o] = (REAL)z[o];
            loss += (z[o] - t[o]) * (z[o] - t[o]) / OUT;
            dz[o] = 2 * (z[o] - t[o]) / OUT;
        } else if (LOSS == LOSS_BCE) {
            REAL p = (REAL)(1 / (1 + exp(-z[o])));
            y[o] = p;
            loss -= (t[o] * log(p) + (1 - t[o]) * log(1 - p)) / OUT;
            dz[o] = ((double)p - t[o]) / OUT;
        } else {
            double logp = z[o] - zmax - log(sum);
            y[o] = (REAL)exp(logp);
            loss -= t[o] * logp;
            dz[o] = exp(logp) - t[o];
        }
    }
    for (int o = 0; gW && o < OUT; o++) {
        for (int i = 0; i < IN; i++)
            gW[o * IN + i] += scale * dz[o] * s * x[i];
        gb[o] += scale * dz[o] * s;
        *gs += scale * dz[o] * u[o];
    }
    return loss;
}

static double forward(NncRun *run, const REAL *x, const REAL *t, int n, REAL *pred, double *g)
{
    const REAL *W = nnc_rt_param(run, P_W), *b = nnc_rt_param(run, P_B);
    REAL s = *(const REAL *)nnc_rt_param(run, P_S);
    double loss = 0;
    for (int k = 0; k < n; k++)
        loss += sample(W, b, s, x + k * IN, t + k * OUT, pred + k * OUT, g,
                       g ? g + OUT * IN : NULL, g ? g + OUT * IN + OUT : NULL, 1.0 / n);
    return loss;
}

static const int sizes[3] = {OUT * IN, OUT, 1};

static void step(NncRun *run, long t)
{
    const NncModelDesc *m = nnc_rt_model(run);
    double lr = nnc_rt_real(run, NNC_LR), mu = nnc_rt_real(run, NNC_MOMENTUM);
    double b1 = nnc_rt_real(run, NNC_BETA1), b2 = nnc_rt_real(run, NNC_BETA2);
    double eps = nnc_rt_real(run, NNC_EPS);
    for (int i = 0; i < 3; i++) {
        REAL *w = nnc_rt_param(run, i), *g = nnc_rt_grad(run, i);
        REAL *v0 = nnc_rt_state(run, i, 0), *v1 = nnc_rt_state(run, i, 1);
        for (int j = 0; j < sizes[i]; j++) {
            if (m->opt == NNC_OPT_ADAM) {
                v0[j] = (REAL)(b1 * v0[j] + (1 - b1) * g[j]);
                v1[j] = (REAL)(b2 * v1[j] + (1 - b2) * g[j] * g[j]);
                double mh = v0[j] / (1 - pow(b1, (double)t)), vh = v1[j] / (1 - pow(b2, (double)t));
                w[j] -= (REAL)(lr * mh / (sqrt(vh) + eps));
            } else if (mu > 0) {
                v0[j] = (REAL)(mu * v0[j] + g[j]);
                w[j] -= (REAL)(lr * v0[j]);
            } else {
                w[j] -= (REAL)(lr * g[j]);
            }
        }
    }
}

static void count_slice(void *ctx, long long lo, long long hi)
{
    (void)lo;
    (void)hi;
    atomic_fetch_add((atomic_int *)ctx, 1);
}

/* FAKE_SLICES in the environment: prints the slices a large job is split into, one a thread
 * of the pool (test_runtime checks the --threads cap with it). */
static void report_slices(NncRun *run)
{
    atomic_int n = 0;
    nnc_rt_parallel(run, 1 << 20, 1e12, count_slice, &n);
    printf("slices %d\n", atomic_load(&n));
}

static void train(NncRun *run)
{
    int epochs = nnc_rt_int(run, NNC_EPOCHS), batch = nnc_rt_int(run, NNC_BATCH);
    long t = 0;
    if (getenv("FAKE_SLICES"))
        report_slices(run);
    for (int e = 0; e < epochs; e++) {
        int nb = nnc_rt_epoch_begin(run, e);
        for (int b = 0; b < nb; b++) {
            const void *x, *tg;
            int n = nnc_rt_batch(run, b, &x, &tg);
            REAL *pred = nnc_rt_workspace(run, sizeof(REAL) * (size_t)(batch * OUT));
            double g[OUT * IN + OUT + 1] = {0};
            double loss = forward(run, x, tg, n, pred, g);
            for (int i = 0, at = 0; i < 3; i++)
                for (int j = 0; j < sizes[i]; j++)
                    ((REAL *)nnc_rt_grad(run, i))[j] = (REAL)g[at++];
            if (nnc_rt_batch_end(run, b, loss, pred, n))
                return;
            step(run, ++t);
        }
        nnc_rt_epoch_end(run, e);
    }
}

static double evaluate(NncRun *run, const void *x, const void *t, int n, void *pred)
{
    return forward(run, x, t, n, pred, NULL);
}

static const NncParamDesc params[3] = {
    {"W", 2, {OUT, IN}, OUT * IN, W_INIT},
    {"h.b", 1, {OUT}, OUT, B_INIT},
    {"s", 0, {0}, 1, NNC_INIT_ONES, 0, 0},
};

const NncModelDesc nnc_model = {
    .name = NAME,
    .base_dir = BASE_DIR,
    .real_size = sizeof(REAL),
    .in_rank = IN_RANK,
    .in_size = IN,
    .tgt_rank = TGT_RANK,
    .tgt_size = OUT,
    .out_size = OUT,
    .nparams = 3,
    .params = params,
    .epochs = EPOCHS,
    .batch = BATCH,
    .opt = OPT,
    .beta1 = 0.9,
    .beta2 = 0.999,
    .eps = 1e-8,
    .seed = SEED,
    .shuffle = 1,
    .data = DATA,
    .test = TEST,
    .train = train,
    .evaluate = evaluate,
};
