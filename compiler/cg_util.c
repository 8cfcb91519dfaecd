/* cg_util.c - the emission state and the small builders every kernel uses: constants,
 * runtime calls, element loads and stores, math functions and counted loops. */
#include "cg.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static void declare_rt(Cg *g, int which, const char *name, LLVMTypeRef ret,
                       LLVMTypeRef *params, unsigned nparams)
{
    LLVMTypeRef type = LLVMFunctionType(ret, params, nparams, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(g->mod, name);
    if (!fn)
        fn = LLVMAddFunction(g->mod, name, type);
    g->rt[which] = (CgRtFn){fn, type};
}

/* The nnc_rt_* functions of runtime/nnc_rt.h; NncRun* and void* are i8*. */
static void declare_runtime(Cg *g)
{
    LLVMTypeRef run_i32[] = {g->i8p, g->i32};
    LLVMTypeRef state[] = {g->i8p, g->i32, g->i32};
    LLVMTypeRef ws[] = {g->i8p, g->i64};
    LLVMTypeRef i8pp = LLVMPointerType(g->i8p, 0);
    LLVMTypeRef batch[] = {g->i8p, g->i32, i8pp, i8pp};
    LLVMTypeRef batch_end[] = {g->i8p, g->i32, g->f64, g->i8p, g->i32, g->i32};
    declare_rt(g, CG_RT_INT, "nnc_rt_int", g->i32, run_i32, 2);
    declare_rt(g, CG_RT_REAL, "nnc_rt_real", g->f64, run_i32, 2);
    declare_rt(g, CG_RT_PARAM, "nnc_rt_param", g->i8p, run_i32, 2);
    declare_rt(g, CG_RT_GRAD, "nnc_rt_grad", g->i8p, run_i32, 2);
    declare_rt(g, CG_RT_STATE, "nnc_rt_state", g->i8p, state, 3);
    declare_rt(g, CG_RT_WORKSPACE, "nnc_rt_workspace", g->i8p, ws, 2);
    declare_rt(g, CG_RT_EPOCH_BEGIN, "nnc_rt_epoch_begin", g->i32, run_i32, 2);
    declare_rt(g, CG_RT_BATCH, "nnc_rt_batch", g->i32, batch, 4);
    declare_rt(g, CG_RT_BATCH_END, "nnc_rt_batch_end_checked", g->i32, batch_end, 6);
    declare_rt(g, CG_RT_EPOCH_END, "nnc_rt_epoch_end", g->voidt, run_i32, 2);
    LLVMTypeRef task[] = {g->i8p, g->i64, g->i64};
    LLVMTypeRef task_ptr = LLVMPointerType(LLVMFunctionType(g->voidt, task, 3, 0), 0);
    LLVMTypeRef par[] = {g->i8p, g->i64, g->f64, task_ptr, g->i8p};
    declare_rt(g, CG_RT_PARALLEL, "nnc_rt_parallel", g->voidt, par, 5);
}

void cg_init(Cg *g, LLVMContextRef ctx, LLVMModuleRef mod, const IrProgram *p, CgPlan *plan,
             int real_size, Arena *a)
{
    memset(g, 0, sizeof *g);
    g->ctx = ctx;
    g->mod = mod;
    g->b = LLVMCreateBuilderInContext(ctx);
    g->real_size = real_size;
    g->real = real_size == 8 ? LLVMDoubleTypeInContext(ctx) : LLVMFloatTypeInContext(ctx);
    g->realp = LLVMPointerType(g->real, 0);
    g->lanes = cg_vector_bytes() / real_size;
    g->i8p = LLVMPointerType(LLVMInt8TypeInContext(ctx), 0);
    g->i1 = LLVMInt1TypeInContext(ctx);
    g->i32 = LLVMInt32TypeInContext(ctx);
    g->i64 = LLVMInt64TypeInContext(ctx);
    g->f64 = LLVMDoubleTypeInContext(ctx);
    g->voidt = LLVMVoidTypeInContext(ctx);
    g->ir = p;
    g->plan = plan;
    g->arena = a;
    declare_runtime(g);
}

void cg_dispose(Cg *g)
{
    if (g->b)
        LLVMDisposeBuilder(g->b);
    g->b = NULL;
}

LLVMValueRef cg_i64(Cg *g, long long v)
{
    return LLVMConstInt(g->i64, (unsigned long long)v, 1);
}

LLVMValueRef cg_i32(Cg *g, int v)
{
    return LLVMConstInt(g->i32, (unsigned long long)(long long)v, 1);
}

LLVMValueRef cg_real(Cg *g, double v)
{
    return LLVMConstReal(g->real, v);
}

LLVMValueRef cg_call_rt(Cg *g, int which, LLVMValueRef *args, unsigned nargs)
{
    CgRtFn f = g->rt[which];
    return LLVMBuildCall2(g->b, f.type, f.fn, args, nargs, "");
}

LLVMValueRef cg_slot(Cg *g, LLVMTypeRef type, const char *name)
{
    LLVMBuilderRef eb = LLVMCreateBuilderInContext(g->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(g->entry);
    if (first)
        LLVMPositionBuilderBefore(eb, first);
    else
        LLVMPositionBuilderAtEnd(eb, g->entry);
    LLVMValueRef slot = LLVMBuildAlloca(eb, type, name);
    LLVMDisposeBuilder(eb);
    return slot;
}

LLVMValueRef cg_gep(Cg *g, LLVMValueRef ptr, LLVMValueRef index)
{
    return LLVMBuildInBoundsGEP2(g->b, g->real, ptr, &index, 1, "");
}

LLVMValueRef cg_load_at(Cg *g, LLVMValueRef ptr, LLVMValueRef index)
{
    return LLVMBuildLoad2(g->b, g->real, cg_gep(g, ptr, index), "");
}

void cg_store_at(Cg *g, LLVMValueRef ptr, LLVMValueRef index, LLVMValueRef v)
{
    LLVMBuildStore(g->b, v, cg_gep(g, ptr, index));
}

static LLVMValueRef call1(Cg *g, LLVMValueRef fn, LLVMTypeRef type, LLVMValueRef x)
{
    return LLVMBuildCall2(g->b, type, fn, &x, 1, "");
}

LLVMValueRef cg_intrinsic(Cg *g, const char *name, LLVMTypeRef type, LLVMValueRef *args,
                          unsigned nargs)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    assert(id != 0);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->mod, id, &type, 1);
    LLVMTypeRef fn_type = LLVMIntrinsicGetType(g->ctx, id, &type, 1);
    return LLVMBuildCall2(g->b, fn_type, fn, args, nargs, "");
}

/* tanh and log1p have no intrinsic: libm's tanhf/tanh, log1pf/log1p. */
static LLVMValueRef libm(Cg *g, const char *fn, LLVMValueRef x)
{
    char name[32];
    snprintf(name, sizeof name, "%s%s", fn, g->real_size == 4 ? "f" : "");
    LLVMTypeRef type = LLVMFunctionType(g->real, &g->real, 1, 0);
    LLVMValueRef f = LLVMGetNamedFunction(g->mod, name);
    if (!f) {
        f = LLVMAddFunction(g->mod, name, type);
        LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(g->ctx, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
    }
    return call1(g, f, type, x);
}

LLVMValueRef cg_math(Cg *g, const char *fn, LLVMValueRef x)
{
    if (strcmp(fn, "tanh") == 0 || strcmp(fn, "log1p") == 0)
        return libm(g, fn, x);
    char name[32];
    snprintf(name, sizeof name, "llvm.%s", fn);
    return cg_intrinsic(g, name, g->real, &x, 1);
}

LLVMValueRef cg_pow(Cg *g, LLVMValueRef x, double c)
{
    if (c == 1)
        return x;
    if (c == 2) /* exactly what pow gives, without the call */
        return LLVMBuildFMul(g->b, x, x, "");
    LLVMValueRef args[] = {x, cg_real(g, c)};
    return cg_intrinsic(g, "llvm.pow", g->real, args, 2);
}

CgLoop cg_loop_begin(Cg *g, LLVMValueRef from, LLVMValueRef to, const char *name)
{
    CgLoop l;
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->b);
    l.head = LLVMAppendBasicBlockInContext(g->ctx, g->fn, name);
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "body");
    l.exit = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "done");
    LLVMBuildBr(g->b, l.head);
    LLVMPositionBuilderAtEnd(g->b, l.head);
    l.i = LLVMBuildPhi(g->b, g->i64, name);
    LLVMAddIncoming(l.i, &from, &pre, 1);
    LLVMValueRef more = LLVMBuildICmp(g->b, LLVMIntSLT, l.i, to, "");
    LLVMBuildCondBr(g->b, more, body, l.exit);
    LLVMPositionBuilderAtEnd(g->b, body);
    return l;
}

void cg_loop_end(Cg *g, CgLoop *l)
{
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->b);
    LLVMValueRef next = LLVMBuildNSWAdd(g->b, l->i, cg_i64(g, 1), "");
    LLVMAddIncoming(l->i, &next, &latch, 1);
    LLVMBuildBr(g->b, l->head);
    LLVMPositionBuilderAtEnd(g->b, l->exit);
}

static LLVMValueRef element_index(Cg *g, const CgNode *n, LLVMValueRef b, LLVMValueRef i)
{
    if (!n->varying)
        return i;
    assert(b);
    LLVMValueRef row = LLVMBuildNSWMul(g->b, b, cg_i64(g, cg_size(n)), "");
    return LLVMBuildNSWAdd(g->b, row, i, "");
}

LLVMValueRef cg_load(Cg *g, int node, LLVMValueRef b, LLVMValueRef i)
{
    const CgNode *n = &g->plan->nodes[node];
    if (n->where == CG_AT_CONST)
        return cg_real(g, n->num);
    assert(g->base[node]);
    return cg_load_at(g, g->base[node], element_index(g, n, b, i));
}

void cg_store(Cg *g, int node, LLVMValueRef b, LLVMValueRef i, LLVMValueRef v)
{
    const CgNode *n = &g->plan->nodes[node];
    assert(g->base[node]);
    cg_store_at(g, g->base[node], element_index(g, n, b, i), v);
}

LLVMValueRef cg_imin(Cg *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, a, b, ""), a, b, "");
}

LLVMValueRef cg_imax(Cg *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSGT, a, b, ""), a, b, "");
}

LLVMValueRef cg_count(Cg *g, int node)
{
    return g->plan->nodes[node].varying ? g->n : cg_i64(g, 1);
}
