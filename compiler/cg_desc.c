/* cg_desc.c - `const NncModelDesc nnc_model`: the descriptor built by desc_build, emitted
 * as an LLVM constant with the C layout of runtime/nnc_rt.h on x86-64. The LLVM struct
 * types list the C fields in order with the same types; LLVM's data layout pads them the
 * way the C ABI does (the unit test compares every offset with offsetof). */
#include "cg.h"

#include <string.h>

typedef struct DescTypes {
    LLVMTypeRef i8p, i32, i64, f64, dims, f64p, param, source, op, model;
} DescTypes;

static DescTypes desc_types(LLVMContextRef ctx, LLVMTypeRef train_ptr, LLVMTypeRef eval_ptr)
{
    DescTypes t;
    t.i8p = LLVMPointerType(LLVMInt8TypeInContext(ctx), 0);
    t.i32 = LLVMInt32TypeInContext(ctx);
    t.i64 = LLVMInt64TypeInContext(ctx);
    t.f64 = LLVMDoubleTypeInContext(ctx);
    t.f64p = LLVMPointerType(t.f64, 0);
    t.dims = LLVMArrayType(t.i32, 4);
    /* NncParamDesc: name, rank, dims, size, init, a, b */
    LLVMTypeRef param[] = {t.i8p, t.i32, t.dims, t.i32, t.i32, t.f64, t.f64};
    t.param = LLVMStructTypeInContext(ctx, param, 7, 0);
    /* NncSourceDesc: kind, path, path2, header, label, nsamples, x, t, x_name, t_name */
    LLVMTypeRef source[] = {t.i32, t.i8p, t.i8p, t.i32, t.i32, t.i32, t.f64p, t.f64p, t.i8p, t.i8p};
    t.source = LLVMStructTypeInContext(ctx, source, 10, 0);
    /* NncOpDesc: op, expr, name, kind, line, col, size, fused_into, flops */
    LLVMTypeRef op[] = {t.i8p, t.i8p, t.i8p, t.i32, t.i32, t.i32, t.i32, t.i32, t.f64};
    t.op = LLVMStructTypeInContext(ctx, op, 9, 0);
    LLVMTypeRef model[] = {
        t.i8p, t.i8p, t.i32,                   /* name, base_dir, real_size */
        t.i32, t.dims, t.i32,                  /* in_rank, in_dims, in_size */
        t.i32, t.dims, t.i32,                  /* tgt_rank, tgt_dims, tgt_size */
        t.i32, t.i32, LLVMPointerType(t.param, 0), /* out_size, nparams, params */
        t.i32, t.i32, t.i32,                   /* epochs, batch, opt */
        t.f64, t.f64, t.f64, t.f64, t.f64,     /* lr, momentum, beta1, beta2, eps */
        t.i64, t.i32, t.source, t.source,      /* seed, shuffle, data, test */
        train_ptr, eval_ptr, t.i8p,            /* train, evaluate, ctx */
        t.i8p,                                 /* cpu_features */
        t.i32, t.f64, t.f64,                   /* nesterov, weight_decay, alpha */
        t.i32, t.i32, t.f64, t.f64,            /* sched, sched_every, gamma, min_lr */
        t.i32, t.i32, t.f64, t.f64,            /* warmup, patience, clip, val_fraction */
        t.source,                              /* validation */
        train_ptr, eval_ptr,                   /* train_profile, check_batch */
        t.i32, LLVMPointerType(t.op, 0), t.i8p, /* nops, ops, source */
    };
    t.model = LLVMStructTypeInContext(ctx, model, sizeof model / sizeof *model, 0);
    return t;
}

LLVMTypeRef cg_desc_type(LLVMContextRef ctx, LLVMTypeRef train_ptr, LLVMTypeRef eval_ptr,
                         LLVMTypeRef *param_type)
{
    DescTypes t = desc_types(ctx, train_ptr, eval_ptr);
    if (param_type)
        *param_type = t.param;
    return t.model;
}

/* A private constant global holding init, and a pointer to its first element. */
static LLVMValueRef global_array(Cg *g, LLVMValueRef init, const char *name)
{
    LLVMValueRef gv = LLVMAddGlobal(g->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
    LLVMValueRef zero[] = {cg_i32(g, 0), cg_i32(g, 0)};
    return LLVMConstInBoundsGEP2(LLVMTypeOf(init), gv, zero, 2);
}

static LLVMValueRef str(Cg *g, const DescTypes *t, const char *s)
{
    if (!s)
        return LLVMConstNull(t->i8p);
    return global_array(g, LLVMConstStringInContext(g->ctx, s, (unsigned)strlen(s), 0), "str");
}

static LLVMValueRef i32c(const DescTypes *t, int v)
{
    return LLVMConstInt(t->i32, (unsigned long long)(long long)v, 1);
}

static LLVMValueRef f64c(const DescTypes *t, double v)
{
    return LLVMConstReal(t->f64, v);
}

static LLVMValueRef dims(const DescTypes *t, const int d[4])
{
    LLVMValueRef v[4];
    for (int i = 0; i < 4; i++)
        v[i] = i32c(t, d[i]);
    return LLVMConstArray(t->i32, v, 4);
}

static LLVMValueRef doubles(Cg *g, const DescTypes *t, const double *x, long long n)
{
    if (!x || n <= 0)
        return LLVMConstNull(t->f64p);
    LLVMValueRef *v = arena_alloc(g->arena, sizeof *v * (size_t)n);
    for (long long i = 0; i < n; i++)
        v[i] = f64c(t, x[i]);
    return global_array(g, LLVMConstArray(t->f64, v, (unsigned)n), "data");
}

static LLVMValueRef source(Cg *g, const DescTypes *t, const NncSourceDesc *s, const NncModelDesc *d)
{
    LLVMValueRef f[] = {
        i32c(t, s->kind), str(g, t, s->path), str(g, t, s->path2), i32c(t, s->header),
        i32c(t, s->label), i32c(t, s->nsamples),
        doubles(g, t, s->x, (long long)s->nsamples * d->in_size),
        doubles(g, t, s->t, (long long)s->nsamples * d->tgt_size),
        str(g, t, s->x_name), str(g, t, s->t_name),
    };
    return LLVMConstNamedStruct(t->source, f, 10);
}

static LLVMValueRef params(Cg *g, const DescTypes *t, const NncModelDesc *d)
{
    if (d->nparams == 0)
        return LLVMConstNull(LLVMPointerType(t->param, 0));
    LLVMValueRef *v = arena_alloc(g->arena, sizeof *v * (size_t)d->nparams);
    for (int i = 0; i < d->nparams; i++) {
        const NncParamDesc *p = &d->params[i];
        LLVMValueRef f[] = {str(g, t, p->name), i32c(t, p->rank), dims(t, p->dims),
                            i32c(t, p->size), i32c(t, p->init), f64c(t, p->a), f64c(t, p->b)};
        v[i] = LLVMConstNamedStruct(t->param, f, 7);
    }
    return global_array(g, LLVMConstArray(t->param, v, (unsigned)d->nparams), "params");
}

/* The rows of --profile and of the first non-finite value (cg_profile.c). */
static LLVMValueRef ops(Cg *g, const DescTypes *t, int *nops)
{
    const NncOpDesc *rows = cg_prof_rows(g, nops);
    if (*nops == 0)
        return LLVMConstNull(LLVMPointerType(t->op, 0));
    LLVMValueRef *v = arena_alloc(g->arena, sizeof *v * (size_t)*nops);
    for (int i = 0; i < *nops; i++) {
        const NncOpDesc *r = &rows[i];
        LLVMValueRef f[] = {str(g, t, r->op), str(g, t, r->expr), str(g, t, r->name), i32c(t, r->kind),
                            i32c(t, r->line), i32c(t, r->col), i32c(t, r->size), i32c(t, r->fused_into),
                            f64c(t, r->flops)};
        v[i] = LLVMConstNamedStruct(t->op, f, 9);
    }
    return global_array(g, LLVMConstArray(t->op, v, (unsigned)*nops), "ops");
}

static LLVMValueRef fn_or_null(LLVMValueRef fn, LLVMValueRef like)
{
    return fn ? fn : LLVMConstNull(LLVMTypeOf(like));
}

void cg_emit_desc(Cg *g, const NncModelDesc *d, LLVMValueRef train, LLVMValueRef evaluate)
{
    DescTypes t = desc_types(g->ctx, LLVMTypeOf(train), LLVMTypeOf(evaluate));
    LLVMValueRef f[] = {
        str(g, &t, d->name), str(g, &t, d->base_dir), i32c(&t, d->real_size),
        i32c(&t, d->in_rank), dims(&t, d->in_dims), i32c(&t, d->in_size),
        i32c(&t, d->tgt_rank), dims(&t, d->tgt_dims), i32c(&t, d->tgt_size),
        i32c(&t, d->out_size), i32c(&t, d->nparams), params(g, &t, d),
        i32c(&t, d->epochs), i32c(&t, d->batch), i32c(&t, d->opt),
        f64c(&t, d->lr), f64c(&t, d->momentum), f64c(&t, d->beta1), f64c(&t, d->beta2),
        f64c(&t, d->eps),
        LLVMConstInt(t.i64, (unsigned long long)d->seed, 1), i32c(&t, d->shuffle),
        source(g, &t, &d->data, d), source(g, &t, &d->test, d),
        train, evaluate, LLVMConstNull(t.i8p), str(g, &t, d->cpu_features),
        i32c(&t, d->nesterov), f64c(&t, d->weight_decay), f64c(&t, d->alpha),
        i32c(&t, d->sched), i32c(&t, d->sched_every), f64c(&t, d->gamma), f64c(&t, d->min_lr),
        i32c(&t, d->warmup), i32c(&t, d->patience), f64c(&t, d->clip), f64c(&t, d->val_fraction),
        source(g, &t, &d->validation, d),
        fn_or_null(g->train_profile, train), fn_or_null(g->check_batch, evaluate), NULL, NULL, NULL,
    };
    /* after the fields before them, whose globals keep their names (--emit=llvm) */
    int nops, last = sizeof f / sizeof *f - 1;
    f[last - 1] = ops(g, &t, &nops);
    f[last - 2] = i32c(&t, nops);
    f[last] = str(g, &t, d->source);
    LLVMValueRef gv = LLVMAddGlobal(g->mod, t.model, "nnc_model");
    LLVMSetInitializer(gv, LLVMConstNamedStruct(t.model, f, sizeof f / sizeof *f));
    LLVMSetGlobalConstant(gv, 1);
}
