/* cg_fuse.c - elementwise nodes computed in a matrix product's epilogue.
 *
 * A product over the batch C[b, :] (one row per sample) is usually followed by elementwise
 * nodes over the same elements: + bias, relu, the backward's * step(h). They are computed
 * on C's vectors while those are still in registers, instead of as passes over memory.
 * The chain follows C's first consumer that is a simple elementwise node whose other
 * operand is ready: computed before C, a constant, a param-like value of C's size or a
 * scalar, or itself a simple elementwise node of ready operands (computed inline, as
 * step(h) in dh * step(h)). A node of the chain is stored only when something outside the
 * chain reads it; the rest never reach memory. Each op is built exactly as its own kernel
 * builds it, so fused or not, the results are the same bits. */
#include "cg.h"

#include <stdlib.h>

static bool simple_op(const CgNode *n)
{
    switch (n->op) {
    case IR_NEG: case IR_ABS: case IR_RELU: case IR_LEAKY_RELU: case IR_STEP:
    case IR_LEAKY_STEP: case IR_SIGN: case IR_RESHAPE:
    case IR_ADD: case IR_SUB: case IR_MUL: case IR_DIV:
        return true;
    case IR_POW:
        return n->num == 1 || n->num == 2;
    default:
        return false;
    }
}

static bool in_chain(const CgFuse *f, int id)
{
    if (id == f->m)
        return true;
    for (int i = 0; i < f->count; i++)
        if (f->nodes[i] == id)
            return true;
    return false;
}

static bool ready(Cg *g, CgFuse *f, int x, int depth);

/* A varying simple node of C's size, not yet computed, whose operands are ready: added to
 * the chain so that its value is there when the node reading it is computed. */
static bool inline_operand(Cg *g, CgFuse *f, int x, int depth)
{
    const CgNode *n = &g->plan->nodes[x];
    if (depth > 2 || !simple_op(n) || !n->varying || cg_size(n) != f->size || g->done[x] ||
        f->count + 1 >= CG_FUSE_MAX)
        return false;
    for (int k = 0; k < n->nargs; k++)
        if (!ready(g, f, n->args[k], depth + 1))
            return false;
    f->nodes[f->count++] = x;
    return true;
}

/* Whether x's value is available in the epilogue (loading it or from the chain). */
static bool ready(Cg *g, CgFuse *f, int x, int depth)
{
    const CgNode *n = &g->plan->nodes[x];
    if (in_chain(f, x) || n->where == CG_AT_CONST)
        return true;
    long long size = cg_size(n);
    if (size != 1 && size != f->size)
        return false;
    if (x < f->m && n->where != CG_AT_NONE)
        return true;
    return n->varying && inline_operand(g, f, x, depth);
}

/* The next link: the first live consumer of tail that can join the chain. */
static int next_link(Cg *g, CgFuse *f, int tail)
{
    const CgPlan *pl = g->plan;
    for (int id = tail + 1; id < pl->nnodes; id++) {
        const CgNode *n = &pl->nodes[id];
        if (!g->live[id] || g->done[id] || (n->args[0] != tail && (n->nargs < 2 || n->args[1] != tail)))
            continue;
        if (!simple_op(n) || !n->varying || cg_size(n) != f->size || f->count + 1 >= CG_FUSE_MAX)
            continue;
        int saved = f->count;
        bool ok = true;
        for (int k = 0; k < n->nargs && ok; k++)
            ok = ready(g, f, n->args[k], 0);
        if (ok)
            return id;
        f->count = saved; /* drop operands inlined for a link that failed */
    }
    return -1;
}

/* Uses of id outside the chain: its live consumers, plus one if a function returns it. */
static bool read_outside(Cg *g, const CgFuse *f, int id)
{
    const CgPlan *pl = g->plan;
    if (id == pl->output || id == pl->loss)
        return true;
    for (int i = 0; i < pl->nparams; i++)
        if (pl->mean_grad[i] == id)
            return true;
    for (int u = id + 1; u < pl->nnodes; u++)
        if (g->readers[u] && !in_chain(f, u))
            for (int k = 0; k < pl->nodes[u].nargs; k++)
                if (pl->nodes[u].args[k] == id)
                    return true;
    return false;
}

void cg_fuse_plan(Cg *g, int m, CgFuse *f)
{
    f->m = m;
    f->count = 0;
    f->size = cg_size(&g->plan->nodes[m]);
    for (int tail = m, next; (next = next_link(g, f, tail)) >= 0; tail = next)
        f->nodes[f->count++] = next;
    f->store_m = read_outside(g, f, m);
    for (int i = 0; i < f->count; i++) {
        f->store[i] = read_outside(g, f, f->nodes[i]);
        g->done[f->nodes[i]] = true;
    }
}

void cg_fuse_none(Cg *g, int m, CgFuse *f)
{
    f->m = m;
    f->count = 0;
    f->size = cg_size(&g->plan->nodes[m]);
    f->store_m = true;
}

int cg_fuse_buffers(Cg *g, const CgFuse *f, int *nodes, int max)
{
    int n = 0;
    for (int i = 0; i < f->count; i++) {
        const CgNode *c = &g->plan->nodes[f->nodes[i]];
        for (int k = -1; k < c->nargs; k++) {
            int id = k < 0 ? f->nodes[i] : c->args[k];
            bool have = false;
            for (int j = 0; j < n; j++)
                have |= nodes[j] == id;
            if (!have && id != f->m && g->base[id] && n < max)
                nodes[n++] = id;
        }
    }
    return n;
}

/* ---- the epilogue ---- */

static LLVMValueRef vconst(Cg *g, double v, int lanes)
{
    LLVMValueRef e[64];
    for (int i = 0; i < lanes; i++)
        e[i] = cg_real(g, v);
    return LLVMConstVector(e, (unsigned)lanes);
}

static LLVMValueRef vselect(Cg *g, LLVMRealPredicate p, LLVMValueRef x, double c,
                            LLVMValueRef t, LLVMValueRef e)
{
    LLVMValueRef cmp = LLVMBuildFCmp(g->b, p, x, vconst(g, c, LLVMGetVectorSize(LLVMTypeOf(x))), "");
    return LLVMBuildSelect(g->b, cmp, t, e, "");
}

/* The same instructions as cg_kernels.c's scalar ops, on vectors. */
static LLVMValueRef vunary(Cg *g, const CgNode *n, LLVMValueRef x, int lanes)
{
    LLVMValueRef zero = vconst(g, 0, lanes), one = vconst(g, 1, lanes);
    switch (n->op) {
    case IR_NEG: return LLVMBuildFNeg(g->b, x, "");
    case IR_ABS: return cg_intrinsic(g, "llvm.fabs", LLVMTypeOf(x), &x, 1);
    case IR_RELU: return vselect(g, LLVMRealOGT, x, 0, x, zero);
    case IR_LEAKY_RELU:
        return vselect(g, LLVMRealOGT, x, 0, x, LLVMBuildFMul(g->b, vconst(g, n->num, lanes), x, ""));
    case IR_STEP: return vselect(g, LLVMRealOGT, x, 0, one, zero);
    case IR_LEAKY_STEP: return vselect(g, LLVMRealOGT, x, 0, one, vconst(g, n->num, lanes));
    case IR_SIGN:
        return vselect(g, LLVMRealOGT, x, 0, one, vselect(g, LLVMRealOLT, x, 0, vconst(g, -1, lanes), zero));
    case IR_RESHAPE: return x;
    case IR_POW: return n->num == 1 ? x : LLVMBuildFMul(g->b, x, x, "");
    default: abort();
    }
}

typedef struct Tile {
    LLVMValueRef row, col; /* C's row (the sample) and first column */
    int lanes, on;
    LLVMValueRef val[CG_FUSE_MAX + 1]; /* [0]: C, then the chain's values */
} Tile;

/* &node[row, col]: the node's own buffer at this tile */
static LLVMValueRef tile_ptr(Cg *g, const CgFuse *f, int id, const Tile *t)
{
    const CgNode *n = &g->plan->nodes[id];
    LLVMValueRef i = t->col;
    if (n->varying)
        i = LLVMBuildNSWAdd(g->b, LLVMBuildNSWMul(g->b, t->row, cg_i64(g, f->size), ""), i, "");
    return cg_gep(g, g->base[id], i);
}

static LLVMValueRef operand(Cg *g, const CgFuse *f, const Tile *t, int id)
{
    if (id == f->m)
        return t->val[0];
    for (int i = 0; i < f->count; i++)
        if (f->nodes[i] == id)
            return t->val[i + 1];
    const CgNode *n = &g->plan->nodes[id];
    if (n->where == CG_AT_CONST)
        return vconst(g, n->num, t->lanes);
    if (cg_size(n) == 1)
        return cg_splat(g, cg_load(g, id, t->row, cg_i64(g, 0)), t->lanes);
    return cg_vload(g, tile_ptr(g, f, id, t), t->lanes, t->on);
}

void cg_fuse_epilogue(Cg *g, const CgFuse *f, LLVMValueRef v, LLVMValueRef row, LLVMValueRef col,
                      int lanes, int on)
{
    Tile t = {row, col, lanes, on, {v}};
    if (f->store_m)
        cg_vstore(g, v, tile_ptr(g, f, f->m, &t), lanes, on);
    for (int i = 0; i < f->count; i++) {
        const CgNode *n = &g->plan->nodes[f->nodes[i]];
        LLVMValueRef x = operand(g, f, &t, n->args[0]);
        t.val[i + 1] = n->nargs == 1 ? vunary(g, n, x, lanes)
                                     : cg_binary(g, n->op, x, operand(g, f, &t, n->args[1]));
        if (f->store[i])
            cg_vstore(g, t.val[i + 1], tile_ptr(g, f, f->nodes[i], &t), lanes, on);
    }
}
