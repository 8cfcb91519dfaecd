/* cg_sgd.c - plain sgd (no momentum) done by the step itself, fused into the products.
 *
 * The runtime rejects a batch (and the weights must stay as before it) exactly when the
 * loss or some mean gradient is not finite. The step knows both before it updates:
 *   1. everything but the weight-gradient products U^T V / n (deferred, marked done);
 *   2. the loss, each other gradient's check (x - x is NaN only for NaN and inf), and
 *      for each deferred product a bound: with U, V finite and sum over b of
 *      max|u_b| max|v_b| below a quarter of the largest real, no partial sum overflows;
 *   3. fast path, when all pass and the runtime wants no gradients (--log does): the
 *      deferred products subtract lr * g from the weights in place in their epilogue,
 *      the gradient never stored; the other params get w -= lr * g in one pass;
 *   4. otherwise every gradient is stored and checked, and the update is applied from
 *      the gradient buffers only if the loss and all of them are finite.
 * Either way the arithmetic is the unfused rule's, w - lr * g with g the mean gradient,
 * so the weights are the same bits, and *bad tells the runtime what it would find. */
#include "cg.h"

#include <float.h>

bool cg_sgd_fusable(int opt, double momentum, int nparams)
{
    return opt == NNC_OPT_SGD && momentum == 0 && nparams > 0;
}

/* A weight gradient U^T V / n that is one param's alone: no node reads it, and no
 * other param's gradient is the same node (it would be copied from it earlier). */
static bool deferrable(Cg *g, int id)
{
    const CgPlan *pl = g->plan;
    const CgNode *n = &pl->nodes[id];
    if (n->op != CG_BMEAN_OUTER || n->where != CG_AT_GRAD || !pl->nodes[n->args[0]].varying ||
        !pl->nodes[n->args[1]].varying || !g->live[id])
        return false;
    for (int u = id + 1; u < pl->nnodes; u++)
        for (int k = 0; k < pl->nodes[u].nargs; k++)
            if (g->live[u] && pl->nodes[u].args[k] == id)
                return false;
    int owners = 0;
    for (int i = 0; i < pl->nparams; i++)
        owners += pl->mean_grad[i] == id;
    return owners == 1 && pl->output != id && pl->loss != id;
}

void cg_sgd_step_begin(Cg *g, LLVMValueRef run, LLVMValueRef lr)
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
            g->done[mg] = true;
    }
    s->update = false;
    g->sgd = s;
}

/* ---- checks ---- */

static LLVMValueRef vload_at(Cg *g, LLVMValueRef p, LLVMValueRef i, int on)
{
    return cg_vload(g, cg_gep(g, p, i), g->lanes, on);
}

/* Over p[0..size): acc_chk += x - x and the largest |x| (NaNs show in the check). */
static LLVMValueRef row_scan(Cg *g, LLVMValueRef p, long long size, LLVMValueRef chk)
{
    int w = g->lanes;
    LLVMTypeRef vt = cg_vec_type(g, w);
    LLVMValueRef mx = cg_slot(g, vt, "maxabs");
    LLVMBuildStore(g->b, cg_vzero(g, w), mx);
    for (int part = 0; part < 2; part++) {
        long long from = part ? size / w : 0, to = part ? (size + w - 1) / w : size / w;
        int on = part ? (int)(size % w) : w;
        if (from == to)
            continue;
        CgLoop l = cg_loop_begin(g, cg_i64(g, from), cg_i64(g, to), "scan");
        LLVMValueRef x = vload_at(g, p, LLVMBuildNSWMul(g->b, l.i, cg_i64(g, w), ""), on);
        LLVMValueRef old = LLVMBuildLoad2(g->b, vt, chk, "");
        LLVMBuildStore(g->b, LLVMBuildFAdd(g->b, old, LLVMBuildFSub(g->b, x, x, ""), ""), chk);
        LLVMValueRef a = cg_intrinsic(g, "llvm.fabs", vt, &x, 1), m = LLVMBuildLoad2(g->b, vt, mx, "");
        LLVMBuildStore(g->b, LLVMBuildSelect(g->b, LLVMBuildFCmp(g->b, LLVMRealOGT, a, m, ""), a, m, ""), mx);
        cg_loop_end(g, &l);
    }
    LLVMValueRef m = LLVMBuildLoad2(g->b, vt, mx, "");
    for (int width = w; width > 1; width /= 2) { /* the largest lane */
        LLVMValueRef lo[64], hi[64];
        for (int i = 0; i < width / 2; i++) {
            lo[i] = cg_i32(g, i);
            hi[i] = cg_i32(g, i + width / 2);
        }
        LLVMValueRef a = LLVMBuildShuffleVector(g->b, m, m, LLVMConstVector(lo, (unsigned)width / 2), "");
        LLVMValueRef b = LLVMBuildShuffleVector(g->b, m, m, LLVMConstVector(hi, (unsigned)width / 2), "");
        m = LLVMBuildSelect(g->b, LLVMBuildFCmp(g->b, LLVMRealOGT, a, b, ""), a, b, "");
    }
    m = LLVMBuildExtractElement(g->b, m, cg_i32(g, 0), "");
    return g->real_size == 4 ? LLVMBuildFPExt(g->b, m, g->f64, "") : m;
}

static LLVMValueRef is_zero(Cg *g, LLVMValueRef v)
{
    return LLVMBuildFCmp(g->b, LLVMRealOEQ, v, LLVMConstNull(LLVMTypeOf(v)), "");
}

/* Whether U^T V / n cannot overflow: U and V finite, sum_b max|u_b| max|v_b| small. */
static LLVMValueRef product_bounded(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    long long p = cg_size(&g->plan->nodes[n->args[0]]), q = cg_size(&g->plan->nodes[n->args[1]]);
    LLVMValueRef chk = cg_slot(g, cg_vec_type(g, g->lanes), "chk");
    LLVMValueRef sum = cg_slot(g, g->f64, "bound");
    LLVMBuildStore(g->b, cg_vzero(g, g->lanes), chk);
    LLVMBuildStore(g->b, LLVMConstReal(g->f64, 0), sum);
    CgLoop lb = cg_loop_begin(g, cg_i64(g, 0), g->n, "b");
    LLVMValueRef u = cg_gep(g, g->base[n->args[0]], LLVMBuildNSWMul(g->b, lb.i, cg_i64(g, p), ""));
    LLVMValueRef v = cg_gep(g, g->base[n->args[1]], LLVMBuildNSWMul(g->b, lb.i, cg_i64(g, q), ""));
    LLVMValueRef prod = LLVMBuildFMul(g->b, row_scan(g, u, p, chk), row_scan(g, v, q, chk), "");
    LLVMBuildStore(g->b, LLVMBuildFAdd(g->b, LLVMBuildLoad2(g->b, g->f64, sum, ""), prod, ""), sum);
    cg_loop_end(g, &lb);
    double limit = (g->real_size == 4 ? FLT_MAX : DBL_MAX) / 4;
    LLVMValueRef small = LLVMBuildFCmp(g->b, LLVMRealOLT, LLVMBuildLoad2(g->b, g->f64, sum, ""),
                                       LLVMConstReal(g->f64, limit), "");
    return LLVMBuildAnd(g->b, small, is_zero(g, cg_sgd_check(g, chk)), "");
}

/* 0 when p[0..size) is finite, else NaN */
static LLVMValueRef nonfinite(Cg *g, LLVMValueRef p, long long size)
{
    LLVMValueRef chk = cg_slot(g, cg_vec_type(g, g->lanes), "chk");
    LLVMBuildStore(g->b, cg_vzero(g, g->lanes), chk);
    row_scan(g, p, size, chk);
    return cg_sgd_check(g, chk);
}

static long long param_size(Cg *g, int i)
{
    return shape_size(g->ir->params[i].shape);
}

/* ---- the two paths ---- */

/* w -= lr * g over a param, vectors from the gradient buffer */
static void update_pass(Cg *g, int i, LLVMValueRef grad)
{
    int w = g->lanes;
    long long size = param_size(g, i), full = size / w;
    CgSgdKernel k = {g->sgd->w[i], cg_splat(g, g->sgd->lr, w)};
    if (full) {
        CgLoop l = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, full), "upd");
        LLVMValueRef at = LLVMBuildNSWMul(g->b, l.i, cg_i64(g, w), "");
        cg_sgd_epilogue(g, &k, vload_at(g, grad, at, w), at, w, w);
        cg_loop_end(g, &l);
    }
    if (size % w) {
        LLVMValueRef at = cg_i64(g, full * w);
        cg_sgd_epilogue(g, &k, vload_at(g, grad, at, (int)(size % w)), at, w, (int)(size % w));
    }
}

static void emit_deferred(Cg *g, bool update)
{
    g->sgd->update = update;
    for (int i = 0; i < g->plan->nparams; i++)
        if (g->sgd->deferred[i])
            cg_emit_node(g, g->plan->mean_grad[i]);
}

static void fast_path(Cg *g, LLVMValueRef run, LLVMValueRef bad)
{
    emit_deferred(g, true);
    for (int i = 0; i < g->plan->nparams; i++)
        if (!g->sgd->deferred[i])
            update_pass(g, i, cg_rt_buffer(g, CG_RT_GRAD, run, i, 0));
    LLVMBuildStore(g->b, cg_i32(g, -1), bad);
}

static void slow_path(Cg *g, LLVMValueRef run, LLVMValueRef bad, LLVMValueRef loss_ok)
{
    emit_deferred(g, false);
    LLVMValueRef first = cg_i32(g, -1);
    for (int i = g->plan->nparams - 1; i >= 0; i--) {
        LLVMValueRef f = nonfinite(g, cg_rt_buffer(g, CG_RT_GRAD, run, i, 0), param_size(g, i));
        first = LLVMBuildSelect(g->b, is_zero(g, f), first, cg_i32(g, i), "");
    }
    LLVMBuildStore(g->b, first, bad);
    LLVMBasicBlockRef upd = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "update");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "no_update");
    LLVMValueRef ok = LLVMBuildAnd(g->b, loss_ok, LLVMBuildICmp(g->b, LLVMIntSLT, first, cg_i32(g, 0), ""), "");
    LLVMBuildCondBr(g->b, ok, upd, done);
    LLVMPositionBuilderAtEnd(g->b, upd);
    for (int i = 0; i < g->plan->nparams; i++)
        update_pass(g, i, cg_rt_buffer(g, CG_RT_GRAD, run, i, 0));
    LLVMBuildBr(g->b, done);
    LLVMPositionBuilderAtEnd(g->b, done);
}

void cg_sgd_step_end(Cg *g, LLVMValueRef run, LLVMValueRef bad, LLVMValueRef loss)
{
    LLVMValueRef loss_ok = is_zero(g, LLVMBuildFSub(g->b, loss, loss, ""));
    LLVMValueRef args[] = {run, cg_i32(g, NNC_NEED_GRADS)};
    LLVMValueRef ok = LLVMBuildICmp(g->b, LLVMIntEQ, cg_call_rt(g, CG_RT_INT, args, 2), cg_i32(g, 0), "");
    ok = LLVMBuildAnd(g->b, ok, loss_ok, "");
    for (int i = 0; i < g->plan->nparams; i++) {
        LLVMValueRef f = g->sgd->deferred[i] ? product_bounded(g, g->plan->mean_grad[i])
                       : is_zero(g, nonfinite(g, cg_rt_buffer(g, CG_RT_GRAD, run, i, 0), param_size(g, i)));
        ok = LLVMBuildAnd(g->b, ok, f, "");
    }
    LLVMBasicBlockRef fast = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "fast");
    LLVMBasicBlockRef slow = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "slow");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "stepped");
    LLVMBuildCondBr(g->b, ok, fast, slow);
    LLVMPositionBuilderAtEnd(g->b, fast);
    fast_path(g, run, bad);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, slow);
    slow_path(g, run, bad, loss_ok);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, join);
    g->sgd = NULL;
}

/* ---- one vector of a mean gradient: w -= lr * g ---- */

void cg_sgd_epilogue(Cg *g, const CgSgdKernel *k, LLVMValueRef v, LLVMValueRef at, int lanes, int on)
{
    LLVMValueRef p = cg_gep(g, k->w, at);
    LLVMValueRef w = cg_vload(g, p, lanes, on);
    cg_vstore(g, LLVMBuildFSub(g->b, w, LLVMBuildFMul(g->b, k->lr, v, ""), ""), p, lanes, on);
}

LLVMValueRef cg_sgd_check(Cg *g, LLVMValueRef chk)
{
    LLVMValueRef v = LLVMBuildLoad2(g->b, cg_vec_type(g, g->lanes), chk, "");
    return LLVMBuildExtractElement(g->b, cg_vsums(g, &v, 1, g->lanes), cg_i32(g, 0), "");
}
