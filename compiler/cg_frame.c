/* cg_frame.c - the module's state and its functions: the runtime's declarations, internal
 * functions, and the frame of the function being emitted (opened per function, nested
 * for a task's kernel, as Lua's FuncState is per function being compiled). */
#include "cg.h"

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
    declare_rt(g, CG_RT_GMAX, "nnc_rt_gmax", g->i8p, &g->i8p, 1);
    declare_rt(g, CG_RT_UPDATE_SAFE, "nnc_rt_update_safe", g->i32, &g->i8p, 1);
}

void cg_init(Cg *g, LLVMContextRef ctx, LLVMModuleRef mod, const IrProgram *p, CgPlan *plan,
             int real_size, const CgTarget *t, Arena *a)
{
    memset(g, 0, sizeof *g);
    g->ctx = ctx;
    g->mod = mod;
    g->b = LLVMCreateBuilderInContext(ctx);
    g->real_size = real_size;
    g->real = real_size == 8 ? LLVMDoubleTypeInContext(ctx) : LLVMFloatTypeInContext(ctx);
    g->realp = LLVMPointerType(g->real, 0);
    g->lanes = t->vector_bytes / real_size;
    g->vregs = t->vector_regs;
    g->l2 = (t->l2_kb > 0 ? t->l2_kb : 256) * 1024LL;
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

LLVMValueRef cg_call_rt(Cg *g, int which, LLVMValueRef *args, unsigned nargs)
{
    CgRtFn f = g->rt[which];
    return LLVMBuildCall2(g->b, f.type, f.fn, args, nargs, "");
}

LLVMValueRef cg_slot(Cg *g, LLVMTypeRef type, const char *name)
{
    LLVMBuilderRef eb = LLVMCreateBuilderInContext(g->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(g->fs->entry);
    if (first)
        LLVMPositionBuilderBefore(eb, first);
    else
        LLVMPositionBuilderAtEnd(eb, g->fs->entry);
    LLVMValueRef slot = LLVMBuildAlloca(eb, type, name);
    LLVMDisposeBuilder(eb);
    return slot;
}

LLVMValueRef cg_add_function(Cg *g, const char *name, LLVMTypeRef type)
{
    LLVMValueRef fn = LLVMAddFunction(g->mod, name, type);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    return fn;
}

void cg_fn_attr(Cg *g, LLVMValueRef fn, const char *name)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->ctx, kind, 0));
}

void cg_frame_open(Cg *g, CgFrame *f, LLVMValueRef fn, bool share)
{
    CgFrame *prev = g->fs;
    memset(f, 0, sizeof *f);
    f->prev = prev;
    if (prev) {
        f->resume = LLVMGetInsertBlock(g->b);
        if (share) {
            f->live = prev->live;
            f->readers = prev->readers;
            f->done = prev->done;
            f->sgd = prev->sgd;
        }
    }
    f->fn = fn;
    f->entry = LLVMAppendBasicBlockInContext(g->ctx, fn, "entry");
    LLVMPositionBuilderAtEnd(g->b, f->entry);
    g->fs = f;
}

void cg_frame_close(Cg *g)
{
    CgFrame *f = g->fs;
    g->fs = f->prev;
    if (f->resume)
        LLVMPositionBuilderAtEnd(g->b, f->resume);
}

LLVMValueRef cg_real_ptr(Cg *g, LLVMValueRef p)
{
    return LLVMBuildBitCast(g->b, p, g->realp, "");
}

LLVMValueRef cg_rt_int(Cg *g, LLVMValueRef run, int which)
{
    LLVMValueRef args[] = {run, cg_i32(g, which)};
    return LLVMBuildSExt(g->b, cg_call_rt(g, CG_RT_INT, args, 2), g->i64, "");
}

LLVMValueRef cg_rt_buffer(Cg *g, int which, LLVMValueRef run, int i, int k)
{
    LLVMValueRef args[] = {run, cg_i32(g, i), cg_i32(g, k)};
    return cg_real_ptr(g, cg_call_rt(g, which, args, which == CG_RT_STATE ? 3 : 2));
}
