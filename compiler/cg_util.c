/* cg_util.c - the small builders every kernel uses: constants, element loads and stores,
 * math functions and counted loops. */
#include "cg.h"

#include <llvm-c/DebugInfo.h>

#include <assert.h>
#include <stdio.h>
#include <string.h>

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

LLVMValueRef cg_const_like(Cg *g, LLVMValueRef x, double v)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    if (LLVMGetTypeKind(t) != LLVMVectorTypeKind)
        return cg_real(g, v);
    unsigned lanes = LLVMGetVectorSize(t);
    LLVMValueRef e[CG_MAX_LANES];
    assert(lanes <= CG_MAX_LANES);
    for (unsigned i = 0; i < lanes; i++)
        e[i] = cg_real(g, v);
    return LLVMConstVector(e, lanes);
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

void cg_prefetch(Cg *g, LLVMValueRef p)
{
    LLVMValueRef args[] = {p, cg_i32(g, 0), cg_i32(g, 3), cg_i32(g, 1)}; /* read, keep, data */
    cg_intrinsic(g, "llvm.prefetch", g->realp, args, 4);
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
    return cg_intrinsic(g, name, LLVMTypeOf(x), &x, 1);
}

LLVMBasicBlockRef cg_block(Cg *g, const char *name)
{
    return LLVMAppendBasicBlockInContext(g->ctx, g->fs->fn, name);
}

CgLoop cg_loop_begin(Cg *g, LLVMValueRef from, LLVMValueRef to, const char *name)
{
    CgLoop l;
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->b);
    l.head = cg_block(g, name);
    LLVMBasicBlockRef body = cg_block(g, "body");
    l.exit = cg_block(g, "done");
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

/* Ends loop l with llvm.loop metadata on its latch. CG_LOOP_ROLLED: unroll.disable. A
 * short inner loop of constant trip count (a conv's rows of 14 or 28) is otherwise
 * unrolled whole, and the loop around it vectorized with gathers or scatters: twelve such
 * nests of a CNN's step took a third of its compile time, for loops over non-varying
 * values run once a step. CG_LOOP_SCALAR: vectorize.enable false as well, for loops over
 * strided elements at the edges of blocked kernels (cg_conv.c), which the vectorizer
 * would otherwise turn into gathers and scatters: more code to compile for no speed. */
void cg_loop_end_as(Cg *g, CgLoop *l, CgLoopKind kind)
{
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->b);
    cg_loop_end(g, l);
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(g->ctx, NULL, 0);
    LLVMMetadataRef ops[3] = {tmp};
    LLVMMetadataRef unroll = LLVMMDStringInContext2(g->ctx, "llvm.loop.unroll.disable", 24);
    ops[1] = LLVMMDNodeInContext2(g->ctx, &unroll, 1);
    if (kind == CG_LOOP_SCALAR) {
        LLVMMetadataRef vec[2] = {LLVMMDStringInContext2(g->ctx, "llvm.loop.vectorize.enable", 26),
                                  LLVMValueAsMetadata(LLVMConstInt(LLVMInt1TypeInContext(g->ctx), 0, 0))};
        ops[2] = LLVMMDNodeInContext2(g->ctx, vec, 2);
    }
    LLVMMetadataRef id = LLVMMDNodeInContext2(g->ctx, ops, kind == CG_LOOP_SCALAR ? 3 : 2);
    LLVMMetadataReplaceAllUsesWith(tmp, id);
    LLVMSetMetadata(LLVMGetBasicBlockTerminator(latch), LLVMGetMDKindIDInContext(g->ctx, "llvm.loop", 9),
                    LLVMMetadataAsValue(g->ctx, id));
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
    assert(g->fs->base[node]);
    return cg_load_at(g, g->fs->base[node], element_index(g, n, b, i));
}

void cg_store(Cg *g, int node, LLVMValueRef b, LLVMValueRef i, LLVMValueRef v)
{
    const CgNode *n = &g->plan->nodes[node];
    assert(g->fs->base[node]);
    cg_store_at(g, g->fs->base[node], element_index(g, n, b, i), v);
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
    return g->plan->nodes[node].varying ? g->fs->n : cg_i64(g, 1);
}
