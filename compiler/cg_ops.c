/* cg_ops.c - what each element op computes, in one place: the loop-nest kernels
 * (cg_kernels.c) apply it to reals, a product's epilogue (cg_fuse.c) to vectors of the
 * same ops, and since both go through cg_op_apply, fused or not gives the same bits.
 *
 * Every form is built from instructions that take reals and vectors alike (fcmp, select,
 * fmul, the llvm.* intrinsics); the constants take the operand's type (cg_const_like).
 * The ops that call libm (tanh, log1p in softplus) or that are not worth a vector form in
 * an epilogue (exp, log, sqrt, sigmoid, pow other than 1 and 2) are reals only. */
#include "cg.h"

#include <stdlib.h>

static LLVMValueRef k(Cg *g, LLVMValueRef like, double v)
{
    return cg_const_like(g, like, v);
}

static LLVMValueRef select_(Cg *g, LLVMValueRef c, LLVMValueRef t, LLVMValueRef f)
{
    return LLVMBuildSelect(g->b, c, t, f, "");
}

/* x > 0 ? t : f: relu, leaky_relu and their derivatives step and leaky_step */
static LLVMValueRef if_pos(Cg *g, LLVMValueRef x, LLVMValueRef t, LLVMValueRef f)
{
    return select_(g, LLVMBuildFCmp(g->b, LLVMRealOGT, x, k(g, x, 0), ""), t, f);
}

/* sigmoid without overflow: e = exp(-|x|) is at most 1; x >= 0: 1/(1+e), else e/(1+e). */
static LLVMValueRef sigmoid(Cg *g, LLVMValueRef x)
{
    LLVMValueRef e = cg_math(g, "exp", LLVMBuildFNeg(g->b, cg_math(g, "fabs", x), ""));
    LLVMValueRef d = LLVMBuildFAdd(g->b, k(g, x, 1), e, "");
    LLVMValueRef pos = LLVMBuildFCmp(g->b, LLVMRealOGE, x, k(g, x, 0), "");
    return LLVMBuildFDiv(g->b, select_(g, pos, k(g, x, 1), e), d, "");
}

/* softplus(x) = max(x, 0) + log1p(exp(-|x|)): the exp never overflows. */
LLVMValueRef cg_op_softplus(Cg *g, LLVMValueRef x)
{
    LLVMValueRef e = cg_math(g, "exp", LLVMBuildFNeg(g->b, cg_math(g, "fabs", x), ""));
    return LLVMBuildFAdd(g->b, if_pos(g, x, x, k(g, x, 0)), cg_math(g, "log1p", e), "");
}

/* -1, 0 or 1 (abs') */
static LLVMValueRef sign(Cg *g, LLVMValueRef x)
{
    LLVMValueRef neg = LLVMBuildFCmp(g->b, LLVMRealOLT, x, k(g, x, 0), "");
    LLVMValueRef not_pos = select_(g, neg, k(g, x, -1), k(g, x, 0));
    return if_pos(g, x, k(g, x, 1), not_pos);
}

/* x^c: 1 and 2 exactly as pow gives them, without the call */
static LLVMValueRef power(Cg *g, LLVMValueRef x, double c)
{
    if (c == 1)
        return x;
    if (c == 2)
        return LLVMBuildFMul(g->b, x, x, "");
    LLVMValueRef args[] = {x, k(g, x, c)};
    return cg_intrinsic(g, "llvm.pow", LLVMTypeOf(x), args, 2);
}

bool cg_op_vector(int op, double num)
{
    switch (op) {
    case IR_NEG: case IR_ABS: case IR_RELU: case IR_LEAKY_RELU: case IR_STEP:
    case IR_LEAKY_STEP: case IR_SIGN: case IR_RESHAPE:
    case IR_ADD: case IR_SUB: case IR_MUL: case IR_DIV:
        return true;
    case IR_POW:
        return num == 1 || num == 2;
    default:
        return false;
    }
}

LLVMValueRef cg_op_apply(Cg *g, int op, double num, LLVMValueRef x, LLVMValueRef y)
{
    LLVMBuilderRef b = g->b;
    switch (op) {
    case IR_RESHAPE: return x; /* a copy: row-major, element i stays element i */
    case IR_NEG: return LLVMBuildFNeg(b, x, "");
    case IR_EXP: return cg_math(g, "exp", x);
    case IR_LOG: return cg_math(g, "log", x);
    case IR_SQRT: return cg_math(g, "sqrt", x);
    case IR_ABS: return cg_math(g, "fabs", x);
    case IR_SIGMOID: return sigmoid(g, x);
    case IR_TANH: return cg_math(g, "tanh", x);
    case IR_RELU: return if_pos(g, x, x, k(g, x, 0));
    case IR_SOFTPLUS: return cg_op_softplus(g, x);
    case IR_LEAKY_RELU: return if_pos(g, x, x, LLVMBuildFMul(b, k(g, x, num), x, ""));
    case IR_POW: return power(g, x, num);
    case IR_STEP: return if_pos(g, x, k(g, x, 1), k(g, x, 0));
    case IR_LEAKY_STEP: return if_pos(g, x, k(g, x, 1), k(g, x, num));
    case IR_SIGN: return sign(g, x);
    case IR_ADD: return LLVMBuildFAdd(b, x, y, "");
    case IR_SUB: return LLVMBuildFSub(b, x, y, "");
    case IR_MUL: return LLVMBuildFMul(b, x, y, "");
    case IR_DIV: return LLVMBuildFDiv(b, x, y, "");
    default: abort();
    }
}
