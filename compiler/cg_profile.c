/* cg_profile.c - the instrumented copies of the step: --profile and the first non-finite value.
 *
 * Both are extra functions beside the normal ones: the runtime calls them only when
 * asked (--profile), or after a batch went non-finite.
 *   nnc_train.profile  the training loop around the normal nnc_step, whose call of
 *                      nnc_rt_mark after each kernel runs only when the run profiles
 *                      (a branch on a flag the step reads once); with sgd fused into
 *                      the step, around nnc_step.profile instead, a copy with the same
 *                      kernels that marks always and leaves the update to the optimizer's
 *                      own step, so every update has a row. The loop marks its runtime
 *                      calls and each param's update.
 *   nnc_check_batch    the step node by node, nothing fused (so every value is stored),
 *                      marking each node with its buffer: the runtime scans it and keeps
 *                      the first non-finite value in program order.
 * The rows nnc_rt_mark counts in are the descriptor's ops (runtime/nnc_rt.h): the plan's
 * nodes, then one update a param, then the loop's runtime calls (NNC_ROW_*). */
#include "cg.h"

#include <string.h>

#include "irprint.h"

struct CgProf {
    NncOpDesc *rows;
    int nrows;
    bool *one;      /* a live set of one node: the checked step's kernels fuse nothing */
    bool *was_done; /* before a kernel of the profiled step: which nodes were done */
    CgRtFn mark;
};

/* ---- the rows ---- */

/* The IR node a plan node stands for: itself, or for a node the planner made (a batch
 * mean, "mean.NAME"), the IR node of that name, else the first IR node among its operands. */
static int ir_source(const Cg *g, int id)
{
    const CgPlan *pl = g->plan;
    while (id >= pl->nir) {
        const char *name = pl->nodes[id].name;
        if (name && strncmp(name, "mean.", 5) == 0)
            for (int u = 0; u < pl->nir; u++)
                if (pl->nodes[u].name && strcmp(pl->nodes[u].name, name + 5) == 0)
                    return u;
        id = pl->nodes[id].args[0];
    }
    return id;
}

static const char *op_name(int op)
{
    switch (op) {
    case CG_BMEAN: return "batch mean";
    case CG_BMEAN_MATMUL: return "matmul (batch mean)";
    case CG_BMEAN_OUTER: return "outer (batch mean)";
    case CG_BMEAN_CONVW: return "conv2d_backward_weight (batch mean)";
    default: return ir_op_name((IrOp)op);
    }
}

/* Floating-point operations of a product for one count of nnc_rt_mark (a sample, or the
 * whole node when it does not vary); 0 for other ops. */
static double product_flops(const CgPlan *pl, const CgNode *n)
{
    double size = (double)cg_size(n);
    if (n->op == IR_MATMUL || n->op == CG_BMEAN_MATMUL) {
        const Shape *a = &pl->nodes[n->args[0]].shape;
        return 2 * size * a->dims[a->rank - 1];
    }
    if (n->op == IR_OUTER || n->op == CG_BMEAN_OUTER)
        return (n->op == CG_BMEAN_OUTER ? 2 : 1) * size;
    /* convolutions: a multiply-add per kernel weight and output pixel */
    if (n->op != IR_CONV2D && n->op != IR_CONV2D_BWD_INPUT && n->op != IR_CONV2D_BWD_WEIGHT &&
        n->op != CG_BMEAN_CONVW)
        return 0;
    const CgNode *k = &pl->nodes[n->args[1]]; /* K, or d for the weight gradient */
    if (n->op == IR_CONV2D) /* [F, H', W'] outputs of C*kh*kw terms */
        return 2 * size * (double)cg_size(k) / k->shape.dims[0];
    if (n->op == IR_CONV2D_BWD_INPUT) /* K^T d: every weight meets every output pixel */
        return 2 * (double)cg_size(k) * (double)cg_size(&pl->nodes[n->args[0]]) / k->shape.dims[0];
    if (n->op == IR_CONV2D_BWD_WEIGHT || n->op == CG_BMEAN_CONVW) /* d [F, H', W'] */
        return 2 * size * (double)cg_size(k) / k->shape.dims[0];
    return 0;
}

/* "log(p)": the operation as written, by operand names (ir_print_expr without "x = "). */
static const char *expr_of(Cg *g, int ir, bool mean)
{
    const char *text = ir_print_expr(g->ir, ir, g->arena), *eq = strstr(text, " = ");
    text = eq ? eq + 3 : text;
    return mean ? arena_printf(g->arena, "mean over the batch of %s", text) : text;
}

static void node_row(Cg *g, int id, NncOpDesc *r)
{
    const CgNode *n = &g->plan->nodes[id];
    int ir = ir_source(g, id);
    const IrNode *in = &g->ir->nodes[ir];
    r->op = op_name(n->op);
    r->expr = expr_of(g, ir, id >= g->plan->nir);
    r->name = n->name;
    r->kind = in->grad || id >= g->plan->nir ? NNC_OP_BACKWARD : NNC_OP_FORWARD;
    r->line = in->loc.line;
    r->col = in->loc.col;
    r->size = (int)cg_size(n);
    r->fused_into = -1;
    r->flops = product_flops(g->plan, n);
}

static const char *const runtime_rows[NNC_NROWS] = {
    [NNC_ROW_EPOCH] = "start the epoch (shuffle)", [NNC_ROW_GATHER] = "gather the batch",
    [NNC_ROW_STEP_REST] = "gradient checks, loss sum", [NNC_ROW_BATCH_END] = "batch end (report, accuracy)",
};

void cg_prof_begin(Cg *g)
{
    const CgPlan *pl = g->plan;
    CgProf *p = g->prof = arena_alloc(g->arena, sizeof *p);
    memset(p, 0, sizeof *p);
    p->nrows = pl->nnodes + pl->nparams + NNC_NROWS;
    p->rows = arena_alloc(g->arena, sizeof *p->rows * (size_t)p->nrows);
    memset(p->rows, 0, sizeof *p->rows * (size_t)p->nrows);
    for (int id = 0; id < pl->nnodes; id++)
        node_row(g, id, &p->rows[id]);
    for (int i = 0; i < pl->nparams; i++) {
        NncOpDesc *r = &p->rows[pl->nnodes + i];
        const IrParam *ip = &g->ir->params[i];
        *r = (NncOpDesc){.op = "update", .expr = arena_printf(g->arena, "update %s", ip->name),
                         .name = ip->name, .kind = NNC_OP_UPDATE, .line = ip->loc.line,
                         .col = ip->loc.col, .size = (int)shape_size(ip->shape), .fused_into = -1};
    }
    for (int k = 0; k < NNC_NROWS; k++)
        p->rows[pl->nnodes + pl->nparams + k] = (NncOpDesc){.op = runtime_rows[k], .expr = runtime_rows[k],
                                                            .kind = NNC_OP_RUNTIME, .fused_into = -1};
    size_t bytes = sizeof(bool) * (size_t)pl->nnodes;
    p->one = arena_alloc(g->arena, bytes);
    p->was_done = arena_alloc(g->arena, bytes);
    memset(p->one, 0, bytes);
    LLVMTypeRef params[] = {g->i8p, g->i32, g->i8p, g->i64};
    p->mark.type = LLVMFunctionType(g->voidt, params, 4, 0);
    p->mark.fn = LLVMGetNamedFunction(g->mod, "nnc_rt_mark");
    if (!p->mark.fn)
        p->mark.fn = LLVMAddFunction(g->mod, "nnc_rt_mark", p->mark.type);
}

const NncOpDesc *cg_prof_rows(const Cg *g, int *nrows)
{
    *nrows = g->prof ? g->prof->nrows : 0;
    return g->prof ? g->prof->rows : NULL;
}

/* The checked step runs once, after a failure: its functions (nnc_check_batch, the step
 * and the kernels made for it) skip LLVM's optimisation, which would take as long again
 * as the normal functions'. Kernels it shares with the normal step stay as they are. */
void cg_prof_unoptimised(Cg *g)
{
    for (LLVMValueRef fn = LLVMGetFirstFunction(g->mod); fn; fn = LLVMGetNextFunction(fn)) {
        size_t len;
        const char *name = LLVMGetValueName2(fn, &len);
        if (!LLVMIsDeclaration(fn) && (strncmp(name, "nnc_step.checked", 16) == 0 || strcmp(name, "nnc_check_batch") == 0)) {
            cg_fn_attr(g, fn, "noinline");
            cg_fn_attr(g, fn, "optnone");
        }
    }
}

/* ---- the marks ---- */

static void mark(Cg *g, LLVMValueRef run, int row, LLVMValueRef buf, LLVMValueRef count)
{
    LLVMValueRef args[] = {run, cg_i32(g, row), buf ? LLVMBuildBitCast(g->b, buf, g->i8p, "") : LLVMConstNull(g->i8p),
                           count};
    LLVMBasicBlockRef next = NULL;
    if (g->fs->prof == CG_PROF_GUARD) { /* the normal step: only when profiling */
        LLVMBasicBlockRef yes = cg_block(g, "mark");
        next = cg_block(g, "marked");
        LLVMBuildCondBr(g->b, g->fs->prof_on, yes, next);
        LLVMPositionBuilderAtEnd(g->b, yes);
    }
    LLVMBuildCall2(g->b, g->prof->mark.type, g->prof->mark.fn, args, 4, "");
    if (next) {
        LLVMBuildBr(g->b, next);
        LLVMPositionBuilderAtEnd(g->b, next);
    }
}

void cg_prof_mark(Cg *g, LLVMValueRef run, int row)
{
    mark(g, run, g->plan->nnodes + g->plan->nparams + row, NULL, cg_i64(g, 1));
}

void cg_prof_update(Cg *g, LLVMValueRef run, int param)
{
    if (g->fs->prof == CG_PROF_TIME)
        mark(g, run, g->plan->nnodes + param, NULL, cg_i64(g, 1));
}

/* A product's flops count once a sample when it varies or sums over the batch. */
static LLVMValueRef flop_count(Cg *g, const CgNode *n)
{
    bool batch = n->varying || n->op == CG_BMEAN_MATMUL || n->op == CG_BMEAN_OUTER || n->op == CG_BMEAN ||
                 n->op == CG_BMEAN_CONVW;
    return batch ? g->fs->n : cg_i64(g, 1);
}

/* A block of two predecessors after each node of the checked step. That copy is optnone,
 * with a loop nest a node; LLVM's code generator still computes IVUsers for every loop, and
 * ScalarEvolution, to prove a loop's entry guard, climbs the single-predecessor blocks
 * above it back through every loop before it: quadratic in the nodes (6 of the 7 s of a
 * 1000-statement chain's compile, and a recursion deep enough to need a large stack). A
 * join ends the climb; an optnone function is not simplified, so the join stays. */
static void end_climb(Cg *g)
{
    LLVMBasicBlockRef side = cg_block(g, "climb.side"), join = cg_block(g, "climb.join");
    /* a condition nothing can fold: IPSCCP runs on optnone functions too */
    LLVMBuildCondBr(g->b, LLVMBuildIsNull(g->b, g->fs->run, ""), side, join);
    LLVMPositionBuilderAtEnd(g->b, side);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, join);
}

void cg_prof_emit_node(Cg *g, int id)
{
    CgProf *p = g->prof;
    const CgNode *n = &g->plan->nodes[id];
    if (n->op < IR_NUM_OPS && ir_op_info((IrOp)n->op)->kind == IR_KIND_LEAF) {
        /* no row; dropout masks are drawn as in training, except by the checked step,
         * which recomputes the failed batch with the masks that batch drew */
        if (g->fs->prof != CG_PROF_CHECK)
            cg_emit_node(g, id);
        return;
    }
    size_t bytes = sizeof(bool) * (size_t)g->plan->nnodes;
    if (g->fs->prof == CG_PROF_CHECK) {
        const bool *live = g->fs->live;
        /* addresses made here, not only in the entry block: thousands of them live
         * across the whole function cost the register allocator more than the rest */
        cg_bind_node(g, id);
        for (int k = 0; k < n->nargs; k++)
            cg_bind_node(g, n->args[k]);
        p->one[id] = true;
        g->fs->live = p->one;
        cg_emit_node(g, id);
        g->fs->live = live;
        p->one[id] = false;
        mark(g, g->fs->run, id, g->fs->base[id], n->varying ? g->fs->n : cg_i64(g, -1));
        end_climb(g);
        return;
    }
    memcpy(p->was_done, g->fs->done, bytes);
    cg_emit_node(g, id);
    for (int u = id + 1; u < g->plan->nnodes; u++)
        if (g->fs->done[u] && !p->was_done[u])
            p->rows[u].fused_into = id;
    mark(g, g->fs->run, id, NULL, flop_count(g, n));
}
