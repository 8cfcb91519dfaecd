/* ir.h - the tensor IR: one SSA graph for the forward pass and the backward pass.
 *
 * A program is a list of nodes in definition order: a node's operands always have
 * smaller ids. Shapes are per sample and static (the batch dimension is added by codegen).
 * The forward pass is nodes [0, nforward); autodiff appends the backward pass after it.
 * Every node keeps the source location it came from. */
#ifndef NNC_IR_H
#define NNC_IR_H

#include <stdbool.h>
#include <stdio.h>

#include "arena.h"
#include "ast.h"

typedef enum {
    /* leaves */
    IR_INPUT,  /* the sample's input */
    IR_TARGET, /* the sample's target */
    IR_PARAM,  /* index = position in IrProgram.params */
    IR_CONST,  /* rank 0, value num */
    /* elementwise, one operand */
    IR_NEG, IR_EXP, IR_LOG, IR_SQRT, IR_ABS, IR_SIGMOID, IR_TANH, IR_RELU, IR_SOFTPLUS,
    IR_LEAKY_RELU, /* num = alpha */
    IR_POW,        /* num = constant exponent */
    IR_STEP,       /* x > 0 ? 1 : 0          (relu') */
    IR_LEAKY_STEP, /* x > 0 ? 1 : num(alpha) (leaky_relu') */
    IR_SIGN,       /* -1, 0 or 1             (abs') */
    /* elementwise, two operands: equal shapes, or one side rank 0 */
    IR_ADD, IR_SUB, IR_MUL, IR_DIV,
    /* linear algebra */
    IR_MATMUL,    /* contracts a's last dim with b's first: [m,n]@[n], [m,n]@[n,k], [n]@[n,k], [n]@[n] */
    IR_OUTER,     /* shape a ++ shape b (total rank <= 4) */
    IR_TRANSPOSE, /* rank 2 */
    IR_RESHAPE,   /* the node's shape, same element count, row-major: a view of a's elements */
    /* reductions and broadcasts */
    IR_SUM,         /* all elements -> rank 0 */
    IR_MEAN,        /* all elements -> rank 0 */
    IR_BROADCAST,   /* rank-0 a -> the node's shape */
    IR_SUM_LAST,    /* sum over the last dim: [.., n] -> [..] */
    IR_EXPAND_LAST, /* repeat along a new last dim: [..] -> [.., n], n = the node's last dim */
    /* last-dim normalisations */
    IR_SOFTMAX, IR_LOG_SOFTMAX,
    /* fused, numerically stable losses (rank 0) */
    IR_SOFTMAX_CE,  /* (z, t): -sum(t * log_softmax(z))      = cross_entropy(softmax(z), t) */
    IR_SIGMOID_BCE, /* (z, t): mean(softplus(z) - t * z)      = bce(sigmoid(z), t) */
    /* images: per-sample [C, H, W], channels first; win gives the window (docs/design.md) */
    IR_CONV2D,            /* (x [C,H,W], K [F,C,kh,kw]) -> [F,H',W'], H' = (H+2pad-kh)/stride+1 */
    IR_CONV2D_BWD_INPUT,  /* (d [F,H',W'], K) -> the node's shape [C,H,W]: conv2d's dx */
    IR_CONV2D_BWD_WEIGHT, /* (x, d [F,H',W']) -> the node's shape [F,C,kh,kw]: conv2d's dK */
    IR_MAXPOOL,           /* a [C,H,W] -> [C,(H-k)/stride+1,(W-k)/stride+1]: max of each window */
    IR_MAXPOOL_BWD,       /* (a, d): a's shape, each window's d at its first maximum (row-major) */
    IR_AVGPOOL,           /* a [C,H,W] -> pooled shape: mean of each window */
    IR_AVGPOOL_BWD,       /* d -> the node's shape [C,H,W]: d/(k*k) spread over each window */
    IR_CONCAT,            /* (a [n,...], b [m,...]) -> [n+m,...] along the first dim */
    IR_SLICE,             /* a [N,...] -> the node's shape [m,...]: rows index .. index+m-1 */
    IR_DROPOUT_MASK,      /* leaf, varying: per sample and step 0 with probability num, else
                           * 1/(1-num); index = the mask's id; all ones when not training */
    IR_NUM_OPS
} IrOp;

/* The window of a convolution or pooling op (pooling: kh = kw = k, pad 0). */
typedef struct IrWindow {
    int kh, kw, stride, pad;
} IrWindow;

typedef struct IrNode {
    IrOp op;
    Shape shape;
    int args[2];       /* operand ids; -1 where absent */
    int nargs;
    double num;        /* IR_CONST value, IR_POW exponent, IR_LEAKY_* alpha */
    int index;         /* IR_PARAM: index into params; IR_SLICE: first row; IR_DROPOUT_MASK: mask id */
    IrWindow win;      /* conv/pool ops and their backward helpers */
    const char *name;  /* printed name: source name (h, W1), temporary (h.1), adjoint (dh, dh.1) */
    Loc loc;           /* the source it comes from */
    const char *rule;  /* backward nodes: the chain-rule step that produced it */
    /* backward nodes: the names of further adjoints the simplifier merged into this one, in
     * merge order (name is the one rule describes); copied on change, so nodes may share it */
    const char **aliases;
    int naliases;
    bool grad;         /* part of the backward pass */
    bool varying;      /* depends on the sample (input or target); false for params/constants */
} IrNode;

typedef struct IrParam {
    const char *name;
    Shape shape;
    Init init;
    Loc loc;
    int node; /* its IR_PARAM node */
    int grad; /* node holding d(loss)/d(param) for one sample, -1 when the loss does not depend on it */
} IrParam;

typedef struct IrProgram {
    Arena *arena;
    IrNode *nodes;
    int nnodes, cap;
    IrParam *params;
    int nparams;
    int input, target; /* node ids; target -1 when the model has none */
    int loss, output;  /* node ids */
    int nforward;      /* nodes [0, nforward) are the forward pass */
} IrProgram;

IrProgram *ir_new(Arena *arena);
/* Appends a node (copied), sets varying from its operands, returns its id. */
int ir_add(IrProgram *p, IrNode node);
int ir_const(IrProgram *p, double value, Loc loc);
int ir_unary(IrProgram *p, IrOp op, int a, Loc loc);
int ir_binary(IrProgram *p, IrOp op, int a, int b, Loc loc);
/* A unary op with its number attribute (IR_POW exponent, IR_LEAKY_* alpha). */
int ir_unary_num(IrProgram *p, IrOp op, int a, double num, Loc loc);
/* A unary op whose result shape is not its operand's (IR_BROADCAST, IR_EXPAND_LAST, IR_RESHAPE). */
int ir_unary_to(IrProgram *p, IrOp op, int a, Shape shape, Loc loc);
/* The shape of op applied to operands of shapes a and b (b ignored for unary ops;
 * for IR_BROADCAST, IR_EXPAND_LAST and IR_RESHAPE, b is the result shape). The image
 * ops take their window from ir_infer_shape_win; for the ops whose result is the node's
 * shape (conv2d/avgpool backward, slice, dropout_mask) b is that shape. */
Shape ir_infer_shape(IrOp op, Shape a, Shape b);
Shape ir_infer_shape_win(IrOp op, Shape a, Shape b, IrWindow win);
/* An image op (IR_CONV2D .. IR_SLICE; b -1 for one operand) with window win. shape NULL:
 * inferred from the operands (conv2d, pools, maxpool_backward, concat); otherwise the
 * node's shape (the backward helpers of conv2d and avgpool, slice). */
int ir_image(IrProgram *p, IrOp op, int a, int b, IrWindow win, const Shape *shape, Loc loc);
/* Rows [first, first + rows) of a's first dim. */
int ir_slice(IrProgram *p, int a, int first, int rows, Loc loc);
/* The dropout mask `id` (0, 1, ... in program order) of probability prob and the given shape. */
int ir_dropout_mask(IrProgram *p, int id, double prob, Shape shape, Loc loc);
/* What an op is: every stage asks here instead of listing ops of a kind itself. */
typedef enum {
    IR_KIND_LEAF,   /* input, target, param, const */
    IR_KIND_UNARY,  /* elementwise, one operand */
    IR_KIND_BINARY, /* elementwise, two operands of equal shapes or one of rank 0 */
    IR_KIND_OTHER,  /* products, reshapes, reductions, broadcasts, softmax, fused losses */
} IrKind;
typedef struct IrOpInfo {
    const char *name;
    IrKind kind;
    int arity;     /* operands (0 for leaves) */
    bool num;      /* num is part of the op's meaning (value, exponent, alpha) */
    bool kink;     /* not differentiable everywhere (relu at 0): --check skips points near one */
    bool num_arg;  /* printed as the call's last argument: leaky_relu(x, 0.1) */
    bool helper;   /* only autodiff makes it (a derivative), and it has no derivative itself */
} IrOpInfo;
const IrOpInfo *ir_op_info(IrOp op);
const char *ir_op_name(IrOp op);
/* Number of operands of op (0 for leaves). */
int ir_op_arity(IrOp op);
/* NULL when p is well formed (operand ids, arities, shapes); else what is wrong. */
const char *ir_verify(const IrProgram *p);

#endif
