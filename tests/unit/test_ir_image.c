/* test_ir_image.c - the image ops of the IR (notes/conv-ir.md): their shapes, what
 * ir_verify refuses, and that the simplifier's CSE keeps apart what differs only in the
 * window, a slice's first row or a dropout mask's id. */
#include <stdio.h>
#include <string.h>

#include "ir.h"
#include "simplify.h"

static int failures;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
            failures++;                                                               \
        }                                                                             \
    } while (0)

static Arena *arena;
static const Loc here = {1, 1};

static Shape sh(int rank, int a, int b, int c, int d)
{
    return (Shape){rank, {a, b, c, d}};
}

static IrProgram *prog(Shape in, int *x)
{
    IrProgram *p = ir_new(arena);
    p->target = -1;
    *x = p->input = ir_add(p, (IrNode){.op = IR_INPUT, .shape = in, .name = "x", .loc = here});
    return p;
}

static int param(IrProgram *p, const char *name, Shape s)
{
    int i = p->nparams++;
    p->params = arena_grow(arena, p->params, (size_t)i * sizeof *p->params,
                           (size_t)(i + 1) * sizeof *p->params);
    int id = ir_add(p, (IrNode){.op = IR_PARAM, .shape = s, .index = i, .name = name, .loc = here});
    p->params[i] = (IrParam){.name = name, .shape = s, .loc = here, .node = id, .grad = -1};
    return id;
}

static void finish(IrProgram *p, int y)
{
    p->output = y;
    p->loss = ir_unary(p, IR_SUM, y, here);
    p->nforward = p->nnodes;
}

static void test_shapes(void)
{
    int x;
    IrProgram *p = prog(sh(3, 3, 9, 7, 0), &x);
    int k = param(p, "K", sh(4, 4, 3, 3, 2));
    int c = ir_image(p, IR_CONV2D, x, k, (IrWindow){3, 2, 2, 1}, NULL, here);
    CHECK(shape_eq(p->nodes[c].shape, sh(3, 4, 5, 4, 0))); /* (9+2-3)/2+1, (7+2-2)/2+1 */
    int m = ir_image(p, IR_MAXPOOL, c, -1, (IrWindow){2, 2, 1, 0}, NULL, here);
    CHECK(shape_eq(p->nodes[m].shape, sh(3, 4, 4, 3, 0)));
    int a = ir_image(p, IR_AVGPOOL, c, -1, (IrWindow){3, 3, 2, 0}, NULL, here);
    CHECK(shape_eq(p->nodes[a].shape, sh(3, 4, 2, 1, 0)));
    int s = ir_slice(p, c, 1, 2, here);
    CHECK(shape_eq(p->nodes[s].shape, sh(3, 2, 5, 4, 0)));
    int cat = ir_image(p, IR_CONCAT, c, s, (IrWindow){0}, NULL, here);
    CHECK(shape_eq(p->nodes[cat].shape, sh(3, 6, 5, 4, 0)));
    int mask = ir_dropout_mask(p, 0, 0.5, p->nodes[s].shape, here);
    CHECK(p->nodes[mask].varying);
    int y = ir_binary(p, IR_MUL, s, mask, here);
    int dx = ir_image(p, IR_CONV2D_BWD_INPUT, c, k, (IrWindow){3, 2, 2, 1}, &p->nodes[x].shape, here);
    int dk = ir_image(p, IR_CONV2D_BWD_WEIGHT, x, c, (IrWindow){3, 2, 2, 1}, &p->nodes[k].shape, here);
    int dm = ir_image(p, IR_MAXPOOL_BWD, c, m, (IrWindow){2, 2, 1, 0}, NULL, here);
    int da = ir_image(p, IR_AVGPOOL_BWD, a, -1, (IrWindow){3, 3, 2, 0}, &p->nodes[c].shape, here);
    CHECK(shape_eq(p->nodes[dm].shape, p->nodes[c].shape));
    (void)dx, (void)dk, (void)da, (void)cat;
    finish(p, y);
    CHECK(ir_verify(p) == NULL);
}

/* A node that breaks one rule, appended to a valid program, must be refused. */
static void refuse(IrNode bad)
{
    int x;
    IrProgram *p = prog(sh(3, 2, 6, 6, 0), &x);
    param(p, "K", sh(4, 3, 2, 3, 3));
    bad.loc = here;
    int id = ir_add(p, bad);
    finish(p, id);
    CHECK(ir_verify(p) != NULL);
}

static void test_verify(void)
{
    /* x [2, 6, 6], K [3, 2, 3, 3]: conv2d makes [3, 4, 4], not [3, 5, 5] */
    refuse((IrNode){.op = IR_CONV2D, .shape = sh(3, 3, 5, 5, 0), .args = {0, 1}, .nargs = 2,
                    .win = {3, 3, 1, 0}});
    /* a window whose kh differs from the kernel's */
    refuse((IrNode){.op = IR_CONV2D, .shape = sh(3, 3, 5, 5, 0), .args = {0, 1}, .nargs = 2,
                    .win = {2, 2, 1, 0}});
    /* stride 0 */
    refuse((IrNode){.op = IR_MAXPOOL, .shape = sh(3, 2, 3, 3, 0), .args = {0, -1}, .nargs = 1,
                    .win = {2, 2, 0, 0}});
    /* pooling with padding */
    refuse((IrNode){.op = IR_MAXPOOL, .shape = sh(3, 2, 4, 4, 0), .args = {0, -1}, .nargs = 1,
                    .win = {2, 2, 2, 1}});
    /* a window larger than the image */
    refuse((IrNode){.op = IR_AVGPOOL, .shape = sh(3, 2, 0, 0, 0), .args = {0, -1}, .nargs = 1,
                    .win = {7, 7, 1, 0}});
    /* a slice past the end */
    refuse((IrNode){.op = IR_SLICE, .shape = sh(3, 2, 6, 6, 0), .args = {0, -1}, .nargs = 1, .index = 1});
    /* a mask of p = 1 */
    refuse((IrNode){.op = IR_DROPOUT_MASK, .shape = sh(3, 2, 6, 6, 0), .num = 1});
}

/* sum(a) + sum(b), simplified: a and b stay two nodes when they differ only in attrs. */
static void kept_apart(IrNode a, IrNode b, IrOp op)
{
    int x;
    IrProgram *p = prog(sh(3, 2, 6, 6, 0), &x);
    param(p, "K", sh(4, 3, 2, 3, 3));
    a.loc = b.loc = here;
    int na = ir_add(p, a), nb = ir_add(p, b);
    int s = ir_binary(p, IR_ADD, ir_unary(p, IR_SUM, na, here), ir_unary(p, IR_SUM, nb, here), here);
    p->output = s;
    p->loss = s;
    p->nforward = p->nnodes;
    CHECK(ir_verify(p) == NULL);
    IrProgram *q = simp_program(p);
    int count = 0;
    for (int id = 0; id < q->nnodes; id++)
        count += q->nodes[id].op == op;
    CHECK(count == 2);
}

static void test_cse(void)
{
    IrNode c1 = {.op = IR_CONV2D, .shape = sh(3, 3, 4, 4, 0), .args = {0, 1}, .nargs = 2, .win = {3, 3, 1, 0}};
    IrNode c2 = c1;
    c2.win = (IrWindow){3, 3, 2, 0};
    c2.shape = sh(3, 3, 2, 2, 0);
    kept_apart(c1, c2, IR_CONV2D);
    /* the same shape from two windows: (6+2-3)/2+1 = (6+4-3)/3+1 = 3 */
    IrNode c3 = c1, c4 = c1;
    c3.win = (IrWindow){3, 3, 2, 1};
    c4.win = (IrWindow){3, 3, 3, 2};
    c3.shape = c4.shape = sh(3, 3, 3, 3, 0);
    kept_apart(c3, c4, IR_CONV2D);
    IrNode s1 = {.op = IR_SLICE, .shape = sh(3, 1, 6, 6, 0), .args = {0, -1}, .nargs = 1, .index = 0};
    IrNode s2 = s1;
    s2.index = 1;
    kept_apart(s1, s2, IR_SLICE);
    IrNode m1 = {.op = IR_DROPOUT_MASK, .shape = sh(3, 2, 6, 6, 0), .num = 0.5, .index = 0};
    IrNode m2 = m1;
    m2.index = 1;
    kept_apart(m1, m2, IR_DROPOUT_MASK);
}

int main(void)
{
    arena = arena_new();
    test_shapes();
    test_verify();
    test_cse();
    arena_free(arena);
    if (failures)
        fprintf(stderr, "test_ir_image: %d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
