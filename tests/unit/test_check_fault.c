/* test_check_fault.c - the gradient check can fail.
 *
 * A small model with a hand-derived backward pass, y = tanh(W @ x + b),
 * loss = mean((y - t)^2), passes check_program; the same program with one backward
 * node corrupted (a flipped op, a wrong factor, a missing gradient) fails it with exit
 * status 1. A relu model whose kink sits exactly at the evaluation point passes with
 * the crossing elements skipped. */
#define _GNU_SOURCE 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "check.h"
#include "ir.h"

static int failures;

static Shape vec(int n)
{
    return (Shape){.rank = 1, .dims = {n}};
}

static int add(IrProgram *p, IrOp op, int a, int b, Shape s, double num, const char *name)
{
    int nargs = a < 0 ? 0 : b < 0 ? 1 : 2;
    return ir_add(p, (IrNode){.op = op, .shape = s, .args = {a, b}, .nargs = nargs,
                              .num = num, .name = name, .grad = false});
}

static int param(IrProgram *p, const char *name, Shape s)
{
    int i = p->nparams++;
    p->params = arena_grow(p->arena, p->params, sizeof *p->params * (size_t)i,
                           sizeof *p->params * (size_t)p->nparams);
    int id = ir_add(p, (IrNode){.op = IR_PARAM, .shape = s, .index = i, .name = name});
    p->params[i] = (IrParam){.name = name, .shape = s, .node = id, .grad = -1};
    return id;
}

/* The ids of the nodes a test corrupts. */
typedef struct Model1 {
    IrProgram *p;
    int one_minus_y2, half, dW;
} Model1;

/* x[3], t[2], W[2,3], b[2]: y = tanh(W @ x + b); loss = mean((y - t)^2). */
static Model1 build_tanh_mse(Arena *a)
{
    IrProgram *p = ir_new(a);
    Shape s0 = {0}, v2 = vec(2), m23 = {.rank = 2, .dims = {2, 3}};
    Model1 m = {.p = p};
    int x = p->input = add(p, IR_INPUT, -1, -1, vec(3), 0, "x");
    int t = p->target = add(p, IR_TARGET, -1, -1, v2, 0, "t");
    int W = param(p, "W", m23), b = param(p, "b", v2);
    int z = add(p, IR_MATMUL, W, x, v2, 0, "z");
    int u = add(p, IR_ADD, z, b, v2, 0, "u");
    int y = p->output = add(p, IR_TANH, u, -1, v2, 0, "y");
    int d = add(p, IR_SUB, y, t, v2, 0, "d");
    int sq = add(p, IR_POW, d, -1, v2, 2, "sq");
    p->loss = add(p, IR_MEAN, sq, -1, s0, 0, "loss");
    p->nforward = p->nnodes;
    /* dsq = broadcast(1/2); dd = dsq * 2d; du = dd * (1 - y^2); db = du; dW = outer(du, x) */
    m.half = add(p, IR_CONST, -1, -1, s0, 0.5, NULL);
    int dsq = add(p, IR_BROADCAST, m.half, -1, v2, 0, "dsq");
    int two = add(p, IR_CONST, -1, -1, s0, 2, NULL);
    int twod = add(p, IR_MUL, two, d, v2, 0, NULL);
    int dd = add(p, IR_MUL, dsq, twod, v2, 0, "dd");
    int y2 = add(p, IR_MUL, y, y, v2, 0, NULL);
    int one = add(p, IR_CONST, -1, -1, s0, 1, NULL);
    m.one_minus_y2 = add(p, IR_SUB, one, y2, v2, 0, NULL);
    int du = add(p, IR_MUL, dd, m.one_minus_y2, v2, 0, "du");
    m.dW = add(p, IR_OUTER, du, x, m23, 0, "dW");
    p->params[0].grad = m.dW;
    p->params[1].grad = du;
    return m;
}

static const double W0[6] = {0.3, -0.7, 0.2, 0.9, 0.1, -0.4}, b0[2] = {0.05, -0.2};
static const double X[4 * 3] = {1, 0, -1, 0.5, 0.5, 2, -1, 1, 0.25, 0, -2, 1};
static const double T[4 * 2] = {1, 0, 0, 1, 0.5, 0.5, -1, 1};

/* Runs the check; returns its status and its output in *text (caller frees). */
static int run_check(const IrProgram *p, const double *const *params, char **text)
{
    size_t len;
    FILE *out = open_memstream(text, &len);
    int status = check_program(p, params, 4, X, T, out);
    fclose(out);
    if (getenv("SHOW"))
        fputs(*text, stdout);
    return status;
}

static void expect_status(const char *what, const IrProgram *p, const double *const *params,
                          int want, const char *want_text)
{
    char *text;
    int status = run_check(p, params, &text);
    if (status != want || !strstr(text, want_text)) {
        printf("FAIL %s: status %d (want %d), output lacks \"%s\":\n%s", what, status, want,
               want_text, text);
        failures++;
    }
    free(text);
}

static void test_tanh_mse(void)
{
    const double *params[2] = {W0, b0};
    Arena *a = arena_new();
    Model1 m = build_tanh_mse(a);
    expect_status("correct program", m.p, params, 0, "ok: all 2 params agree");

    /* 1 + y^2 for 1 - y^2: tanh's rule with a flipped op. */
    m.p->nodes[m.one_minus_y2].op = IR_ADD;
    expect_status("flipped op", m.p, params, 1, "FAIL: 2 of 2 params");
    m.p->nodes[m.one_minus_y2].op = IR_SUB;

    /* mean's 1/n taken as 1/(n+1): every gradient off by a factor. */
    m.p->nodes[m.half].num = 1.0 / 3;
    expect_status("wrong factor", m.p, params, 1, "FAIL: 2 of 2 params");
    m.p->nodes[m.half].num = 0.5;

    /* W declared gradient-free although the loss depends on it. */
    m.p->params[0].grad = -1;
    expect_status("missing gradient", m.p, params, 1, "FAIL: 1 of 2 params");
    m.p->params[0].grad = m.dW;

    expect_status("restored program", m.p, params, 0, "ok: all 2 params agree");
    arena_free(a);
}

/* x[3], W[2,3], b[2], c[2] (unused): loss = sum(relu(W @ x + b)) + sum(abs(b)).
 * W's row 0 and b[0] are 0, so the relu's first input is exactly 0: every element
 * that moves it crosses the kink. */
static void test_relu_kink(void)
{
    Arena *a = arena_new();
    IrProgram *p = ir_new(a);
    Shape s0 = {0}, v2 = vec(2), m23 = {.rank = 2, .dims = {2, 3}};
    int x = p->input = add(p, IR_INPUT, -1, -1, vec(3), 0, "x");
    int W = param(p, "W", m23), b = param(p, "b", v2);
    param(p, "c", v2);
    int z = add(p, IR_MATMUL, W, x, v2, 0, "z");
    int u = add(p, IR_ADD, z, b, v2, 0, "u");
    int r = p->output = add(p, IR_RELU, u, -1, v2, 0, "r");
    int s = add(p, IR_SUM, r, -1, s0, 0, NULL);
    int ab = add(p, IR_ABS, b, -1, v2, 0, NULL);
    int sa = add(p, IR_SUM, ab, -1, s0, 0, NULL);
    p->loss = add(p, IR_ADD, s, sa, s0, 0, "loss");
    p->nforward = p->nnodes;
    int one = add(p, IR_CONST, -1, -1, s0, 1, NULL);
    int dr = add(p, IR_BROADCAST, one, -1, v2, 0, "dr");
    int step = add(p, IR_STEP, u, -1, v2, 0, NULL);
    int du = add(p, IR_MUL, dr, step, v2, 0, "du");
    int sign = add(p, IR_SIGN, b, -1, v2, 0, NULL);
    int db = add(p, IR_ADD, du, sign, v2, 0, "db");
    p->params[0].grad = add(p, IR_OUTER, du, x, m23, 0, "dW");
    p->params[1].grad = db;
    static const double w[6] = {0, 0, 0, 0.5, -0.25, 1}, bias[2] = {0, 0.3}, c[2] = {1, 2};
    const double *params[3] = {w, bias, c};
    char *text;
    int status = run_check(p, params, &text);
    /* W: row 0 (3 elements) crosses the kink for every sample with x != 0; b[0] too,
     * and b[0] = 0 is abs's kink as well. */
    if (status != 0 || !strstr(text, "ok: all 3 params agree") ||
        !strstr(text, "checked 3  skipped 3") || !strstr(text, "checked 1  skipped 1") ||
        !strstr(text, "checked 2  skipped 0  ok (no gradient")) {
        printf("FAIL relu kink: status %d:\n%s", status, text);
        failures++;
    }
    free(text);
    /* relu' read as 1 everywhere: wrong where u[1] < 0 (sample 1: 0.5 - 1 + 0.3). */
    p->nodes[step].op = IR_LEAKY_STEP;
    p->nodes[step].num = 1;
    expect_status("relu' taken as 1", p, params, 1, "FAIL: 2 of 3 params");
    arena_free(a);
}

int main(void)
{
    test_tanh_mse();
    test_relu_kink();
    if (failures)
        printf("%d failures\n", failures);
    else
        printf("check: catches every corruption\n");
    return failures ? 1 : 0;
}
