/* interp.c - the reference interpreter: every IR node evaluated in f64 for one sample.
 *
 * Written to be obviously right rather than fast: one loop per op over row-major
 * buffers, the textbook formula, and the numerically stable form where one exists
 * (max subtracted before exp, softplus without overflow). Everything else in nnc,
 * the gradient check and the LLVM code generator, is tested against this file. */
#include "interp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t size_of(const IrNode *n)
{
    return (size_t)shape_size(n->shape);
}

void *interp_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fputs("nnc: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

void interp_init(Interp *in, const IrProgram *p)
{
    size_t total = 0;
    for (int i = 0; i < p->nnodes; i++)
        total += size_of(&p->nodes[i]);
    in->p = p;
    in->mask = NULL;
    in->mask_ctx = NULL;
    in->val = interp_calloc((size_t)p->nnodes, sizeof *in->val);
    in->store = interp_calloc(total, sizeof *in->store);
    size_t at = 0;
    for (int i = 0; i < p->nnodes; i++) {
        in->val[i] = in->store + at;
        at += size_of(&p->nodes[i]);
    }
}

void interp_free(Interp *in)
{
    free(in->val);
    free(in->store);
    in->val = NULL;
    in->store = NULL;
}

/* ---- scalar functions ---- */

double interp_softplus(double x)
{
    /* log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): the exp never overflows. */
    return fmax(x, 0) + log1p(exp(-fabs(x)));
}

double interp_sigmoid(double x)
{
    if (x >= 0)
        return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

double interp_unary(IrOp op, double x, double num)
{
    switch (op) {
    case IR_NEG: return -x;
    case IR_EXP: return exp(x);
    case IR_LOG: return log(x);
    case IR_SQRT: return sqrt(x);
    case IR_ABS: return fabs(x);
    case IR_SIGMOID: return interp_sigmoid(x);
    case IR_TANH: return tanh(x);
    case IR_RELU: return x > 0 ? x : 0;
    case IR_SOFTPLUS: return interp_softplus(x);
    case IR_LEAKY_RELU: return x > 0 ? x : num * x;
    case IR_POW: return pow(x, num);
    case IR_STEP: return x > 0 ? 1 : 0;
    case IR_LEAKY_STEP: return x > 0 ? 1 : num;
    case IR_SIGN: return x > 0 ? 1 : x < 0 ? -1 : 0;
    default: break;
    }
    fprintf(stderr, "nnc: internal error: interp: %s is not unary\n", ir_op_name(op));
    abort();
}

double interp_binary(IrOp op, double a, double b)
{
    switch (op) {
    case IR_ADD: return a + b;
    case IR_SUB: return a - b;
    case IR_MUL: return a * b;
    case IR_DIV: return a / b;
    default: break;
    }
    fprintf(stderr, "nnc: internal error: interp: %s is not binary\n", ir_op_name(op));
    abort();
}

/* ---- ops on whole tensors ---- */

static void eval_unary(const IrNode *n, const double *a, double *out)
{
    for (size_t i = 0, size = size_of(n); i < size; i++)
        out[i] = interp_unary(n->op, a[i], n->num);
}

/* Equal shapes, or a rank-0 side read as the same number everywhere. */
static void eval_binary(const IrNode *n, const IrNode *na, const double *a, const IrNode *nb,
                        const double *b, double *out)
{
    size_t step_a = na->shape.rank == 0 ? 0 : 1, step_b = nb->shape.rank == 0 ? 0 : 1;
    for (size_t i = 0, size = size_of(n); i < size; i++)
        out[i] = interp_binary(n->op, a[i * step_a], b[i * step_b]);
}

/* a's last dim contracted with b's first; a vector on either side is one row/column:
 * [m,n]@[n,k], [m,n]@[n], [n]@[n,k], [n]@[n]. */
static void eval_matmul(Shape sa, const double *a, Shape sb, const double *b, double *out)
{
    int m = sa.rank == 2 ? sa.dims[0] : 1;
    int n = sa.dims[sa.rank - 1];
    int k = sb.rank == 2 ? sb.dims[1] : 1;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < k; j++) {
            double s = 0;
            for (int l = 0; l < n; l++)
                s += a[i * n + l] * b[l * k + j];
            out[i * k + j] = s;
        }
}

static void eval_outer(size_t na, const double *a, size_t nb, const double *b, double *out)
{
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            out[i * nb + j] = a[i] * b[j];
}

static void eval_transpose(Shape sa, const double *a, double *out)
{
    int rows = sa.dims[0], cols = sa.dims[1];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            out[j * rows + i] = a[i * cols + j];
}

static double total(size_t size, const double *a)
{
    double s = 0;
    for (size_t i = 0; i < size; i++)
        s += a[i];
    return s;
}

static int last_dim(Shape s)
{
    return s.rank ? s.dims[s.rank - 1] : 1;
}

/* [.., n] -> [..] */
static void eval_sum_last(Shape sa, const double *a, double *out)
{
    size_t n = (size_t)last_dim(sa), rows = (size_t)shape_size(sa) / n;
    for (size_t i = 0; i < rows; i++)
        out[i] = total(n, a + i * n);
}

/* [..] -> [.., n] */
static void eval_expand_last(const IrNode *node, const double *a, double *out)
{
    size_t n = (size_t)last_dim(node->shape), rows = size_of(node) / n;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < n; j++)
            out[i * n + j] = a[i];
}

/* log(sum(exp(z))) of one row, with the max taken out so no exp overflows. */
static double log_sum_exp(size_t n, const double *z)
{
    double max = z[0];
    for (size_t j = 1; j < n; j++)
        max = fmax(max, z[j]);
    double s = 0;
    for (size_t j = 0; j < n; j++)
        s += exp(z[j] - max);
    return max + log(s);
}

/* log_softmax(z) = z - logsumexp(z), row by row over the last dim; softmax is its exp. */
static void eval_softmax(Shape sa, const double *z, double *out, bool take_log)
{
    size_t n = (size_t)last_dim(sa), rows = (size_t)shape_size(sa) / n;
    for (size_t i = 0; i < rows; i++) {
        double lse = log_sum_exp(n, z + i * n);
        for (size_t j = 0; j < n; j++) {
            double ls = z[i * n + j] - lse;
            out[i * n + j] = take_log ? ls : exp(ls);
        }
    }
}

/* -sum(t * log_softmax(z)) over every row. */
static double softmax_ce(Shape sz, const double *z, const double *t)
{
    size_t n = (size_t)last_dim(sz), rows = (size_t)shape_size(sz) / n;
    double loss = 0;
    for (size_t i = 0; i < rows; i++) {
        double lse = log_sum_exp(n, z + i * n);
        for (size_t j = 0; j < n; j++)
            loss -= t[i * n + j] * (z[i * n + j] - lse);
    }
    return loss;
}

/* mean(softplus(z) - t*z) = mean(-t*log(sigmoid z) - (1-t)*log(1 - sigmoid z)). */
static double sigmoid_bce(size_t size, const double *z, const double *t)
{
    double s = 0;
    for (size_t i = 0; i < size; i++)
        s += interp_softplus(z[i]) - t[i] * z[i];
    return s / (double)size;
}

static void fill(size_t size, double v, double *out)
{
    for (size_t i = 0; i < size; i++)
        out[i] = v;
}

void interp_node(Interp *in, int id)
{
    const IrNode *n = &in->p->nodes[id];
    const IrNode *na = n->nargs > 0 ? &in->p->nodes[n->args[0]] : NULL;
    const IrNode *nb = n->nargs > 1 ? &in->p->nodes[n->args[1]] : NULL;
    const double *a = na ? in->val[n->args[0]] : NULL;
    const double *b = nb ? in->val[n->args[1]] : NULL;
    double *out = in->val[id];
    switch (ir_op_info(n->op)->kind) {
    case IR_KIND_UNARY: eval_unary(n, a, out); return;
    case IR_KIND_BINARY: eval_binary(n, na, a, nb, b, out); return;
    default: break;
    }
    switch (n->op) {
    case IR_INPUT: case IR_TARGET: case IR_PARAM:
        return; /* set by interp_run */
    case IR_CONST: fill(size_of(n), n->num, out); return;
    case IR_MATMUL: eval_matmul(na->shape, a, nb->shape, b, out); return;
    case IR_OUTER: eval_outer(size_of(na), a, size_of(nb), b, out); return;
    case IR_TRANSPOSE: eval_transpose(na->shape, a, out); return;
    case IR_RESHAPE: memcpy(out, a, size_of(n) * sizeof *out); return; /* row-major either way */
    case IR_SUM: out[0] = total(size_of(na), a); return;
    case IR_MEAN: out[0] = total(size_of(na), a) / (double)size_of(na); return;
    case IR_BROADCAST: fill(size_of(n), a[0], out); return;
    case IR_SUM_LAST: eval_sum_last(na->shape, a, out); return;
    case IR_EXPAND_LAST: eval_expand_last(n, a, out); return;
    case IR_SOFTMAX: eval_softmax(na->shape, a, out, false); return;
    case IR_LOG_SOFTMAX: eval_softmax(na->shape, a, out, true); return;
    case IR_SOFTMAX_CE: out[0] = softmax_ce(na->shape, a, b); return;
    case IR_SIGMOID_BCE: out[0] = sigmoid_bce(size_of(na), a, b); return;
    case IR_DROPOUT_MASK:
        if (in->mask)
            in->mask(in->mask_ctx, n, out);
        else
            fill(size_of(n), 1, out);
        return;
    default:
        if (interp_image_node(n, na, a, nb, b, out))
            return;
        break; /* the elementwise ops were handled above */
    }
    fprintf(stderr, "nnc: internal error: interp: unknown op %d\n", (int)n->op);
    abort();
}

static void set_leaf(Interp *in, int id, const double *x, const double *t,
                     const double *const *params)
{
    const IrNode *n = &in->p->nodes[id];
    const double *src = n->op == IR_INPUT ? x : n->op == IR_TARGET ? t : params[n->index];
    if (src)
        memcpy(in->val[id], src, size_of(n) * sizeof *src);
    else
        fill(size_of(n), 0, in->val[id]);
}

void interp_run(Interp *in, const double *x, const double *t, const double *const *params,
                int upto)
{
    for (int id = 0; id < upto; id++) {
        IrOp op = in->p->nodes[id].op;
        if (op == IR_INPUT || op == IR_TARGET || op == IR_PARAM)
            set_leaf(in, id, x, t, params);
        else
            interp_node(in, id);
    }
}

double interp_loss(const Interp *in)
{
    return in->val[in->p->loss][0];
}

