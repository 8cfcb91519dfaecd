/* cg_sgd.c - plain sgd (no momentum) fused into the step, on double-buffered weights.
 *
 * The step reads this step's weights (cur) and writes the updated ones, w - lr * g, into a
 * second buffer (nxt): inside the product that computes a weight gradient where it can
 * (cg_mm.c: the gradient is then neither stored nor read again), else in one pass over
 * the gradient after the backward pass. Each update also checks its gradient is finite.
 * Only when nnc_rt_batch_end_checked accepts the batch does train swap the buffers, so a
 * stopped step leaves the weights from before it, as the runtime promises. The second
 * buffer is the runtime's optimizer state 1, which sgd does not use. Before every callback
 * that evaluates (epoch end) and before returning, weights living in the second buffer are
 * copied back to nnc_rt_param. The arithmetic is the unfused rule's, w - lr * g with g the
 * mean gradient, so the weights are the same bits either way. */
#include "cg.h"

#include <string.h>

bool cg_sgd_fusable(int opt, double momentum, int nparams)
{
    return opt == NNC_OPT_SGD && momentum == 0 && nparams > 0;
}

static LLVMValueRef slot_at(Cg *g, LLVMValueRef arr, int i)
{
    return LLVMBuildInBoundsGEP2(g->b, g->realp, arr, (LLVMValueRef[]){cg_i64(g, i)}, 1, "");
}

/* ---- in train ---- */

void cg_sgd_train_begin(Cg *g, CgSgdTrain *s, LLVMValueRef run)
{
    int np = g->plan->nparams;
    LLVMTypeRef arr = LLVMArrayType(g->realp, (unsigned)np);
    for (int k = 0; k < 2; k++) {
        LLVMValueRef a = cg_slot(g, arr, k ? "shadow" : "weights");
        s->bufs[k] = LLVMBuildBitCast(g->b, a, LLVMPointerType(g->realp, 0), "");
        for (int i = 0; i < np; i++) {
            LLVMValueRef p = k ? cg_rt_buffer(g, CG_RT_STATE, run, i, 1) : cg_rt_buffer(g, CG_RT_PARAM, run, i, 0);
            LLVMBuildStore(g->b, p, slot_at(g, s->bufs[k], i));
        }
    }
    s->parity = cg_slot(g, g->i1, "in_shadow");
    LLVMBuildStore(g->b, LLVMConstInt(g->i1, 0, 0), s->parity);
    LLVMValueRef args[] = {run, cg_i32(g, NNC_LR)};
    s->lr = cg_call_rt(g, CG_RT_REAL, args, 2);
    if (g->real_size == 4) /* as cg_optim.c converts it */
        s->lr = LLVMBuildFPTrunc(g->b, s->lr, g->real, "lr");
}

/* This step's weights (which = 0) or where the next go (1), as real**. */
LLVMValueRef cg_sgd_buffers(Cg *g, CgSgdTrain *s, int which)
{
    LLVMValueRef p = LLVMBuildLoad2(g->b, g->i1, s->parity, "");
    return LLVMBuildSelect(g->b, p, s->bufs[!which], s->bufs[which], "");
}

void cg_sgd_flip(Cg *g, CgSgdTrain *s)
{
    LLVMValueRef p = LLVMBuildLoad2(g->b, g->i1, s->parity, "");
    LLVMBuildStore(g->b, LLVMBuildNot(g->b, p, ""), s->parity);
}

/* The weights back in nnc_rt_param's buffers. */
void cg_sgd_settle(Cg *g, CgSgdTrain *s)
{
    LLVMBasicBlockRef copy = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "settle");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "settled");
    LLVMBuildCondBr(g->b, LLVMBuildLoad2(g->b, g->i1, s->parity, ""), copy, done);
    LLVMPositionBuilderAtEnd(g->b, copy);
    for (int i = 0; i < g->plan->nparams; i++) {
        LLVMValueRef dst = LLVMBuildLoad2(g->b, g->realp, slot_at(g, s->bufs[0], i), "");
        LLVMValueRef src = LLVMBuildLoad2(g->b, g->realp, slot_at(g, s->bufs[1], i), "");
        long long bytes = shape_size(g->ir->params[i].shape) * g->real_size;
        LLVMBuildMemCpy(g->b, dst, (unsigned)g->real_size, src, (unsigned)g->real_size, cg_i64(g, bytes));
    }
    LLVMBuildStore(g->b, LLVMConstInt(g->i1, 0, 0), s->parity);
    LLVMBuildBr(g->b, done);
    LLVMPositionBuilderAtEnd(g->b, done);
}

/* ---- in the step ---- */

void cg_sgd_step_begin(Cg *g, LLVMValueRef run, LLVMValueRef cur, LLVMValueRef nxt, LLVMValueRef lr)
{
    int np = g->plan->nparams;
    CgSgd *s = arena_alloc(g->arena, sizeof *s);
    s->cur = arena_alloc(g->arena, sizeof *s->cur * (size_t)np);
    s->nxt = arena_alloc(g->arena, sizeof *s->nxt * (size_t)np);
    s->flag = arena_alloc(g->arena, sizeof *s->flag * (size_t)np);
    s->fused = arena_alloc(g->arena, sizeof *s->fused * (size_t)np);
    for (int i = 0; i < np; i++) {
        s->cur[i] = LLVMBuildLoad2(g->b, g->realp, slot_at(g, cur, i), "");
        s->nxt[i] = LLVMBuildLoad2(g->b, g->realp, slot_at(g, nxt, i), "");
        s->flag[i] = NULL;
        s->fused[i] = false;
    }
    s->lr = lr;
    LLVMValueRef args[] = {run, cg_i32(g, NNC_NEED_GRADS)};
    s->need_grads = LLVMBuildICmp(g->b, LLVMIntNE, cg_call_rt(g, CG_RT_INT, args, 2), cg_i32(g, 0), "");
    g->sgd = s;
}

/* nxt = cur - lr * grad over size elements (vectors, the last one partial); returns
 * 0 or NaN: whether grad is finite. */
static LLVMValueRef update_pass(Cg *g, LLVMValueRef cur, LLVMValueRef nxt, LLVMValueRef grad,
                                long long size, LLVMValueRef lr)
{
    int w = g->lanes;
    LLVMValueRef chk = cg_slot(g, cg_vec_type(g, w), "chk");
    LLVMBuildStore(g->b, cg_vzero(g, w), chk);
    CgSgdKernel k = {cur, nxt, NULL, cg_splat(g, lr, w), chk};
    long long full = size / w;
    if (full) {
        CgLoop l = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, full), "upd");
        LLVMValueRef at = LLVMBuildNSWMul(g->b, l.i, cg_i64(g, w), "");
        cg_sgd_epilogue(g, &k, cg_vload(g, cg_gep(g, grad, at), w, w), at, w, w);
        cg_loop_end(g, &l);
    }
    if (size % w) {
        LLVMValueRef at = cg_i64(g, full * w);
        cg_sgd_epilogue(g, &k, cg_vload(g, cg_gep(g, grad, at), w, (int)(size % w)), at, w, (int)(size % w));
    }
    return cg_sgd_check(g, chk);
}

/* Updates the params no product updated; *bad = the first param with a bad gradient. */
void cg_sgd_step_end(Cg *g, LLVMValueRef run, LLVMValueRef bad)
{
    CgSgd *s = g->sgd;
    LLVMValueRef first = cg_i32(g, -1);
    for (int i = g->plan->nparams - 1; i >= 0; i--) {
        LLVMValueRef f = s->flag[i];
        if (!s->fused[i]) {
            LLVMValueRef grad = cg_rt_buffer(g, CG_RT_GRAD, run, i, 0);
            f = update_pass(g, s->cur[i], s->nxt[i], grad, shape_size(g->ir->params[i].shape), s->lr);
        }
        LLVMValueRef is = LLVMBuildFCmp(g->b, LLVMRealUNO, f, f, "");
        first = LLVMBuildSelect(g->b, is, cg_i32(g, i), first, "");
    }
    LLVMBuildStore(g->b, first, bad);
    g->sgd = NULL;
}

/* ---- one vector of a gradient: check, maybe store, update ---- */

void cg_sgd_epilogue(Cg *g, const CgSgdKernel *k, LLVMValueRef v, LLVMValueRef at, int lanes, int on)
{
    LLVMTypeRef vt = cg_vec_type(g, lanes);
    LLVMValueRef old = LLVMBuildLoad2(g->b, vt, k->chk, "");
    LLVMBuildStore(g->b, LLVMBuildFAdd(g->b, old, LLVMBuildFSub(g->b, v, v, ""), ""), k->chk);
    if (k->grad) {
        LLVMBasicBlockRef st = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "store_grad");
        LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "update");
        LLVMBuildCondBr(g->b, LLVMBuildIsNotNull(g->b, k->grad, ""), st, go);
        LLVMPositionBuilderAtEnd(g->b, st);
        cg_vstore(g, v, cg_gep(g, k->grad, at), lanes, on);
        LLVMBuildBr(g->b, go);
        LLVMPositionBuilderAtEnd(g->b, go);
    }
    LLVMValueRef w = cg_vload(g, cg_gep(g, k->cur, at), lanes, on);
    LLVMValueRef nw = LLVMBuildFSub(g->b, w, LLVMBuildFMul(g->b, k->lr, v, ""), "");
    cg_vstore(g, nw, cg_gep(g, k->nxt, at), lanes, on);
}

LLVMValueRef cg_sgd_check(Cg *g, LLVMValueRef chk)
{
    LLVMValueRef v = LLVMBuildLoad2(g->b, cg_vec_type(g, g->lanes), chk, "");
    return LLVMBuildExtractElement(g->b, cg_vsums(g, &v, 1, g->lanes), cg_i32(g, 0), "");
}
