/* cg_plan.c - what the generated functions compute, and where each value lives.
 *
 * The IR gives each param's gradient for ONE sample; training needs its mean over the
 * batch. Mean is linear, so it is pushed down the gradient's expression until it meets a
 * product of two varying values: mean_b(outer(u_b, v_b)) becomes one matrix product
 * U^T V / n (CG_BMEAN_OUTER), and a per-sample [m, k] gradient is never materialised. A
 * factor that does not vary moves out (mean(c * a) = c * mean(a)); what cannot be split
 * is computed per sample and averaged (CG_BMEAN). */
#include "cg.h"

#include <string.h>

enum { CG_ALIGN = 16 }; /* buffers start on 64 bytes: offsets are multiples of 16 elements */

long long cg_size(const CgNode *n)
{
    return shape_size(n->shape);
}

typedef struct Planner {
    CgPlan *pl;
    Arena *a;
    int *memo; /* per IR node: the node holding its batch mean, -1 not yet made */
} Planner;

static int add_node(CgPlan *pl, Arena *a, CgNode n)
{
    if (pl->nnodes == pl->cap) {
        int cap = pl->cap ? 2 * pl->cap : 64;
        pl->nodes = arena_grow(a, pl->nodes, sizeof *pl->nodes * (size_t)pl->cap,
                               sizeof *pl->nodes * (size_t)cap);
        pl->cap = cap;
    }
    pl->nodes[pl->nnodes] = n;
    return pl->nnodes++;
}

static void copy_ir(CgPlan *pl, const IrProgram *p, Arena *a)
{
    for (int id = 0; id < p->nnodes; id++) {
        const IrNode *in = &p->nodes[id];
        CgNode n = {.op = (int)in->op, .shape = in->shape, .nargs = in->nargs,
                    .args = {in->args[0], in->args[1]}, .num = in->num, .index = in->index,
                    .win = in->win, .varying = in->varying, .name = in->name};
        add_node(pl, a, n);
    }
    pl->nir = p->nnodes;
}

/* A new non-varying node: the mean of node `of`, computed by op from a and b. */
static int derive(Planner *s, int op, int of, int a, int b)
{
    CgNode o = s->pl->nodes[of];
    const char *name = o.name ? o.name : "tmp";
    CgNode n = {.op = op, .shape = o.shape, .nargs = b < 0 ? 1 : 2, .args = {a, b},
                .num = o.num, .index = o.index, .win = o.win, .varying = false, .name = arena_printf(s->a, "mean.%s", name)};
    return add_node(s->pl, s->a, n);
}

static bool varies(const Planner *s, int id)
{
    return id >= 0 && s->pl->nodes[id].varying;
}

static int mean_of(Planner *s, int id);

/* mean of a product-like op: linear in each side, so a side that does not vary moves out. */
static int mean_bilinear(Planner *s, int id, int fused)
{
    CgNode n = s->pl->nodes[id];
    if (varies(s, n.args[0]) && varies(s, n.args[1]))
        return fused >= 0 ? derive(s, fused, id, n.args[0], n.args[1])
                          : derive(s, CG_BMEAN, id, id, -1);
    return derive(s, n.op, id, mean_of(s, n.args[0]), mean_of(s, n.args[1]));
}

static int mean_split(Planner *s, int id)
{
    CgNode n = s->pl->nodes[id];
    switch (n.op) {
    case IR_ADD: case IR_SUB:
        return derive(s, n.op, id, mean_of(s, n.args[0]), mean_of(s, n.args[1]));
    case IR_NEG: case IR_TRANSPOSE: case IR_BROADCAST: case IR_SUM: case IR_MEAN:
    case IR_SUM_LAST: case IR_EXPAND_LAST:
        return derive(s, n.op, id, mean_of(s, n.args[0]), -1);
    case IR_MUL: return mean_bilinear(s, id, -1);
    case IR_MATMUL: return mean_bilinear(s, id, CG_BMEAN_MATMUL);
    case IR_OUTER: return mean_bilinear(s, id, CG_BMEAN_OUTER);
    /* dK = mean over samples of d_cols . im2col(x)^T: one product over the batch */
    case IR_CONV2D_BWD_WEIGHT: return mean_bilinear(s, id, CG_BMEAN_CONVW);
    case IR_CONV2D: case IR_CONV2D_BWD_INPUT: return mean_bilinear(s, id, -1);
    case IR_AVGPOOL_BWD: case IR_AVGPOOL: case IR_SLICE:
        return derive(s, n.op, id, mean_of(s, n.args[0]), -1);
    case IR_CONCAT:
        return derive(s, n.op, id, mean_of(s, n.args[0]), mean_of(s, n.args[1]));
    case IR_DIV:
        if (!varies(s, n.args[1]))
            return derive(s, IR_DIV, id, mean_of(s, n.args[0]), n.args[1]);
        break;
    default: break;
    }
    return derive(s, CG_BMEAN, id, id, -1);
}

/* The node holding the batch mean of node id (id itself when it does not vary). */
static int mean_of(Planner *s, int id)
{
    if (!varies(s, id))
        return id;
    if (s->memo[id] < 0)
        s->memo[id] = mean_split(s, id);
    return s->memo[id];
}

/* Operands have smaller ids, so one walk down from the roots finds everything needed. */
static void mark_live(CgPlan *pl, bool *live, const int *roots, int nroots)
{
    for (int i = 0; i < nroots; i++)
        if (roots[i] >= 0)
            live[roots[i]] = true;
    for (int id = pl->nnodes - 1; id >= 0; id--)
        if (live[id])
            for (int k = 0; k < pl->nodes[id].nargs; k++)
                live[pl->nodes[id].args[k]] = true;
}

static void plan_liveness(CgPlan *pl, Arena *a)
{
    int nroots = pl->nparams + 2;
    int *roots = arena_alloc(a, sizeof *roots * (size_t)nroots);
    roots[0] = pl->output;
    roots[1] = pl->loss;
    memcpy(roots + 2, pl->mean_grad, sizeof *roots * (size_t)pl->nparams);
    for (int f = 0; f < CG_NFN; f++)
        pl->live[f] = arena_alloc(a, sizeof(bool) * (size_t)pl->nnodes);
    mark_live(pl, pl->live[CG_FN_STEP], roots, nroots);
    mark_live(pl, pl->live[CG_FN_EVAL_LOSS], roots, 2);
    mark_live(pl, pl->live[CG_FN_EVAL], roots, 1);
}

static bool is_leaf(int op)
{
    return op == IR_INPUT || op == IR_TARGET || op == IR_PARAM || op == IR_CONST;
}

static CgWhere leaf_place(int op)
{
    switch (op) {
    case IR_INPUT: return CG_AT_INPUT;
    case IR_TARGET: return CG_AT_TARGET;
    case IR_PARAM: return CG_AT_PARAM;
    default: return CG_AT_CONST;
    }
}

static long long take(long long *top, long long size)
{
    long long at = *top;
    *top += (size + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
    return at;
}

/* A param's mean gradient is computed straight into the runtime's gradient buffer when
 * nothing else (the forward functions, another param) needs that node. */
static void place_grads(CgPlan *pl)
{
    for (int i = 0; i < pl->nparams; i++) {
        int g = pl->mean_grad[i];
        if (g < 0 || is_leaf(pl->nodes[g].op) || pl->nodes[g].where != CG_AT_NONE ||
            pl->live[CG_FN_EVAL_LOSS][g] || pl->live[CG_FN_EVAL][g])
            continue;
        pl->nodes[g].where = CG_AT_GRAD;
        pl->nodes[g].index = i;
    }
}

/* The conv ops' scratch (CgNode.aux): the im2col matrix [C*kh*kw, H'*W'] of x a sample,
 * one for all the nodes of the same x and window (the forward conv fills it, the weight
 * gradient reads it), and conv2d_backward_input's K^T d of the same shape. */
static long long cols_size(const CgPlan *pl, const CgNode *n)
{
    const CgNode *x = &pl->nodes[n->args[0]];
    const CgNode *out = n->op == IR_CONV2D_BWD_INPUT ? &pl->nodes[n->args[0]] : n;
    if (n->op == IR_CONV2D_BWD_INPUT)
        x = n;
    else if (n->op != IR_CONV2D)
        out = &pl->nodes[n->args[1]];
    long long k = (long long)n->win.kh * n->win.kw * x->shape.dims[0];
    return k * out->shape.dims[1] * out->shape.dims[2];
}

static bool same_cols(const CgNode *a, const CgNode *b)
{
    return a->op != IR_CONV2D_BWD_INPUT && b->op != IR_CONV2D_BWD_INPUT && a->aux_size &&
           a->args[0] == b->args[0] && a->win.kh == b->win.kh && a->win.kw == b->win.kw &&
           a->win.stride == b->win.stride && a->win.pad == b->win.pad;
}

static void plan_scratch(CgPlan *pl)
{
    for (int id = 0; id < pl->nnodes; id++) {
        CgNode *n = &pl->nodes[id];
        bool conv = n->op == IR_CONV2D || n->op == IR_CONV2D_BWD_INPUT || n->op == CG_BMEAN_CONVW;
        if (!conv || n->where == CG_AT_NONE)
            continue;
        for (int j = 0; j < id && !n->aux_size; j++)
            if (same_cols(&pl->nodes[j], n)) {
                n->aux = pl->nodes[j].aux;
                n->aux_size = pl->nodes[j].aux_size;
            }
        if (!n->aux_size) {
            /* and room for a vector of the widest target after it (cg_conv.c's im2col) */
            n->aux_size = cols_size(pl, n) + CG_MAX_LANES;
            n->aux = take(&pl->var_elems, n->aux_size);
        }
        if (n->op == CG_BMEAN_CONVW) {
            const Shape *d = &pl->nodes[n->args[1]].shape;
            long long fs = (d->dims[0] + 63) / 64 * 64, kk = cols_size(pl, n) / (d->dims[1] * d->dims[2]);
            n->wacc = take(&pl->fixed_elems, kk * fs);
        }
    }
}

static void plan_storage(CgPlan *pl)
{
    for (int id = 0; id < pl->nnodes; id++)
        if (is_leaf(pl->nodes[id].op))
            pl->nodes[id].where = leaf_place(pl->nodes[id].op);
    CgNode *out = &pl->nodes[pl->output];
    if (!is_leaf(out->op) && out->varying)
        out->where = CG_AT_PRED;
    place_grads(pl);
    for (int id = 0; id < pl->nnodes; id++) {
        CgNode *n = &pl->nodes[id];
        if (!pl->live[CG_FN_STEP][id] && !pl->live[CG_FN_EVAL_LOSS][id])
            continue;
        if (n->where == CG_AT_NONE) {
            n->where = CG_AT_WS;
            n->offset = take(n->varying ? &pl->var_elems : &pl->fixed_elems, cg_size(n));
        }
    }
    pl->pred_offset = take(&pl->var_elems, cg_size(&pl->nodes[pl->output]));
    plan_scratch(pl);
}

CgPlan *cg_plan(const IrProgram *p, Arena *a)
{
    CgPlan *pl = arena_alloc(a, sizeof *pl);
    copy_ir(pl, p, a);
    pl->nparams = p->nparams;
    pl->loss = p->loss;
    pl->output = p->output;
    pl->mean_grad = arena_alloc(a, sizeof(int) * (size_t)(p->nparams ? p->nparams : 1));
    Planner s = {.pl = pl, .a = a, .memo = arena_alloc(a, sizeof(int) * (size_t)(p->nnodes + 1))};
    for (int id = 0; id < p->nnodes; id++)
        s.memo[id] = -1;
    for (int i = 0; i < p->nparams; i++)
        pl->mean_grad[i] = p->params[i].grad < 0 ? -1 : mean_of(&s, p->params[i].grad);
    plan_liveness(pl, a);
    plan_storage(pl);
    return pl;
}
