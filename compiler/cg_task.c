/* cg_task.c - outlined kernels: a loop nest moved into its own function
 *
 *   void NAME(i8 *ctx, i64 lo, i64 hi)     runs tasks [lo, hi)
 *
 * so the runtime's thread pool can run slices of it side by side (nnc_rt_parallel). The
 * caller packs the sample count, the buffers the kernel reads or writes and any other
 * values it needs (each a field of its own type) into a record on its stack; the kernel
 * is emitted in a frame of its own whose n and base[] are the record's copies, so it is
 * built with the same helpers as inline code. Tasks write disjoint parts of the output
 * and each computes its part whole, in a fixed order: the result does not depend on how
 * the tasks are split between threads. */
#include "cg.h"

#include <assert.h>
#include <string.h>

static LLVMValueRef field(Cg *g, LLVMTypeRef type, LLVMValueRef rec, int i)
{
    return LLVMBuildStructGEP2(g->b, type, rec, (unsigned)i, "");
}

/* In the caller: the record {n, vals...}, its field types those of the values. */
static LLVMValueRef pack(Cg *g, CgTask *t, const LLVMValueRef *vals, int nvals)
{
    LLVMTypeRef *types = arena_alloc(g->arena, sizeof *types * (size_t)(nvals + 1));
    types[0] = g->i64;
    for (int i = 0; i < nvals; i++)
        types[i + 1] = LLVMTypeOf(vals[i]);
    t->type = LLVMStructTypeInContext(g->ctx, types, (unsigned)nvals + 1, 0);
    LLVMValueRef rec = cg_slot(g, t->type, "task_ctx");
    LLVMBuildStore(g->b, g->fs->n, field(g, t->type, rec, 0));
    for (int i = 0; i < nvals; i++)
        LLVMBuildStore(g->b, vals[i], field(g, t->type, rec, i + 1));
    return rec;
}

/* The kernel function, named after its caller (nnc_step.h1.1: whose kernel it is). */
static LLVMValueRef kernel(Cg *g, const char *name)
{
    LLVMTypeRef params[] = {g->i8p, g->i64, g->i64};
    size_t len;
    const char *caller = LLVMGetValueName2(g->fs->fn, &len);
    LLVMValueRef fn = cg_add_function(g, arena_printf(g->arena, "%.*s.%s", (int)len, caller, name),
                                      LLVMFunctionType(g->voidt, params, 3, 0));
    cg_fn_attr(g, fn, "nounwind");
    return fn;
}

/* A kernel by its signature: the module's list (a handful of distinct products). */
typedef struct CgKernel {
    struct CgKernel *next;
    const char *signature;
    LLVMValueRef fn;
    LLVMTypeRef type;
} CgKernel;

/* The record's values: the nodes' buffers (NULL where one has none), then the extras. */
static LLVMValueRef *values(Cg *g, const int *nodes, int nnodes, LLVMValueRef *extra, int nextra)
{
    LLVMValueRef *vals = arena_alloc(g->arena, sizeof *vals * (size_t)(nnodes + nextra + 1));
    for (int i = 0; i < nnodes; i++)
        vals[i] = g->fs->base[nodes[i]] ? g->fs->base[nodes[i]] : LLVMConstNull(g->realp);
    for (int i = 0; i < nextra; i++)
        vals[nnodes + i] = extra[i];
    return vals;
}

static void run_tasks(Cg *g, LLVMValueRef kernel, LLVMValueRef rec, LLVMValueRef ntasks, LLVMValueRef work)
{
    LLVMValueRef args[] = {g->fs->run, ntasks, work, kernel, LLVMBuildBitCast(g->b, rec, g->i8p, "")};
    cg_call_rt(g, CG_RT_PARALLEL, args, 5);
}

bool cg_task_reuse(Cg *g, const char *signature, const int *nodes, int nnodes,
                   LLVMValueRef *extra, int nextra, LLVMValueRef ntasks, LLVMValueRef work)
{
    CgKernel *k = g->kernels;
    while (k && strcmp(k->signature, signature) != 0)
        k = k->next;
    if (!k)
        return false;
    CgTask t;
    LLVMValueRef rec = pack(g, &t, values(g, nodes, nnodes, extra, nextra), nnodes + nextra);
    assert(t.type == k->type); /* the same signature makes the same record */
    run_tasks(g, k->fn, rec, ntasks, work);
    return true;
}

void cg_task_begin(Cg *g, CgTask *t, const char *name, const int *nodes, int nnodes,
                   LLVMValueRef *extra, int nextra)
{
    int nvals = nnodes + nextra;
    LLVMValueRef *vals = values(g, nodes, nnodes, extra, nextra);
    t->signature = NULL;
    t->rec = pack(g, t, vals, nvals);
    t->kernel = kernel(g, name);

    CgFrame *f = &t->frame;
    cg_frame_open(g, f, t->kernel, true);
    LLVMValueRef rec = LLVMBuildBitCast(g->b, LLVMGetParam(t->kernel, 0), LLVMPointerType(t->type, 0), "");
    f->n = LLVMBuildLoad2(g->b, g->i64, field(g, t->type, rec, 0), "n");
    f->nreal = LLVMBuildSIToFP(g->b, f->n, g->real, "");
    f->inv_n = LLVMBuildFDiv(g->b, cg_real(g, 1), f->nreal, "inv_n");
    f->base = arena_alloc(g->arena, sizeof *f->base * (size_t)g->plan->nnodes);
    memset(f->base, 0, sizeof *f->base * (size_t)g->plan->nnodes);
    for (int i = 0; i < nvals; i++) {
        LLVMValueRef v = LLVMBuildLoad2(g->b, LLVMTypeOf(vals[i]), field(g, t->type, rec, i + 1), "");
        if (i < nnodes)
            f->base[nodes[i]] = v;
        else
            extra[i - nnodes] = v;
    }
    t->lo = LLVMGetParam(t->kernel, 1);
    t->hi = LLVMGetParam(t->kernel, 2);
}

void cg_task_end(Cg *g, CgTask *t, LLVMValueRef ntasks, LLVMValueRef work)
{
    LLVMBuildRetVoid(g->b);
    cg_frame_close(g);
    if (t->signature) {
        CgKernel *k = arena_alloc(g->arena, sizeof *k);
        *k = (CgKernel){g->kernels, t->signature, t->kernel, t->type};
        g->kernels = k;
    }
    run_tasks(g, t->kernel, t->rec, ntasks, work);
}
