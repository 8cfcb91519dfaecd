/* cg_vec.c - explicit vectors of the host's widest width: types, splats, loads and
 * stores of a whole or partial vector (masked), multiply-adds, and the reduction of a
 * set of accumulators to one vector of their sums. The matrix-product kernels
 * (cg_gemm.c) are written with these, so their shape does not depend on what the loop
 * vectorizer decides; every reduction has a fixed order, so results are reproducible. */
#include "cg.h"

#include <assert.h>
#include <string.h>

LLVMTypeRef cg_vec_type(Cg *g, int lanes)
{
    return LLVMVectorType(g->real, (unsigned)lanes);
}

LLVMValueRef cg_splat(Cg *g, LLVMValueRef x, int lanes)
{
    LLVMTypeRef vt = cg_vec_type(g, lanes);
    LLVMValueRef v = LLVMBuildInsertElement(g->b, LLVMGetUndef(vt), x, cg_i32(g, 0), "");
    LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(g->i32, (unsigned)lanes));
    return LLVMBuildShuffleVector(g->b, v, LLVMGetUndef(vt), zeros, "");
}

LLVMValueRef cg_vzero(Cg *g, int lanes)
{
    return LLVMConstNull(cg_vec_type(g, lanes));
}

/* <lanes x i1> with the first `on` lanes set */
static LLVMValueRef mask(Cg *g, int lanes, int on)
{
    LLVMValueRef bits[64];
    assert(lanes <= 64);
    for (int i = 0; i < lanes; i++)
        bits[i] = LLVMConstInt(g->i1, i < on, 0);
    return LLVMConstVector(bits, (unsigned)lanes);
}

static LLVMValueRef vec_ptr(Cg *g, LLVMValueRef p, int lanes)
{
    return LLVMBuildBitCast(g->b, p, LLVMPointerType(cg_vec_type(g, lanes), 0), "");
}

static LLVMValueRef masked(Cg *g, const char *name, LLVMValueRef *args, unsigned nargs,
                           int lanes)
{
    LLVMTypeRef types[] = {cg_vec_type(g, lanes), LLVMPointerType(cg_vec_type(g, lanes), 0)};
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->mod, id, types, 2);
    LLVMTypeRef ft = LLVMIntrinsicGetType(g->ctx, id, types, 2);
    return LLVMBuildCall2(g->b, ft, fn, args, nargs, "");
}

LLVMValueRef cg_vload(Cg *g, LLVMValueRef p, int lanes, int on)
{
    LLVMValueRef vp = vec_ptr(g, p, lanes);
    if (on >= lanes) {
        LLVMValueRef v = LLVMBuildLoad2(g->b, cg_vec_type(g, lanes), vp, "");
        LLVMSetAlignment(v, (unsigned)g->real_size);
        return v;
    }
    LLVMValueRef args[] = {vp, cg_i32(g, g->real_size), mask(g, lanes, on), cg_vzero(g, lanes)};
    return masked(g, "llvm.masked.load", args, 4, lanes);
}

void cg_vstore(Cg *g, LLVMValueRef v, LLVMValueRef p, int lanes, int on)
{
    LLVMValueRef vp = vec_ptr(g, p, lanes);
    if (on >= lanes) {
        LLVMSetAlignment(LLVMBuildStore(g->b, v, vp), (unsigned)g->real_size);
        return;
    }
    LLVMValueRef args[] = {v, vp, cg_i32(g, g->real_size), mask(g, lanes, on)};
    masked(g, "llvm.masked.store", args, 4, lanes);
}

/* a * b + c, fused where the target has it (llvm.fmuladd) */
LLVMValueRef cg_vfma(Cg *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
    LLVMValueRef args[] = {a, b, c};
    return cg_intrinsic(g, "llvm.fmuladd", LLVMTypeOf(a), args, 3);
}

static LLVMValueRef shuffle(Cg *g, LLVMValueRef a, LLVMValueRef b, const int *idx, int n)
{
    LLVMValueRef v[64];
    for (int i = 0; i < n; i++)
        v[i] = cg_i32(g, idx[i]);
    return LLVMBuildShuffleVector(g->b, a, b, LLVMConstVector(v, (unsigned)n), "");
}

/* log2(lanes) rounds, each interleaving row i with row i + lanes/2 into rows 2i (their
 * low halves) and 2i+1 (their high halves): each round rotates the bits of an element's
 * (row, column) index by one, so after log2(lanes) rounds row and column have swapped. */
void cg_vtranspose(Cg *g, LLVMValueRef *v, int lanes)
{
    int lo[64], hi[64];
    for (int j = 0; j < lanes / 2; j++) {
        lo[2 * j] = j;
        lo[2 * j + 1] = lanes + j;
        hi[2 * j] = lanes / 2 + j;
        hi[2 * j + 1] = lanes + lanes / 2 + j;
    }
    LLVMValueRef t[64];
    for (int round = 1; round < lanes; round *= 2) {
        for (int i = 0; i < lanes / 2; i++) {
            t[2 * i] = shuffle(g, v[i], v[i + lanes / 2], lo, lanes);
            t[2 * i + 1] = shuffle(g, v[i], v[i + lanes / 2], hi, lanes);
        }
        memcpy(v, t, sizeof *v * (size_t)lanes);
    }
}

/* u and v hold groups of `size` lanes (one group per accumulator); the result holds twice
 * the groups, each half as long: u's groups, then v's, each the sum of its two halves. */
static LLVMValueRef merge_pair(Cg *g, LLVMValueRef u, LLVMValueRef v, int lanes, int size)
{
    int lo[64], hi[64], k = 0;
    for (int src = 0; src < 2; src++)
        for (int grp = 0; grp < lanes / size; grp++)
            for (int j = 0; j < size / 2; j++, k++) {
                lo[k] = src * lanes + grp * size + j;
                hi[k] = lo[k] + size / 2;
            }
    return LLVMBuildFAdd(g->b, shuffle(g, u, v, lo, lanes), shuffle(g, u, v, hi, lanes), "");
}

/* One vector of a single group of `lanes` lanes -> its sum, halving in a fixed order. */
static LLVMValueRef sum_lanes(Cg *g, LLVMValueRef v, int lanes)
{
    for (int width = lanes; width > 1; width /= 2) {
        int lo[64], hi[64];
        for (int i = 0; i < width / 2; i++) {
            lo[i] = i;
            hi[i] = i + width / 2;
        }
        v = LLVMBuildFAdd(g->b, shuffle(g, v, v, lo, width / 2), shuffle(g, v, v, hi, width / 2), "");
    }
    return LLVMBuildExtractElement(g->b, v, cg_i32(g, 0), "");
}

/* acc[0..count) (vectors of `lanes`) -> a vector of `count` lanes holding their sums.
 * With count a power of two no larger than lanes, pairs are merged in a tree (half the
 * shuffles of summing each alone); otherwise each is summed alone. */
LLVMValueRef cg_vsums(Cg *g, LLVMValueRef *acc, int count, int lanes)
{
    bool pow2 = count > 0 && (count & (count - 1)) == 0 && count <= lanes;
    if (!pow2 || count == 1) {
        LLVMValueRef out = LLVMGetUndef(cg_vec_type(g, count));
        for (int i = 0; i < count; i++)
            out = LLVMBuildInsertElement(g->b, out, sum_lanes(g, acc[i], lanes), cg_i32(g, i), "");
        return out;
    }
    LLVMValueRef v[64];
    memcpy(v, acc, sizeof *v * (size_t)count);
    int size = lanes, n = count;
    for (; n > 1; n /= 2, size /= 2)
        for (int i = 0; i < n / 2; i++)
            v[i] = merge_pair(g, v[2 * i], v[2 * i + 1], lanes, size);
    /* one vector: `count` groups of `size` lanes, in order; halve the groups in place */
    for (; size > 1; size /= 2) {
        int lo[64], hi[64];
        for (int grp = 0; grp < count; grp++)
            for (int j = 0; j < size / 2; j++) {
                lo[grp * (size / 2) + j] = grp * size + j;
                hi[grp * (size / 2) + j] = grp * size + j + size / 2;
            }
        int width = count * size / 2;
        v[0] = LLVMBuildFAdd(g->b, shuffle(g, v[0], v[0], lo, width), shuffle(g, v[0], v[0], hi, width), "");
    }
    return v[0];
}
