/* test_interp.c - the reference interpreter's value of every op against numbers worked
 * out by hand, and the fused losses at z = +-1000: finite, and equal to the unfused
 * textbook formula wherever that one is finite. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "interp.h"
#include "ir.h"

static int failures;

static Shape shape(int rank, int d0, int d1)
{
    Shape s = {.rank = rank, .dims = {d0, d1}};
    return s;
}

static const Shape SCALAR = {0};

static int leaf(IrProgram *p, IrOp op, Shape s)
{
    int id = ir_add(p, (IrNode){.op = op, .shape = s, .name = op == IR_INPUT ? "x" : "t"});
    if (op == IR_INPUT)
        p->input = id;
    else
        p->target = id;
    return id;
}

static int node(IrProgram *p, IrOp op, int a, int b, Shape s, double num)
{
    return ir_add(p, (IrNode){.op = op, .shape = s, .args = {a, b}, .nargs = b >= 0 ? 2 : 1,
                              .num = num});
}

/* Runs the program on x and t; returns the values of node id. */
static const double *run(Interp *in, IrProgram *p, const double *x, const double *t, int id)
{
    p->nforward = p->nnodes;
    p->loss = p->output = id;
    interp_init(in, p);
    interp_run(in, x, t, NULL, p->nnodes);
    return in->val[id];
}

static void expect(const char *what, const double *got, const double *want, int n)
{
    for (int i = 0; i < n; i++) {
        double tol = 1e-12 * fmax(1, fabs(want[i]));
        bool same = got[i] == want[i] || (isnan(want[i]) && isnan(got[i]));
        if (!same && !(fabs(got[i] - want[i]) <= tol)) {
            printf("FAIL %s[%d]: got %.17g, want %.17g\n", what, i, got[i], want[i]);
            failures++;
        }
    }
}

/* op applied to five numbers around 0. */
static void check_unary(IrOp op, double num, const double want[5])
{
    static const double x[5] = {-2, -0.5, 0, 0.5, 3};
    Arena *a = arena_new();
    IrProgram *p = ir_new(a);
    int in = leaf(p, IR_INPUT, shape(1, 5, 0));
    int id = node(p, op, in, -1, shape(1, 5, 0), num);
    Interp it;
    expect(ir_op_name(op), run(&it, p, x, NULL, id), want, 5);
    interp_free(&it);
    arena_free(a);
}

static void test_unary(void)
{
    double e = exp(1);
    check_unary(IR_NEG, 0, (double[]){2, 0.5, 0, -0.5, -3});
    check_unary(IR_EXP, 0, (double[]){1 / (e * e), 1 / sqrt(e), 1, sqrt(e), e * e * e});
    check_unary(IR_ABS, 0, (double[]){2, 0.5, 0, 0.5, 3});
    check_unary(IR_RELU, 0, (double[]){0, 0, 0, 0.5, 3});
    check_unary(IR_LEAKY_RELU, 0.1, (double[]){-0.2, -0.05, 0, 0.5, 3});
    check_unary(IR_POW, 3, (double[]){-8, -0.125, 0, 0.125, 27});
    check_unary(IR_POW, 2, (double[]){4, 0.25, 0, 0.25, 9});
    check_unary(IR_STEP, 0, (double[]){0, 0, 0, 1, 1});
    check_unary(IR_LEAKY_STEP, 0.1, (double[]){0.1, 0.1, 0.1, 1, 1});
    check_unary(IR_SIGN, 0, (double[]){-1, -1, 0, 1, 1});
    /* sigmoid = 1/(1+e^-x); tanh = (e^2x-1)/(e^2x+1); softplus = log(1+e^x) */
    double sig[5], th[5], sp[5];
    static const double x[5] = {-2, -0.5, 0, 0.5, 3};
    for (int i = 0; i < 5; i++) {
        sig[i] = 1 / (1 + exp(-x[i]));
        th[i] = (exp(2 * x[i]) - 1) / (exp(2 * x[i]) + 1);
        sp[i] = log(1 + exp(x[i]));
    }
    check_unary(IR_SIGMOID, 0, sig);
    check_unary(IR_TANH, 0, th);
    check_unary(IR_SOFTPLUS, 0, sp);
    check_unary(IR_LOG, 0, (double[]){NAN, NAN, -INFINITY, -log(2), log(3)});
    check_unary(IR_SQRT, 0, (double[]){NAN, NAN, 0, sqrt(0.5), sqrt(3)});
    check_unary(IR_POW, 0.5, (double[]){NAN, NAN, 0, sqrt(0.5), sqrt(3)});
}

/* op(a, b) where a is the input and b the target. */
static void check_binary(const char *what, IrOp op, Shape sa, const double *a, Shape sb,
                         const double *b, Shape out, const double *want)
{
    Arena *ar = arena_new();
    IrProgram *p = ir_new(ar);
    int x = leaf(p, IR_INPUT, sa), t = leaf(p, IR_TARGET, sb);
    int id = node(p, op, x, t, out, 0);
    Interp it;
    expect(what, run(&it, p, a, b, id), want, (int)shape_size(out));
    interp_free(&it);
    arena_free(ar);
}

static void test_binary(void)
{
    Shape v3 = shape(1, 3, 0);
    double a[3] = {1, -2, 4}, b[3] = {0.5, 4, -8}, s[1] = {2};
    check_binary("add", IR_ADD, v3, a, v3, b, v3, (double[]){1.5, 2, -4});
    check_binary("sub", IR_SUB, v3, a, v3, b, v3, (double[]){0.5, -6, 12});
    check_binary("mul", IR_MUL, v3, a, v3, b, v3, (double[]){0.5, -8, -32});
    check_binary("div", IR_DIV, v3, a, v3, b, v3, (double[]){2, -0.5, -0.5});
    check_binary("add vector+scalar", IR_ADD, v3, a, SCALAR, s, v3, (double[]){3, 0, 6});
    check_binary("sub scalar-vector", IR_SUB, SCALAR, s, v3, a, v3, (double[]){1, 4, -2});
    check_binary("div scalar/vector", IR_DIV, SCALAR, s, v3, b, v3, (double[]){4, 0.5, -0.25});
    check_binary("mul scalar*scalar", IR_MUL, SCALAR, s, SCALAR, s, SCALAR, (double[]){4});
}

static void test_linear_algebra(void)
{
    /* A = [[1, 2, 3], [4, 5, 6]], B = [[1, 0], [0, 1], [2, -1]] */
    double A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 2, -1}, v[3] = {1, -1, 2};
    double w[2] = {3, -2};
    Shape s23 = shape(2, 2, 3), s32 = shape(2, 3, 2), v3 = shape(1, 3, 0), v2 = shape(1, 2, 0);
    check_binary("matmul [2,3]@[3]", IR_MATMUL, s23, A, v3, v, v2, (double[]){5, 11});
    check_binary("matmul [2,3]@[3,2]", IR_MATMUL, s23, A, s32, B, shape(2, 2, 2),
                 (double[]){7, -1, 16, -1});
    check_binary("matmul [3]@[3,2]", IR_MATMUL, v3, v, s32, B, v2, (double[]){5, -3});
    check_binary("matmul [3]@[3]", IR_MATMUL, v3, v, v3, (double[]){2, 1, 1}, SCALAR,
                 (double[]){3});
    check_binary("outer", IR_OUTER, v2, w, v3, v, s23, (double[]){3, -3, 6, -2, 2, -4});
    Arena *ar = arena_new();
    IrProgram *p = ir_new(ar);
    int x = leaf(p, IR_INPUT, s23);
    int id = node(p, IR_TRANSPOSE, x, -1, s32, 0);
    Interp it;
    expect("transpose", run(&it, p, A, NULL, id), (double[]){1, 4, 2, 5, 3, 6}, 6);
    interp_free(&it);
    arena_free(ar);
}

/* A one-operand op on the input of shape sa, the result of shape out. */
static void check_shaped(const char *what, IrOp op, Shape sa, const double *a, Shape out,
                         const double *want)
{
    Arena *ar = arena_new();
    IrProgram *p = ir_new(ar);
    int x = leaf(p, IR_INPUT, sa);
    int id = node(p, op, x, -1, out, 0);
    Interp it;
    expect(what, run(&it, p, a, NULL, id), want, (int)shape_size(out));
    interp_free(&it);
    arena_free(ar);
}

static void test_reductions(void)
{
    double A[6] = {1, 2, 3, 4, 5, 6}, s[1] = {-1.5}, v[2] = {7, -1};
    Shape s23 = shape(2, 2, 3);
    check_shaped("sum", IR_SUM, s23, A, SCALAR, (double[]){21});
    check_shaped("mean", IR_MEAN, s23, A, SCALAR, (double[]){3.5});
    check_shaped("sum of a scalar", IR_SUM, SCALAR, s, SCALAR, s);
    check_shaped("broadcast", IR_BROADCAST, SCALAR, s, shape(2, 2, 2),
                 (double[]){-1.5, -1.5, -1.5, -1.5});
    check_shaped("sum_last", IR_SUM_LAST, s23, A, shape(1, 2, 0), (double[]){6, 15});
    check_shaped("sum_last of a vector", IR_SUM_LAST, shape(1, 3, 0), A, SCALAR,
                 (double[]){6});
    check_shaped("expand_last", IR_EXPAND_LAST, shape(1, 2, 0), v, s23,
                 (double[]){7, 7, 7, -1, -1, -1});
    check_shaped("reshape", IR_RESHAPE, s23, A, shape(2, 3, 2), (double[]){1, 2, 3, 4, 5, 6});
}

static void test_softmax(void)
{
    /* Row 1: softmax(0, ln 2, ln 5) = (1, 2, 5)/8. Row 2: the 1000 dominates, exactly. */
    double z[6] = {0, log(2), log(5), 1000, 0, -1000};
    Shape s23 = shape(2, 2, 3);
    check_shaped("softmax", IR_SOFTMAX, s23, z, s23,
                 (double[]){0.125, 0.25, 0.625, 1, exp(-1000), 0});
    check_shaped("log_softmax", IR_LOG_SOFTMAX, s23, z, s23,
                 (double[]){log(0.125), log(0.25), log(0.625), 0, -1000, -2000});
}

/* The loss op on (z, t), z and t vectors of n. */
static double fused(IrOp op, int n, const double *z, const double *t)
{
    Arena *ar = arena_new();
    IrProgram *p = ir_new(ar);
    int x = leaf(p, IR_INPUT, shape(1, n, 0)), y = leaf(p, IR_TARGET, shape(1, n, 0));
    int id = node(p, op, x, y, SCALAR, 0);
    Interp it;
    double v = run(&it, p, z, t, id)[0];
    interp_free(&it);
    arena_free(ar);
    return v;
}

/* The textbook forms, with no care for overflow. */
static double naive_ce(int n, const double *z, const double *t)
{
    double s = 0, loss = 0;
    for (int i = 0; i < n; i++)
        s += exp(z[i]);
    for (int i = 0; i < n; i++)
        loss -= t[i] * log(exp(z[i]) / s);
    return loss;
}

static double naive_bce(int n, const double *z, const double *t)
{
    double loss = 0;
    for (int i = 0; i < n; i++) {
        double y = 1 / (1 + exp(-z[i]));
        loss -= t[i] * log(y) + (1 - t[i]) * log(1 - y);
    }
    return loss / n;
}

static void expect_loss(const char *what, double got, double want, double naive)
{
    if (!isfinite(got)) {
        printf("FAIL %s: not finite (%g)\n", what, got);
        failures++;
    }
    expect(what, &got, &want, 1);
    if (isfinite(naive)) {
        double tol = 1e-9 * fmax(1, fabs(naive));
        if (!(fabs(got - naive) <= tol)) {
            printf("FAIL %s: %.17g but the unfused formula gives %.17g\n", what, got, naive);
            failures++;
        }
    }
}

static void test_fused_losses(void)
{
    double z[3] = {1, 2, 3}, t[3] = {0, 0, 1};
    expect_loss("softmax_ce small", fused(IR_SOFTMAX_CE, 3, z, t),
                log(exp(1) + exp(2) + exp(3)) - 3, naive_ce(3, z, t));
    /* z = +-1000: the right class certain (loss 0) or wrong by 2000. */
    double zb[2] = {1000, -1000}, right[2] = {1, 0}, wrong[2] = {0, 1}, half[2] = {0.5, 0.5};
    expect_loss("softmax_ce right at 1000", fused(IR_SOFTMAX_CE, 2, zb, right), 0,
                naive_ce(2, zb, right));
    expect_loss("softmax_ce wrong at 1000", fused(IR_SOFTMAX_CE, 2, zb, wrong), 2000,
                naive_ce(2, zb, wrong));
    expect_loss("softmax_ce half at 1000", fused(IR_SOFTMAX_CE, 2, zb, half), 1000,
                naive_ce(2, zb, half));
    double zs[3] = {0.3, -1.2, 2}, ts[3] = {1, 0, 0.25};
    expect_loss("sigmoid_bce small", fused(IR_SIGMOID_BCE, 3, zs, ts),
                naive_bce(3, zs, ts), naive_bce(3, zs, ts));
    /* softplus(1000) - 1*1000 = 0, softplus(-1000) - 0 = 0; the wrong way round: 1000 each. */
    expect_loss("sigmoid_bce right at 1000", fused(IR_SIGMOID_BCE, 2, zb, right), 0,
                naive_bce(2, zb, right));
    expect_loss("sigmoid_bce wrong at 1000", fused(IR_SIGMOID_BCE, 2, zb, wrong), 1000,
                naive_bce(2, zb, wrong));
    /* The naive forms really break there: the test would mean nothing otherwise. */
    if (isfinite(naive_ce(2, zb, wrong)) || isfinite(naive_bce(2, zb, wrong))) {
        printf("FAIL the unfused losses were expected to overflow at 1000\n");
        failures++;
    }
}

static void test_softplus_sigmoid_extremes(void)
{
    double cases[4][3] = {
        /* x, softplus(x), sigmoid(x) */
        {1000, 1000, 1}, {-1000, 0, 0}, {40, 40 + log1p(exp(-40)), 1 / (1 + exp(-40))},
        {-40, log1p(exp(-40)), exp(-40) / (1 + exp(-40))},
    };
    for (int i = 0; i < 4; i++) {
        double sp = interp_softplus(cases[i][0]), sg = interp_sigmoid(cases[i][0]);
        expect("softplus extreme", &sp, &cases[i][1], 1);
        expect("sigmoid extreme", &sg, &cases[i][2], 1);
    }
}

int main(void)
{
    test_unary();
    test_binary();
    test_linear_algebra();
    test_reductions();
    test_softmax();
    test_fused_losses();
    test_softplus_sigmoid_extremes();
    if (failures)
        printf("%d failures\n", failures);
    else
        printf("interp: all values as expected\n");
    return failures ? 1 : 0;
}
