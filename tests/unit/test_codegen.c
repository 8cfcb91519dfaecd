/* test_codegen.c - the code generator's internals on IR built by hand:
 *
 * 1. The LLVM struct types of the descriptor have the C layout of runtime/nnc_rt.h
 *    (every field's offset and the sizes) under the host's data layout.
 * 2. The plan takes a gradient's mean over the batch without a per-sample gradient:
 *    outer(d, x) becomes one CG_BMEAN_OUTER, a non-varying term moves out of the mean,
 *    a linear gradient's mean is pushed down to the batch means of x and t, and no
 *    varying node of the weight's shape is computed by the training step.
 * 3. The module for that program verifies, at f32 and f64.
 * 4. `nnc --run`'s JIT defines every function of runtime/nnc_rt.h (nnc exports no symbols,
 *    so one missing from its table fails only the models that call it). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "cg.h"
#include "desc.h"
#include "ir.h"

static int failures;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            failures++;                                                          \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
        }                                                                        \
    } while (0)

static void check_offsets(LLVMTargetDataRef td, LLVMTypeRef t, const size_t *want, unsigned n,
                          size_t size, const char *what)
{
    CHECK(LLVMCountStructElementTypes(t) == n, "%s: %u fields", what, LLVMCountStructElementTypes(t));
    for (unsigned i = 0; i < n; i++)
        CHECK(LLVMOffsetOfElement(td, t, i) == want[i], "%s field %u at %llu, C has %zu", what, i,
              (unsigned long long)LLVMOffsetOfElement(td, t, i), want[i]);
    CHECK(LLVMABISizeOfType(td, t) == size, "%s: size %llu, C has %zu", what,
          (unsigned long long)LLVMABISizeOfType(td, t), size);
}

static void test_desc_layout(LLVMTargetDataRef td)
{
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMTypeRef p8 = LLVMPointerType(LLVMInt8TypeInContext(ctx), 0), param;
    LLVMTypeRef model = cg_desc_type(ctx, p8, p8, &param);
    static const size_t pm[] = {
        offsetof(NncParamDesc, name), offsetof(NncParamDesc, rank), offsetof(NncParamDesc, dims),
        offsetof(NncParamDesc, size), offsetof(NncParamDesc, init), offsetof(NncParamDesc, a),
        offsetof(NncParamDesc, b)};
    check_offsets(td, param, pm, 7, sizeof(NncParamDesc), "NncParamDesc");
    static const size_t src[] = {
        offsetof(NncSourceDesc, kind), offsetof(NncSourceDesc, path), offsetof(NncSourceDesc, path2),
        offsetof(NncSourceDesc, header), offsetof(NncSourceDesc, label),
        offsetof(NncSourceDesc, nsamples), offsetof(NncSourceDesc, x), offsetof(NncSourceDesc, t),
        offsetof(NncSourceDesc, x_name), offsetof(NncSourceDesc, t_name)};
    check_offsets(td, LLVMStructGetTypeAtIndex(model, 22), src, 10, sizeof(NncSourceDesc), "NncSourceDesc");
#define F(f) offsetof(NncModelDesc, f)
    static const size_t md[] = {
        F(name), F(base_dir), F(real_size), F(in_rank), F(in_dims), F(in_size), F(tgt_rank),
        F(tgt_dims), F(tgt_size), F(out_size), F(nparams), F(params), F(epochs), F(batch), F(opt),
        F(lr), F(momentum), F(beta1), F(beta2), F(eps), F(seed), F(shuffle), F(data), F(test),
        F(train), F(evaluate), F(ctx), F(cpu_features), F(nesterov), F(weight_decay), F(alpha),
        F(sched), F(sched_every), F(gamma), F(min_lr), F(warmup), F(patience), F(clip),
        F(val_fraction), F(validation), F(train_profile), F(check_batch), F(nops), F(ops),
        F(source)};
#undef F
    static const size_t op[] = {
        offsetof(NncOpDesc, op), offsetof(NncOpDesc, expr), offsetof(NncOpDesc, name),
        offsetof(NncOpDesc, kind), offsetof(NncOpDesc, line), offsetof(NncOpDesc, col),
        offsetof(NncOpDesc, size), offsetof(NncOpDesc, fused_into), offsetof(NncOpDesc, flops)};
    check_offsets(td, LLVMGetElementType(LLVMStructGetTypeAtIndex(model, (unsigned)(sizeof md / sizeof *md - 2))), op, 9, sizeof(NncOpDesc),
                  "NncOpDesc");
    check_offsets(td, model, md, sizeof md / sizeof *md, sizeof(NncModelDesc), "NncModelDesc");
    LLVMContextDispose(ctx);
}

/* ---- a program by hand: h = W @ x + b, loss = sum((h - t)^2) + 0.5 * sum(W^2) ---- */

typedef struct Prog {
    IrProgram *p;
    int dW, db; /* the per-sample gradients */
} Prog;

static Shape vec(int n)
{
    return (Shape){.rank = 1, .dims = {n}};
}

static int leaf(IrProgram *p, IrOp op, Shape s, const char *name)
{
    return ir_add(p, (IrNode){.op = op, .shape = s, .name = name, .args = {-1, -1}});
}

static void add_param(IrProgram *p, int node, const char *name)
{
    p->nodes[node].index = p->nparams;
    p->params[p->nparams++] = (IrParam){.name = name, .shape = p->nodes[node].shape, .node = node, .grad = -1};
}

static Prog build(Arena *a)
{
    Loc loc = {1, 1};
    IrProgram *p = ir_new(a);
    p->params = arena_alloc(a, 2 * sizeof *p->params);
    p->input = leaf(p, IR_INPUT, vec(2), "x");
    p->target = leaf(p, IR_TARGET, vec(4), "t");
    int W = leaf(p, IR_PARAM, (Shape){.rank = 2, .dims = {4, 2}}, "W");
    add_param(p, W, "W");
    int b = leaf(p, IR_PARAM, vec(4), "b");
    add_param(p, b, "b");
    int h = ir_binary(p, IR_ADD, ir_binary(p, IR_MATMUL, W, p->input, loc), b, loc);
    int e = ir_binary(p, IR_SUB, h, p->target, loc);
    int fit = ir_unary(p, IR_SUM, ir_binary(p, IR_MUL, e, e, loc), loc);
    int decay = ir_unary(p, IR_SUM, ir_binary(p, IR_MUL, W, W, loc), loc);
    p->loss = ir_binary(p, IR_ADD, fit, ir_binary(p, IR_MUL, ir_const(p, 0.5, loc), decay, loc), loc);
    p->output = h;
    p->nforward = p->nnodes;
    /* backward: dh = 2 e; dW = outer(dh, x) + W; db = dh */
    int dh = ir_binary(p, IR_MUL, ir_const(p, 2, loc), e, loc);
    Prog pr = {p, ir_binary(p, IR_ADD, ir_binary(p, IR_OUTER, dh, p->input, loc), W, loc), dh};
    p->params[0].grad = pr.dW;
    p->params[1].grad = pr.db;
    return pr;
}

static void test_plan(Arena *a)
{
    Prog pr = build(a);
    CHECK(pr.p->nodes[pr.dW].varying && !pr.p->nodes[pr.p->params[0].node].varying, "varying flags");
    CgPlan *pl = cg_plan(pr.p, a);
    const CgNode *mw = &pl->nodes[pl->mean_grad[0]];
    CHECK(mw->op == IR_ADD && !mw->varying, "mean dW is %d", mw->op);
    CHECK(pl->nodes[mw->args[0]].op == CG_BMEAN_OUTER, "mean of outer is %d", pl->nodes[mw->args[0]].op);
    CHECK(mw->args[1] == pr.p->params[0].node, "the non-varying W moves out of the mean");
    /* db = 2 (W @ x + b - t) is linear in the samples: its mean is 2 (W @ mean(x) + b - mean(t)) */
    const CgNode *mb = &pl->nodes[pl->mean_grad[1]];
    CHECK(mb->op == IR_MUL && pl->nodes[mb->args[1]].op == IR_SUB, "mean db is %d", mb->op);
    CHECK(mw->where == CG_AT_GRAD && mw->index == 0, "dW's mean is computed in place");
    for (int id = 0; id < pl->nnodes; id++) {
        const CgNode *n = &pl->nodes[id];
        CHECK(!(pl->live[CG_FN_STEP][id] && n->varying && n->shape.rank == 2),
              "node %d: a per-sample [4, 2] gradient is computed", id);
        CHECK(!pl->live[CG_FN_EVAL][id] || id < pr.p->nforward, "node %d: evaluate runs backward", id);
    }
    CHECK(!pl->live[CG_FN_EVAL][pl->loss] && pl->live[CG_FN_EVAL_LOSS][pl->loss], "loss liveness");
    CHECK(pl->nodes[pl->output].where == CG_AT_PRED, "the output goes straight to pred");
}

static void test_module(Arena *a, const CgTarget *t, int real_size)
{
    Prog pr = build(a);
    CgPlan *pl = cg_plan(pr.p, a);
    NncModelDesc d = {.name = "hand", .base_dir = ".", .real_size = real_size, .nparams = 0};
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("hand", ctx);
    cg_target_module(mod, t->tm);
    Cg g;
    cg_init(&g, ctx, mod, pr.p, pl, real_size, t, a);
    LLVMValueRef train, evaluate;
    NncModelDesc opts = {.opt = real_size == 8 ? NNC_OPT_ADAM : NNC_OPT_SGD};
    cg_emit_functions(&g, &opts, &train, &evaluate);
    cg_emit_desc(&g, &d, train, evaluate);
    cg_dispose(&g);
    CHECK(cg_verify(mod), "the module verifies (real_size %d)", real_size);
    CHECK(cg_optimise(mod, t->tm, 2), "the module optimises");
    CHECK(LLVMGetNamedGlobal(mod, "nnc_model") != NULL, "nnc_model is defined");
    LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
}

/* Every "nnc_rt_NAME(" of the header, beside this file's folder. */
static void test_jit_runtime(void)
{
    char path[4096];
    const char *end = strrchr(__FILE__, '/');
    snprintf(path, sizeof path, "%.*s/../../runtime/nnc_rt.h", end ? (int)(end - __FILE__) : 1,
             end ? __FILE__ : ".");
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot read %s", path);
    if (!f)
        return;
    char line[1024];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        for (const char *p = strstr(line, "nnc_rt_"); p; p = strstr(p + 1, "nnc_rt_")) {
            size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
            if (p[n] != '(' || (p > line && p[-1] != ' ' && p[-1] != '*'))
                continue;
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)n, p);
            CHECK(cg_jit_defines(name), "the JIT does not define %s", name);
            seen++;
        }
    }
    fclose(f);
    CHECK(seen >= 18, "%d runtime functions in %s", seen, path);
}

int main(void)
{
    Arena *a = arena_new();
    CgTarget t;
    if (!cg_target_init(&t, NULL, NULL, 2, a))
        return 1;
    LLVMTargetMachineRef tm = t.tm;
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    test_desc_layout(td);
    test_plan(a);
    test_module(a, &t, 4);
    test_module(a, &t, 8);
    test_jit_runtime();
    arena_free(a);
    LLVMDisposeTargetData(td);
    LLVMDisposeTargetMachine(tm);
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    return failures != 0;
}
