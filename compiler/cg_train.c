/* cg_train.c - the generated functions.
 *
 *   nnc_step, nnc_forward_loss, nnc_forward: one batch through the planned nodes
 *     double (NncRun *run, real *x, real *t, i64 n, real *pred) -> the batch's loss sum
 *   nnc_train:    the epoch/batch loop of runtime/nnc_rt.h with the optimizer step
 *   nnc_evaluate: the descriptor's evaluate, forward only */
#include "cg.h"

#include <string.h>

/* One block for every buffer, sized for the largest batch: the same on every call. */
static void bind_workspace(Cg *g, LLVMValueRef run)
{
    const CgPlan *pl = g->plan;
    g->fs->batch_cap = cg_rt_int(g, run, NNC_BATCH);
    LLVMValueRef elems = LLVMBuildNSWMul(g->b, g->fs->batch_cap, cg_i64(g, pl->var_elems), "");
    elems = LLVMBuildNSWAdd(g->b, elems, cg_i64(g, pl->fixed_elems + 1), "");
    LLVMValueRef args[] = {run, LLVMBuildNSWMul(g->b, elems, cg_i64(g, g->real_size), "")};
    g->fs->ws = cg_real_ptr(g, cg_call_rt(g, CG_RT_WORKSPACE, args, 2));
}

LLVMValueRef cg_ws_buffer(Cg *g, long long offset, bool varying)
{
    LLVMValueRef off;
    if (varying) {
        off = LLVMBuildNSWMul(g->b, g->fs->batch_cap, cg_i64(g, offset), "");
    } else {
        off = LLVMBuildNSWMul(g->b, g->fs->batch_cap, cg_i64(g, g->plan->var_elems), "");
        off = LLVMBuildNSWAdd(g->b, off, cg_i64(g, offset), "");
    }
    return cg_gep(g, g->fs->ws, off);
}

static LLVMValueRef node_buffer(Cg *g, const CgNode *n, LLVMValueRef run, LLVMValueRef *io)
{
    switch (n->where) {
    case CG_AT_INPUT: return io[0];
    case CG_AT_TARGET: return io[1];
    case CG_AT_PRED: return io[2];
    case CG_AT_PARAM:
        return g->fs->sgd ? g->fs->sgd->w[n->index] : cg_rt_buffer(g, CG_RT_PARAM, run, n->index, 0);
    case CG_AT_GRAD: return cg_rt_buffer(g, CG_RT_GRAD, run, n->index, 0);
    case CG_AT_WS: return cg_ws_buffer(g, n->offset, n->varying);
    default: return NULL;
    }
}

/* Every buffer's address in the entry block, where it dominates every use. */
static void bind_buffers(Cg *g, const bool *live, LLVMValueRef run, LLVMValueRef *io)
{
    const CgPlan *pl = g->plan;
    g->fs->base = arena_alloc(g->arena, sizeof *g->fs->base * (size_t)pl->nnodes);
    for (int id = 0; id < pl->nnodes; id++) {
        if (!live[id])
            continue;
        g->fs->base[id] = node_buffer(g, &pl->nodes[id], run, io);
        if (g->fs->base[id] && pl->nodes[id].name && !LLVMIsConstant(g->fs->base[id]))
            LLVMSetValueName2(g->fs->base[id], pl->nodes[id].name, strlen(pl->nodes[id].name));
    }
}

void cg_bind_node(Cg *g, int id)
{
    g->fs->base[id] = node_buffer(g, &g->plan->nodes[id], g->fs->run, g->fs->io);
}

/* dst[b, i] = node's value for every sample (broadcast when it does not vary). */
static void copy_out(Cg *g, int node, LLVMValueRef dst, LLVMValueRef count)
{
    long long size = cg_size(&g->plan->nodes[node]);
    CgLoop lb = cg_loop_begin(g, cg_i64(g, 0), count, "b");
    LLVMValueRef row = LLVMBuildNSWMul(g->b, lb.i, cg_i64(g, size), "");
    CgLoop li = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, size), "i");
    cg_store_at(g, dst, LLVMBuildNSWAdd(g->b, row, li.i, ""), cg_load(g, node, lb.i, li.i));
    cg_loop_end(g, &li);
    cg_loop_end(g, &lb);
}

/* Mean gradients not computed in place are copied; a param the loss ignores gets zeros. */
static void emit_grads(Cg *g, LLVMValueRef run)
{
    const CgPlan *pl = g->plan;
    for (int i = 0; i < pl->nparams; i++) {
        int mg = pl->mean_grad[i];
        if (mg >= 0 && pl->nodes[mg].where == CG_AT_GRAD && pl->nodes[mg].index == i)
            continue;
        LLVMValueRef dst = cg_rt_buffer(g, CG_RT_GRAD, run, i, 0);
        long long size = shape_size(g->ir->params[i].shape);
        CgLoop li = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, size), "i");
        cg_store_at(g, dst, li.i, mg < 0 ? cg_real(g, 0) : cg_load(g, mg, NULL, li.i));
        cg_loop_end(g, &li);
    }
}

/* The sum of the per-sample losses, in double. */
static LLVMValueRef loss_sum(Cg *g)
{
    int loss = g->plan->loss;
    if (!g->plan->nodes[loss].varying) {
        LLVMValueRef v = cg_load(g, loss, NULL, cg_i64(g, 0));
        if (g->real_size == 4)
            v = LLVMBuildFPExt(g->b, v, g->f64, "");
        return LLVMBuildFMul(g->b, v, LLVMBuildSIToFP(g->b, g->fs->n, g->f64, ""), "loss_sum");
    }
    LLVMValueRef acc = cg_slot(g, g->f64, "loss_sum");
    LLVMBuildStore(g->b, LLVMConstReal(g->f64, 0), acc);
    CgLoop lb = cg_loop_begin(g, cg_i64(g, 0), g->fs->n, "b");
    LLVMValueRef v = cg_load(g, loss, lb.i, cg_i64(g, 0));
    if (g->real_size == 4)
        v = LLVMBuildFPExt(g->b, v, g->f64, "");
    LLVMValueRef old = LLVMBuildLoad2(g->b, g->f64, acc, "");
    LLVMBuildStore(g->b, LLVMBuildFAdd(g->b, old, v, ""), acc);
    cg_loop_end(g, &lb);
    return LLVMBuildLoad2(g->b, g->f64, acc, "loss_sum");
}

/* double (run, x, t, n, pred, i32 *bad, real lr): bad and lr only in the step. */
static LLVMTypeRef pass_type(Cg *g)
{
    LLVMTypeRef params[] = {g->i8p, g->realp, g->realp, g->i64, g->realp, LLVMPointerType(g->i32, 0),
                            g->real};
    return LLVMFunctionType(g->f64, params, 7, 0);
}

static void pass_tail_none(Cg *g, LLVMValueRef *args)
{
    args[5] = LLVMConstNull(LLVMPointerType(g->i32, 0));
    args[6] = cg_real(g, 0);
}

/* *bad = the first param whose mean gradient is not finite, -1 none; each one's max |g|
 * to nnc_rt_gmax for the update guard */
static void check_grads(Cg *g, LLVMValueRef run, LLVMValueRef bad)
{
    LLVMValueRef first = cg_i32(g, -1);
    LLVMValueRef gmax = g->plan->nparams ? cg_gmax(g, run) : NULL;
    for (int i = g->plan->nparams - 1; i >= 0; i--) {
        LLVMValueRef grad = cg_rt_buffer(g, CG_RT_GRAD, run, i, 0);
        LLVMValueRef f = cg_nonfinite(g, grad, shape_size(g->ir->params[i].shape), cg_gmax_at(g, gmax, i));
        LLVMValueRef is = LLVMBuildFCmp(g->b, LLVMRealUNO, f, f, "");
        first = LLVMBuildSelect(g->b, is, cg_i32(g, i), first, "");
    }
    LLVMBuildStore(g->b, first, bad);
}

/* A pass's start: the function, its parameters, the workspace and the buffers of the
 * nodes `live` marks, which are also the ones whose readers count (cg_fuse.c). */
static LLVMValueRef begin_pass(Cg *g, CgFrame *f, const char *name, const bool *live, LLVMValueRef *io)
{
    const CgPlan *pl = g->plan;
    LLVMValueRef fn = cg_add_function(g, name, pass_type(g));
    cg_frame_open(g, f, fn, false);
    g->fs->run = LLVMGetParam(fn, 0);
    io[0] = LLVMGetParam(fn, 1);
    io[1] = LLVMGetParam(fn, 2);
    io[2] = LLVMGetParam(fn, 4);
    memcpy(g->fs->io, io, sizeof g->fs->io);
    g->fs->n = LLVMGetParam(fn, 3);
    g->fs->nreal = LLVMBuildSIToFP(g->b, g->fs->n, g->real, "n");
    g->fs->inv_n = LLVMBuildFDiv(g->b, cg_real(g, 1), g->fs->nreal, "inv_n");
    bind_workspace(g, g->fs->run);
    g->fs->live = g->fs->readers = live;
    g->fs->done = arena_alloc(g->arena, sizeof(bool) * (size_t)pl->nnodes);
    memset(g->fs->done, 0, sizeof(bool) * (size_t)pl->nnodes);
    return fn;
}

/* The nodes of live (not of skip) that no other kernel computed already. */
static void emit_nodes(Cg *g, const bool *live, const bool *skip)
{
    g->fs->live = live;
    for (int id = 0; id < g->plan->nnodes; id++)
        if (live[id] && !(skip && skip[id]) && !g->fs->done[id]) {
            if (g->fs->prof)
                cg_prof_emit_node(g, id);
            else
                cg_emit_node(g, id);
        }
}

static void finish_pass(Cg *g, LLVMValueRef *io, LLVMValueRef loss)
{
    if (g->plan->nodes[g->plan->output].where != CG_AT_PRED)
        copy_out(g, g->plan->output, io[2], g->fs->n);
    LLVMBuildRet(g->b, loss);
    cg_frame_close(g);
}

/* nnc_step: loss, predictions, mean gradients (or, with sgd, the update itself: optim).
 * prof: CG_PROF_* (cg_profile.c), an instrumented copy. */
static LLVMValueRef emit_step(Cg *g, CgOptim *sgd, int prof)
{
    static const char *const names[] = {"nnc_step", "nnc_step.profile", "nnc_step.checked", "nnc_step"};
    const bool *live = g->plan->live[CG_FN_STEP];
    LLVMValueRef io[3];
    CgFrame frame;
    LLVMValueRef fn = begin_pass(g, &frame, names[prof], live, io);
    g->fs->training = true; /* dropout masks drawn */
    g->fs->prof = prof;
    if (prof == CG_PROF_GUARD)
        g->fs->prof_on = LLVMBuildICmp(g->b, LLVMIntNE, cg_rt_int(g, g->fs->run, NNC_PROFILING),
                                       cg_i64(g, 0), "profiling");
    if (sgd)
        cg_sgd_step_begin(g, g->fs->run, LLVMGetParam(fn, 6), sgd);
    bind_buffers(g, live, g->fs->run, io);
    emit_nodes(g, live, NULL);
    emit_grads(g, g->fs->run);
    LLVMValueRef loss = loss_sum(g);
    if (sgd)
        cg_sgd_step_end(g, g->fs->run, LLVMGetParam(fn, 5), loss);
    else if (prof != CG_PROF_CHECK)
        check_grads(g, g->fs->run, LLVMGetParam(fn, 5));
    finish_pass(g, io, loss);
    return fn;
}

/* Whether the loss reads the target: only then does a NULL t leave it uncomputed. */
static bool loss_reads_target(const CgPlan *pl)
{
    for (int id = 0; id < pl->nnodes; id++)
        if (pl->live[CG_FN_EVAL_LOSS][id] && pl->nodes[id].op == IR_TARGET)
            return true;
    return false;
}

/* nnc_forward: the predictions, then the nodes only the loss needs and the loss sum,
 * skipped (0 returned) when the loss reads a target and t is NULL. */
static LLVMValueRef emit_forward(Cg *g)
{
    const bool *pred = g->plan->live[CG_FN_EVAL], *all = g->plan->live[CG_FN_EVAL_LOSS];
    LLVMValueRef io[3];
    CgFrame frame;
    LLVMValueRef fn = begin_pass(g, &frame, "nnc_forward", all, io);
    bind_buffers(g, all, g->fs->run, io);
    emit_nodes(g, pred, NULL);
    if (g->plan->nodes[g->plan->output].where != CG_AT_PRED)
        copy_out(g, g->plan->output, io[2], g->fs->n);
    if (!loss_reads_target(g->plan)) {
        emit_nodes(g, all, pred);
        LLVMBuildRet(g->b, loss_sum(g));
        cg_frame_close(g);
        return fn;
    }
    LLVMBasicBlockRef yes = cg_block(g, "loss");
    LLVMBasicBlockRef no = cg_block(g, "no_loss");
    LLVMBuildCondBr(g->b, LLVMBuildIsNull(g->b, io[1], ""), no, yes);
    LLVMPositionBuilderAtEnd(g->b, yes);
    emit_nodes(g, all, pred);
    LLVMBuildRet(g->b, loss_sum(g));
    LLVMPositionBuilderAtEnd(g->b, no);
    LLVMBuildRet(g->b, LLVMConstReal(g->f64, 0));
    cg_frame_close(g);
    return fn;
}

/* ---- train and evaluate ---- */

typedef struct TrainCtx {
    LLVMValueRef run, step_fn, pred, xs, ts, bad;
    LLVMTypeRef step_type;
    CgOptim *optim;
    bool fused;      /* sgd done by the step */
    bool prof;       /* --profile's train: marks after the runtime's calls (cg_profile.c) */
} TrainCtx;

static LLVMValueRef trunc32(Cg *g, LLVMValueRef v)
{
    return LLVMBuildTrunc(g->b, v, g->i32, "");
}

/* One batch: gather, forward and backward, report; stop on a non-finite loss, else update. */
static void emit_batch(Cg *g, const TrainCtx *c, LLVMValueRef b)
{
    LLVMValueRef bargs[] = {c->run, trunc32(g, b), c->xs, c->ts};
    LLVMValueRef n = cg_call_rt(g, CG_RT_BATCH, bargs, 4);
    if (c->prof)
        cg_prof_mark(g, c->run, NNC_ROW_GATHER);
    LLVMValueRef x = cg_real_ptr(g, LLVMBuildLoad2(g->b, g->i8p, c->xs, "x"));
    LLVMValueRef t = cg_real_ptr(g, LLVMBuildLoad2(g->b, g->i8p, c->ts, "t"));
    LLVMValueRef sargs[7] = {c->run, x, t, LLVMBuildSExt(g->b, n, g->i64, ""), c->pred};
    pass_tail_none(g, sargs);
    sargs[5] = c->bad;
    if (c->fused)
        sargs[6] = cg_optim_lr(g, c->run); /* this batch's: warm-up and schedule */
    LLVMValueRef loss = LLVMBuildCall2(g->b, c->step_type, c->step_fn, sargs, 7, "loss_sum");
    if (c->prof)
        cg_prof_mark(g, c->run, NNC_ROW_STEP_REST);
    LLVMValueRef pred = LLVMBuildBitCast(g->b, c->pred, g->i8p, "");
    LLVMValueRef bad = LLVMBuildLoad2(g->b, g->i32, c->bad, "bad");
    LLVMValueRef eargs[] = {c->run, trunc32(g, b), loss, pred, n, bad};
    LLVMValueRef stop = cg_call_rt(g, CG_RT_BATCH_END, eargs, 6);
    if (c->prof)
        cg_prof_mark(g, c->run, NNC_ROW_BATCH_END);
    LLVMBasicBlockRef quit = cg_block(g, "stop");
    LLVMBasicBlockRef go = cg_block(g, "update");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntNE, stop, cg_i32(g, 0), ""), quit, go);
    LLVMPositionBuilderAtEnd(g->b, quit);
    LLVMBuildRetVoid(g->b);
    LLVMPositionBuilderAtEnd(g->b, go);
    if (!c->fused) {
        cg_optim_step(g, c->optim, c->run);
        return;
    }
    /* sgd fused into the step: the optimizer step only where the step left the update */
    LLVMValueRef one = cg_i64(g, 1);
    LLVMValueRef updated = LLVMBuildLoad2(g->b, g->i32, LLVMBuildInBoundsGEP2(g->b, g->i32, c->bad, &one, 1, ""), "updated");
    LLVMBasicBlockRef apply = cg_block(g, "apply");
    LLVMBasicBlockRef next = cg_block(g, "applied");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, updated, cg_i32(g, 0), ""), apply, next);
    LLVMPositionBuilderAtEnd(g->b, apply);
    cg_optim_step(g, c->optim, c->run);
    LLVMBuildBr(g->b, next);
    LLVMPositionBuilderAtEnd(g->b, next);
}

static LLVMValueRef emit_train(Cg *g, LLVMValueRef step, CgOptim *optim, bool sgd, bool prof)
{
    LLVMTypeRef type = LLVMFunctionType(g->voidt, &g->i8p, 1, 0);
    LLVMValueRef fn = cg_add_function(g, prof ? "nnc_train.profile" : "nnc_train", type);
    CgFrame frame;
    cg_frame_open(g, &frame, fn, false);
    g->fs->prof = prof ? CG_PROF_TIME : CG_PROF_NONE;
    TrainCtx c = {.run = LLVMGetParam(fn, 0), .step_fn = step, .step_type = pass_type(g), .optim = optim,
                  .prof = prof};
    g->fs->run = c.run;
    LLVMValueRef epochs = cg_rt_int(g, c.run, NNC_EPOCHS);
    bind_workspace(g, c.run);
    c.pred = cg_ws_buffer(g, g->plan->pred_offset, true);
    c.xs = cg_slot(g, g->i8p, "xs");
    c.ts = cg_slot(g, g->i8p, "ts");
    /* bad[0]: the first param with a non-finite gradient; bad[1]: the step updated the
     * weights itself (sgd fused into the step) */
    c.bad = LLVMBuildBitCast(g->b, cg_slot(g, LLVMArrayType(g->i32, 2), "bad"), LLVMPointerType(g->i32, 0), "");
    cg_optim_begin(g, optim, c.run);
    c.fused = sgd;
    /* a resumed run starts at its checkpoint's epoch */
    LLVMValueRef first = cg_rt_int(g, c.run, NNC_FIRST_EPOCH);
    CgLoop le = cg_loop_begin(g, first, epochs, "epoch");
    LLVMValueRef args[] = {c.run, trunc32(g, le.i)};
    LLVMValueRef nb = cg_call_rt(g, CG_RT_EPOCH_BEGIN, args, 2);
    if (prof)
        cg_prof_mark(g, c.run, NNC_ROW_EPOCH);
    /* a run resumed mid-epoch starts that epoch at a later batch */
    LLVMValueRef b0 = cg_rt_int(g, c.run, NNC_FIRST_BATCH);
    CgLoop lb = cg_loop_begin(g, b0, LLVMBuildSExt(g->b, nb, g->i64, ""), "batch");
    emit_batch(g, &c, lb.i);
    cg_loop_end(g, &lb);
    cg_call_rt(g, CG_RT_EPOCH_END, args, 2);
    cg_loop_end(g, &le);
    LLVMBuildRetVoid(g->b);
    cg_frame_close(g);
    return fn;
}

/* double evaluate(run, x, t, n, pred): the loss whenever the model has one; t == NULL only
 * means there is no target (an autoencoder's loss needs none). */
static LLVMValueRef emit_evaluate(Cg *g, LLVMValueRef forward, const char *name)
{
    LLVMTypeRef params[] = {g->i8p, g->i8p, g->i8p, g->i32, g->i8p};
    LLVMValueRef fn = cg_add_function(g, name, LLVMFunctionType(g->f64, params, 5, 0));
    CgFrame frame;
    cg_frame_open(g, &frame, fn, false);
    LLVMValueRef args[] = {LLVMGetParam(fn, 0), cg_real_ptr(g, LLVMGetParam(fn, 1)),
                           cg_real_ptr(g, LLVMGetParam(fn, 2)),
                           LLVMBuildSExt(g->b, LLVMGetParam(fn, 3), g->i64, ""),
                           cg_real_ptr(g, LLVMGetParam(fn, 4)), NULL, NULL};
    pass_tail_none(g, args);
    LLVMBuildRet(g->b, LLVMBuildCall2(g->b, pass_type(g), forward, args, 7, ""));
    cg_frame_close(g);
    return fn;
}

/* The normal functions, then the instrumented ones (cg_profile.c). --profile's loop runs
 * the normal step, whose marks wait behind the run's profiling flag, unless sgd is fused
 * into the step: the profile then runs a copy without that fusion, so that every update
 * has a row of its own. (A second optimised copy of the step was a quarter of the compile
 * time of fashion_mlp.nn and fashion_cnn.nn.) */
void cg_emit_functions(Cg *g, const NncModelDesc *d, LLVMValueRef *train, LLVMValueRef *evaluate)
{
    bool sgd = cg_sgd_fusable(d, g->plan->nparams);
    CgOptim *optim = cg_optim_new(g, d);
    cg_check_helpers(g);
    cg_prof_begin(g);
    LLVMValueRef step = emit_step(g, sgd ? optim : NULL, sgd ? CG_PROF_NONE : CG_PROF_GUARD);
    LLVMValueRef forward = emit_forward(g);
    *train = emit_train(g, step, optim, sgd, false);
    *evaluate = emit_evaluate(g, forward, "nnc_evaluate");
    g->train_profile = emit_train(g, sgd ? emit_step(g, NULL, CG_PROF_TIME) : step, optim, false, true);
    g->check_batch = emit_evaluate(g, emit_step(g, NULL, CG_PROF_CHECK), "nnc_check_batch");
    cg_prof_unoptimised(g);
}
