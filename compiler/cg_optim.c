/* cg_optim.c - the optimizer step, as PyTorch (spec section 8):
 *   sgd:      w -= lr * g
 *   momentum: v = mu * v + g; w -= lr * v               (chosen at run time: mu != 0)
 *   adam:     m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 *             w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps),  t = 1, 2, ...
 * Each rule is one small function over a param's elements, called once per param, so
 * the module does not repeat the loop for every param. A large param's elements are
 * split between the runtime's threads in blocks (the rule's task function); every element
 * is updated alone, so the split changes no bit. Hyper-parameters come from nnc_rt_real
 * at the start of train, so --lr reaches them. */
#include "cg.h"

#include <assert.h>

enum { RULE_SGD, RULE_MOMENTUM, RULE_ADAM, NRULES };
/* Elements a task updates, and the multiply-adds an element counts as for the pool's
 * threshold (adam: a square root, three divisions): adam goes parallel from 16K elements. */
enum { BLOCK = 4096, WORK_PER = 16 };
/* A rule's parameters: its buffers, the size, its reals (adam: 4 + 1 + 6). */
enum { MAX_ARGS = 12 };

struct CgOptim {
    int opt;
    LLVMValueRef fn[NRULES], task[NRULES];
    LLVMTypeRef type[NRULES], rec[NRULES]; /* rec: the task's {buffers, size, reals} */
    /* in train: hyper-parameters (reals), momentum as a double for the branch, adam's t */
    LLVMValueRef lr, mu, b1, b2, eps, mu64, step;
};

static const char *const rule_names[NRULES] = {"nnc_sgd", "nnc_momentum", "nnc_adam"};
static const int rule_buffers[NRULES] = {2, 3, 4}; /* w, g, then the states */

static LLVMValueRef load(Cg *g, LLVMValueRef p, LLVMValueRef i)
{
    return cg_load_at(g, p, i);
}

static LLVMValueRef mul(Cg *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFMul(g->b, a, b, "");
}

/* The new value of w[j] under a rule; real params follow the buffers and the size. */
static LLVMValueRef rule_body(Cg *g, int rule, LLVMValueRef fn, LLVMValueRef j)
{
    LLVMValueRef w = LLVMGetParam(fn, 0), gr = LLVMGetParam(fn, 1);
    int r = rule_buffers[rule] + 1; /* first real param */
    LLVMValueRef lr = LLVMGetParam(fn, (unsigned)r), d = load(g, gr, j);
    if (rule == RULE_MOMENTUM) {
        LLVMValueRef v = LLVMGetParam(fn, 2), mu = LLVMGetParam(fn, (unsigned)r + 1);
        d = LLVMBuildFAdd(g->b, mul(g, mu, load(g, v, j)), d, "");
        cg_store_at(g, v, j, d);
    } else if (rule == RULE_ADAM) {
        LLVMValueRef m = LLVMGetParam(fn, 2), v = LLVMGetParam(fn, 3), one = cg_real(g, 1);
        LLVMValueRef b1 = LLVMGetParam(fn, (unsigned)r + 1), b2 = LLVMGetParam(fn, (unsigned)r + 2);
        LLVMValueRef eps = LLVMGetParam(fn, (unsigned)r + 3);
        LLVMValueRef bc1 = LLVMGetParam(fn, (unsigned)r + 4), bc2 = LLVMGetParam(fn, (unsigned)r + 5);
        LLVMValueRef c1 = LLVMBuildFSub(g->b, one, b1, ""), c2 = LLVMBuildFSub(g->b, one, b2, "");
        LLVMValueRef mv = LLVMBuildFAdd(g->b, mul(g, b1, load(g, m, j)), mul(g, c1, d), "");
        LLVMValueRef vv = LLVMBuildFAdd(g->b, mul(g, b2, load(g, v, j)), mul(g, mul(g, c2, d), d), "");
        cg_store_at(g, m, j, mv);
        cg_store_at(g, v, j, vv);
        LLVMValueRef mhat = LLVMBuildFDiv(g->b, mv, bc1, ""), vhat = LLVMBuildFDiv(g->b, vv, bc2, "");
        LLVMValueRef den = LLVMBuildFAdd(g->b, cg_math(g, "sqrt", vhat), eps, "");
        return LLVMBuildFSub(g->b, load(g, w, j), LLVMBuildFDiv(g->b, mul(g, lr, mhat), den, ""), "");
    }
    return LLVMBuildFSub(g->b, load(g, w, j), mul(g, lr, d), "");
}

static const int rule_reals[NRULES] = {1, 2, 6};

/* void rule.task(i8 *rec, i64 lo, i64 hi): the rule on elements [lo*BLOCK, hi*BLOCK) (the
 * last block cut at the size) of the buffers in rec, with rec's reals. */
static void emit_task(Cg *g, CgOptim *o, int rule)
{
    int n = rule_buffers[rule] + 1 + rule_reals[rule];
    LLVMTypeRef params[] = {g->i8p, g->i64, g->i64};
    LLVMValueRef fn = o->task[rule] = cg_add_function(
        g, arena_printf(g->arena, "%s.task", rule_names[rule]), LLVMFunctionType(g->voidt, params, 3, 0));
    CgFrame frame;
    cg_frame_open(g, &frame, fn, false);
    LLVMValueRef rec = LLVMBuildBitCast(g->b, LLVMGetParam(fn, 0), LLVMPointerType(o->rec[rule], 0), "");
    LLVMValueRef args[MAX_ARGS];
    for (int i = 0; i < n; i++)
        args[i] = LLVMBuildLoad2(g->b, LLVMStructGetTypeAtIndex(o->rec[rule], (unsigned)i),
                                 LLVMBuildStructGEP2(g->b, o->rec[rule], rec, (unsigned)i, ""), "");
    int nbuf = rule_buffers[rule];
    LLVMValueRef lo = LLVMBuildNSWMul(g->b, LLVMGetParam(fn, 1), cg_i64(g, BLOCK), "");
    LLVMValueRef hi = cg_imin(g, LLVMBuildNSWMul(g->b, LLVMGetParam(fn, 2), cg_i64(g, BLOCK), ""),
                              args[nbuf]);
    for (int i = 0; i < nbuf; i++)
        args[i] = cg_gep(g, args[i], lo);
    args[nbuf] = LLVMBuildNSWSub(g->b, hi, lo, "");
    LLVMBuildCall2(g->b, o->type[rule], o->fn[rule], args, (unsigned)n, "");
    LLVMBuildRetVoid(g->b);
    cg_frame_close(g);
}

/* void rule(real *w, real *g, [real *state...], i64 size, real lr, [real ...]) */
static void emit_rule(Cg *g, CgOptim *o, int rule)
{
    int nbuf = rule_buffers[rule], n = nbuf + 1 + rule_reals[rule];
    assert(n <= MAX_ARGS);
    LLVMTypeRef params[MAX_ARGS];
    for (int i = 0; i < n; i++)
        params[i] = i < nbuf ? g->realp : i == nbuf ? g->i64 : g->real;
    o->type[rule] = LLVMFunctionType(g->voidt, params, (unsigned)n, 0);
    LLVMValueRef fn = o->fn[rule] = cg_add_function(g, rule_names[rule], o->type[rule]);
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    for (int i = 0; i < nbuf; i++) /* distinct runtime buffers */
        LLVMAddAttributeAtIndex(fn, (unsigned)i + 1, LLVMCreateEnumAttribute(g->ctx, noalias, 0));
    /* one call per param: inlining them would bring back a loop per param */
    cg_fn_attr(g, fn, "noinline");
    CgFrame frame;
    cg_frame_open(g, &frame, fn, false);
    CgLoop lj = cg_loop_begin(g, cg_i64(g, 0), LLVMGetParam(fn, (unsigned)nbuf), "j");
    cg_store_at(g, LLVMGetParam(fn, 0), lj.i, rule_body(g, rule, fn, lj.i));
    cg_loop_end(g, &lj);
    LLVMBuildRetVoid(g->b);
    cg_frame_close(g);
    o->rec[rule] = LLVMStructTypeInContext(g->ctx, params, (unsigned)n, 0);
    emit_task(g, o, rule);
}

CgOptim *cg_optim_new(Cg *g, int opt)
{
    CgOptim *o = arena_alloc(g->arena, sizeof *o);
    o->opt = opt;
    if (g->plan->nparams == 0)
        return o;
    if (opt == NNC_OPT_ADAM) {
        emit_rule(g, o, RULE_ADAM);
    } else {
        emit_rule(g, o, RULE_SGD);
        emit_rule(g, o, RULE_MOMENTUM);
    }
    return o;
}

static LLVMValueRef to_real(Cg *g, LLVMValueRef d)
{
    return g->real_size == 8 ? d : LLVMBuildFPTrunc(g->b, d, g->real, "");
}

static LLVMValueRef rt_real(Cg *g, LLVMValueRef run, int which)
{
    LLVMValueRef args[] = {run, cg_i32(g, which)};
    return cg_call_rt(g, CG_RT_REAL, args, 2);
}

void cg_optim_begin(Cg *g, CgOptim *o, LLVMValueRef run)
{
    o->lr = to_real(g, rt_real(g, run, NNC_LR));
    o->mu64 = rt_real(g, run, NNC_MOMENTUM);
    o->mu = to_real(g, o->mu64);
    o->b1 = to_real(g, rt_real(g, run, NNC_BETA1));
    o->b2 = to_real(g, rt_real(g, run, NNC_BETA2));
    o->eps = to_real(g, rt_real(g, run, NNC_EPS));
    o->step = cg_slot(g, g->i64, "step");
    LLVMBuildStore(g->b, cg_i64(g, 0), o->step);
}

/* The rule on a param of more than a block, through the thread pool: its arguments in a
 * record on the stack, blocks of elements as tasks. */
static void call_parallel(Cg *g, CgOptim *o, LLVMValueRef run, int rule, LLVMValueRef *args,
                          int n, long long size)
{
    LLVMValueRef rec = cg_slot(g, o->rec[rule], "optim_rec");
    for (int i = 0; i < n; i++)
        LLVMBuildStore(g->b, args[i], LLVMBuildStructGEP2(g->b, o->rec[rule], rec, (unsigned)i, ""));
    LLVMValueRef call[] = {run, cg_i64(g, (size + BLOCK - 1) / BLOCK),
                           LLVMConstReal(g->f64, (double)size * WORK_PER), o->task[rule],
                           LLVMBuildBitCast(g->b, rec, g->i8p, "")};
    cg_call_rt(g, CG_RT_PARALLEL, call, 5);
}

/* Calls a rule on every param: w, g, the states, the size, then the reals. */
static void apply(Cg *g, CgOptim *o, LLVMValueRef run, int rule, LLVMValueRef *reals, int nreals)
{
    for (int i = 0; i < g->plan->nparams; i++) {
        LLVMValueRef args[MAX_ARGS];
        int n = 0;
        long long size = shape_size(g->ir->params[i].shape);
        args[n++] = cg_rt_buffer(g, CG_RT_PARAM, run, i, 0);
        args[n++] = cg_rt_buffer(g, CG_RT_GRAD, run, i, 0);
        for (int k = 0; k < rule_buffers[rule] - 2; k++)
            args[n++] = cg_rt_buffer(g, CG_RT_STATE, run, i, k);
        args[n++] = cg_i64(g, size);
        for (int k = 0; k < nreals; k++)
            args[n++] = reals[k];
        if (size > BLOCK)
            call_parallel(g, o, run, rule, args, n, size);
        else
            LLVMBuildCall2(g->b, o->type[rule], o->fn[rule], args, (unsigned)n, "");
        cg_prof_update(g, run, i); /* --profile's train only */
    }
}

void cg_optim_sgd(Cg *g, CgOptim *o, LLVMValueRef w, LLVMValueRef grad, long long size, LLVMValueRef lr)
{
    LLVMValueRef args[] = {w, grad, cg_i64(g, size), lr};
    LLVMBuildCall2(g->b, o->type[RULE_SGD], o->fn[RULE_SGD], args, 4, "");
}

/* 1 - beta^t in double, then as a real */
static LLVMValueRef bias_correction(Cg *g, LLVMValueRef beta, LLVMValueRef t)
{
    LLVMValueRef args[] = {g->real_size == 8 ? beta : LLVMBuildFPExt(g->b, beta, g->f64, ""), t};
    LLVMValueRef p = cg_intrinsic(g, "llvm.pow", g->f64, args, 2);
    return to_real(g, LLVMBuildFSub(g->b, LLVMConstReal(g->f64, 1), p, ""));
}

static void sgd_step(Cg *g, CgOptim *o, LLVMValueRef run)
{
    LLVMBasicBlockRef with = cg_block(g, "momentum");
    LLVMBasicBlockRef plain = cg_block(g, "sgd");
    LLVMBasicBlockRef join = cg_block(g, "updated");
    LLVMValueRef has = LLVMBuildFCmp(g->b, LLVMRealONE, o->mu64, LLVMConstReal(g->f64, 0), "");
    LLVMBuildCondBr(g->b, has, with, plain);
    LLVMPositionBuilderAtEnd(g->b, with);
    LLVMValueRef mom[] = {o->lr, o->mu};
    apply(g, o, run, RULE_MOMENTUM, mom, 2);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, plain);
    apply(g, o, run, RULE_SGD, &o->lr, 1);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, join);
}

void cg_optim_step(Cg *g, CgOptim *o, LLVMValueRef run)
{
    LLVMValueRef t = LLVMBuildNSWAdd(g->b, LLVMBuildLoad2(g->b, g->i64, o->step, ""), cg_i64(g, 1), "t");
    LLVMBuildStore(g->b, t, o->step);
    if (g->plan->nparams == 0)
        return;
    if (o->opt != NNC_OPT_ADAM) {
        sgd_step(g, o, run);
        return;
    }
    LLVMValueRef tf = LLVMBuildSIToFP(g->b, t, g->f64, "");
    LLVMValueRef reals[] = {o->lr, o->b1, o->b2, o->eps, bias_correction(g, o->b1, tf),
                            bias_correction(g, o->b2, tf)};
    apply(g, o, run, RULE_ADAM, reals, 6);
}
