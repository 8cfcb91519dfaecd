/* cg_optim.c - the optimizer step, as PyTorch 1.13's classes (spec sections 8, 10):
 *   weight decay:  g += wd * w (sgd, adam, rmsprop, adagrad);  adamw: w *= 1 - lr * wd first
 *   sgd:      w -= lr * g
 *   momentum: v = mu * v + g; w -= lr * v, nesterov: w -= lr * (g + mu * v)  (run time: mu != 0)
 *   adam:     m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 *             w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps),  t = 1, 2, ...
 *   rmsprop:  s = alpha s + (1 - alpha) g^2; u = g / (sqrt(s) + eps);
 *             w -= lr * u, or with momentum b = mu b + u; w -= lr * b
 *   adagrad:  s += g^2; w -= lr * g / (sqrt(s) + eps)
 * Each rule is one small function over a param's elements, called once per param, so
 * the module does not repeat the loop for every param; a term the train block does not use
 * (weight decay, nesterov, rmsprop's momentum) is not emitted. A large param's elements are
 * split between the runtime's threads in blocks (the rule's task function); every element
 * is updated alone, so the split changes no bit. Hyper-parameters come from nnc_rt_real:
 * the lr each step (the runtime applies warm-up and the schedule), the rest at the start
 * of train. Gradient clipping is the runtime's (it scales the gradients in
 * nnc_rt_batch_end*, before this step). */
#include "cg.h"

#include <assert.h>

enum { RULE_SGD, RULE_MOMENTUM, RULE_ADAM, RULE_RMSPROP, RULE_ADAGRAD, NRULES };
/* Elements a task updates, and the multiply-adds an element counts as for the pool's
 * threshold (adam: a square root, three divisions): adam goes parallel from 16K elements. */
enum { BLOCK = 4096, WORK_PER = 16 };
/* Every rule takes the same reals, in this order (each reads the ones it needs). */
enum { R_LR, R_MU, R_B1, R_B2, R_EPS, R_WD, R_ALPHA, R_BC1, R_BC2, R_DECAY, NREALS };
/* A rule's parameters: up to 4 buffers, the size, the reals. */
enum { MAX_ARGS = 4 + 1 + NREALS };

struct CgOptim {
    const NncModelDesc *d; /* the train block: which terms the rules have */
    LLVMValueRef fn[NRULES], task[NRULES];
    LLVMTypeRef type[NRULES], rec[NRULES]; /* rec: the task's {buffers, size, reals} */
    /* in train: hyper-parameters (reals), momentum as a double for the branch, the step count */
    LLVMValueRef reals[NREALS], mu64, step;
};

static const char *const rule_names[NRULES] = {"nnc_sgd", "nnc_momentum", "nnc_adam", "nnc_rmsprop",
                                               "nnc_adagrad"};

/* w, g, then the states: momentum's v; adam's m, v; rmsprop's mean square and, with
 * momentum, its buffer; adagrad's sum of squares */
static int rule_buffers(const CgOptim *o, int rule)
{
    static const int n[NRULES] = {2, 3, 4, 3, 3};
    return n[rule] + (rule == RULE_RMSPROP && o->d->momentum != 0);
}

static LLVMValueRef load(Cg *g, LLVMValueRef p, LLVMValueRef i)
{
    return cg_load_at(g, p, i);
}

static LLVMValueRef mul(Cg *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFMul(g->b, a, b, "");
}

static LLVMValueRef add(Cg *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFAdd(g->b, a, b, "");
}

static LLVMValueRef div_(Cg *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFDiv(g->b, a, b, "");
}

/* The state k's new value v, stored. */
static LLVMValueRef put_state(Cg *g, LLVMValueRef fn, int k, LLVMValueRef j, LLVMValueRef v)
{
    cg_store_at(g, LLVMGetParam(fn, 2 + (unsigned)k), j, v);
    return v;
}

static LLVMValueRef state(Cg *g, LLVMValueRef fn, int k, LLVMValueRef j)
{
    return load(g, LLVMGetParam(fn, 2 + (unsigned)k), j);
}

/* adam's (and adamw's) step: w - lr * (m / bc1) / (sqrt(v / bc2) + eps) */
static LLVMValueRef adam_body(Cg *g, LLVMValueRef fn, LLVMValueRef j, LLVMValueRef w, LLVMValueRef d,
                              LLVMValueRef const *r)
{
    LLVMValueRef one = cg_real(g, 1);
    LLVMValueRef c1 = LLVMBuildFSub(g->b, one, r[R_B1], ""), c2 = LLVMBuildFSub(g->b, one, r[R_B2], "");
    LLVMValueRef mv = put_state(g, fn, 0, j, add(g, mul(g, r[R_B1], state(g, fn, 0, j)), mul(g, c1, d)));
    LLVMValueRef vv = put_state(g, fn, 1, j, add(g, mul(g, r[R_B2], state(g, fn, 1, j)), mul(g, mul(g, c2, d), d)));
    LLVMValueRef mhat = div_(g, mv, r[R_BC1]), vhat = div_(g, vv, r[R_BC2]);
    LLVMValueRef den = add(g, cg_math(g, "sqrt", vhat), r[R_EPS]);
    return LLVMBuildFSub(g->b, w, div_(g, mul(g, r[R_LR], mhat), den), "");
}

/* The new value of w[j] under a rule, as PyTorch 1.13's classes compute it (weight decay
 * added to the gradient, adamw's decoupled from it); the reals follow the buffers and the
 * size. Terms a train block does not use are not emitted. */
static LLVMValueRef rule_body(Cg *g, const CgOptim *o, int rule, LLVMValueRef fn, LLVMValueRef j)
{
    LLVMValueRef r[NREALS];
    for (int k = 0; k < NREALS; k++)
        r[k] = LLVMGetParam(fn, (unsigned)(rule_buffers(o, rule) + 1 + k));
    LLVMValueRef w = load(g, LLVMGetParam(fn, 0), j), d = load(g, LLVMGetParam(fn, 1), j);
    if (o->d->opt == NNC_OPT_ADAMW && o->d->weight_decay != 0)
        w = mul(g, w, r[R_DECAY]); /* param.mul_(1 - lr * weight_decay) */
    else if (o->d->weight_decay != 0)
        d = add(g, d, mul(g, r[R_WD], w)); /* grad.add(param, alpha = weight_decay) */
    if (rule == RULE_ADAM)
        return adam_body(g, fn, j, w, d, r);
    if (rule == RULE_MOMENTUM) {
        LLVMValueRef v = put_state(g, fn, 0, j, add(g, mul(g, r[R_MU], state(g, fn, 0, j)), d));
        d = o->d->nesterov ? add(g, d, mul(g, r[R_MU], v)) : v;
    } else if (rule == RULE_RMSPROP) {
        LLVMValueRef ca = LLVMBuildFSub(g->b, cg_real(g, 1), r[R_ALPHA], "");
        LLVMValueRef sq = put_state(g, fn, 0, j, add(g, mul(g, r[R_ALPHA], state(g, fn, 0, j)), mul(g, mul(g, ca, d), d)));
        d = div_(g, d, add(g, cg_math(g, "sqrt", sq), r[R_EPS]));
        if (rule_buffers(o, rule) == 4)
            d = put_state(g, fn, 1, j, add(g, mul(g, r[R_MU], state(g, fn, 1, j)), d));
    } else if (rule == RULE_ADAGRAD) {
        LLVMValueRef sum = put_state(g, fn, 0, j, add(g, state(g, fn, 0, j), mul(g, d, d)));
        d = div_(g, d, add(g, cg_math(g, "sqrt", sum), r[R_EPS]));
    }
    return LLVMBuildFSub(g->b, w, mul(g, r[R_LR], d), "");
}

/* void rule.task(i8 *rec, i64 lo, i64 hi): the rule on elements [lo*BLOCK, hi*BLOCK) (the
 * last block cut at the size) of the buffers in rec, with rec's reals. */
static void emit_task(Cg *g, CgOptim *o, int rule)
{
    int n = rule_buffers(o, rule) + 1 + NREALS;
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
    int nbuf = rule_buffers(o, rule);
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
    int nbuf = rule_buffers(o, rule), n = nbuf + 1 + NREALS;
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
    cg_store_at(g, LLVMGetParam(fn, 0), lj.i, rule_body(g, o, rule, fn, lj.i));
    cg_loop_end(g, &lj);
    LLVMBuildRetVoid(g->b);
    cg_frame_close(g);
    o->rec[rule] = LLVMStructTypeInContext(g->ctx, params, (unsigned)n, 0);
    emit_task(g, o, rule);
}

CgOptim *cg_optim_new(Cg *g, const NncModelDesc *d)
{
    CgOptim *o = arena_alloc(g->arena, sizeof *o);
    o->d = d;
    if (g->plan->nparams == 0)
        return o;
    switch (d->opt) {
    case NNC_OPT_ADAM:
    case NNC_OPT_ADAMW: emit_rule(g, o, RULE_ADAM); break;
    case NNC_OPT_RMSPROP: emit_rule(g, o, RULE_RMSPROP); break;
    case NNC_OPT_ADAGRAD: emit_rule(g, o, RULE_ADAGRAD); break;
    default:
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

LLVMValueRef cg_optim_lr(Cg *g, LLVMValueRef run)
{
    return to_real(g, rt_real(g, run, NNC_LR));
}

/* The hyper-parameters that do not change during a run; the step count goes on from
 * where a resumed run stopped. */
void cg_optim_begin(Cg *g, CgOptim *o, LLVMValueRef run)
{
    static const int which[] = {[R_MU] = NNC_MOMENTUM, [R_B1] = NNC_BETA1, [R_B2] = NNC_BETA2,
                                [R_EPS] = NNC_EPS, [R_WD] = NNC_WEIGHT_DECAY, [R_ALPHA] = NNC_ALPHA};
    for (int k = R_MU; k <= R_ALPHA; k++)
        o->reals[k] = to_real(g, rt_real(g, run, which[k]));
    o->mu64 = rt_real(g, run, NNC_MOMENTUM);
    o->reals[R_BC1] = o->reals[R_BC2] = o->reals[R_DECAY] = cg_real(g, 1);
    o->step = cg_slot(g, g->i64, "step");
    /* adam's t goes on from the steps before this call (a library's train_step) */
    LLVMBuildStore(g->b, cg_rt_int(g, run, NNC_STEPS), o->step);
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
static void apply(Cg *g, CgOptim *o, LLVMValueRef run, int rule)
{
    for (int i = 0; i < g->plan->nparams; i++) {
        LLVMValueRef args[MAX_ARGS];
        int n = 0;
        long long size = shape_size(g->ir->params[i].shape);
        args[n++] = cg_rt_buffer(g, CG_RT_PARAM, run, i, 0);
        args[n++] = cg_rt_buffer(g, CG_RT_GRAD, run, i, 0);
        for (int k = 0; k < rule_buffers(o, rule) - 2; k++)
            args[n++] = cg_rt_buffer(g, CG_RT_STATE, run, i, k);
        args[n++] = cg_i64(g, size);
        for (int k = 0; k < NREALS; k++)
            args[n++] = o->reals[k];
        if (size > BLOCK)
            call_parallel(g, o, run, rule, args, n, size);
        else
            LLVMBuildCall2(g->b, o->type[rule], o->fn[rule], args, (unsigned)n, "");
        cg_prof_update(g, run, i); /* --profile's train only */
    }
}

void cg_optim_sgd(Cg *g, CgOptim *o, LLVMValueRef w, LLVMValueRef grad, long long size, LLVMValueRef lr)
{
    LLVMValueRef args[MAX_ARGS] = {w, grad, cg_i64(g, size)};
    for (int k = 0; k < NREALS; k++)
        args[3 + k] = k == R_LR ? lr : cg_real(g, 0);
    LLVMBuildCall2(g->b, o->type[RULE_SGD], o->fn[RULE_SGD], args, 3 + NREALS, "");
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
    apply(g, o, run, RULE_MOMENTUM);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, plain);
    apply(g, o, run, RULE_SGD);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, join);
}

/* After a batch: t = t + 1, the lr in force (warm-up and schedule), then every param. */
void cg_optim_step(Cg *g, CgOptim *o, LLVMValueRef run)
{
    LLVMValueRef t = LLVMBuildNSWAdd(g->b, LLVMBuildLoad2(g->b, g->i64, o->step, ""), cg_i64(g, 1), "t");
    LLVMBuildStore(g->b, t, o->step);
    if (g->plan->nparams == 0)
        return;
    LLVMValueRef lr64 = rt_real(g, run, NNC_LR);
    o->reals[R_LR] = to_real(g, lr64);
    switch (o->d->opt) {
    case NNC_OPT_SGD: sgd_step(g, o, run); return;
    case NNC_OPT_RMSPROP: apply(g, o, run, RULE_RMSPROP); return;
    case NNC_OPT_ADAGRAD: apply(g, o, run, RULE_ADAGRAD); return;
    default: break;
    }
    LLVMValueRef tf = LLVMBuildSIToFP(g->b, t, g->f64, "");
    o->reals[R_BC1] = bias_correction(g, o->reals[R_B1], tf);
    o->reals[R_BC2] = bias_correction(g, o->reals[R_B2], tf);
    /* adamw: 1 - lr * weight_decay in double, as PyTorch's Python computes it */
    LLVMValueRef wd = LLVMConstReal(g->f64, o->d->weight_decay);
    o->reals[R_DECAY] = to_real(g, LLVMBuildFSub(g->b, LLVMConstReal(g->f64, 1), LLVMBuildFMul(g->b, lr64, wd, ""), ""));
    apply(g, o, run, RULE_ADAM);
}
