/* cg_fuse.c - elementwise nodes computed in a matrix product's epilogue.
 *
 * A product over the batch C[b, :] (one row per sample) is usually followed by elementwise
 * nodes over the same elements: + bias, relu, the backward's * step(h). They are computed
 * on C's vectors while those are still in registers, instead of as passes over memory.
 * The chain follows C's first consumer that is a simple elementwise node whose other
 * operand is ready: computed before C, a constant, a param-like value of C's size or a
 * scalar, or itself a simple elementwise node of ready operands (computed inline, as
 * step(h) in dh * step(h)). A node of the chain is stored only when something outside the
 * chain reads it; the rest never reach memory. Each op is built by cg_op_apply, as its own
 * kernel builds it, so fused or not, the results are the same bits. The chain stops at
 * CG_FUSE_MAX nodes; what follows runs in kernels of its own. */
#include "cg.h"

#include <assert.h>
#include <string.h>

static bool simple_op(const CgNode *n)
{
    return cg_op_vector(n->op, n->num);
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
    if (depth > 2 || !simple_op(n) || !n->varying || cg_size(n) != f->size || g->fs->done[x] ||
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
    if (x < f->m && n->where != CG_AT_NONE && g->fs->base[x]) /* computed, and bound here */
        return true;
    /* a value that does not vary computed early for this product (cg_conv.c: the bias) */
    if (g->fs->done[x] && !n->varying && n->where == CG_AT_WS && g->fs->base[x])
        return true;
    return n->varying && inline_operand(g, f, x, depth);
}

/* The next link: the first live consumer of tail that can join the chain. */
static int next_link(Cg *g, CgFuse *f, int tail)
{
    const CgPlan *pl = g->plan;
    for (int id = tail + 1; id < pl->nnodes; id++) {
        const CgNode *n = &pl->nodes[id];
        if (!g->fs->live[id] || g->fs->done[id] || (n->args[0] != tail && (n->nargs < 2 || n->args[1] != tail)))
            continue;
        if (!simple_op(n) || !n->varying || cg_size(n) != f->size || f->count + 1 >= CG_FUSE_MAX)
            continue;
        int saved = f->count;
        bool ok = true;
        for (int k = 0; k < n->nargs && ok; k++)
            ok = ready(g, f, n->args[k], 0);
        if (ok && f->count < CG_FUSE_MAX) /* room for the link after its inlined operands */
            return id;
        f->count = saved; /* drop operands inlined for a link that failed */
    }
    return -1;
}

/* Uses of id outside a group of nodes (in(group, u) says who is in it): its live
 * consumers, plus one if a function returns it. */
typedef bool InGroup(const void *group, int id);

static bool read_outside(Cg *g, InGroup *in, const void *group, int id)
{
    const CgPlan *pl = g->plan;
    if (id == pl->output || id == pl->loss)
        return true;
    for (int i = 0; i < pl->nparams; i++)
        if (pl->mean_grad[i] == id)
            return true;
    for (int u = id + 1; u < pl->nnodes; u++)
        if (g->fs->readers[u] && !in(group, u))
            for (int k = 0; k < pl->nodes[u].nargs; k++)
                if (pl->nodes[u].args[k] == id)
                    return true;
    return false;
}

static bool chain_has(const void *f, int id)
{
    return in_chain(f, id);
}

void cg_fuse_plan(Cg *g, int m, CgFuse *f)
{
    f->m = m;
    f->count = 0;
    f->size = cg_size(&g->plan->nodes[m]);
    for (int tail = m, next; (next = next_link(g, f, tail)) >= 0; tail = next) {
        assert(f->count < CG_FUSE_MAX);
        f->nodes[f->count++] = next;
    }
    f->store_m = read_outside(g, chain_has, f, m);
    for (int i = 0; i < f->count; i++) {
        f->store[i] = read_outside(g, chain_has, f, f->nodes[i]);
        g->fs->done[f->nodes[i]] = true;
    }
}

void cg_fuse_none(Cg *g, int m, CgFuse *f)
{
    f->m = m;
    f->count = 0;
    f->size = cg_size(&g->plan->nodes[m]);
    f->store_m = true;
}

int cg_fuse_buffers(Cg *g, const CgFuse *f, int nodes[CG_FUSE_BUFFERS])
{
    int n = 0;
    for (int i = 0; i < f->count; i++) {
        const CgNode *c = &g->plan->nodes[f->nodes[i]];
        for (int k = -1; k < c->nargs; k++) {
            int id = k < 0 ? f->nodes[i] : c->args[k];
            bool have = false;
            for (int j = 0; j < n; j++)
                have |= nodes[j] == id;
            if (!have && id != f->m && g->fs->base[id]) {
                assert(n < CG_FUSE_BUFFERS); /* a node and its operands, CG_FUSE_MAX nodes */
                nodes[n++] = id;
            }
        }
    }
    return n;
}

/* ---- the epilogue ---- */

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
    return cg_gep(g, g->fs->base[id], i);
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
        return cg_const_like(g, t->val[0], n->num);
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
        LLVMValueRef y = n->nargs == 1 ? NULL : operand(g, f, &t, n->args[1]);
        t.val[i + 1] = cg_op_apply(g, n->op, n->num, x, y);
        if (f->store[i])
            cg_vstore(g, t.val[i + 1], tile_ptr(g, f, f->nodes[i], &t), lanes, on);
    }
}

/* ---- a run of elementwise nodes in one loop nest ----
 * Consecutive elementwise nodes (in the order the function computes them) of one size and
 * one varying-ness, each reading values computed before the run, constants, scalars or
 * nodes of the run, are computed in one `for b: for i` nest: one loop instead of one per
 * node, which is what LLVM's optimiser and code generator pay for (a chain of 250
 * statements was 500 loops, each vectorized with its own alias checks). A node is stored
 * only when something outside the run reads it. The ops are cg_op_apply's, in the same
 * order: the same bits as one nest per node. */

enum { RUN_MAX = 256 }; /* nodes a run may hold: bounds one loop body */

typedef struct Run {
    int nodes[RUN_MAX];
    LLVMValueRef val[RUN_MAX];
    bool store[RUN_MAX];
    int count;
    bool *member; /* per plan node */
} Run;

static bool run_has(const void *r, int id)
{
    return ((const Run *)r)->member[id];
}

static bool elementwise(const CgNode *n)
{
    IrKind kind = n->op < IR_NUM_OPS ? ir_op_info(n->op)->kind : IR_KIND_OTHER;
    return kind == IR_KIND_UNARY || kind == IR_KIND_BINARY || n->op == IR_RESHAPE;
}

/* Whether node id can join the run started by first. */
static bool joins(Cg *g, const Run *r, int first, int id)
{
    const CgNode *f = &g->plan->nodes[first], *n = &g->plan->nodes[id];
    if (!elementwise(n) || cg_size(n) != cg_size(f) || n->varying != f->varying)
        return false;
    for (int k = 0; k < n->nargs; k++) {
        int a = n->args[k];
        long long size = cg_size(&g->plan->nodes[a]);
        if (!r->member[a] && a > first && !g->fs->done[a])
            return false; /* computed after the run started, outside it */
        if (size != 1 && size != cg_size(f))
            return false;
    }
    return true;
}

static LLVMValueRef run_operand(Cg *g, const Run *r, int a, LLVMValueRef b, LLVMValueRef i)
{
    if (r->member[a])
        for (int k = 0; k < r->count; k++)
            if (r->nodes[k] == a)
                return r->val[k];
    return cg_load(g, a, b, cg_size(&g->plan->nodes[a]) == 1 ? cg_i64(g, 0) : i);
}

void cg_fuse_run(Cg *g, int first)
{
    const CgPlan *pl = g->plan;
    Run *r = arena_alloc(g->arena, sizeof *r);
    r->member = arena_alloc(g->arena, sizeof(bool) * (size_t)pl->nnodes);
    memset(r->member, 0, sizeof(bool) * (size_t)pl->nnodes);
    r->count = 0;
    for (int id = first; id < pl->nnodes && r->count < RUN_MAX; id++) {
        if (!g->fs->live[id] || g->fs->done[id])
            continue;
        if (id != first && !joins(g, r, first, id))
            break;
        r->nodes[r->count++] = id;
        r->member[id] = true;
    }
    for (int k = 0; k < r->count; k++) {
        r->store[k] = read_outside(g, run_has, r, r->nodes[k]);
        g->fs->done[r->nodes[k]] = true;
    }
    CgLoop lb = cg_loop_begin(g, cg_i64(g, 0), cg_count(g, first), "b");
    CgLoop li = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, cg_size(&pl->nodes[first])), "i");
    for (int k = 0; k < r->count; k++) {
        const CgNode *n = &pl->nodes[r->nodes[k]];
        LLVMValueRef x = run_operand(g, r, n->args[0], lb.i, li.i);
        LLVMValueRef y = n->nargs > 1 ? run_operand(g, r, n->args[1], lb.i, li.i) : NULL;
        r->val[k] = cg_op_apply(g, n->op, n->num, x, y);
        if (r->store[k])
            cg_store(g, r->nodes[k], lb.i, li.i, r->val[k]);
    }
    cg_loop_end(g, &li);
    cg_loop_end(g, &lb);
}
