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
    if (n->op == IR_INPUT || n->op == IR_TARGET)
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

/* Operand shapes the op accepts (the result shape is checked separately). */
static bool operands_fit(const IrNode *n, Shape a, Shape b)
{
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
    if (n->op == IR_BROADCAST || n->op == IR_RESHAPE)
        return true; /* any shape: the operand's check covers reshape */
    if (n->op == IR_EXPAND_LAST) {
        Shape s = n->shape;
        s.rank--;
        return shape_eq(s, a);
    }
    return shape_eq(n->shape, ir_infer_shape(n->op, a, b));
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
    }
    return NULL;
}
