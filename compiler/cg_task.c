/* cg_task.c - outlined kernels: a loop nest moved into its own function
 *
 *   void NAME(i8 *ctx, i64 lo, i64 hi)     runs tasks [lo, hi)
 *
 * so the runtime's thread pool can run slices of it side by side (nnc_rt_parallel). The
 * caller packs the sample count and the buffers the kernel reads or writes into a context
 * record on its stack; inside, g->n and g->base[] are the record's copies, so the kernel
 * is emitted with the same helpers as inline code. Tasks write disjoint parts of the
 * output and each computes its part whole, in a fixed order: the result does not depend
 * on how the tasks are split between threads. */
#include "cg.h"

#include <string.h>

static LLVMTypeRef ctx_type(Cg *g, int nvals)
{
    LLVMTypeRef fields[CG_TASK_MAX + 1];
    fields[0] = g->i64;
    for (int i = 0; i < nvals; i++)
        fields[i + 1] = g->realp;
    return LLVMStructTypeInContext(g->ctx, fields, (unsigned)nvals + 1, 0);
}

static LLVMValueRef field(Cg *g, LLVMTypeRef type, LLVMValueRef rec, int i)
{
    return LLVMBuildStructGEP2(g->b, type, rec, (unsigned)i, "");
}

/* In the caller: the record holding n and vals. */
static LLVMValueRef pack(Cg *g, LLVMTypeRef type, const LLVMValueRef *vals, int nvals)
{
    LLVMValueRef rec = cg_slot(g, type, "task_ctx");
    LLVMBuildStore(g->b, g->n, field(g, type, rec, 0));
    for (int i = 0; i < nvals; i++)
        LLVMBuildStore(g->b, vals[i], field(g, type, rec, i + 1));
    return rec;
}

void cg_task_begin(Cg *g, CgTask *t, const char *name, const int *nodes, int nnodes,
                   LLVMValueRef *extra, int nextra)
{
    LLVMValueRef vals[CG_TASK_MAX];
    int nvals = 0;
    for (int i = 0; i < nnodes; i++)
        vals[nvals++] = g->base[nodes[i]] ? g->base[nodes[i]] : LLVMConstNull(g->realp);
    for (int i = 0; i < nextra; i++)
        vals[nvals++] = extra[i];
    t->type = ctx_type(g, nvals);
    t->rec = pack(g, t->type, vals, nvals);
    t->fn = g->fn;
    t->entry = g->entry;
    t->block = LLVMGetInsertBlock(g->b);
    t->base = g->base;
    t->n = g->n;
    t->nreal = g->nreal;
    t->inv_n = g->inv_n;

    LLVMTypeRef params[] = {g->i8p, g->i64, g->i64};
    size_t len;
    const char *caller = LLVMGetValueName2(g->fn, &len); /* nnc_step.h1.1: whose kernel */
    LLVMValueRef fn = cg_add_function(g, arena_printf(g->arena, "%.*s.%s", (int)len, caller, name),
                                      LLVMFunctionType(g->voidt, params, 3, 0));
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->ctx, nounwind, 0));
    t->kernel = fn;
    cg_begin_function(g, fn);
    LLVMValueRef rec = LLVMBuildBitCast(g->b, LLVMGetParam(fn, 0), LLVMPointerType(t->type, 0), "");
    g->n = LLVMBuildLoad2(g->b, g->i64, field(g, t->type, rec, 0), "n");
    g->nreal = LLVMBuildSIToFP(g->b, g->n, g->real, "");
    g->inv_n = LLVMBuildFDiv(g->b, cg_real(g, 1), g->nreal, "inv_n");
    g->base = arena_alloc(g->arena, sizeof *g->base * (size_t)g->plan->nnodes);
    memset(g->base, 0, sizeof *g->base * (size_t)g->plan->nnodes);
    for (int i = 0; i < nvals; i++) {
        LLVMValueRef v = LLVMBuildLoad2(g->b, g->realp, field(g, t->type, rec, i + 1), "");
        if (i < nnodes)
            g->base[nodes[i]] = v;
        else
            extra[i - nnodes] = v;
    }
    t->lo = LLVMGetParam(fn, 1);
    t->hi = LLVMGetParam(fn, 2);
}

void cg_task_end(Cg *g, CgTask *t, LLVMValueRef ntasks, LLVMValueRef work)
{
    LLVMBuildRetVoid(g->b);
    g->fn = t->fn;
    g->entry = t->entry;
    g->base = t->base;
    g->n = t->n;
    g->nreal = t->nreal;
    g->inv_n = t->inv_n;
    LLVMPositionBuilderAtEnd(g->b, t->block);
    LLVMValueRef args[] = {g->run, ntasks, work, t->kernel,
                           LLVMBuildBitCast(g->b, t->rec, g->i8p, "")};
    cg_call_rt(g, CG_RT_PARALLEL, args, 5);
}
