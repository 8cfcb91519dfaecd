/* test_simplify.c - the simplifier, rule by rule, on programs built by hand with the ir.h API.
 *
 * Each result is checked three ways: its structure (the rewrite happened), its invariants
 * (operands first, forward first, shapes, no duplicate, no dead node, handles renumbered),
 * and its values: a small evaluator written here, independent of the compiler, runs the
 * original and the simplified program on the same random leaves and compares. Random
 * programs at the end put every rule together. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "simplify.h"

static int failures;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__,      \
                    current_test, #cond);                                             \
            failures++;                                                               \
        }                                                                             \
    } while (0)

static const char *current_test = "";
static Arena *arena;
static const Loc here = {1, 1};
static const Shape S0 = {0};

static Shape s1(int n)
{
    return (Shape){1, {n}};
}

static Shape s2(int m, int n)
{
    return (Shape){2, {m, n}};
}

/* ---- building programs ---- */

static IrProgram *prog(void)
{
    IrProgram *p = ir_new(arena);
    p->target = -1;
    return p;
}

static int input(IrProgram *p, Shape s)
{
    p->input = ir_add(p, (IrNode){.op = IR_INPUT, .shape = s, .args = {-1, -1}, .name = "x", .loc = here});
    return p->input;
}

static int param(IrProgram *p, const char *name, Shape s)
{
    int i = p->nparams++;
    p->params = arena_grow(arena, p->params, (size_t)i * sizeof *p->params,
                           (size_t)(i + 1) * sizeof *p->params);
    int id = ir_add(p, (IrNode){.op = IR_PARAM, .shape = s, .args = {-1, -1}, .index = i,
                                .name = name, .loc = here});
    p->params[i] = (IrParam){.name = name, .shape = s, .loc = here, .node = id, .grad = -1};
    return id;
}

static int k(IrProgram *p, double v)
{
    return ir_const(p, v, here);
}

static int un(IrProgram *p, IrOp op, int a)
{
    return ir_unary(p, op, a, here);
}

static int pw(IrProgram *p, int a, double e)
{
    int id = ir_unary(p, IR_POW, a, here);
    p->nodes[id].num = e;
    return id;
}

static int bin(IrProgram *p, IrOp op, int a, int b)
{
    return ir_binary(p, op, a, b, here);
}

static int bc(IrProgram *p, int a, Shape s)
{
    return ir_add(p, (IrNode){.op = IR_BROADCAST, .shape = s, .args = {a, -1}, .nargs = 1, .loc = here});
}

static int rs(IrProgram *p, int a, Shape s)
{
    return ir_unary_to(p, IR_RESHAPE, a, s, here);
}

static int named(IrProgram *p, int id, const char *name)
{
    p->nodes[id].name = name;
    return id;
}

/* Everything so far is the forward pass; loss = sum(y) unless y is already rank 0. */
static void finish(IrProgram *p, int y)
{
    p->output = y;
    p->loss = p->nodes[y].shape.rank ? un(p, IR_SUM, y) : y;
    p->nforward = p->nnodes;
}

/* Nodes from here on are the backward pass. */
static void begin_backward(IrProgram *p)
{
    p->nforward = p->nnodes;
}

/* Every node from nforward on is backward (helpers such as constants included). */
static void end_backward(IrProgram *p)
{
    for (int id = p->nforward; id < p->nnodes; id++) {
        p->nodes[id].grad = true;
        if (!p->nodes[id].rule)
            p->nodes[id].rule = "helper";
    }
}

static int bw(IrProgram *p, int id, const char *rule)
{
    p->nodes[id].grad = true;
    p->nodes[id].rule = rule;
    return id;
}

/* ---- an independent evaluator ---- */

static double ev_unary(IrOp op, double num, double x)
{
    switch (op) {
    case IR_NEG: return -x;
    case IR_EXP: return exp(x);
    case IR_LOG: return log(x);
    case IR_SQRT: return sqrt(x);
    case IR_ABS: return x < 0 ? -x : x;
    case IR_SIGMOID: return 1 / (1 + exp(-x));
    case IR_TANH: return tanh(x);
    case IR_RELU: return x > 0 ? x : 0;
    case IR_SOFTPLUS: return log(1 + exp(x));
    case IR_LEAKY_RELU: return x > 0 ? x : num * x;
    case IR_POW: return pow(x, num);
    case IR_STEP: return x > 0;
    case IR_LEAKY_STEP: return x > 0 ? 1 : num;
    case IR_SIGN: return x > 0 ? 1 : x < 0 ? -1 : 0;
    case IR_ADD: case IR_SUB: case IR_MUL: case IR_DIV: default: return NAN;
    }
}

static double ev_binary(IrOp op, double x, double y)
{
    return op == IR_ADD ? x + y : op == IR_SUB ? x - y : op == IR_MUL ? x * y : x / y;
}

static bool elementwise_unary(IrOp op)
{
    return op >= IR_NEG && op <= IR_SIGN;
}

/* Node id's values from its operands' (row-major). */
static void ev_node(const IrProgram *p, double **v, int id)
{
    const IrNode *n = &p->nodes[id];
    long long size = shape_size(n->shape);
    const double *a = n->nargs > 0 ? v[n->args[0]] : NULL, *b = n->nargs > 1 ? v[n->args[1]] : NULL;
    Shape sa = n->nargs > 0 ? p->nodes[n->args[0]].shape : S0;
    Shape sb = n->nargs > 1 ? p->nodes[n->args[1]].shape : S0;
    double *r = v[id];
    if (n->op == IR_CONST) {
        r[0] = n->num;
    } else if (elementwise_unary(n->op)) {
        for (long long i = 0; i < size; i++)
            r[i] = ev_unary(n->op, n->num, a[i]);
    } else if (n->op >= IR_ADD && n->op <= IR_DIV) {
        for (long long i = 0; i < size; i++)
            r[i] = ev_binary(n->op, a[sa.rank ? i : 0], b[sb.rank ? i : 0]);
    } else if (n->op == IR_MATMUL) {
        int inner = sa.dims[sa.rank - 1];
        long long cols = shape_size(sb) / inner;
        for (long long i = 0; i < size; i++) {
            long long row = i / cols, col = i % cols;
            r[i] = 0;
            for (int j = 0; j < inner; j++)
                r[i] += a[row * inner + j] * b[j * cols + col];
        }
    } else if (n->op == IR_OUTER) {
        long long nb = shape_size(sb);
        for (long long i = 0; i < size; i++)
            r[i] = a[i / nb] * b[i % nb];
    } else if (n->op == IR_RESHAPE) {
        memcpy(r, a, (size_t)size * sizeof *r);
    } else if (n->op == IR_TRANSPOSE) {
        for (int i = 0; i < sa.dims[0]; i++)
            for (int j = 0; j < sa.dims[1]; j++)
                r[j * sa.dims[0] + i] = a[i * sa.dims[1] + j];
    } else if (n->op == IR_SUM || n->op == IR_MEAN) {
        long long na = shape_size(sa);
        r[0] = 0;
        for (long long i = 0; i < na; i++)
            r[0] += a[i];
        if (n->op == IR_MEAN)
            r[0] /= (double)na;
    } else if (n->op == IR_BROADCAST) {
        for (long long i = 0; i < size; i++)
            r[i] = a[0];
    } else if (n->op == IR_SUM_LAST) {
        int last = sa.dims[sa.rank - 1];
        for (long long i = 0; i < size; i++) {
            r[i] = 0;
            for (int j = 0; j < last; j++)
                r[i] += a[i * last + j];
        }
    } else if (n->op == IR_EXPAND_LAST) {
        int last = n->shape.dims[n->shape.rank - 1];
        for (long long i = 0; i < size; i++)
            r[i] = a[i / last];
    } else {
        fprintf(stderr, "evaluator: op %s not supported\n", ir_op_name(n->op));
        exit(2);
    }
}

/* Leaf values, drawn once, shared by both programs: by kind and param index. */
typedef struct Leaves {
    double x[64], t[64], params[4][64]; /* room for [3, 3] */
} Leaves;

static unsigned long long rng_state = 42;

static double uniform(double lo, double hi)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

static void draw(Leaves *l)
{
    for (int i = 0; i < 64; i++) {
        l->x[i] = uniform(-2, 2);
        l->t[i] = uniform(-2, 2);
        for (int j = 0; j < 4; j++)
            l->params[j][i] = uniform(-2, 2);
    }
}

static double **eval(const IrProgram *p, const Leaves *l)
{
    double **v = calloc((size_t)p->nnodes, sizeof *v);
    for (int id = 0; id < p->nnodes; id++) {
        const IrNode *n = &p->nodes[id];
        v[id] = calloc((size_t)shape_size(n->shape), sizeof **v);
        const double *src = n->op == IR_INPUT ? l->x : n->op == IR_TARGET ? l->t
                          : n->op == IR_PARAM ? l->params[n->index] : NULL;
        if (src)
            memcpy(v[id], src, (size_t)shape_size(n->shape) * sizeof **v);
        else
            ev_node(p, v, id);
    }
    return v;
}

static void free_vals(const IrProgram *p, double **v)
{
    for (int id = 0; id < p->nnodes; id++)
        free(v[id]);
    free(v);
}

static bool all_finite(const IrProgram *p, double **v)
{
    for (int id = 0; id < p->nnodes; id++)
        for (long long i = 0; i < shape_size(p->nodes[id].shape); i++)
            if (!isfinite(v[id][i]))
                return false;
    return true;
}

/* Node a of p and node b of q hold the same shape and values (to rounding). */
static bool same_value(const IrProgram *p, double **vp, int a, const IrProgram *q, double **vq, int b)
{
    if (a < 0 || b < 0)
        return a == b;
    if (!shape_eq(p->nodes[a].shape, q->nodes[b].shape))
        return false;
    for (long long i = 0; i < shape_size(p->nodes[a].shape); i++) {
        double x = vp[a][i], y = vq[b][i];
        if (fabs(x - y) > 1e-9 * fmax(1, fmax(fabs(x), fabs(y))))
            return false;
    }
    return true;
}

/* q computes what p computes: loss, output, every gradient. Returns false when p itself
 * is not finite on the draw (x*0 = 0 is only promised for finite x). */
static bool same_program(const IrProgram *p, const IrProgram *q, bool *ok)
{
    Leaves l;
    draw(&l);
    double **vp = eval(p, &l), **vq = eval(q, &l);
    bool finite = all_finite(p, vp);
    *ok = same_value(p, vp, p->loss, q, vq, q->loss) &&
          same_value(p, vp, p->output, q, vq, q->output) && p->nparams == q->nparams;
    for (int i = 0; *ok && i < p->nparams; i++)
        *ok = same_value(p, vp, p->params[i].grad, q, vq, q->params[i].grad);
    free_vals(p, vp);
    free_vals(q, vq);
    return finite;
}

/* ---- invariants of every simplified program ---- */

/* Constants are the same when their bits are: 0 and -0 differ (1/x tells them apart), so
 * the simplifier must not merge them. */
static bool same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static bool same_node(const IrNode *x, const IrNode *y)
{
    int xa = x->args[0], xb = x->args[1], ya = y->args[0], yb = y->args[1];
    if ((x->op == IR_ADD || x->op == IR_MUL) && xa > xb)
        xa = x->args[1], xb = x->args[0];
    if ((y->op == IR_ADD || y->op == IR_MUL) && ya > yb)
        ya = y->args[1], yb = y->args[0];
    bool num = x->op == IR_CONST || x->op == IR_POW || x->op == IR_LEAKY_RELU || x->op == IR_LEAKY_STEP;
    return x->op == y->op && x->nargs == y->nargs && (x->nargs < 1 || xa == ya) &&
           (x->nargs < 2 || xb == yb) && (!num || same_bits(x->num, y->num)) &&
           (x->op != IR_PARAM || x->index == y->index) && shape_eq(x->shape, y->shape);
}

static void mark_live(bool *live, int id)
{
    if (id >= 0)
        live[id] = true;
}

/* Operands first, forward first, shapes, handles, no duplicate, nothing dead. */
static void check_valid(const IrProgram *q)
{
    CHECK(q->nforward >= 0 && q->nforward <= q->nnodes);
    bool *live = calloc((size_t)q->nnodes + 1, 1);
    for (int id = 0; id < q->nnodes; id++) {
        const IrNode *n = &q->nodes[id];
        CHECK(n->grad == (id >= q->nforward));
        for (int j = 0; j < n->nargs; j++)
            CHECK(n->args[j] >= 0 && n->args[j] < id);
        if (n->op == IR_RESHAPE)
            CHECK(shape_size(q->nodes[n->args[0]].shape) == shape_size(n->shape));
        else if (n->nargs > 0 && n->op != IR_BROADCAST && n->op != IR_EXPAND_LAST) {
            Shape a = q->nodes[n->args[0]].shape, b = n->nargs > 1 ? q->nodes[n->args[1]].shape : a;
            CHECK(shape_eq(n->shape, ir_infer_shape(n->op, a, b)));
        }
        if (n->op == IR_BROADCAST)
            CHECK(q->nodes[n->args[0]].shape.rank == 0 && n->shape.rank > 0);
        for (int j = 0; j < id; j++)
            CHECK(!same_node(&q->nodes[j], n));
    }
    CHECK(q->input >= 0 && q->nodes[q->input].op == IR_INPUT);
    CHECK(q->target < 0 || q->nodes[q->target].op == IR_TARGET);
    CHECK(q->loss >= 0 && q->nodes[q->loss].shape.rank == 0);
    for (int i = 0; i < q->nparams; i++) {
        CHECK(q->nodes[q->params[i].node].op == IR_PARAM && q->nodes[q->params[i].node].index == i);
        CHECK(q->params[i].grad < 0 || shape_eq(q->nodes[q->params[i].grad].shape, q->params[i].shape));
        mark_live(live, q->params[i].node);
        mark_live(live, q->params[i].grad);
    }
    mark_live(live, q->input), mark_live(live, q->target);
    mark_live(live, q->loss), mark_live(live, q->output);
    for (int id = q->nnodes - 1; id >= 0; id--)
        for (int j = 0; live[id] && j < q->nodes[id].nargs; j++)
            live[q->nodes[id].args[j]] = true;
    for (int id = 0; id < q->nnodes; id++)
        CHECK(live[id]);
    free(live);
}

static int count_op(const IrProgram *q, IrOp op)
{
    int c = 0;
    for (int id = 0; id < q->nnodes; id++)
        c += q->nodes[id].op == op;
    return c;
}

/* Simplifies p, checks invariants, values, idempotence and that p is left as it was. */
static IrProgram *simp(const IrProgram *p)
{
    size_t bytes = (size_t)p->nnodes * sizeof *p->nodes;
    IrNode *before = malloc(bytes + 1);
    memcpy(before, p->nodes, bytes);
    int nnodes = p->nnodes, nforward = p->nforward;
    IrProgram *q = simp_program(p);
    CHECK(q != p && q->arena == p->arena);
    CHECK(p->nnodes == nnodes && p->nforward == nforward && memcmp(before, p->nodes, bytes) == 0);
    free(before);
    check_valid(q);
    bool ok;
    for (int i = 0; i < 3; i++)
        if (same_program(p, q, &ok))
            CHECK(ok);
    IrProgram *again = simp_program(q);
    CHECK(again->nnodes == q->nnodes && again->nforward == q->nforward);
    return q;
}

static bool name_is(const IrNode *n, const char *name)
{
    return n->name && strcmp(n->name, name) == 0;
}

static const IrNode *out(const IrProgram *q)
{
    return &q->nodes[q->output];
}

static const IrNode *arg(const IrProgram *q, const IrNode *n, int i)
{
    return &q->nodes[n->args[i]];
}

static bool is_const(const IrProgram *q, int id, double v)
{
    return q->nodes[id].op == IR_CONST && q->nodes[id].num == v;
}

/* n is op(x, k) or op(k, x) for a constant k (kside 1 or 0). */
static bool is_op_const(const IrProgram *q, const IrNode *n, IrOp op, int x, double k, int kside)
{
    return n->op == op && n->args[1 - kside] == x && is_const(q, n->args[kside], k);
}

/* A program of one input x of shape s and y = build(x); y is the output, sum(y) the loss. */
static IrProgram *unary_case(Shape s, int (*build)(IrProgram *, int))
{
    IrProgram *p = prog();
    int x = input(p, s);
    finish(p, named(p, build(p, x), "y"));
    return p;
}

/* ---- folding ---- */

static void test_folding(void)
{
    current_test = "folding";
    IrProgram *p = prog();
    int x = input(p, s1(3));
    int five = bin(p, IR_ADD, k(p, 2), k(p, 3));
    int c = bin(p, IR_SUB, bin(p, IR_MUL, five, un(p, IR_EXP, k(p, 0))), pw(p, k(p, 2), 2)); /* 5*1 - 4 */
    int d = bin(p, IR_DIV, un(p, IR_NEG, k(p, 3)), un(p, IR_SQRT, k(p, 4)));                  /* -1.5 */
    finish(p, named(p, bin(p, IR_ADD, bin(p, IR_MUL, x, d), c), "y"));
    IrProgram *q = simp(p);
    /* y = x * -1.5 + 1: every constant computed, nothing left of the arithmetic on them */
    const IrNode *y = out(q);
    CHECK(y->op == IR_ADD && is_const(q, y->args[1], 1));
    CHECK(is_op_const(q, arg(q, y, 0), IR_MUL, q->input, -1.5, 1));
    CHECK(count_op(q, IR_CONST) == 2 && count_op(q, IR_EXP) == 0 && count_op(q, IR_SQRT) == 0);
    CHECK(count_op(q, IR_NEG) == 0 && count_op(q, IR_POW) == 0 && count_op(q, IR_SUB) == 0);

    /* a tensor constant (broadcast) folds elementwise and stays a tensor */
    p = prog();
    x = input(p, s1(3));
    int t = un(p, IR_TANH, bc(p, k(p, 0), s1(3)));
    finish(p, named(p, bin(p, IR_ADD, x, bin(p, IR_MUL, t, bc(p, k(p, 7), s1(3)))), "y"));
    q = simp(p);
    CHECK(q->output == q->input); /* x + tanh(0) * 7 = x */

    /* folding that would make inf or NaN is left to run time */
    p = prog();
    x = input(p, S0);
    finish(p, named(p, bin(p, IR_MUL, x, un(p, IR_LOG, k(p, 0))), "y"));
    q = simp_program(p);
    CHECK(count_op(q, IR_LOG) == 1);
}

/* ---- identities: each builds y from x ---- */

static int b_mul1(IrProgram *p, int x) { return bin(p, IR_MUL, x, k(p, 1)); }
static int b_1mul(IrProgram *p, int x) { return bin(p, IR_MUL, k(p, 1), x); }
static int b_add0(IrProgram *p, int x) { return bin(p, IR_ADD, x, k(p, 0)); }
static int b_0add(IrProgram *p, int x) { return bin(p, IR_ADD, k(p, 0), x); }
static int b_sub0(IrProgram *p, int x) { return bin(p, IR_SUB, x, k(p, 0)); }
static int b_div1(IrProgram *p, int x) { return bin(p, IR_DIV, x, k(p, 1)); }
static int b_pow1(IrProgram *p, int x) { return pw(p, x, 1); }
static int b_negneg(IrProgram *p, int x) { return un(p, IR_NEG, un(p, IR_NEG, x)); }
static int b_addbc0(IrProgram *p, int x) { return bin(p, IR_ADD, x, bc(p, k(p, 0), s1(4))); }
static int b_mulbc1(IrProgram *p, int x) { return bin(p, IR_MUL, bc(p, k(p, 1), s1(4)), x); }
static int b_tt(IrProgram *p, int x) { return un(p, IR_TRANSPOSE, un(p, IR_TRANSPOSE, x)); }
static int b_mean0(IrProgram *p, int x) { return un(p, IR_MEAN, x); }
static int b_sum0(IrProgram *p, int x) { return un(p, IR_SUM, x); }
static int b_bc0(IrProgram *p, int x) { return bc(p, x, S0); }

static void test_identities_to_x(void)
{
    current_test = "identities giving x";
    struct { int (*build)(IrProgram *, int); Shape s; const char *what; } cases[] = {
        {b_mul1, s1(4), "x*1"},       {b_1mul, s1(4), "1*x"},     {b_add0, s1(4), "x+0"},
        {b_0add, s1(4), "0+x"},       {b_sub0, s1(4), "x-0"},     {b_div1, s1(4), "x/1"},
        {b_pow1, s1(4), "x^1"},       {b_negneg, s1(4), "--x"},   {b_addbc0, s1(4), "x+bc(0)"},
        {b_mulbc1, s1(4), "bc(1)*x"}, {b_tt, s2(2, 3), "T(T x)"}, {b_mean0, S0, "mean(scalar)"},
        {b_sum0, S0, "sum(scalar)"},  {b_bc0, S0, "bc(scalar, [])"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        current_test = cases[i].what;
        IrProgram *q = simp(unary_case(cases[i].s, cases[i].build));
        CHECK(q->output == q->input);
        CHECK(name_is(out(q), "x")); /* the input keeps its own name */
    }
}

static int b_0sub(IrProgram *p, int x) { return bin(p, IR_SUB, k(p, 0), x); }
static int b_mulm1(IrProgram *p, int x) { return bin(p, IR_MUL, x, k(p, -1)); }
static int b_m1mul(IrProgram *p, int x) { return bin(p, IR_MUL, k(p, -1), x); }
static int b_divm1(IrProgram *p, int x) { return bin(p, IR_DIV, x, k(p, -1)); }

static void test_identities_to_neg(void)
{
    struct { int (*build)(IrProgram *, int); const char *what; } cases[] = {
        {b_0sub, "0-x"}, {b_mulm1, "x*-1"}, {b_m1mul, "-1*x"}, {b_divm1, "x/-1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        current_test = cases[i].what;
        IrProgram *q = simp(unary_case(s1(4), cases[i].build));
        CHECK(out(q)->op == IR_NEG && out(q)->args[0] == q->input);
        CHECK(name_is(out(q), "y"));
    }
}

static int b_mul0(IrProgram *p, int x) { return bin(p, IR_MUL, x, k(p, 0)); }
static int b_0mul(IrProgram *p, int x) { return bin(p, IR_MUL, k(p, 0), x); }
static int b_pow0(IrProgram *p, int x) { return pw(p, x, 0); }
static int b_scalar_mul_bc0(IrProgram *p, int x) { return bin(p, IR_MUL, x, bc(p, k(p, 0), s1(4))); }
static int b_matmul0(IrProgram *p, int x) { return bin(p, IR_MATMUL, bc(p, k(p, 0), s2(4, 4)), x); }

/* y = a constant of y's own shape: [4] stays [4], never a scalar */
static void test_identities_to_const(void)
{
    struct { int (*build)(IrProgram *, int); Shape s; double v; const char *what; } cases[] = {
        {b_mul0, s1(4), 0, "x*0"},   {b_0mul, s1(4), 0, "0*x"}, {b_pow0, s1(4), 1, "x^0"},
        {b_scalar_mul_bc0, S0, 0, "scalar*bc(0)"}, {b_matmul0, s1(4), 0, "zeros@x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        current_test = cases[i].what;
        IrProgram *q = simp(unary_case(cases[i].s, cases[i].build));
        const IrNode *y = out(q);
        CHECK(y->op == IR_BROADCAST && shape_eq(y->shape, s1(4)) && is_const(q, y->args[0], cases[i].v));
        CHECK(y->name == NULL && q->nodes[y->args[0]].name == NULL); /* constants print as values */
    }
}

static void test_identities_other(void)
{
    current_test = "a - neg b";
    IrProgram *p = prog();
    int x = input(p, s1(4)), w = param(p, "w", s1(4));
    finish(p, named(p, bin(p, IR_SUB, x, un(p, IR_NEG, w)), "y"));
    IrProgram *q = simp(p);
    CHECK(out(q)->op == IR_ADD && out(q)->args[0] == q->input && out(q)->args[1] == q->params[0].node);
    CHECK(count_op(q, IR_NEG) == 0);

    current_test = "neg b + a";
    p = prog();
    x = input(p, s1(4)), w = param(p, "w", s1(4));
    finish(p, named(p, bin(p, IR_ADD, un(p, IR_NEG, w), x), "y"));
    q = simp(p);
    CHECK(out(q)->op == IR_SUB && out(q)->args[0] == q->input && out(q)->args[1] == q->params[0].node);

    struct { IrOp op; double k; int kside; IrOp want; double v; const char *what; } neg_consts[] = {
        {IR_ADD, -3, 1, IR_SUB, 3, "x + -3"}, {IR_ADD, -3, 0, IR_SUB, 3, "-3 + x"},
        {IR_SUB, -3, 1, IR_ADD, 3, "x - -3"}, {IR_SUB, -3, 0, IR_SUB, -3, "-3 - x (kept)"},
    };
    for (size_t i = 0; i < sizeof neg_consts / sizeof *neg_consts; i++) {
        current_test = neg_consts[i].what;
        p = prog();
        x = input(p, s1(4));
        int c = k(p, neg_consts[i].k);
        finish(p, named(p, neg_consts[i].kside ? bin(p, neg_consts[i].op, x, c) : bin(p, neg_consts[i].op, c, x), "y"));
        q = simp(p);
        int side = neg_consts[i].want == IR_SUB && neg_consts[i].v < 0 ? 0 : 1;
        CHECK(is_op_const(q, out(q), neg_consts[i].want, q->input, neg_consts[i].v, side));
    }

    current_test = "scalar + bc(0) keeps the shape";
    p = prog();
    x = input(p, S0);
    finish(p, named(p, bin(p, IR_ADD, x, bc(p, k(p, 0), s1(4))), "y"));
    q = simp(p);
    CHECK(out(q)->op == IR_BROADCAST && out(q)->args[0] == q->input && shape_eq(out(q)->shape, s1(4)));
    CHECK(name_is(out(q), "y"));

    current_test = "tensor op bc(scalar) uses the scalar";
    p = prog();
    x = input(p, s1(4));
    w = param(p, "w", S0);
    finish(p, named(p, bin(p, IR_MUL, x, bc(p, w, s1(4))), "y"));
    q = simp(p);
    CHECK(out(q)->op == IR_MUL && out(q)->args[0] == q->input && out(q)->args[1] == q->params[0].node);
    CHECK(count_op(q, IR_BROADCAST) == 0);
}

static void test_reductions(void)
{
    current_test = "sum of a broadcast constant";
    IrProgram *p = prog();
    int x = input(p, s1(4));
    finish(p, named(p, bin(p, IR_MUL, x, un(p, IR_SUM, bc(p, k(p, 3), s2(2, 2)))), "y"));
    IrProgram *q = simp(p);
    CHECK(is_op_const(q, out(q), IR_MUL, q->input, 12, 1));
    CHECK(count_op(q, IR_SUM) == 1); /* only the loss's */

    current_test = "mean of a broadcast";
    p = prog();
    x = input(p, s1(4));
    int w = param(p, "w", S0);
    finish(p, named(p, bin(p, IR_MUL, x, un(p, IR_MEAN, bc(p, w, s1(5)))), "y"));
    q = simp(p);
    CHECK(out(q)->op == IR_MUL && out(q)->args[1] == q->params[0].node);
    CHECK(count_op(q, IR_MEAN) == 0 && count_op(q, IR_BROADCAST) == 0);

    current_test = "sum of a broadcast scalar";
    p = prog();
    x = input(p, S0);
    finish(p, named(p, un(p, IR_SUM, bc(p, x, s1(5))), "y"));
    q = simp(p);
    CHECK(is_op_const(q, out(q), IR_MUL, q->input, 5, 1));

    current_test = "sum_last and expand_last of broadcasts";
    p = prog();
    x = input(p, S0);
    int e = ir_add(p, (IrNode){.op = IR_EXPAND_LAST, .shape = s2(2, 3), .args = {bc(p, x, s1(2)), -1},
                               .nargs = 1, .loc = here});
    finish(p, named(p, un(p, IR_SUM_LAST, e), "y"));
    q = simp(p);
    const IrNode *y = out(q);
    CHECK(y->op == IR_BROADCAST && shape_eq(y->shape, s1(2)));
    CHECK(is_op_const(q, arg(q, y, 0), IR_MUL, q->input, 3, 1));
}

static void test_reshapes(void)
{
    current_test = "reshape to its operand's shape";
    IrProgram *p = prog();
    int x = input(p, s2(2, 3));
    finish(p, named(p, bin(p, IR_MUL, rs(p, x, s2(2, 3)), k(p, 2)), "y"));
    IrProgram *q = simp(p);
    CHECK(is_op_const(q, out(q), IR_MUL, q->input, 2, 1) && count_op(q, IR_RESHAPE) == 0);

    current_test = "reshape of a reshape";
    p = prog();
    x = input(p, s2(2, 3));
    finish(p, named(p, un(p, IR_TANH, rs(p, rs(p, x, s1(6)), s2(3, 2))), "y"));
    q = simp(p);
    const IrNode *y = arg(q, out(q), 0);
    CHECK(y->op == IR_RESHAPE && y->args[0] == q->input && shape_eq(y->shape, s2(3, 2)));
    CHECK(count_op(q, IR_RESHAPE) == 1);

    current_test = "reshape there and back";
    p = prog();
    x = input(p, s2(2, 3));
    finish(p, named(p, rs(p, rs(p, x, s1(6)), s2(2, 3)), "y"));
    q = simp(p);
    CHECK(q->output == q->input);

    current_test = "reshape of a broadcast";
    p = prog();
    x = input(p, s1(6));
    int w = param(p, "w", S0);
    finish(p, named(p, bin(p, IR_ADD, x, rs(p, bc(p, w, s2(2, 3)), s1(6))), "y"));
    q = simp(p);
    CHECK(out(q)->op == IR_ADD && out(q)->args[1] == q->params[0].node);
    CHECK(count_op(q, IR_RESHAPE) == 0 && count_op(q, IR_BROADCAST) == 0);

    current_test = "sum and mean of a reshape";
    p = prog();
    x = input(p, s2(2, 3));
    int m = un(p, IR_MEAN, rs(p, x, s1(6)));
    finish(p, named(p, bin(p, IR_ADD, un(p, IR_SUM, rs(p, x, s2(3, 2))), m), "y"));
    q = simp(p);
    CHECK(count_op(q, IR_RESHAPE) == 0 && count_op(q, IR_SUM) == 1 && count_op(q, IR_MEAN) == 1);

    current_test = "a reshape feeding a product stays";
    p = prog();
    x = input(p, s2(2, 3));
    finish(p, named(p, bin(p, IR_MATMUL, rs(p, x, s1(6)), rs(p, x, s1(6))), "y"));
    q = simp(p);
    CHECK(count_op(q, IR_RESHAPE) == 1 && out(q)->args[0] == out(q)->args[1]);
}

static void test_chains(void)
{
    struct { IrOp inner, outer; int kin, kout; double a, b; IrOp op; double v; int vside; const char *what; } cases[] = {
        {IR_MUL, IR_MUL, 1, 1, 2, 3, IR_MUL, 6, 1, "(x*2)*3"},
        {IR_MUL, IR_MUL, 0, 0, 2, 3, IR_MUL, 6, 0, "3*(2*x)"},
        {IR_DIV, IR_DIV, 1, 1, 2, 4, IR_DIV, 8, 1, "(x/2)/4"},
        {IR_MUL, IR_DIV, 1, 1, 2, 4, IR_MUL, 0.5, 1, "(x*2)/4"},
        {IR_DIV, IR_MUL, 1, 1, 4, 2, IR_MUL, 0.5, 1, "(x/4)*2"},
        {IR_DIV, IR_MUL, 0, 1, 4, 2, IR_DIV, 8, 0, "(4/x)*2"},
        {IR_DIV, IR_DIV, 0, 1, 4, 2, IR_DIV, 2, 0, "(4/x)/2"},
        {IR_MUL, IR_MUL, 1, 1, 2, 0.5, IR_NUM_OPS, 0, 0, "(x*2)*0.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        current_test = cases[i].what;
        IrProgram *p = prog();
        int x = input(p, s1(4));
        int a = k(p, cases[i].a), b = k(p, cases[i].b);
        int in = cases[i].kin ? bin(p, cases[i].inner, x, a) : bin(p, cases[i].inner, a, x);
        int y = cases[i].kout ? bin(p, cases[i].outer, in, b) : bin(p, cases[i].outer, b, in);
        finish(p, named(p, y, "y"));
        IrProgram *q = simp(p);
        if (cases[i].op == IR_NUM_OPS)
            CHECK(q->output == q->input);
        else
            CHECK(is_op_const(q, out(q), cases[i].op, q->input, cases[i].v, cases[i].vside));
        CHECK(count_op(q, IR_CONST) == (cases[i].op != IR_NUM_OPS));
    }

    current_test = "neg through a constant factor";
    IrProgram *p = prog();
    int x = input(p, s1(4));
    finish(p, named(p, bin(p, IR_MUL, un(p, IR_NEG, x), k(p, 3)), "y"));
    IrProgram *q = simp(p);
    CHECK(is_op_const(q, out(q), IR_MUL, q->input, -3, 1) && count_op(q, IR_NEG) == 0);
}

/* ---- CSE ---- */

static void test_cse(void)
{
    current_test = "cse";
    IrProgram *p = prog();
    int x = input(p, s1(3)), w = param(p, "W", s1(3));
    int a = named(p, bin(p, IR_MUL, x, w), "a");
    int b = named(p, bin(p, IR_MUL, w, x), "b");   /* commutative twin of a */
    int e1 = un(p, IR_EXP, a), e2 = un(p, IR_EXP, b);
    int d1 = bin(p, IR_SUB, e1, x), d2 = bin(p, IR_SUB, x, e2); /* not twins */
    int p2 = pw(p, x, 2), p3 = pw(p, x, 3);                 /* not twins */
    int s = bin(p, IR_ADD, bin(p, IR_ADD, d1, d2), bin(p, IR_ADD, p2, p3));
    finish(p, named(p, s, "y"));
    IrProgram *q = simp(p);
    CHECK(count_op(q, IR_MUL) == 1 && count_op(q, IR_EXP) == 1);
    CHECK(count_op(q, IR_SUB) == 2 && count_op(q, IR_POW) == 2);
    for (int id = 0; id < q->nnodes; id++)
        if (q->nodes[id].op == IR_MUL) /* the first spelling and the first name survive */
            CHECK(name_is(&q->nodes[id], "a") && q->nodes[id].args[0] == q->input);

    current_test = "cse keeps shapes apart";
    p = prog();
    x = input(p, s1(2));
    int m = bin(p, IR_MATMUL, bc(p, k(p, 1), s2(2, 2)), x);
    int o = bin(p, IR_OUTER, bc(p, k(p, 1), s1(2)), x);
    finish(p, named(p, bin(p, IR_ADD, un(p, IR_SUM, m), un(p, IR_SUM, o)), "y"));
    q = simp(p);
    CHECK(count_op(q, IR_CONST) == 1 && count_op(q, IR_BROADCAST) == 2);
}

/* ---- DCE ---- */

static void test_dce(void)
{
    current_test = "dce";
    IrProgram *p = prog();
    int x = input(p, s1(3));
    int u = param(p, "U", s1(2)); /* used by nothing: kept all the same */
    int w = param(p, "W", s1(3));
    named(p, un(p, IR_EXP, x), "unused");
    named(p, bin(p, IR_MUL, u, k(p, 2)), "unused2");
    int y = named(p, bin(p, IR_MUL, x, w), "y");
    finish(p, y);
    begin_backward(p);
    int dy = bw(p, bc(p, k(p, 1), s1(3)), "d sum");
    int dw = named(p, bw(p, bin(p, IR_MUL, dy, x), "d mul"), "dW");
    named(p, bw(p, bin(p, IR_MUL, dy, w), "d mul"), "dx"); /* x is not a param: nobody needs dx */
    p->params[1].grad = dw;
    end_backward(p);
    IrProgram *q = simp(p);
    CHECK(count_op(q, IR_EXP) == 0 && count_op(q, IR_MUL) == 1 && count_op(q, IR_PARAM) == 2);
    CHECK(q->nparams == 2 && q->params[0].grad == -1 && strcmp(q->params[0].name, "U") == 0);
    CHECK(q->params[1].grad == q->input); /* dW = 1 * x = x */
    CHECK(q->nnodes == 5 && q->nforward == 5); /* x U W y sum */
    (void)u;
}

/* ---- names, forward/backward layout and renumbering ---- */

static void test_names(void)
{
    current_test = "names";
    IrProgram *p = prog();
    int x = input(p, s1(3)), w = param(p, "W", s1(3));
    param(p, "V", s1(3));
    int t = named(p, bin(p, IR_MUL, x, w), "h.1");
    int h = named(p, bin(p, IR_MUL, w, x), "h");    /* the source name beats the temporary */
    int y = named(p, un(p, IR_EXP, bin(p, IR_ADD, t, h)), "y");
    finish(p, y);
    Loc bloc = {7, 3};
    begin_backward(p);
    int g = bw(p, bin(p, IR_MUL, y, x), "nameless");
    p->nodes[g].loc = bloc;
    int dw = named(p, bw(p, bin(p, IR_MUL, g, k(p, 1)), "named"), "dW"); /* = g: g takes dW */
    int r1 = named(p, bw(p, bin(p, IR_MUL, y, w), "first"), "dV.1");
    int r2 = named(p, bw(p, bin(p, IR_MUL, w, y), "second"), "dV");   /* twin: an alias of dV.1 */
    int r3 = named(p, bw(p, bin(p, IR_MUL, r2, k(p, 1)), "third"), "dV.3"); /* = r1 too */
    int f = named(p, bw(p, bin(p, IR_MUL, x, w), "recomputed"), "dh"); /* forward h survives */
    p->params[0].grad = dw;
    p->params[1].grad = named(p, bw(p, bin(p, IR_ADD, bin(p, IR_ADD, r1, r3), f), "sum"), "dV.2");
    end_backward(p);
    IrProgram *q = simp(p);
    int qh = -1;
    for (int id = 0; id < q->nnodes; id++)
        if (q->nodes[id].op == IR_MUL && !q->nodes[id].grad)
            qh = id;
    CHECK(qh >= 0 && name_is(&q->nodes[qh], "h") && qh < q->nforward);
    CHECK(q->nodes[qh].naliases == 0); /* a forward value takes no backward name */
    /* A nameless survivor takes the name of the first node to land on it, and that node's
     * rule and loc: the note of a line must describe the name it shows. */
    const IrNode *gw = &q->nodes[q->params[0].grad];
    CHECK(gw->grad && name_is(gw, "dW") && gw->naliases == 0);
    CHECK(strcmp(gw->rule, "named") == 0 && gw->loc.line == here.line && gw->loc.col == here.col);
    const IrNode *gv = &q->nodes[q->params[1].grad];
    CHECK(gv->op == IR_ADD && name_is(gv, "dV.2"));
    const IrNode *dv = arg(q, gv, 0);
    CHECK(dv->op == IR_ADD && dv->args[0] == dv->args[1]);
    /* A named survivor keeps its name and rule; the merged names follow in order. */
    const IrNode *r = arg(q, dv, 0);
    CHECK(name_is(r, "dV.1") && strcmp(r->rule, "first") == 0 && r->naliases == 2);
    CHECK(r->naliases == 2 && strcmp(r->aliases[0], "dV") == 0 && strcmp(r->aliases[1], "dV.3") == 0);
    CHECK(gv->args[1] == qh); /* the backward recomputation of h is h */
    /* Simplifying again changes no name, alias or rule (aliases carry over passes). */
    IrProgram *q2 = simp_program(q);
    CHECK(q2->nnodes == q->nnodes);
    for (int id = 0; id < q->nnodes && q2->nnodes == q->nnodes; id++) {
        const IrNode *a = &q->nodes[id], *b = &q2->nodes[id];
        CHECK((a->name == NULL) == (b->name == NULL) && (!a->name || strcmp(a->name, b->name) == 0));
        CHECK(a->rule == b->rule && a->naliases == b->naliases);
        for (int i = 0; i < a->naliases && a->naliases == b->naliases; i++)
            CHECK(strcmp(a->aliases[i], b->aliases[i]) == 0);
    }
    CHECK(q->nforward == 7); /* x W V h h+h y sum */
    for (int id = 0; id < q->nnodes; id++)
        CHECK(q->nodes[id].grad == (id >= q->nforward));
}

/* A backward node made by a rule lands in the backward pass, with the rule of its cause. */
static void test_backward_layout(void)
{
    current_test = "backward layout";
    IrProgram *p = prog();
    int x = input(p, s1(3)), w = param(p, "W", s1(3));
    int y = named(p, bin(p, IR_MUL, x, w), "y");
    finish(p, y);
    begin_backward(p);
    int dy = named(p, bw(p, bin(p, IR_MUL, bc(p, k(p, 2), s1(3)), bc(p, k(p, 3), s1(3))), "d"), "dy");
    int dw = named(p, bw(p, bin(p, IR_MUL, dy, x), "d mul"), "dW");
    p->params[0].grad = dw;
    end_backward(p);
    IrProgram *q = simp(p);
    const IrNode *g = &q->nodes[q->params[0].grad];
    CHECK(is_op_const(q, g, IR_MUL, q->input, 6, 0) && name_is(g, "dW"));
    CHECK(q->params[0].grad >= q->nforward && q->nodes[g->args[0]].grad);
    CHECK(q->nforward == 4);
}

/* ---- random programs: every rule at once, checked by value ---- */

static int pick(int n)
{
    return (int)uniform(0, n) % n;
}

static Shape rank_shape(int rank)
{
    return rank == 0 ? S0 : rank == 1 ? s1(3) : s2(3, 3);
}

/* A random node of rank 0, 1 ([3]) or 2 ([3, 3]); there is always one (the leaves). The
 * reshapes' [9] and [1, 3] values are not picked. */
static int pick_shaped(const IrProgram *p, int rank)
{
    int cands[1024], n = 0;
    for (int id = 0; id < p->nnodes && n < 1024; id++)
        if (shape_eq(p->nodes[id].shape, rank_shape(rank)))
            cands[n++] = id;
    return cands[pick(n)];
}

/* An operand of that rank: mostly an existing node, sometimes a (broadcast) constant. */
static int operand(IrProgram *p, int rank)
{
    static const double consts[] = {0, 1, -1, 2, 0.5, 3, -2};
    if (pick(4))
        return pick_shaped(p, rank);
    int c = k(p, consts[pick(7)]);
    return rank ? bc(p, c, rank_shape(rank)) : c;
}

static int expand(IrProgram *p, int a)
{
    return ir_add(p, (IrNode){.op = IR_EXPAND_LAST, .shape = s2(3, 3), .args = {a, -1},
                              .nargs = 1, .loc = here});
}

/* A node of rank `rank` made by a reduction, a product or a reshaping op. */
static int random_shaping(IrProgram *p, int rank)
{
    switch (rank * 3 + pick(3)) {
    case 0: return bin(p, IR_MATMUL, operand(p, 1), operand(p, 1));
    case 1: return un(p, pick(2) ? IR_SUM : IR_MEAN, operand(p, 1 + pick(2)));
    case 2: /* a scalar's sum, or the dot product of two matrices flattened */
        return pick(2) ? un(p, pick(2) ? IR_SUM : IR_MEAN, operand(p, 0))
                       : bin(p, IR_MATMUL, rs(p, operand(p, 2), s1(9)), rs(p, operand(p, 2), s1(9)));
    case 3: return bin(p, IR_MATMUL, operand(p, 2), operand(p, 1));
    case 4: return pick(2) ? bin(p, IR_MATMUL, operand(p, 1), operand(p, 2)) : un(p, IR_SUM_LAST, operand(p, 2));
    case 5:
        if (pick(3) == 0)
            return rs(p, rs(p, operand(p, 1), s2(1, 3)), s1(3));
        return pick(2) ? bc(p, operand(p, 0), s1(3)) : un(p, IR_SUM_LAST, expand(p, operand(p, 1)));
    case 6: return bin(p, IR_OUTER, operand(p, 1), operand(p, 1));
    case 7: return pick(2) ? un(p, IR_TRANSPOSE, operand(p, 2)) : bin(p, IR_MATMUL, operand(p, 2), operand(p, 2));
    default:
        if (pick(3) == 0)
            return rs(p, un(p, IR_NEG, rs(p, operand(p, 2), s1(9))), s2(3, 3));
        return pick(2) ? expand(p, operand(p, 1)) : bc(p, operand(p, 0), s2(3, 3));
    }
}

static int random_node(IrProgram *p)
{
    static const IrOp unary[] = {IR_NEG, IR_TANH, IR_SIGMOID, IR_ABS, IR_RELU, IR_POW, IR_EXP};
    static const IrOp binary[] = {IR_ADD, IR_SUB, IR_MUL, IR_DIV};
    int rank = pick(3), a = operand(p, rank);
    switch (pick(7)) {
    case 0: case 1: {
        IrOp op = unary[pick(7)];
        if (op == IR_EXP)
            a = un(p, IR_TANH, a); /* bounded */
        return op == IR_POW ? pw(p, a, pick(4) - 1) : un(p, op, a);
    }
    case 2: case 3:
        return random_shaping(p, rank);
    default: {
        IrOp op = binary[pick(4)];
        int b = operand(p, pick(2) ? rank : 0);
        if (op == IR_DIV) /* a denominator of at least 1, or a constant */
            b = pick(2) ? bin(p, IR_ADD, un(p, IR_ABS, b), k(p, 1)) : k(p, 1 + pick(3));
        return pick(2) ? bin(p, op, a, b) : bin(p, op, b, a);
    }
    }
}

static const char *const random_names[] = {NULL, NULL, "h", "h.1", "g", "g.2", "dh", "dh.1"};

static IrProgram *random_program(void)
{
    IrProgram *p = prog();
    input(p, s1(3));
    param(p, "W", s1(3));
    param(p, "c", S0);
    param(p, "M", s2(3, 3));
    int n = 4 + pick(20);
    for (int i = 0; i < n; i++)
        named(p, random_node(p), random_names[pick(8)]);
    int y = pick_shaped(p, 1);
    finish(p, named(p, bin(p, IR_ADD, y, p->params[0].node), "y"));
    int m = pick(15);
    for (int i = 0; i < m; i++)
        bw(p, named(p, random_node(p), random_names[pick(8)]), "random");
    p->params[0].grad = bw(p, bin(p, IR_MUL, pick_shaped(p, 1), k(p, 1)), "grad W");
    p->params[1].grad = pick(4) ? bw(p, bin(p, IR_ADD, pick_shaped(p, 0), k(p, 0)), "grad c") : -1;
    p->params[2].grad = bw(p, bin(p, IR_SUB, pick_shaped(p, 2), k(p, -0.0)), "grad M");
    end_backward(p);
    return p;
}

static void test_random(void)
{
    current_test = "random programs";
    int shrunk = 0;
    for (int i = 0; i < 600 && failures < 10; i++) {
        IrProgram *p = random_program();
        IrProgram *q = simp(p);
        shrunk += q->nnodes < p->nnodes;
    }
    CHECK(shrunk > 500);
}

int main(void)
{
    arena = arena_new();
    test_folding();
    test_identities_to_x();
    test_identities_to_neg();
    test_identities_to_const();
    test_identities_other();
    test_reductions();
    test_reshapes();
    test_chains();
    test_cse();
    test_dce();
    test_names();
    test_backward_layout();
    test_random();
    arena_free(arena);
    if (failures)
        fprintf(stderr, "test_simplify: %d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
