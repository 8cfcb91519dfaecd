/* ir.c - building IR nodes: appending, shape rules, op names, a structural check. */
#include "ir.h"

#include <string.h>

IrProgram *ir_new(Arena *arena)
{
    IrProgram *p = arena_alloc(arena, sizeof *p);
    p->arena = arena;
    p->input = p->target = p->loss = p->output = -1;
    return p;
}

/* Inputs and targets vary per sample; everything else varies when an operand does. */
static bool node_varying(const IrProgram *p, const IrNode *n)
{
    if (n->op == IR_INPUT || n->op == IR_TARGET || n->op == IR_DROPOUT_MASK)
        return true;
    for (int i = 0; i < n->nargs; i++)
        if (n->args[i] >= 0 && p->nodes[n->args[i]].varying)
            return true;
    return false;
}

int ir_add(IrProgram *p, IrNode node)
{
    if (p->nnodes == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        p->nodes = arena_grow(p->arena, p->nodes, (size_t)p->cap * sizeof *p->nodes,
                              (size_t)cap * sizeof *p->nodes);
        p->cap = cap;
    }
    for (int i = node.nargs; i < 2; i++)
        node.args[i] = -1;
    node.varying = node_varying(p, &node);
    p->nodes[p->nnodes] = node;
    return p->nnodes++;
}

int ir_const(IrProgram *p, double value, Loc loc)
{
    return ir_add(p, (IrNode){.op = IR_CONST, .num = value, .loc = loc});
}

int ir_unary(IrProgram *p, IrOp op, int a, Loc loc)
{
    Shape s = ir_infer_shape(op, p->nodes[a].shape, p->nodes[a].shape);
    return ir_add(p, (IrNode){.op = op, .shape = s, .args = {a, -1}, .nargs = 1, .loc = loc});
}

int ir_unary_num(IrProgram *p, IrOp op, int a, double num, Loc loc)
{
    int id = ir_unary(p, op, a, loc);
    p->nodes[id].num = num;
    return id;
}

int ir_unary_to(IrProgram *p, IrOp op, int a, Shape shape, Loc loc)
{
    return ir_add(p, (IrNode){.op = op, .shape = shape, .args = {a, -1}, .nargs = 1, .loc = loc});
}

int ir_binary(IrProgram *p, IrOp op, int a, int b, Loc loc)
{
    Shape s = ir_infer_shape(op, p->nodes[a].shape, p->nodes[b].shape);
    return ir_add(p, (IrNode){.op = op, .shape = s, .args = {a, b}, .nargs = 2, .loc = loc});
}

int ir_image(IrProgram *p, IrOp op, int a, int b, IrWindow win, const Shape *shape, Loc loc)
{
    Shape sa = p->nodes[a].shape, sb = b >= 0 ? p->nodes[b].shape : sa;
    Shape s = shape ? *shape : ir_infer_shape_win(op, sa, sb, win);
    return ir_add(p, (IrNode){.op = op, .shape = s, .args = {a, b}, .nargs = b >= 0 ? 2 : 1,
                              .win = win, .loc = loc});
}

int ir_slice(IrProgram *p, int a, int first, int rows, Loc loc)
{
    Shape s = p->nodes[a].shape;
    s.dims[0] = rows;
    return ir_add(p, (IrNode){.op = IR_SLICE, .shape = s, .args = {a, -1}, .nargs = 1,
                              .index = first, .loc = loc});
}

int ir_dropout_mask(IrProgram *p, int id, double prob, Shape shape, Loc loc)
{
    return ir_add(p, (IrNode){.op = IR_DROPOUT_MASK, .shape = shape, .num = prob, .index = id,
                              .loc = loc});
}

/* One output dim of a window sliding over n (padded by pad each side); 0 when none fits. */
static int window_out(int n, int k, int stride, int pad)
{
    long long span = (long long)n + 2LL * pad - k;
    if (stride < 1 || pad < 0 || k < 1 || span < 0)
        return 0;
    return (int)(span / stride + 1);
}

/* conv2d and the pools over a [C,H,W]: channels from `channels`, the window from win.
 * A window that does not fit gives a 0 dim (ir_verify rejects it). */
static Shape window_shape(Shape a, int channels, IrWindow win)
{
    Shape s = {0};
    if (a.rank != 3)
        return s;
    s.rank = 3;
    s.dims[0] = channels;
    s.dims[1] = window_out(a.dims[1], win.kh, win.stride, win.pad);
    s.dims[2] = window_out(a.dims[2], win.kw, win.stride, win.pad);
    return s;
}

static Shape concat_shape(Shape a, Shape b)
{
    if (a.rank >= 1 && b.rank >= 1)
        a.dims[0] += b.dims[0];
    return a;
}

Shape ir_infer_shape_win(IrOp op, Shape a, Shape b, IrWindow win)
{
    switch (op) {
    case IR_CONV2D:
        return window_shape(a, b.rank == 4 ? b.dims[0] : 0, win);
    case IR_MAXPOOL: case IR_AVGPOOL:
        return window_shape(a, a.rank == 3 ? a.dims[0] : 0, win);
    case IR_MAXPOOL_BWD:
        return a;
    case IR_CONCAT:
        return concat_shape(a, b);
    case IR_CONV2D_BWD_INPUT: case IR_CONV2D_BWD_WEIGHT: case IR_AVGPOOL_BWD: case IR_SLICE:
    case IR_DROPOUT_MASK:
        return b; /* the node's shape */
    default:
        return ir_infer_shape(op, a, b);
    }
}

/* a's dims without its last one, then b's without its first: the matmul contraction. */
static Shape matmul_shape(Shape a, Shape b)
{
    Shape s = {0};
    for (int i = 0; i + 1 < a.rank; i++)
        s.dims[s.rank++] = a.dims[i];
    for (int i = 1; i < b.rank && s.rank < MAX_RANK; i++)
        s.dims[s.rank++] = b.dims[i];
    return s;
}

static Shape outer_shape(Shape a, Shape b)
{
    Shape s = a;
    for (int i = 0; i < b.rank && s.rank < MAX_RANK; i++)
        s.dims[s.rank++] = b.dims[i];
    return s;
}

Shape ir_infer_shape(IrOp op, Shape a, Shape b)
{
    Shape scalar = {0};
    switch (op) {
    case IR_ADD: case IR_SUB: case IR_MUL: case IR_DIV:
        return a.rank == 0 ? b : a;
    case IR_MATMUL:
        return matmul_shape(a, b);
    case IR_OUTER:
        return outer_shape(a, b);
    case IR_TRANSPOSE: {
        Shape s = a;
        if (s.rank == 2) {
            s.dims[0] = a.dims[1];
            s.dims[1] = a.dims[0];
        }
        return s;
    }
    case IR_SUM: case IR_MEAN: case IR_SOFTMAX_CE: case IR_SIGMOID_BCE: case IR_CONST:
        return scalar;
    case IR_SUM_LAST:
        if (a.rank > 0)
            a.rank--;
        return a;
    case IR_BROADCAST: case IR_EXPAND_LAST: case IR_RESHAPE:
        return b; /* the result shape cannot come from a: b names it */
    case IR_CONV2D: case IR_CONV2D_BWD_INPUT: case IR_CONV2D_BWD_WEIGHT: case IR_MAXPOOL:
    case IR_MAXPOOL_BWD: case IR_AVGPOOL: case IR_AVGPOOL_BWD: case IR_CONCAT: case IR_SLICE:
    case IR_DROPOUT_MASK: {
        IrWindow none = {1, 1, 1, 0}; /* callers with a window use ir_infer_shape_win */
        return ir_infer_shape_win(op, a, b, none);
    }
    default:
        return a; /* elementwise, softmax, log_softmax, leaves */
    }
}

/* What each op is, in one place: its name, its kind, and its properties. */
#define U IR_KIND_UNARY
#define B IR_KIND_BINARY
static const IrOpInfo op_info[IR_NUM_OPS] = {
    [IR_INPUT] = {"input", IR_KIND_LEAF, 0}, [IR_TARGET] = {"target", IR_KIND_LEAF, 0},
    [IR_PARAM] = {"param", IR_KIND_LEAF, 0}, [IR_CONST] = {"const", IR_KIND_LEAF, 0, .num = true},
    [IR_NEG] = {"neg", U, 1}, [IR_EXP] = {"exp", U, 1}, [IR_LOG] = {"log", U, 1},
    [IR_SQRT] = {"sqrt", U, 1}, [IR_ABS] = {"abs", U, 1, .kink = true},
    [IR_SIGMOID] = {"sigmoid", U, 1}, [IR_TANH] = {"tanh", U, 1},
    [IR_RELU] = {"relu", U, 1, .kink = true}, [IR_SOFTPLUS] = {"softplus", U, 1},
    [IR_LEAKY_RELU] = {"leaky_relu", U, 1, .num = true, .kink = true, .num_arg = true},
    [IR_POW] = {"pow", U, 1, .num = true},
    [IR_STEP] = {"step", U, 1, .kink = true, .helper = true},
    [IR_LEAKY_STEP] = {"leaky_step", U, 1, .num = true, .kink = true, .num_arg = true, .helper = true},
    [IR_SIGN] = {"sign", U, 1, .kink = true, .helper = true},
    [IR_ADD] = {"add", B, 2}, [IR_SUB] = {"sub", B, 2}, [IR_MUL] = {"mul", B, 2},
    [IR_DIV] = {"div", B, 2},
    [IR_MATMUL] = {"matmul", IR_KIND_OTHER, 2}, [IR_OUTER] = {"outer", IR_KIND_OTHER, 2},
    [IR_TRANSPOSE] = {"transpose", IR_KIND_OTHER, 1}, [IR_RESHAPE] = {"reshape", IR_KIND_OTHER, 1},
    [IR_SUM] = {"sum", IR_KIND_OTHER, 1}, [IR_MEAN] = {"mean", IR_KIND_OTHER, 1},
    [IR_BROADCAST] = {"broadcast", IR_KIND_OTHER, 1},
    [IR_SUM_LAST] = {"sum_last", IR_KIND_OTHER, 1}, [IR_EXPAND_LAST] = {"expand_last", IR_KIND_OTHER, 1},
    [IR_SOFTMAX] = {"softmax", IR_KIND_OTHER, 1}, [IR_LOG_SOFTMAX] = {"log_softmax", IR_KIND_OTHER, 1},
    [IR_SOFTMAX_CE] = {"softmax_ce", IR_KIND_OTHER, 2}, [IR_SIGMOID_BCE] = {"sigmoid_bce", IR_KIND_OTHER, 2},
    [IR_CONV2D] = {"conv2d", IR_KIND_OTHER, 2},
    [IR_CONV2D_BWD_INPUT] = {"conv2d_backward_input", IR_KIND_OTHER, 2, .helper = true},
    [IR_CONV2D_BWD_WEIGHT] = {"conv2d_backward_weight", IR_KIND_OTHER, 2, .helper = true},
    [IR_MAXPOOL] = {"maxpool", IR_KIND_OTHER, 1, .kink = true},
    [IR_MAXPOOL_BWD] = {"maxpool_backward", IR_KIND_OTHER, 2, .helper = true},
    [IR_AVGPOOL] = {"avgpool", IR_KIND_OTHER, 1},
    [IR_AVGPOOL_BWD] = {"avgpool_backward", IR_KIND_OTHER, 1, .helper = true},
    [IR_CONCAT] = {"concat", IR_KIND_OTHER, 2},
    [IR_SLICE] = {"slice", IR_KIND_OTHER, 1, .helper = true},
    [IR_DROPOUT_MASK] = {"dropout_mask", IR_KIND_LEAF, 0, .num = true},
};
#undef U
#undef B

const IrOpInfo *ir_op_info(IrOp op)
{
    static const IrOpInfo unknown = {.name = "?", .kind = IR_KIND_OTHER};
    return op >= 0 && op < IR_NUM_OPS && op_info[op].name ? &op_info[op] : &unknown;
}

const char *ir_op_name(IrOp op)
{
    return ir_op_info(op)->name;
}

int ir_op_arity(IrOp op)
{
    return ir_op_info(op)->arity;
}

static bool rest_eq(Shape a, Shape b) /* equal but for the first dim */
{
    if (a.rank != b.rank || a.rank < 1)
        return false;
    for (int i = 1; i < a.rank; i++)
        if (a.dims[i] != b.dims[i])
            return false;
    return true;
}

/* A window that fits an image of shape a (a dim of 0 in the result says it does not). */
static bool window_fits(const IrNode *n, Shape a, bool pool)
{
    IrWindow w = n->win;
    if (a.rank != 3 || w.stride < 1 || w.pad < 0 || (pool && (w.kh != w.kw || w.pad != 0)))
        return false;
    Shape s = window_shape(a, 1, w);
    return s.dims[1] > 0 && s.dims[2] > 0;
}

/* x [C,H,W] and K [F,C,kh,kw] make a convolution of window win giving d. */
static bool conv_fits(const IrNode *n, Shape x, Shape k, Shape d)
{
    return window_fits(n, x, false) && k.rank == 4 && x.dims[0] == k.dims[1] &&
           k.dims[2] == n->win.kh && k.dims[3] == n->win.kw &&
           shape_eq(d, window_shape(x, k.dims[0], n->win));
}

/* The image ops' operands (and for those of a given shape, that shape). */
static bool image_operands_fit(const IrNode *n, Shape a, Shape b)
{
    switch (n->op) {
    case IR_CONV2D:
        return b.rank == 4 && conv_fits(n, a, b, window_shape(a, b.dims[0], n->win));
    case IR_CONV2D_BWD_INPUT:
        return conv_fits(n, n->shape, b, a);
    case IR_CONV2D_BWD_WEIGHT:
        return conv_fits(n, a, n->shape, b);
    case IR_MAXPOOL: case IR_AVGPOOL:
        return window_fits(n, a, true);
    case IR_MAXPOOL_BWD:
        return window_fits(n, a, true) && shape_eq(b, window_shape(a, a.dims[0], n->win));
    case IR_AVGPOOL_BWD:
        return window_fits(n, n->shape, true) && shape_eq(a, window_shape(n->shape, n->shape.dims[0], n->win));
    case IR_CONCAT:
        return rest_eq(a, b);
    case IR_SLICE:
        return rest_eq(a, n->shape) && n->index >= 0 && n->shape.dims[0] <= a.dims[0] - n->index;
    default:
        return true;
    }
}

/* Operand shapes the op accepts (the result shape is checked separately). */
static bool operands_fit(const IrNode *n, Shape a, Shape b)
{
    if (n->op >= IR_CONV2D)
        return image_operands_fit(n, a, b);
    switch (n->op) {
    case IR_ADD: case IR_SUB: case IR_MUL: case IR_DIV:
        return a.rank == 0 || b.rank == 0 || shape_eq(a, b);
    case IR_MATMUL:
        return a.rank >= 1 && a.rank <= 2 && b.rank >= 1 && b.rank <= 2 &&
               a.dims[a.rank - 1] == b.dims[0];
    case IR_TRANSPOSE:
        return a.rank == 2;
    case IR_BROADCAST:
        return a.rank == 0;
    case IR_RESHAPE:
        return shape_size(a) == shape_size(n->shape);
    case IR_SUM_LAST: case IR_SOFTMAX: case IR_LOG_SOFTMAX:
        return a.rank >= 1;
    case IR_EXPAND_LAST:
        return n->shape.rank == a.rank + 1;
    case IR_SOFTMAX_CE: case IR_SIGMOID_BCE:
        return shape_eq(a, b) && (n->op == IR_SIGMOID_BCE || a.rank >= 1);
    case IR_OUTER:
        return a.rank + b.rank <= MAX_RANK;
    default:
        return true;
    }
}

static bool result_fits(const IrNode *n, Shape a, Shape b)
{
    if (n->op == IR_BROADCAST || n->op == IR_RESHAPE || n->op == IR_CONV2D_BWD_INPUT ||
        n->op == IR_CONV2D_BWD_WEIGHT || n->op == IR_AVGPOOL_BWD || n->op == IR_SLICE)
        return true; /* any shape: the operands' check covers these */
    if (n->op == IR_EXPAND_LAST) {
        Shape s = n->shape;
        s.rank--;
        return shape_eq(s, a);
    }
    return shape_eq(n->shape, ir_infer_shape_win(n->op, a, b, n->win));
}

const char *ir_verify(const IrProgram *p)
{
    for (int id = 0; id < p->nnodes; id++) {
        const IrNode *n = &p->nodes[id];
        if (n->op < 0 || n->op >= IR_NUM_OPS)
            return arena_printf(p->arena, "node %d: bad op %d", id, (int)n->op);
        if (n->nargs != ir_op_arity(n->op))
            return arena_printf(p->arena, "node %d (%s): %d operands", id, ir_op_name(n->op), n->nargs);
        for (int i = 0; i < n->nargs; i++)
            if (n->args[i] < 0 || n->args[i] >= id)
                return arena_printf(p->arena, "node %d (%s): operand %d is node %d",
                                    id, ir_op_name(n->op), i, n->args[i]);
        Shape a = n->nargs > 0 ? p->nodes[n->args[0]].shape : (Shape){0};
        Shape b = n->nargs > 1 ? p->nodes[n->args[1]].shape : a;
        if (n->nargs > 0 && (!operands_fit(n, a, b) || !result_fits(n, a, b)))
            return arena_printf(p->arena, "node %d (%s): shapes do not fit", id, ir_op_name(n->op));
        if (n->op == IR_PARAM && (n->index < 0 || n->index >= p->nparams))
            return arena_printf(p->arena, "node %d: param index %d", id, n->index);
        if (n->op == IR_DROPOUT_MASK && (n->index < 0 || !(n->num >= 0 && n->num < 1)))
            return arena_printf(p->arena, "node %d: dropout mask %d of p %g", id, n->index, n->num);
    }
    return NULL;
}
