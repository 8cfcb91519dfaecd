/* test_check_mutants.c - mutation testing of the gradient check through the real pipeline.
 *
 * Small models go through parse, sema, lowering, autodiff and the simplifier, then
 * --check's entry point (check_gradients). The untouched program must pass; then every
 * live backward node is corrupted in turn (an arithmetic op swapped, a constant or an
 * exponent changed, a derivative helper replaced) and each of those wrong derivative
 * rules must make the check fail with status 1. */
#define _GNU_SOURCE 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "autodiff.h"
#include "check.h"
#include "diag.h"
#include "lower.h"
#include "parse.h"
#include "sema.h"
#include "simplify.h"

static int failures;

static const char *const models[] = {
    /* xor, as in examples/ */
    "model xor {\n"
    "  input x[2]\n  target t[1]\n"
    "  param W1[4, 2] = normal(0, 1)\n  param b1[4] = uniform(-0.5, 0.5)\n"
    "  param W2[1, 4] = xavier\n  param b2[1] = const(0.1)\n"
    "  h = sigmoid(W1 @ x + b1)\n  y = sigmoid(W2 @ h + b2)\n"
    "  output y\n  loss = mse(y, t)\n}\n"
    "train xor { data = [[0, 0] -> [0], [0, 1] -> [1], [1, 0] -> [1], [1, 1] -> [0]]\n"
    "  seed = 1 }\n",
    /* relu, leaky_relu, the fused softmax cross-entropy, weight decay */
    "model cls {\n"
    "  input x[3]\n  target t[3]\n"
    "  param W[4, 3] = normal(0, 1)\n  param b[4] = uniform(-0.2, 0.2)\n"
    "  param V[3, 4] = xavier\n"
    "  h = relu(W @ x + b) + leaky_relu(W @ x - b, 0.1)\n"
    "  z = V @ h\n"
    "  output z\n  loss = cross_entropy(softmax(z), t) + 0.01 * sum(V ^ 2)\n}\n"
    "train cls { data = [[1, -1, 0.5] -> [1, 0, 0], [0.2, 0.4, -2] -> [0, 1, 0],\n"
    "  [-1, 1, 1] -> [0, 0, 1]]\n  seed = 2 }\n",
    /* smooth functions, abs, division, powers, the fused bce, log_softmax */
    "model fun {\n"
    "  input x[2]\n  target t[2]\n"
    "  param A[2, 2] = uniform(-1, 1)\n  param c[2] = const(0.3)\n"
    "  u = A @ x + c\n"
    "  v = tanh(u) * softplus(u) / (1 + exp(u) ^ 0.5) + abs(u) * sqrt(1 + u ^ 2)\n"
    "  w = log(1 + u ^ 2) + log_softmax(u)\n"
    "  output v\n  loss = bce(sigmoid(v), t) + mean(w * v) - sum(c ^ 3)\n}\n"
    "train fun { data = [[1, 2] -> [1, 0], [-0.5, 0.25] -> [0, 1], [2, -1] -> [1, 1]]\n"
    "  seed = 3 }\n",
};

typedef struct Compiled {
    Arena *arena;
    Diag diag;
    Model *model;
    IrProgram *ir;
} Compiled;

static bool compile(const char *text, Compiled *c)
{
    c->arena = arena_new();
    diag_init(&c->diag, "mutant.nn", text, strlen(text));
    Program *prog = parse_program(c->arena, &c->diag);
    if (!prog || !sema_check(prog, c->arena, &c->diag))
        return false;
    c->model = sema_pick_model(prog, NULL, &c->diag);
    if (!c->model)
        return false;
    c->ir = lower_model(c->model, c->arena, &c->diag);
    if (!c->ir || !ad_differentiate(c->ir, &c->diag))
        return false;
    c->ir = simp_program(c->ir);
    return c->ir && c->diag.nerrors == 0;
}

static int run_check(Compiled *c, char **text)
{
    size_t len;
    FILE *out = open_memstream(text, &len);
    int status = check_gradients(c->ir, c->model, &c->diag, out);
    fclose(out);
    return status;
}

/* Backward nodes some param's gradient is computed from. */
static bool *live_nodes(const IrProgram *p)
{
    bool *live = calloc((size_t)p->nnodes, sizeof *live);
    for (int i = 0; i < p->nparams; i++)
        if (p->params[i].grad >= 0)
            live[p->params[i].grad] = true;
    for (int id = p->nnodes - 1; id >= 0; id--)
        for (int k = 0; live[id] && k < p->nodes[id].nargs; k++)
            live[p->nodes[id].args[k]] = true;
    return live;
}

/* A wrong version of node n, or false when this test has none for its op. */
static bool mutate(IrNode *n)
{
    switch (n->op) {
    case IR_ADD: n->op = IR_SUB; return true;
    case IR_SUB: n->op = IR_ADD; return true;
    case IR_MUL: n->op = IR_ADD; return true;
    case IR_DIV: n->op = IR_MUL; return true;
    case IR_CONST: n->num = n->num * 1.5 + 0.25; return true;
    case IR_POW: n->num += 1; return true;
    case IR_STEP: n->op = IR_SIGN; return true;
    case IR_SIGN: n->op = IR_STEP; return true;
    case IR_LEAKY_STEP: n->num += 0.5; return true;
    case IR_SIGMOID: n->op = IR_TANH; return true;
    case IR_TANH: n->op = IR_SIGMOID; return true;
    case IR_EXP: n->op = IR_SOFTPLUS; return true;
    case IR_SOFTMAX: n->op = IR_LOG_SOFTMAX; return true;
    case IR_NEG: n->op = IR_ABS; return true;
    default: return false;
    }
}

static void test_model(const char *text)
{
    Compiled c;
    char *out;
    if (!compile(text, &c)) {
        printf("FAIL: the model does not compile:\n%s", text);
        failures++;
        arena_free(c.arena);
        return;
    }
    IrProgram *p = c.ir;
    if (run_check(&c, &out) != 0) {
        printf("FAIL %s: the correct program fails the check:\n%s", c.model->name, out);
        failures++;
    }
    free(out);
    bool *live = live_nodes(p);
    int mutants = 0, caught = 0;
    for (int id = p->nforward; id < p->nnodes; id++) {
        IrNode saved = p->nodes[id];
        if (!live[id] || !mutate(&p->nodes[id]))
            continue;
        mutants++;
        int status = run_check(&c, &out);
        if (status == 1 && strstr(out, "FAIL:"))
            caught++;
        else
            printf("FAIL %s: corrupting backward node %d (%s %s) went unnoticed:\n%s",
                   c.model->name, id, saved.name ? saved.name : "", ir_op_name(saved.op), out);
        free(out);
        p->nodes[id] = saved;
    }
    printf("%s: %d of %d wrong derivative rules caught\n", c.model->name, caught, mutants);
    if (caught != mutants || mutants < 5)
        failures++;
    free(live);
    arena_free(c.arena);
}

int main(void)
{
    for (size_t i = 0; i < sizeof models / sizeof *models; i++)
        test_model(models[i]);
    return failures ? 1 : 0;
}
