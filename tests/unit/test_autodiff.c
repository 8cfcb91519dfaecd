/* test_autodiff.c - every derivative rule against central differences.
 *
 * Each case builds a tiny forward IR by hand (one op under test, params around it),
 * differentiates it, and compares every param's symbolic gradient with central
 * differences of the loss. The evaluator below is this test's own, deliberately
 * plain, so the rules are checked independently of the interpreter. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "irprint.h"

static int failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* ---- a plain evaluator ---- */

static int size_of(const IrNode *n) { return (int)shape_size(n->shape); }
static int last_dim(const IrNode *n) { return n->shape.rank ? n->shape.dims[n->shape.rank - 1] : 1; }

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static double unary(IrOp op, double x, double num)
{
    switch (op) {
    case IR_NEG: return -x;
    case IR_EXP: return exp(x);
    case IR_LOG: return log(x);
    case IR_SQRT: return sqrt(x);
    case IR_ABS: return fabs(x);
    case IR_SIGMOID: return 1 / (1 + exp(-x));
    case IR_TANH: return tanh(x);
    case IR_RELU: return x > 0 ? x : 0;
    case IR_SOFTPLUS: return softplus(x);
    case IR_LEAKY_RELU: return x > 0 ? x : num * x;
    case IR_POW: return pow(x, num);
    case IR_STEP: return x > 0;
    case IR_LEAKY_STEP: return x > 0 ? 1 : num;
    case IR_SIGN: return (x > 0) - (x < 0);
    default: abort();
    }
}

static double binary(IrOp op, double a, double b)
{
    switch (op) {
    case IR_ADD: return a + b;
    case IR_SUB: return a - b;
    case IR_MUL: return a * b;
    default: return a / b;
    }
}

/* Row-wise softmax (log form when logform) of a [rows, n] block. */
static void softmax_rows(const double *z, double *out, int size, int n, bool logform)
{
    for (int r = 0; r < size / n; r++) {
        const double *zr = z + r * n;
        double m = zr[0], s = 0;
        for (int j = 1; j < n; j++)
            m = zr[j] > m ? zr[j] : m;
        for (int j = 0; j < n; j++)
            s += exp(zr[j] - m);
        for (int j = 0; j < n; j++)
            out[r * n + j] = logform ? zr[j] - m - log(s) : exp(zr[j] - m) / s;
    }
}

static void eval_matmul(const IrNode *A, const IrNode *B, const double *a, const double *b, double *o)
{
    int K = A->shape.dims[A->shape.rank - 1];
    int M = A->shape.rank == 2 ? A->shape.dims[0] : 1, Ncol = B->shape.rank == 2 ? B->shape.dims[1] : 1;
    for (int m = 0; m < M; m++)
        for (int c = 0; c < Ncol; c++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += a[m * K + k] * b[k * Ncol + c];
            o[m * Ncol + c] = s;
        }
}

static void eval_node(const IrProgram *p, double **v, int id)
{
    const IrNode *n = &p->nodes[id];
    const IrNode *A = n->nargs > 0 ? &p->nodes[n->args[0]] : NULL;
    const IrNode *B = n->nargs > 1 ? &p->nodes[n->args[1]] : NULL;
    const double *a = A ? v[n->args[0]] : NULL, *b = B ? v[n->args[1]] : NULL;
    double *o = v[id];
    int size = size_of(n), sa = A ? size_of(A) : 0;
    switch (n->op) {
    case IR_INPUT: case IR_TARGET: case IR_PARAM: return; /* filled by the caller */
    case IR_CONST: o[0] = n->num; return;
    case IR_ADD: case IR_SUB: case IR_MUL: case IR_DIV:
        for (int i = 0; i < size; i++)
            o[i] = binary(n->op, a[A->shape.rank ? i : 0], b[B->shape.rank ? i : 0]);
        return;
    case IR_MATMUL: eval_matmul(A, B, a, b, o); return;
    case IR_OUTER:
        for (int i = 0; i < size; i++)
            o[i] = a[i / size_of(B)] * b[i % size_of(B)];
        return;
    case IR_TRANSPOSE:
        for (int r = 0; r < A->shape.dims[0]; r++)
            for (int c = 0; c < A->shape.dims[1]; c++)
                o[c * A->shape.dims[0] + r] = a[r * A->shape.dims[1] + c];
        return;
    case IR_SUM: case IR_MEAN:
        o[0] = 0;
        for (int i = 0; i < sa; i++)
            o[0] += a[i];
        if (n->op == IR_MEAN)
            o[0] /= sa;
        return;
    case IR_BROADCAST:
        for (int i = 0; i < size; i++)
            o[i] = a[0];
        return;
    case IR_RESHAPE:
        for (int i = 0; i < size; i++)
            o[i] = a[i];
        return;
    case IR_SUM_LAST:
        for (int i = 0; i < size; i++) {
            o[i] = 0;
            for (int j = 0; j < last_dim(A); j++)
                o[i] += a[i * last_dim(A) + j];
        }
        return;
    case IR_EXPAND_LAST:
        for (int i = 0; i < size; i++)
            o[i] = a[i / last_dim(n)];
        return;
    case IR_SOFTMAX: case IR_LOG_SOFTMAX:
        softmax_rows(a, o, size, last_dim(n), n->op == IR_LOG_SOFTMAX);
        return;
    case IR_SOFTMAX_CE: {
        double *ls = malloc((size_t)sa * sizeof *ls);
        softmax_rows(a, ls, sa, last_dim(A), true);
        o[0] = 0;
        for (int i = 0; i < sa; i++)
            o[0] -= b[i] * ls[i];
        free(ls);
        return;
    }
    case IR_SIGMOID_BCE:
        o[0] = 0;
        for (int i = 0; i < sa; i++)
            o[0] += (softplus(a[i]) - b[i] * a[i]) / sa;
        return;
    default:
        for (int i = 0; i < size; i++)
            o[i] = unary(n->op, a[i], n->num);
        return;
    }
}

typedef struct Values {
    double **v;
    double *x, *t; /* the input's and target's values */
} Values;

static void run(const IrProgram *p, Values *vals, int upto)
{
    for (int id = 0; id < upto; id++) {
        const IrNode *n = &p->nodes[id];
        if (n->op == IR_INPUT && vals->x)
            memcpy(vals->v[id], vals->x, (size_t)size_of(n) * sizeof(double));
        if (n->op == IR_TARGET && vals->t)
            memcpy(vals->v[id], vals->t, (size_t)size_of(n) * sizeof(double));
        eval_node(p, vals->v, id);
    }
}

/* ---- building cases ---- */

static Shape shp(int rank, int d0, int d1)
{
    Shape s = {.rank = rank, .dims = {d0, d1}};
    return s;
}

static int leaf(IrProgram *p, IrOp op, const char *name, Shape s)
{
    IrNode n = {.op = op, .shape = s, .name = name, .loc = {p->nnodes + 1, 1}};
    if (op == IR_PARAM) {
        p->params = arena_grow(p->arena, p->params, (size_t)p->nparams * sizeof *p->params,
                               (size_t)(p->nparams + 1) * sizeof *p->params);
        n.index = p->nparams;
        p->params[p->nparams++] = (IrParam){.name = name, .shape = s, .node = p->nnodes, .grad = -1};
    }
    int id = ir_add(p, n);
    if (op == IR_INPUT)
        p->input = id;
    if (op == IR_TARGET)
        p->target = id;
    return id;
}

static Loc here(const IrProgram *p) { return (Loc){p->nnodes + 1, 1}; }

/* Names every unnamed forward node (v.1, v.2, ...) and closes the forward pass. */
static void finish(IrProgram *p, int loss)
{
    for (int id = 0; id < p->nnodes; id++)
        if (!p->nodes[id].name && p->nodes[id].op != IR_CONST)
            p->nodes[id].name = arena_printf(p->arena, "v.%d", id);
    p->nodes[loss].name = "loss";
    p->loss = p->output = loss;
    p->nforward = p->nnodes;
}

/* loss = sum(y * t), t a random target of y's shape: a random projection of y. */
static void project(IrProgram *p, int y)
{
    int t = leaf(p, IR_TARGET, "t", p->nodes[y].shape);
    finish(p, ir_unary(p, IR_SUM, ir_binary(p, IR_MUL, y, t, here(p)), here(p)));
}

/* ---- checking ---- */

static double uniform(double lo, double hi) { return lo + (hi - lo) * (rand() / (double)RAND_MAX); }

/* Values in +-[0.3, 1.5] (positive only when asked): away from the kinks at 0. */
static void fill(double *v, int n, bool positive)
{
    for (int i = 0; i < n; i++)
        v[i] = uniform(0.3, 1.5) * (positive || rand() % 2 ? 1 : -1);
}

static double loss_at(const IrProgram *p, Values *vals)
{
    run(p, vals, p->nforward);
    return vals->v[p->loss][0];
}

static void check_case(const char *name, IrProgram *p, bool positive)
{
    Diag d;
    diag_init(&d, "case.nn", "", 0);
    d.out = fopen("/dev/null", "w");
    CHECK(ir_verify(p) == NULL, "%s: forward: %s", name, ir_verify(p));
    bool ok = ad_differentiate(p, &d);
    CHECK(ok && d.nerrors == 0, "%s: ad_differentiate failed", name);
    const char *bad = ir_verify(p);
    CHECK(bad == NULL, "%s: after AD: %s", name, bad);
    ir_print(d.out, p, &d, true);
    fclose(d.out);
    if (!ok || bad)
        return;
    Values vals = {.v = calloc((size_t)p->nnodes, sizeof(double *))};
    for (int id = 0; id < p->nnodes; id++)
        vals.v[id] = calloc((size_t)size_of(&p->nodes[id]) + 1, sizeof(double));
    double x[64], t[64];
    fill(x, 64, positive);
    fill(t, 64, false);
    vals.x = x, vals.t = t;
    for (int i = 0; i < p->nparams; i++)
        fill(vals.v[p->params[i].node], size_of(&p->nodes[p->params[i].node]), positive);
    run(p, &vals, p->nnodes);
    for (int i = 0; i < p->nparams; i++) {
        const IrParam *q = &p->params[i];
        CHECK(q->grad >= 0, "%s: %s has no gradient", name, q->name);
        if (q->grad < 0)
            continue;
        double *w = vals.v[q->node], *g = vals.v[q->grad];
        for (int k = 0; k < size_of(&p->nodes[q->node]); k++) {
            double keep = w[k], h = 1e-6 * fmax(1, fabs(keep));
            w[k] = keep + h;
            double up = loss_at(p, &vals);
            w[k] = keep - h;
            double down = loss_at(p, &vals);
            w[k] = keep;
            double fd = (up - down) / (2 * h);
            CHECK(fabs(fd - g[k]) <= 1e-5 * fmax(1, fmax(fabs(fd), fabs(g[k]))),
                  "%s: d loss/d %s[%d] = %g symbolic, %g numeric", name, q->name, k, g[k], fd);
        }
    }
    for (int id = 0; id < p->nnodes; id++)
        free(vals.v[id]);
    free(vals.v);
}

/* ---- the cases ---- */

static IrProgram *unary_case(Arena *a, IrOp op, double num, Shape s)
{
    IrProgram *p = ir_new(a);
    int w = leaf(p, IR_PARAM, "W", s);
    project(p, ir_unary_num(p, op, w, num, here(p)));
    return p;
}

static IrProgram *binary_case(Arena *a, IrOp op, Shape sa, Shape sb)
{
    IrProgram *p = ir_new(a);
    int u = leaf(p, IR_PARAM, "U", sa), w = leaf(p, IR_PARAM, "W", sb);
    project(p, ir_binary(p, op, u, w, here(p)));
    return p;
}

static IrProgram *shaped_case(Arena *a, IrOp op, Shape from, Shape to)
{
    IrProgram *p = ir_new(a);
    int w = leaf(p, IR_PARAM, "W", from);
    project(p, ir_unary_to(p, op, w, to, here(p)));
    return p;
}

/* loss = softmax_ce(W @ x, t) with the prediction softmax(z) computed first, as lowering
 * does; t is a param-dependent softmax(V) when t_param. */
static IrProgram *softmax_ce_case(Arena *a, bool t_param)
{
    IrProgram *p = ir_new(a);
    int x = leaf(p, IR_INPUT, "x", shp(1, 3, 0)), w = leaf(p, IR_PARAM, "W", shp(2, 4, 3));
    int t = t_param ? ir_unary(p, IR_SOFTMAX, leaf(p, IR_PARAM, "V", shp(1, 4, 0)), here(p))
                    : leaf(p, IR_TARGET, "t", shp(1, 4, 0));
    int z = ir_binary(p, IR_MATMUL, w, x, here(p));
    ir_unary(p, IR_SOFTMAX, z, here(p));
    finish(p, ir_binary(p, IR_SOFTMAX_CE, z, t, here(p)));
    return p;
}

static IrProgram *sigmoid_bce_case(Arena *a, bool t_param)
{
    IrProgram *p = ir_new(a);
    int w = leaf(p, IR_PARAM, "W", shp(1, 3, 0));
    int t = t_param ? ir_unary(p, IR_SIGMOID, leaf(p, IR_PARAM, "V", shp(1, 3, 0)), here(p))
                    : leaf(p, IR_TARGET, "t", shp(1, 3, 0));
    ir_unary(p, IR_SIGMOID, w, here(p));
    finish(p, ir_binary(p, IR_SIGMOID_BCE, w, t, here(p)));
    return p;
}

/* y = W op W: one node on both sides of a product or a sum. */
static IrProgram *same_sides_case(Arena *a, IrOp op)
{
    IrProgram *p = ir_new(a);
    int w = leaf(p, IR_PARAM, "W", shp(1, 3, 0));
    project(p, ir_binary(p, op, w, w, here(p)));
    return p;
}

/* y = W @ (W @ x): W used twice, contributions accumulate. */
static IrProgram *twice_case(Arena *a)
{
    IrProgram *p = ir_new(a);
    int x = leaf(p, IR_INPUT, "x", shp(1, 3, 0)), w = leaf(p, IR_PARAM, "W", shp(2, 3, 3));
    int h = ir_binary(p, IR_MATMUL, w, x, here(p));
    int y = ir_binary(p, IR_MATMUL, w, ir_binary(p, IR_MUL, h, h, here(p)), here(p));
    project(p, y);
    return p;
}

/* xor: two sigmoid layers and mse. */
static IrProgram *xor_case(Arena *a)
{
    IrProgram *p = ir_new(a);
    int x = leaf(p, IR_INPUT, "x", shp(1, 2, 0)), t = leaf(p, IR_TARGET, "t", shp(1, 1, 0));
    int w1 = leaf(p, IR_PARAM, "W1", shp(2, 4, 2)), b1 = leaf(p, IR_PARAM, "b1", shp(1, 4, 0));
    int w2 = leaf(p, IR_PARAM, "W2", shp(2, 1, 4)), b2 = leaf(p, IR_PARAM, "b2", shp(1, 1, 0));
    int h = ir_unary(p, IR_SIGMOID, ir_binary(p, IR_ADD, ir_binary(p, IR_MATMUL, w1, x, here(p)), b1, here(p)), here(p));
    int y = ir_unary(p, IR_SIGMOID, ir_binary(p, IR_ADD, ir_binary(p, IR_MATMUL, w2, h, here(p)), b2, here(p)), here(p));
    int e = ir_unary_num(p, IR_POW, ir_binary(p, IR_SUB, y, t, here(p)), 2, here(p));
    finish(p, ir_unary(p, IR_MEAN, e, here(p)));
    return p;
}

static void rule_cases(Arena *a)
{
    static const IrOp unary_ops[] = {IR_NEG, IR_EXP, IR_ABS, IR_SIGMOID, IR_TANH, IR_RELU,
                                     IR_SOFTPLUS, IR_TRANSPOSE, IR_SUM, IR_MEAN};
    for (size_t i = 0; i < sizeof unary_ops / sizeof *unary_ops; i++)
        check_case(ir_op_name(unary_ops[i]), unary_case(a, unary_ops[i], 0, shp(2, 2, 3)), false);
    check_case("sum of a scalar", unary_case(a, IR_SUM, 0, shp(0, 0, 0)), false);
    check_case("mean of a scalar", unary_case(a, IR_MEAN, 0, shp(0, 0, 0)), false);
    check_case("log", unary_case(a, IR_LOG, 0, shp(1, 3, 0)), true);
    check_case("sqrt", unary_case(a, IR_SQRT, 0, shp(1, 3, 0)), true);
    check_case("pow 3", unary_case(a, IR_POW, 3, shp(1, 3, 0)), false);
    check_case("pow -1.5", unary_case(a, IR_POW, -1.5, shp(1, 3, 0)), true);
    check_case("leaky_relu", unary_case(a, IR_LEAKY_RELU, 0.1, shp(1, 3, 0)), false);
    check_case("softmax", unary_case(a, IR_SOFTMAX, 0, shp(2, 2, 3)), false);
    check_case("log_softmax", unary_case(a, IR_LOG_SOFTMAX, 0, shp(1, 4, 0)), false);
    static const IrOp binary_ops[] = {IR_ADD, IR_SUB, IR_MUL, IR_DIV};
    Shape v = shp(1, 3, 0), s = shp(0, 0, 0);
    for (size_t i = 0; i < 4; i++) {
        check_case(ir_op_name(binary_ops[i]), binary_case(a, binary_ops[i], v, v), true);
        check_case("scalar, vector", binary_case(a, binary_ops[i], s, v), true);
        check_case("vector, scalar", binary_case(a, binary_ops[i], v, s), true);
        check_case("scalars", binary_case(a, binary_ops[i], s, s), true);
    }
    check_case("[m,n]@[n]", binary_case(a, IR_MATMUL, shp(2, 2, 3), shp(1, 3, 0)), false);
    check_case("[m,n]@[n,k]", binary_case(a, IR_MATMUL, shp(2, 2, 3), shp(2, 3, 4)), false);
    check_case("[n]@[n,k]", binary_case(a, IR_MATMUL, shp(1, 3, 0), shp(2, 3, 4)), false);
    check_case("[n]@[n]", binary_case(a, IR_MATMUL, shp(1, 3, 0), shp(1, 3, 0)), false);
    check_case("outer", binary_case(a, IR_OUTER, shp(1, 2, 0), shp(1, 3, 0)), false);
    check_case("outer [2,3] [4]", binary_case(a, IR_OUTER, shp(2, 2, 3), shp(1, 4, 0)), false);
    check_case("outer [3] [2,2]", binary_case(a, IR_OUTER, shp(1, 3, 0), shp(2, 2, 2)), false);
    check_case("outer [2,2] [2,3]", binary_case(a, IR_OUTER, shp(2, 2, 2), shp(2, 2, 3)), false);
    check_case("reshape", shaped_case(a, IR_RESHAPE, shp(2, 2, 3), shp(2, 3, 2)), false);
    check_case("reshape to a vector", shaped_case(a, IR_RESHAPE, shp(2, 2, 3), shp(1, 6, 0)), false);
    check_case("W * W", same_sides_case(a, IR_MUL), false);
    check_case("W + W", same_sides_case(a, IR_ADD), false);
    check_case("broadcast", shaped_case(a, IR_BROADCAST, s, shp(2, 2, 3)), false);
    check_case("expand_last", shaped_case(a, IR_EXPAND_LAST, shp(1, 2, 0), shp(2, 2, 3)), false);
    check_case("sum_last", unary_case(a, IR_SUM_LAST, 0, shp(2, 2, 3)), false);
    check_case("softmax_ce", softmax_ce_case(a, false), false);
    check_case("softmax_ce, t from a param", softmax_ce_case(a, true), false);
    check_case("sigmoid_bce", sigmoid_bce_case(a, false), false);
    check_case("sigmoid_bce, t from a param", sigmoid_bce_case(a, true), false);
    check_case("used twice", twice_case(a), false);
    check_case("xor", xor_case(a), false);
}

/* The fused losses' backward reuses the forward's softmax/sigmoid: no exp, log or division. */
static void fused_is_cheap(Arena *a)
{
    IrProgram *cases[] = {softmax_ce_case(a, false), sigmoid_bce_case(a, false)};
    for (int c = 0; c < 2; c++) {
        IrProgram *p = cases[c];
        Diag d;
        diag_init(&d, "case.nn", "", 0);
        CHECK(ad_differentiate(p, &d), "fused case %d failed", c);
        for (int id = p->nforward; id < p->nnodes; id++) {
            IrOp op = p->nodes[id].op;
            CHECK(op != IR_EXP && op != IR_LOG && op != IR_DIV && op != IR_SOFTMAX &&
                  op != IR_LOG_SOFTMAX && op != IR_SIGMOID && op != IR_SOFTPLUS,
                  "fused case %d: backward node %d is %s", c, id, ir_op_name(op));
        }
    }
}

/* A param the loss ignores: no gradient, one warning; an op without a rule: an error. */
static void warnings_and_errors(Arena *a)
{
    IrProgram *p = ir_new(a);
    int w = leaf(p, IR_PARAM, "W", shp(1, 3, 0));
    leaf(p, IR_PARAM, "unused", shp(1, 3, 0));
    finish(p, ir_unary(p, IR_SUM, w, here(p)));
    Diag d;
    diag_init(&d, "case.nn", "", 0);
    d.out = fopen("/dev/null", "w");
    CHECK(ad_differentiate(p, &d), "unused param: AD failed");
    CHECK(d.nwarnings == 1 && p->params[1].grad == -1 && p->params[0].grad >= 0,
          "unused param: %d warnings, grad %d", d.nwarnings, p->params[1].grad);

    p = ir_new(a); /* the derivative helpers have no rule: they never reach a loss */
    int m = leaf(p, IR_PARAM, "M", shp(2, 2, 2));
    finish(p, ir_unary(p, IR_SUM, ir_unary(p, IR_STEP, m, here(p)), here(p)));
    CHECK(!ad_differentiate(p, &d) && d.nerrors == 1, "step: expected one error");
    fclose(d.out);
}

/* y = W * W and W + W: one contribution to dW, not two equal ones summed. */
static void same_sides_once(Arena *a)
{
    IrOp ops[] = {IR_MUL, IR_ADD};
    for (int k = 0; k < 2; k++) {
        IrProgram *p = same_sides_case(a, ops[k]);
        Diag d;
        diag_init(&d, "case.nn", "", 0);
        CHECK(ad_differentiate(p, &d), "%s: AD failed", ir_op_name(ops[k]));
        int named = 0;
        for (int id = p->nforward; id < p->nnodes; id++)
            named += p->nodes[id].name && strcmp(p->nodes[id].name, "dW") == 0;
        CHECK(named == 1, "W %s W: %d nodes named dW", ir_op_name(ops[k]), named);
    }
}

/* Infix with the fewest parentheses that keep the tree: nameless operands print inline. */
static void printing(Arena *a)
{
    IrProgram *p = ir_new(a);
    Loc l = {1, 1};
    int x = leaf(p, IR_INPUT, "x", shp(0, 0, 0)), y = leaf(p, IR_PARAM, "y", shp(0, 0, 0));
    int z = leaf(p, IR_PARAM, "z", shp(0, 0, 0));
    struct { int node; const char *text; } cases[] = {
        {ir_binary(p, IR_SUB, x, ir_binary(p, IR_SUB, y, z, l), l), "x - (y - z)"},
        {ir_binary(p, IR_SUB, ir_binary(p, IR_SUB, x, y, l), z, l), "x - y - z"},
        {ir_binary(p, IR_MUL, ir_binary(p, IR_ADD, x, y, l), z, l), "(x + y) * z"},
        {ir_binary(p, IR_ADD, x, ir_binary(p, IR_MUL, y, z, l), l), "x + y * z"},
        {ir_binary(p, IR_DIV, x, ir_binary(p, IR_MUL, y, z, l), l), "x / (y * z)"},
        {ir_unary(p, IR_NEG, ir_binary(p, IR_MUL, x, y, l), l), "-(x * y)"},
        {ir_binary(p, IR_MUL, ir_unary(p, IR_NEG, x, l), y, l), "-x * y"},
        {ir_unary_num(p, IR_POW, ir_unary(p, IR_NEG, x, l), 2, l), "(-x) ^ 2"},
        {ir_unary(p, IR_NEG, ir_unary_num(p, IR_POW, x, -1, l), l), "-x ^ -1"},
        {ir_unary(p, IR_NEG, ir_unary(p, IR_NEG, x, l), l), "-(-x)"},
        {ir_binary(p, IR_SUB, x, ir_const(p, -2, l), l), "x - -2"},
        {ir_binary(p, IR_MUL, ir_const(p, 0.1, l), ir_unary(p, IR_SIGMOID, ir_binary(p, IR_ADD, x, y, l), l), l),
         "0.1 * sigmoid(x + y)"},
        {ir_unary_num(p, IR_LEAKY_STEP, x, 0.01, l), "leaky_step(x, 0.01)"},
        {ir_unary_to(p, IR_RESHAPE, x, shp(2, 1, 1), l), "reshape(x, [1, 1])"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        p->nodes[cases[i].node].name = "r";
        const char *got = ir_print_expr(p, cases[i].node, a);
        CHECK(strcmp(got + 4, cases[i].text) == 0, "printed '%s', expected 'r = %s'", got, cases[i].text);
    }
}

int main(void)
{
    srand(7);
    Arena *a = arena_new();
    rule_cases(a);
    fused_is_cheap(a);
    warnings_and_errors(a);
    same_sides_once(a);
    printing(a);
    arena_free(a);
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}
