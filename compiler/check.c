/* check.c - `nnc --check`: every param's symbolic gradient against central differences.
 *
 * The objective is the mean per-sample loss over up to 4 samples, evaluated by the
 * reference interpreter in f64. The symbolic gradient is the mean of the per-sample
 * params[i].grad values. An element passes when |g - g_fd| <= 1e-5 * max(1, |g|, |g_fd|);
 * an element whose finite-difference step moves the input of a kink (relu, abs,
 * leaky_relu, step, sign) across 0, or switches the maximum of a maxpool window, for some
 * sample is skipped and counted: there the difference quotient measures the kink, not the
 * derivative. */
#include "check.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "desc.h"
#include "interp.h"
#include "nnc_rt.h"

enum {
    CHECK_SAMPLES = 4,
    /* Large params are checked on this many evenly spread elements (first and last
     * included): enough to catch a wrong rule, cheap enough for a 784x256 matrix. */
    CHECK_MAX_ELEMS = 64,
};
static const double CHECK_TOL = 1e-5;

typedef struct Checker {
    const IrProgram *p;
    Interp in;
    double **w;             /* params, perturbed one element at a time */
    int n;                  /* samples */
    const double *x, *t;
    size_t in_size, t_size;
    int *kinks;             /* forward nodes with a kink: at 0 in their input, or maxpool */
    int nkinks;
    size_t kink_elems;      /* their states per sample: an input's sign, a window's argmax */
    int32_t *sign_plus, *sign_minus; /* n * kink_elems states */
} Checker;

typedef struct ParamResult {
    double max_err;
    int checked, skipped, failed;
    bool nonfinite;
} ParamResult;

static size_t node_size(const IrProgram *p, int id)
{
    return (size_t)shape_size(p->nodes[id].shape);
}

static size_t param_size(const IrProgram *p, int i)
{
    return (size_t)shape_size(p->params[i].shape);
}

static bool has_kink(IrOp op)
{
    return ir_op_info(op)->kink;
}

/* How many states kink node id has: one per window for maxpool, else one per input element. */
static size_t kink_states(const IrProgram *p, int id)
{
    return node_size(p, p->nodes[id].op == IR_MAXPOOL ? id : p->nodes[id].args[0]);
}

static void find_kinks(Checker *c)
{
    const IrProgram *p = c->p;
    c->kinks = interp_calloc((size_t)p->nforward, sizeof *c->kinks);
    for (int id = 0; id < p->nforward; id++)
        if (has_kink(p->nodes[id].op)) {
            c->kinks[c->nkinks++] = id;
            c->kink_elems += kink_states(p, id);
        }
    c->sign_plus = interp_calloc((size_t)c->n * c->kink_elems, sizeof *c->sign_plus);
    c->sign_minus = interp_calloc((size_t)c->n * c->kink_elems, sizeof *c->sign_minus);
}

static void checker_init(Checker *c, const IrProgram *p, const double *const *params, int n,
                         const double *x, const double *t)
{
    memset(c, 0, sizeof *c);
    c->p = p;
    c->n = n;
    c->x = x;
    c->t = p->target >= 0 ? t : NULL;
    c->in_size = node_size(p, p->input);
    c->t_size = p->target >= 0 ? node_size(p, p->target) : 0;
    interp_init(&c->in, p);
    c->w = interp_calloc((size_t)p->nparams, sizeof *c->w);
    for (int i = 0; i < p->nparams; i++) {
        c->w[i] = interp_calloc(param_size(p, i), sizeof **c->w);
        memcpy(c->w[i], params[i], param_size(p, i) * sizeof **c->w);
    }
    find_kinks(c);
}

static void checker_free(Checker *c)
{
    for (int i = 0; i < c->p->nparams; i++)
        free(c->w[i]);
    free(c->w);
    free(c->kinks);
    free(c->sign_plus);
    free(c->sign_minus);
    interp_free(&c->in);
}

static void run_sample(Checker *c, int s, int upto)
{
    interp_run(&c->in, c->x + (size_t)s * c->in_size,
               c->t ? c->t + (size_t)s * c->t_size : NULL, (const double *const *)c->w, upto);
}

/* Where each window of maxpool node id takes its maximum in sample s's run. */
static int32_t *record_argmax(Checker *c, int id, int32_t *out)
{
    const IrNode *n = &c->p->nodes[id];
    Shape as = c->p->nodes[n->args[0]].shape;
    const double *a = c->in.val[n->args[0]];
    for (int ch = 0; ch < n->shape.dims[0]; ch++)
        for (int oy = 0; oy < n->shape.dims[1]; oy++)
            for (int ox = 0; ox < n->shape.dims[2]; ox++)
                *out++ = (int32_t)interp_pool_argmax(n->win, as, a, ch, oy, ox);
    return out;
}

/* The states of every kink in sample s, after a forward run: the signs of its input, or
 * for maxpool where each window's maximum is. */
static void record_signs(Checker *c, int s, int32_t *signs)
{
    int32_t *out = signs + (size_t)s * c->kink_elems;
    for (int k = 0; k < c->nkinks; k++) {
        if (c->p->nodes[c->kinks[k]].op == IR_MAXPOOL) {
            out = record_argmax(c, c->kinks[k], out);
            continue;
        }
        int arg = c->p->nodes[c->kinks[k]].args[0];
        const double *v = c->in.val[arg];
        for (size_t e = 0, size = node_size(c->p, arg); e < size; e++)
            *out++ = v[e] > 0 ? 1 : v[e] < 0 ? -1 : 0;
    }
}

/* The mean loss over the samples at the current params; kink signs go to signs. */
static double objective(Checker *c, int32_t *signs)
{
    double sum = 0;
    for (int s = 0; s < c->n; s++) {
        run_sample(c, s, c->p->nforward);
        sum += interp_loss(&c->in);
        record_signs(c, s, signs);
    }
    return sum / c->n;
}

/* The mean over the samples of every param's symbolic gradient (zeros where none). */
static double **symbolic_gradients(Checker *c)
{
    const IrProgram *p = c->p;
    double **g = interp_calloc((size_t)p->nparams, sizeof *g);
    for (int i = 0; i < p->nparams; i++)
        g[i] = interp_calloc(param_size(p, i), sizeof **g);
    for (int s = 0; s < c->n; s++) {
        run_sample(c, s, p->nnodes);
        for (int i = 0; i < p->nparams; i++)
            if (p->params[i].grad >= 0)
                for (size_t k = 0; k < param_size(p, i); k++)
                    g[i][k] += c->in.val[p->params[i].grad][k] / c->n;
    }
    return g;
}

/* Central difference of the objective in element k of param i; false when the step
 * crosses a kink. */
static bool finite_difference(Checker *c, int i, size_t k, double *g_fd)
{
    double w = c->w[i][k], h = 1e-6 * fmax(1, fabs(w));
    double w_plus = w + h, w_minus = w - h;
    c->w[i][k] = w_plus;
    double plus = objective(c, c->sign_plus);
    c->w[i][k] = w_minus;
    double minus = objective(c, c->sign_minus);
    c->w[i][k] = w;
    if (memcmp(c->sign_plus, c->sign_minus, (size_t)c->n * c->kink_elems * sizeof *c->sign_plus) != 0)
        return false;
    /* The step actually taken: w +- h rounded to doubles. */
    *g_fd = (plus - minus) / (w_plus - w_minus);
    return true;
}

/* Element e of the count spread evenly over [0, size). */
static size_t pick(size_t e, size_t count, size_t size)
{
    return count == size ? e : e * (size - 1) / (count - 1);
}

static ParamResult check_param(Checker *c, int i, const double *g)
{
    ParamResult r = {0};
    size_t size = param_size(c->p, i);
    size_t count = size < CHECK_MAX_ELEMS ? size : CHECK_MAX_ELEMS;
    for (size_t e = 0; e < count; e++) {
        size_t k = pick(e, count, size);
        double g_fd;
        if (!finite_difference(c, i, k, &g_fd)) {
            r.skipped++;
            continue;
        }
        double scale = fmax(1, fmax(fabs(g[k]), fabs(g_fd)));
        double err = fabs(g[k] - g_fd) / scale;
        r.checked++;
        if (!isfinite(err)) {
            r.nonfinite = true;
            r.failed++;
            continue;
        }
        if (err > CHECK_TOL)
            r.failed++;
        r.max_err = fmax(r.max_err, err);
    }
    return r;
}

/* ---- the report ---- */

typedef struct Widths {
    int name, shape, checked;
} Widths;

static void checked_str(const IrProgram *p, int i, ParamResult r, char *buf, size_t cap)
{
    size_t size = param_size(p, i);
    if (size > CHECK_MAX_ELEMS)
        snprintf(buf, cap, "%d of %zu", r.checked, size);
    else
        snprintf(buf, cap, "%d", r.checked);
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

static Widths widths(const IrProgram *p, const ParamResult *r)
{
    Widths w = {0};
    char shape[SHAPE_STR_MAX], checked[48];
    for (int i = 0; i < p->nparams; i++) {
        checked_str(p, i, r[i], checked, sizeof checked);
        w.name = max_int(w.name, (int)strlen(p->params[i].name));
        w.shape = max_int(w.shape, (int)strlen(shape_str(p->params[i].shape, shape)));
        w.checked = max_int(w.checked, (int)strlen(checked));
    }
    return w;
}

/*   W1  [4, 2]  max rel error 1.2e-10  checked 8  skipped 0  ok */
static void print_result(FILE *out, const IrProgram *p, int i, Widths w, ParamResult r)
{
    char shape[SHAPE_STR_MAX], checked[48], err[16];
    checked_str(p, i, r, checked, sizeof checked);
    if (r.nonfinite)
        snprintf(err, sizeof err, "nan");
    else if (r.checked)
        snprintf(err, sizeof err, "%.1e", r.max_err);
    else
        snprintf(err, sizeof err, "-");
    fprintf(out, "  %-*s  %-*s  max rel error %-7s  checked %-*s  skipped %d  ", w.name,
            p->params[i].name, w.shape, shape_str(p->params[i].shape, shape), err, w.checked,
            checked, r.skipped);
    if (r.failed)
        fprintf(out, "FAIL (%d element%s)", r.failed, r.failed == 1 ? "" : "s");
    else
        fprintf(out, "ok");
    if (p->params[i].grad < 0)
        fprintf(out, r.failed ? " (no gradient, yet the loss depends on it)"
                              : " (no gradient: the loss does not depend on it)");
    fprintf(out, "\n");
}

/* The first sample (0-based) whose loss is NaN or infinite at the unperturbed params, or
 * -1. There a difference quotient is NaN whatever the gradient, so checking means nothing. */
static int nonfinite_sample(Checker *c, double *loss)
{
    for (int s = 0; s < c->n; s++) {
        run_sample(c, s, c->p->nforward);
        *loss = interp_loss(&c->in);
        if (!isfinite(*loss))
            return s;
    }
    return -1;
}

int check_program(const IrProgram *p, const double *const *params, int n, const double *x,
                  const double *t, FILE *out)
{
    Checker c;
    checker_init(&c, p, params, n, x, t);
    double loss;
    int bad = nonfinite_sample(&c, &loss);
    if (bad >= 0) {
        fprintf(out, "FAIL: the loss is %s at the check point (sample %d of %d), so finite "
                "differences cannot check the gradients\n", isnan(loss) ? "NaN" : "infinite",
                bad + 1, n);
        checker_free(&c);
        return 1;
    }
    double **g = symbolic_gradients(&c);
    ParamResult *r = interp_calloc((size_t)p->nparams, sizeof *r);
    for (int i = 0; i < p->nparams; i++) {
        r[i] = check_param(&c, i, g[i]);
        free(g[i]);
    }
    free(g);
    checker_free(&c);
    Widths w = widths(p, r);
    int failed = 0;
    for (int i = 0; i < p->nparams; i++) {
        print_result(out, p, i, w, r[i]);
        failed += r[i].failed > 0;
    }
    free(r);
    if (failed)
        fprintf(out, "FAIL: %d of %d params disagree with finite differences\n", failed,
                p->nparams);
    else
        fprintf(out, "ok: all %d params agree with finite differences (tolerance %.0e)\n",
                p->nparams, CHECK_TOL);
    return failed ? 1 : 0;
}

/* ---- samples and params for `nnc --check` ---- */

typedef struct Samples {
    int n;
    double *x, *t;
    const char *from;
} Samples;

/* splitmix64: a small, well-mixed generator, so random samples depend on the seed alone. */
static double uniform01(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

static void random_samples(const NncModelDesc *desc, Samples *s)
{
    uint64_t state = (uint64_t)desc->seed;
    s->n = CHECK_SAMPLES;
    s->x = interp_calloc((size_t)s->n * (size_t)desc->in_size, sizeof *s->x);
    s->t = interp_calloc((size_t)s->n * (size_t)desc->tgt_size, sizeof *s->t);
    for (size_t i = 0; i < (size_t)s->n * (size_t)desc->in_size; i++)
        s->x[i] = 2 * uniform01(&state) - 1;
    for (size_t i = 0; i < (size_t)s->n * (size_t)desc->tgt_size; i++)
        s->t[i] = uniform01(&state);
    s->from = "random inputs in [-1, 1] and targets in [0, 1)";
}

static void take_samples(const NncModelDesc *desc, int avail, const double *x,
                         const double *t, Samples *s)
{
    s->n = avail < CHECK_SAMPLES ? avail : CHECK_SAMPLES;
    size_t nx = (size_t)s->n * (size_t)desc->in_size, nt = (size_t)s->n * (size_t)desc->tgt_size;
    s->x = interp_calloc(nx, sizeof *s->x);
    s->t = interp_calloc(nt, sizeof *s->t);
    memcpy(s->x, x, nx * sizeof *s->x);
    if (t)
        memcpy(s->t, t, nt * sizeof *s->t);
    s->from = "the train data";
}

/* The first samples of the train data, or random ones when there is none.
 * False after a data error (the loader has printed it). */
static bool load_samples(const NncModelDesc *desc, Samples *s)
{
    const NncSourceDesc *src = &desc->data;
    if (src->kind == NNC_SRC_INLINE && src->nsamples > 0) {
        take_samples(desc, src->nsamples, src->x, src->t, s);
        return true;
    }
    if (src->kind != NNC_SRC_CSV && src->kind != NNC_SRC_IDX) {
        random_samples(desc, s);
        return true;
    }
    NncData data;
    if (nnc_load_data(src, desc->base_dir, desc->in_size, desc->tgt_size, 8, &data) != 0)
        return false;
    if (data.n > 0)
        take_samples(desc, data.n, data.x, desc->tgt_size ? data.t : NULL, s);
    else
        random_samples(desc, s);
    nnc_free_data(&data);
    return true;
}

static double **init_params(const NncModelDesc *desc)
{
    double **w = interp_calloc((size_t)desc->nparams, sizeof *w);
    for (int i = 0; i < desc->nparams; i++) {
        w[i] = interp_calloc((size_t)desc->params[i].size, sizeof **w);
        nnc_init_param(&desc->params[i], i, (unsigned long long)desc->seed, w[i]);
    }
    return w;
}

int check_gradients(const IrProgram *p, const Model *m, Diag *d, FILE *out)
{
    Arena *a = arena_new();
    NncModelDesc desc;
    desc_build(&desc, p, m, 8, d->path, a);
    Samples s = {0};
    int status = 1;
    if (load_samples(&desc, &s)) {
        double **w = init_params(&desc);
        fprintf(out, "gradient check of %s: %d sample%s from %s, params from their "
                "initialisers (seed %lld), f64\n", desc.name, s.n, s.n == 1 ? "" : "s",
                s.from, desc.seed);
        status = check_program(p, (const double *const *)w, s.n, s.x, s.t, out);
        for (int i = 0; i < desc.nparams; i++)
            free(w[i]);
        free(w);
    }
    free(s.x);
    free(s.t);
    arena_free(a);
    return status;
}
