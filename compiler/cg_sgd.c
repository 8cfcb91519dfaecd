/* cg_sgd.c - plain sgd (no momentum) done by the step itself, fused into the products.
 *
 * The runtime rejects a batch (and the weights must stay as before it) exactly when the
 * loss or some mean gradient is not finite. The step knows both before it updates:
 *   1. everything but the weight-gradient products U^T V / n (deferred, marked done);
 *   2. the loss, each other gradient's check (x - x is NaN only for NaN and inf), and
 *      for each deferred product a bound: with U, V finite and sum over b of
 *      max|u_b| max|v_b| below a quarter of the largest real, no partial sum overflows;
 *   3. the deferred products: when all passed, the runtime wants no gradients (--log
 *      does) and its update guard says the step leaves every weight finite
 *      (nnc_rt_update_safe), they subtract lr * g from the weights in their epilogue, the
 *      gradient never stored, and the other params get w -= lr * g (the fast path);
 *      otherwise they store the gradients, every one is checked, and the update is left
 *      to the optimizer step after nnc_rt_batch_end_checked, as without fusion (the slow
 *      path; bad[1] says which path ran).
 * Either way the arithmetic is the unfused rule's, w - lr * g with g the mean gradient,
 * so the weights are the same bits, and *bad tells the runtime what it would find. */
#include "cg.h"

#include <float.h>

/* momentum, weight decay and clip are the train block's (no flag sets them), so whether
 * the step may do the update itself is known here: only plain sgd, w -= lr * g with g
 * the mean gradient, whose lr (warm-up, schedule) the step takes as an argument. Weight
 * decay needs w in the update and clipping the whole gradient's norm first. */
bool cg_sgd_fusable(const NncModelDesc *d, int nparams)
{
    return d->opt == NNC_OPT_SGD && d->momentum == 0 && d->weight_decay == 0 && d->clip == 0 &&
           nparams > 0;
}

/* A weight gradient U^T V / n that is one param's alone: no node reads it, and no
 * other param's gradient is the same node (it would be copied from it earlier). */
static bool deferrable(Cg *g, int id)
{
    const CgPlan *pl = g->plan;
    const CgNode *n = &pl->nodes[id];
    if (n->op != CG_BMEAN_OUTER || n->where != CG_AT_GRAD || !pl->nodes[n->args[0]].varying ||
        !pl->nodes[n->args[1]].varying || !g->fs->live[id])
        return false;
    for (int u = id + 1; u < pl->nnodes; u++)
        for (int k = 0; k < pl->nodes[u].nargs; k++)
            if (g->fs->live[u] && pl->nodes[u].args[k] == id)
                return false;
    int owners = 0;
    for (int i = 0; i < pl->nparams; i++)
        owners += pl->mean_grad[i] == id;
    return owners == 1 && pl->output != id && pl->loss != id;
}

void cg_sgd_step_begin(Cg *g, LLVMValueRef run, LLVMValueRef lr, CgOptim *optim)
{
    int np = g->plan->nparams;
    CgSgd *s = arena_alloc(g->arena, sizeof *s);
    s->lr = lr;
    s->w = arena_alloc(g->arena, sizeof *s->w * (size_t)np);
    s->deferred = arena_alloc(g->arena, sizeof *s->deferred * (size_t)np);
    for (int i = 0; i < np; i++) {
        s->w[i] = cg_rt_buffer(g, CG_RT_PARAM, run, i, 0);
        int mg = g->plan->mean_grad[i];
        s->deferred[i] = mg >= 0 && deferrable(g, mg) && g->plan->nodes[mg].index == i;
        if (s->deferred[i])
            g->fs->done[mg] = true;
    }
    s->optim = optim;
    g->fs->sgd = s;
}

/* ---- checks ---- */

static LLVMValueRef is_zero(Cg *g, LLVMValueRef v)
{
    return LLVMBuildFCmp(g->b, LLVMRealOEQ, v, LLVMConstNull(LLVMTypeOf(v)), "");
}

/* Whether U^T V / n cannot overflow: U and V finite and n max|U| max|V| small, which
 * bounds every partial sum. (The tighter sum over b of max|u_b| max|v_b| took a scan call
 * a sample and operand; this takes one an operand. Where only the tighter bound holds,
 * values near 1e18, the step takes the checked path, with the same result.) */
static LLVMValueRef product_bounded(Cg *g, int id, LLVMValueRef gmax)
{
    const CgNode *n = &g->plan->nodes[id];
    long long p = cg_size(&g->plan->nodes[n->args[0]]), q = cg_size(&g->plan->nodes[n->args[1]]);
    LLVMValueRef chk = cg_check_slot(g);
    LLVMValueRef mu = cg_scan(g, g->fs->base[n->args[0]], LLVMBuildNSWMul(g->b, g->fs->n, cg_i64(g, p), ""), chk);
    LLVMValueRef mv = cg_scan(g, g->fs->base[n->args[1]], LLVMBuildNSWMul(g->b, g->fs->n, cg_i64(g, q), ""), chk);
    LLVMValueRef count = LLVMBuildSIToFP(g->b, g->fs->n, g->f64, "");
    LLVMValueRef mean_bound = LLVMBuildFMul(g->b, mu, mv, ""); /* each |(1/n) sum u v| is at most this */
    LLVMBuildStore(g->b, mean_bound, gmax);
    LLVMValueRef bound = LLVMBuildFMul(g->b, mean_bound, count, "bound");
    double limit = (g->real_size == 4 ? FLT_MAX : DBL_MAX) / 4;
    LLVMValueRef small = LLVMBuildFCmp(g->b, LLVMRealOLT, bound, LLVMConstReal(g->f64, limit), "");
    return LLVMBuildAnd(g->b, small, is_zero(g, cg_check_sum(g, chk)), "");
}

static long long param_size(Cg *g, int i)
{
    return shape_size(g->ir->params[i].shape);
}

static LLVMValueRef grad_of(Cg *g, LLVMValueRef run, int i)
{
    return cg_rt_buffer(g, CG_RT_GRAD, run, i, 0);
}

/* ---- the two paths ---- */

static void store_result(Cg *g, LLVMValueRef bad, LLVMValueRef first, int updated)
{
    LLVMBuildStore(g->b, first, bad);
    LLVMValueRef one = cg_i64(g, 1);
    LLVMBuildStore(g->b, cg_i32(g, updated), LLVMBuildInBoundsGEP2(g->b, g->i32, bad, &one, 1, ""));
}

static void fast_path(Cg *g, LLVMValueRef run, LLVMValueRef bad)
{
    for (int i = 0; i < g->plan->nparams; i++)
        if (!g->fs->sgd->deferred[i])
            cg_optim_sgd(g, g->fs->sgd->optim, g->fs->sgd->w[i], grad_of(g, run, i), param_size(g, i), g->fs->sgd->lr);
    store_result(g, bad, cg_i32(g, -1), 1);
}

/* Every gradient stored: each checked, its max |g| reported; the update is left to the
 * optimizer step after nnc_rt_batch_end_checked, which decides whether it may be applied. */
static void slow_path(Cg *g, LLVMValueRef run, LLVMValueRef bad, LLVMValueRef gmax)
{
    LLVMValueRef first = cg_i32(g, -1);
    for (int i = g->plan->nparams - 1; i >= 0; i--) {
        LLVMValueRef f = cg_nonfinite(g, grad_of(g, run, i), param_size(g, i), cg_gmax_at(g, gmax, i));
        first = LLVMBuildSelect(g->b, is_zero(g, f), first, cg_i32(g, i), "");
    }
    store_result(g, bad, first, 0);
}

/* ok && nnc_rt_update_safe(run): the runtime is asked only when every check passed, since
 * its yes commits the update (runtime/rt_guard.c). */
static LLVMValueRef guarded(Cg *g, LLVMValueRef run, LLVMValueRef ok)
{
    LLVMBasicBlockRef from = LLVMGetInsertBlock(g->b);
    LLVMBasicBlockRef ask = cg_block(g, "guard");
    LLVMBasicBlockRef join = cg_block(g, "guarded");
    LLVMBuildCondBr(g->b, ok, ask, join);
    LLVMPositionBuilderAtEnd(g->b, ask);
    LLVMValueRef yes = LLVMBuildICmp(g->b, LLVMIntNE, cg_call_rt(g, CG_RT_UPDATE_SAFE, &run, 1), cg_i32(g, 0), "");
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, join);
    LLVMValueRef phi = LLVMBuildPhi(g->b, g->i1, "safe");
    LLVMValueRef vals[] = {LLVMConstInt(g->i1, 0, 0), yes};
    LLVMBasicBlockRef blocks[] = {from, ask};
    LLVMAddIncoming(phi, vals, blocks, 2);
    return phi;
}

void cg_sgd_step_end(Cg *g, LLVMValueRef run, LLVMValueRef bad, LLVMValueRef loss)
{
    CgSgd *s = g->fs->sgd;
    LLVMValueRef gmax = cg_gmax(g, run);
    LLVMValueRef loss_ok = is_zero(g, LLVMBuildFSub(g->b, loss, loss, ""));
    LLVMValueRef args[] = {run, cg_i32(g, NNC_NEED_GRADS)};
    LLVMValueRef ok = LLVMBuildICmp(g->b, LLVMIntEQ, cg_call_rt(g, CG_RT_INT, args, 2), cg_i32(g, 0), "");
    ok = LLVMBuildAnd(g->b, ok, loss_ok, "");
    for (int i = 0; i < g->plan->nparams; i++) {
        LLVMValueRef max = cg_gmax_at(g, gmax, i);
        LLVMValueRef f = s->deferred[i] ? product_bounded(g, g->plan->mean_grad[i], max)
                                        : is_zero(g, cg_nonfinite(g, grad_of(g, run, i), param_size(g, i), max));
        ok = LLVMBuildAnd(g->b, ok, f, "");
    }
    ok = guarded(g, run, ok);
    /* the deferred products: update the weights when ok, else store the gradients */
    s->update = ok;
    for (int i = 0; i < g->plan->nparams; i++)
        if (s->deferred[i])
            cg_emit_node(g, g->plan->mean_grad[i]);
    LLVMBasicBlockRef fast = cg_block(g, "fast");
    LLVMBasicBlockRef slow = cg_block(g, "slow");
    LLVMBasicBlockRef join = cg_block(g, "stepped");
    LLVMBuildCondBr(g->b, ok, fast, slow);
    LLVMPositionBuilderAtEnd(g->b, fast);
    fast_path(g, run, bad);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, slow);
    slow_path(g, run, bad, gmax);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, join);
    g->fs->sgd = NULL;
}
