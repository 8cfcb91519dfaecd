/* interp_train.c - `nnc --interp`: the executable's training program with the reference
 * interpreter in place of generated code.
 *
 * The runtime (nnc_main) owns the command line, data, weights and reporting, exactly as
 * for a compiled model; the two functions here follow the protocol of nnc_rt.h the way
 * generated code must, so the compiled code can be differential-tested against them.
 * Maths in f64; params, gradients and predictions are stored as the run's reals. */
#include "interp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "arena.h"
#include "desc.h"
#include "nnc_rt.h"

typedef struct Trainer {
    const IrProgram *p;
    int real_size;
    Interp in;
    double **w;     /* f64 copy of each param's weights for the current batch */
    double **g;     /* the batch's summed, then mean, gradient of each param */
    double *x, *t;  /* one sample in f64 */
    void *pred;     /* a batch of predictions, as reals */
    int pred_cap;   /* samples pred holds */
    long long step; /* adam's t: optimizer steps taken, across epochs */
    NncRun *run;    /* while training a batch: the run and sample whose dropout masks to draw */
    int sample;
} Trainer;

/* ---- reals (float or double) to and from f64 ---- */

static double get_real(const void *buf, int real_size, size_t i)
{
    return real_size == 4 ? (double)((const float *)buf)[i] : ((const double *)buf)[i];
}

static void put_real(void *buf, int real_size, size_t i, double v)
{
    if (real_size == 4)
        ((float *)buf)[i] = (float)v;
    else
        ((double *)buf)[i] = v;
}

static void load(const void *src, int real_size, size_t first, size_t n, double *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = get_real(src, real_size, first + i);
}

static void store(void *dst, int real_size, size_t first, size_t n, const double *src)
{
    for (size_t i = 0; i < n; i++)
        put_real(dst, real_size, first + i, src[i]);
}

/* ---- the trainer's state ---- */

static size_t param_size(const IrProgram *p, int i)
{
    return (size_t)shape_size(p->params[i].shape);
}

static size_t node_size(const IrProgram *p, int id)
{
    return (size_t)shape_size(p->nodes[id].shape);
}

static void trainer_init(Trainer *tr, const IrProgram *p, int real_size)
{
    tr->p = p;
    tr->real_size = real_size;
    interp_init(&tr->in, p);
    tr->w = interp_calloc((size_t)p->nparams, sizeof *tr->w);
    tr->g = interp_calloc((size_t)p->nparams, sizeof *tr->g);
    for (int i = 0; i < p->nparams; i++) {
        tr->w[i] = interp_calloc(param_size(p, i), sizeof **tr->w);
        tr->g[i] = interp_calloc(param_size(p, i), sizeof **tr->g);
    }
    tr->x = interp_calloc(node_size(p, p->input), sizeof *tr->x);
    tr->t = p->target >= 0 ? interp_calloc(node_size(p, p->target), sizeof *tr->t) : NULL;
}

static void trainer_free(Trainer *tr)
{
    for (int i = 0; i < tr->p->nparams; i++) {
        free(tr->w[i]);
        free(tr->g[i]);
    }
    free(tr->w);
    free(tr->g);
    free(tr->x);
    free(tr->t);
    free(tr->pred);
    interp_free(&tr->in);
}

static Trainer *trainer_of(NncRun *run)
{
    /* ctx is const in the descriptor because generated code shares it read-only; the
     * object behind it is interp_main's own, mutable Trainer. */
    return (Trainer *)nnc_rt_model(run)->ctx;
}

static void load_weights(Trainer *tr, NncRun *run)
{
    for (int i = 0; i < tr->p->nparams; i++)
        load(nnc_rt_param(run, i), tr->real_size, 0, param_size(tr->p, i), tr->w[i]);
}

/* Sample s of a batch: forward (and backward when with_grad); returns its loss and
 * stores its prediction as reals into pred. t is NULL when the model has no target: its
 * loss (an autoencoder's, say) is computed all the same. */
static double run_sample(Trainer *tr, const void *x, const void *t, int s, void *pred,
                         bool with_grad)
{
    const IrProgram *p = tr->p;
    size_t in_size = node_size(p, p->input), out_size = node_size(p, p->output);
    load(x, tr->real_size, (size_t)s * in_size, in_size, tr->x);
    bool has_t = t && p->target >= 0;
    if (has_t) {
        size_t t_size = node_size(p, p->target);
        load(t, tr->real_size, (size_t)s * t_size, t_size, tr->t);
    }
    interp_run(&tr->in, tr->x, has_t ? tr->t : NULL, (const double *const *)tr->w,
               with_grad ? p->nnodes : p->nforward);
    store(pred, tr->real_size, (size_t)s * out_size, out_size, tr->in.val[p->output]);
    return interp_loss(&tr->in);
}

static void *pred_buffer(Trainer *tr, int n)
{
    if (n > tr->pred_cap) {
        free(tr->pred);
        tr->pred = interp_calloc((size_t)n * node_size(tr->p, tr->p->output), (size_t)tr->real_size);
        tr->pred_cap = n;
    }
    return tr->pred;
}

/* ---- the optimizer step (spec 8: as PyTorch) ----
 * The step reads the gradient back from nnc_rt_grad, rounded to the run's reals, so it
 * moves the weights by exactly the gradient the runtime reports (--log's grad norms). */

static void sgd_step(NncRun *run, int i, size_t size, double lr)
{
    Trainer *tr = trainer_of(run);
    double mu = nnc_rt_real(run, NNC_MOMENTUM);
    void *w = nnc_rt_param(run, i), *gbuf = nnc_rt_grad(run, i);
    void *vbuf = mu != 0 ? nnc_rt_state(run, i, 0) : NULL;
    for (size_t k = 0; k < size; k++) {
        double g = get_real(gbuf, tr->real_size, k), d = g;
        if (vbuf) {
            /* v = mu*v + g; w -= lr*v */
            d = mu * get_real(vbuf, tr->real_size, k) + g;
            put_real(vbuf, tr->real_size, k, d);
        }
        put_real(w, tr->real_size, k, get_real(w, tr->real_size, k) - lr * d);
    }
}

static void adam_step(NncRun *run, int i, size_t size, double lr, long long t)
{
    Trainer *tr = trainer_of(run);
    int rs = tr->real_size;
    double b1 = nnc_rt_real(run, NNC_BETA1), b2 = nnc_rt_real(run, NNC_BETA2);
    double eps = nnc_rt_real(run, NNC_EPS);
    double c1 = 1 - pow(b1, (double)t), c2 = 1 - pow(b2, (double)t);
    void *w = nnc_rt_param(run, i), *gbuf = nnc_rt_grad(run, i);
    void *mbuf = nnc_rt_state(run, i, 0), *vbuf = nnc_rt_state(run, i, 1);
    for (size_t k = 0; k < size; k++) {
        double g = get_real(gbuf, rs, k);
        double m = b1 * get_real(mbuf, rs, k) + (1 - b1) * g;
        double v = b2 * get_real(vbuf, rs, k) + (1 - b2) * g * g;
        put_real(mbuf, rs, k, m);
        put_real(vbuf, rs, k, v);
        double mhat = m / c1, vhat = v / c2;
        put_real(w, rs, k, get_real(w, rs, k) - lr * mhat / (sqrt(vhat) + eps));
    }
}

static void optimizer_step(NncRun *run)
{
    Trainer *tr = trainer_of(run);
    double lr = nnc_rt_real(run, NNC_LR);
    bool adam = nnc_rt_model(run)->opt == NNC_OPT_ADAM;
    tr->step++;
    for (int i = 0; i < tr->p->nparams; i++) {
        if (adam)
            adam_step(run, i, param_size(tr->p, i), lr, tr->step);
        else
            sgd_step(run, i, param_size(tr->p, i), lr);
    }
}

/* ---- the two functions of the descriptor ---- */

/* A dropout mask of the training sample being run, from the runtime, as generated code has it. */
static void train_mask(void *ctx, const IrNode *n, double *out)
{
    const Trainer *tr = ctx;
    nnc_rt_dropout_f64(tr->run, n->index, tr->sample, n->num, shape_size(n->shape), out);
}

/* Forward and backward over batch b: loss_sum, predictions, and the batch's mean
 * gradient written to nnc_rt_grad (zeros for params the loss does not depend on). */
static double train_batch(NncRun *run, const void *x, const void *t, int n, void *pred)
{
    Trainer *tr = trainer_of(run);
    const IrProgram *p = tr->p;
    load_weights(tr, run);
    for (int i = 0; i < p->nparams; i++)
        for (size_t k = 0; k < param_size(p, i); k++)
            tr->g[i][k] = 0;
    double loss_sum = 0;
    tr->run = run;
    tr->in.mask = train_mask; /* dropout on while training; evaluation runs with it off */
    tr->in.mask_ctx = tr;
    for (int s = 0; s < n; s++) {
        tr->sample = s;
        loss_sum += run_sample(tr, x, t, s, pred, true);
        for (int i = 0; i < p->nparams; i++)
            if (p->params[i].grad >= 0)
                for (size_t k = 0; k < param_size(p, i); k++)
                    tr->g[i][k] += tr->in.val[p->params[i].grad][k];
    }
    tr->in.mask = NULL;
    for (int i = 0; i < p->nparams; i++) {
        for (size_t k = 0; k < param_size(p, i); k++)
            tr->g[i][k] /= n;
        store(nnc_rt_grad(run, i), tr->real_size, 0, param_size(p, i), tr->g[i]);
    }
    return loss_sum;
}

static void interp_train(NncRun *run)
{
    Trainer *tr = trainer_of(run);
    int epochs = nnc_rt_int(run, NNC_EPOCHS);
    tr->step = 0;
    for (int e = 0; e < epochs; e++) {
        int nb = nnc_rt_epoch_begin(run, e);
        for (int b = 0; b < nb; b++) {
            const void *x, *t;
            int n = nnc_rt_batch(run, b, &x, &t);
            void *pred = pred_buffer(tr, n);
            double loss_sum = train_batch(run, x, t, n, pred);
            if (nnc_rt_batch_end(run, b, loss_sum, pred, n))
                return;
            optimizer_step(run);
        }
        nnc_rt_epoch_end(run, e);
    }
}

static double interp_evaluate(NncRun *run, const void *x, const void *t, int n, void *pred)
{
    Trainer *tr = trainer_of(run);
    load_weights(tr, run);
    double loss_sum = 0;
    for (int s = 0; s < n; s++)
        loss_sum += run_sample(tr, x, t, s, pred, false);
    return loss_sum;
}

int interp_main(const IrProgram *p, const Model *m, const char *source_path, int real_size,
                int argc, char **argv)
{
    Arena *a = arena_new();
    Trainer tr = {0};
    trainer_init(&tr, p, real_size);
    NncModelDesc desc;
    desc_build(&desc, p, m, real_size, source_path, a);
    desc.train = interp_train;
    desc.evaluate = interp_evaluate;
    desc.ctx = &tr;
    /* nnc_main expects argv[0] to be the program's name, as the executable's main gets it. */
    char **args = interp_calloc((size_t)argc + 2, sizeof *args);
    args[0] = (char *)m->name;
    for (int i = 0; i < argc; i++)
        args[i + 1] = argv[i];
    int status = nnc_main(argc + 1, args, &desc);
    free(args);
    trainer_free(&tr);
    arena_free(a);
    return status;
}
