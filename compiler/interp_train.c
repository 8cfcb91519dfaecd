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

/* ---- the optimizer step (spec 8, 10: as PyTorch 1.13) ----
 * The step reads the gradient back from nnc_rt_grad, rounded to the run's reals, so it
 * moves the weights by exactly the gradient the runtime reports (--log's grad norms); the
 * runtime has clipped it already. Maths in f64, written plainly from PyTorch's
 * definitions (not from cg_optim.c's code), so that the two check each other. */

typedef struct Hyper {
    const NncModelDesc *m;
    double lr, bc1, bc2;
} Hyper;

/* The update of one element: w and the states in, the new ones out. */
static double step_one(const Hyper *h, double w, double g, double *s0, double *s1)
{
    const NncModelDesc *m = h->m;
    if (m->opt == NNC_OPT_ADAMW)
        w *= 1 - h->lr * m->weight_decay; /* decoupled */
    else
        g += m->weight_decay * w;
    switch (m->opt) {
    case NNC_OPT_ADAM:
    case NNC_OPT_ADAMW:
        *s0 = m->beta1 * *s0 + (1 - m->beta1) * g;
        *s1 = m->beta2 * *s1 + (1 - m->beta2) * g * g;
        return w - h->lr * (*s0 / h->bc1) / (sqrt(*s1 / h->bc2) + m->eps);
    case NNC_OPT_RMSPROP: {
        *s0 = m->alpha * *s0 + (1 - m->alpha) * g * g;
        double u = g / (sqrt(*s0) + m->eps);
        if (m->momentum != 0)
            u = *s1 = m->momentum * *s1 + u;
        return w - h->lr * u;
    }
    case NNC_OPT_ADAGRAD:
        *s0 += g * g;
        return w - h->lr * g / (sqrt(*s0) + m->eps);
    default:
        if (m->momentum == 0)
            return w - h->lr * g;
        *s0 = m->momentum * *s0 + g;
        return w - h->lr * (m->nesterov ? g + m->momentum * *s0 : *s0);
    }
}

static void param_step(NncRun *run, const Hyper *h, int i, size_t size)
{
    int rs = trainer_of(run)->real_size;
    void *w = nnc_rt_param(run, i), *gbuf = nnc_rt_grad(run, i);
    void *s0 = nnc_rt_state(run, i, 0), *s1 = nnc_rt_state(run, i, 1);
    for (size_t k = 0; k < size; k++) {
        double a = get_real(s0, rs, k), b = get_real(s1, rs, k);
        double nw = step_one(h, get_real(w, rs, k), get_real(gbuf, rs, k), &a, &b);
        put_real(s0, rs, k, a);
        put_real(s1, rs, k, b);
        put_real(w, rs, k, nw);
    }
}

static void optimizer_step(NncRun *run)
{
    Trainer *tr = trainer_of(run);
    const NncModelDesc *m = nnc_rt_model(run);
    tr->step++;
    Hyper h = {m, nnc_rt_real(run, NNC_LR), 1 - pow(m->beta1, (double)tr->step),
               1 - pow(m->beta2, (double)tr->step)};
    for (int i = 0; i < tr->p->nparams; i++)
        param_step(run, &h, i, param_size(tr->p, i));
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
    tr->step = nnc_rt_int(run, NNC_STEPS);
    for (int e = nnc_rt_int(run, NNC_FIRST_EPOCH); e < epochs; e++) {
        int nb = nnc_rt_epoch_begin(run, e);
        for (int b = nnc_rt_int(run, NNC_FIRST_BATCH); b < nb; b++) {
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
