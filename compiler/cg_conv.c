/* cg_conv.c - conv2d over the batch as register-blocked products.
 *
 * Per sample, the image x [C,H,W] is unfolded into its im2col matrix X [C*kh*kw, H'*W']
 * (the workspace scratch CgNode.aux; zeros where a window reaches into the padding), and
 *   forward          out[F, P]  = K[F, KK] . X[KK, P]          (axpy form, below)
 *   backward_input   D[KK, P]   = K^T . d[F, P], then col2im (each column's values added
 *                                 back at the pixels they were read from)
 *   mean of backward_weight     dK^T[KK, F] = (1/n) sum over samples of X . d^T
 *                                 (outer products over the batch and P, d transposed a
 *                                 chunk at a time; no per-sample [F, C, kh, kw] value)
 * with P = H'*W' and KK = C*kh*kw. The forward conv fills X and the weight gradient reads
 * it back (both nodes share the scratch); the forward product's epilogue computes the
 * elementwise chain after it (bias, relu: cg_fuse.c) on the vectors still in registers.
 *
 * Blocks, as cg_mm.c's and sized the same way from the target's vector registers:
 *   axpy  R rows of C x V vectors along P: R*V accumulators, K broadcast, V loads of X;
 *   outer R rows of X x V vectors of filters (wg_shape).
 * Tasks: the forward and backward_input run one task a sample; the weight gradient one
 * task a block of filters and a group of rows of X, each summing over all samples in
 * order. Every output element is one task's whole sum in a fixed order: the bits do not
 * depend on the thread count. */
#include "cg.h"

#include <assert.h>
#include <string.h>

enum { MAX_R = 8, MAX_V = 4 }; /* the largest blocks: array sizes */

typedef struct Blocks {
    int axpy_r, axpy_v;
} Blocks;

/* 32 registers (AVX-512): axpy 8 x 2 (16 accumulators, 2 vectors of X, broadcasts folded
 * into the multiply-adds): a panel of X two vectors wide and C*kh*kw = 288 rows deep is
 * 36 KB in f32 and stays in L1 while the blocks of filters pass over it. 16 registers
 * (AVX2): 6 x 2 (15), as cg_mm.c. */
static Blocks blocks(const Cg *g)
{
    return g->vregs >= 32 ? (Blocks){8, 2} : (Blocks){6, 2};
}

static const CgNode *node(Cg *g, int id)
{
    return &g->plan->nodes[id];
}

/* ---- geometry ---- */

typedef struct Geo {
    long long C, H, W;   /* the image */
    long long F, OH, OW; /* the output */
    long long kh, kw, s, p;
    long long P, KK;     /* OH*OW, C*kh*kw: the im2col matrix is [KK, P] */
} Geo;

static Geo geometry(Shape img, Shape out, IrWindow w)
{
    Geo q = {img.dims[0], img.dims[1], img.dims[2], out.dims[0], out.dims[1], out.dims[2],
             w.kh, w.kw, w.stride, w.pad, 0, 0};
    q.P = q.OH * q.OW;
    q.KK = q.C * q.kh * q.kw;
    return q;
}

/* The image and output shapes of a conv node. */
static Geo geo_of(Cg *g, int id)
{
    const CgNode *n = node(g, id);
    switch (n->op) {
    case IR_CONV2D: return geometry(node(g, n->args[0])->shape, n->shape, n->win);
    case IR_CONV2D_BWD_INPUT: return geometry(n->shape, node(g, n->args[0])->shape, n->win);
    default: return geometry(node(g, n->args[0])->shape, node(g, n->args[1])->shape, n->win);
    }
}

/* The scratch of node id for sample b, inside a kernel whose extra is the scratch base. */
static LLVMValueRef aux_at(Cg *g, int id, LLVMValueRef aux, LLVMValueRef b)
{
    return cg_gep(g, aux, cg_imul(g, b, node(g, id)->aux_size));
}

/* In the pass's frame: the scratch base (a varying workspace buffer, as cg_train.c's). */
static LLVMValueRef aux_base(Cg *g, int id)
{
    return cg_gep(g, g->fs->ws, LLVMBuildNSWMul(g->b, g->fs->batch_cap, cg_i64(g, node(g, id)->aux), ""));
}

/* Whether node id fills its im2col scratch in this function: no node computed before it
 * here shares the scratch. */
static bool fills_cols(Cg *g, int id)
{
    const CgNode *n = node(g, id);
    for (int j = 0; j < id; j++) {
        const CgNode *o = node(g, j);
        if (g->fs->live[j] && o->aux_size && o->aux == n->aux && o->op != IR_CONV2D_BWD_INPUT)
            return false;
    }
    return true;
}

/* ---- im2col and col2im, one sample ---- */

/* The column-matrix row r = (c, u, v): c, u, v and the image row and column of output
 * position (oy, ox): iy = oy*s + u - p, ix = ox*s + v - p. */
typedef struct Tap {
    LLVMValueRef c, u, v;
} Tap;

static Tap tap_of(Cg *g, const Geo *q, LLVMValueRef r)
{
    LLVMValueRef kk = cg_i64(g, q->kh * q->kw), kw = cg_i64(g, q->kw);
    LLVMValueRef c = LLVMBuildSDiv(g->b, r, kk, "");
    LLVMValueRef rest = LLVMBuildSRem(g->b, r, kk, "");
    return (Tap){c, LLVMBuildSDiv(g->b, rest, kw, ""), LLVMBuildSRem(g->b, rest, kw, "")};
}

/* o*s + k - p, and whether it lies in [0, size) */
static LLVMValueRef coord(Cg *g, const Geo *q, LLVMValueRef o, LLVMValueRef k, long long size,
                          LLVMValueRef *in)
{
    LLVMValueRef i = LLVMBuildNSWSub(g->b, cg_iadd(g, cg_imul(g, o, q->s), k), cg_i64(g, q->p), "");
    LLVMValueRef lo = LLVMBuildICmp(g->b, LLVMIntSGE, i, cg_i64(g, 0), "");
    LLVMValueRef hi = LLVMBuildICmp(g->b, LLVMIntSLT, i, cg_i64(g, size), "");
    *in = LLVMBuildAnd(g->b, lo, hi, "");
    return i;
}

/* The loops over r and (oy, ox), with the image index (clamped into the image where the
 * position is in the padding) and whether it is inside. */
typedef struct ColLoop {
    CgLoop lr, ly, lx;
    LLVMValueRef img, inside, col; /* col: r*P + oy*OW + ox */
} ColLoop;

/* The two outer loops, r and oy: the tap and the image row iy (clamped to 0 outside). */
static Tap rows_begin(Cg *g, const Geo *q, CgLoop *lr, CgLoop *ly, LLVMValueRef *iy, LLVMValueRef *in)
{
    *lr = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, q->KK), "r");
    Tap t = tap_of(g, q, lr->i);
    *ly = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, q->OH), "oy");
    LLVMValueRef y = coord(g, q, ly->i, t.u, q->H, in);
    *iy = LLVMBuildSelect(g->b, *in, y, cg_i64(g, 0), "");
    return t;
}

static ColLoop col_begin(Cg *g, const Geo *q)
{
    ColLoop l;
    LLVMValueRef iy, yin, xin;
    Tap t = rows_begin(g, q, &l.lr, &l.ly, &iy, &yin);
    l.lx = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, q->OW), "ox");
    LLVMValueRef ix = coord(g, q, l.lx.i, t.v, q->W, &xin);
    l.inside = LLVMBuildAnd(g->b, yin, xin, "");
    LLVMValueRef at = cg_iadd(g, cg_imul(g, cg_iadd(g, cg_imul(g, t.c, q->H), iy), q->W), ix);
    l.img = LLVMBuildSelect(g->b, l.inside, at, cg_i64(g, 0), "");
    l.col = cg_iadd(g, cg_iadd(g, cg_imul(g, l.lr.i, q->P), cg_imul(g, l.ly.i, q->OW)), l.lx.i);
    return l;
}

static void col_end(Cg *g, ColLoop *l)
{
    cg_loop_end(g, &l->lx);
    cg_loop_end(g, &l->ly);
    cg_loop_end(g, &l->lr);
}

/* Stride 1: a row of X (one r, one oy) is a shifted row of the image, zeros where it
 * reaches into the padding: whole vectors, masked by the lanes whose column is inside. */
static LLVMValueRef masked_op(Cg *g, const char *name, LLVMValueRef *args, unsigned nargs)
{
    LLVMTypeRef types[] = {cg_vec_type(g, g->lanes), LLVMPointerType(cg_vec_type(g, g->lanes), 0)};
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->mod, id, types, 2);
    return LLVMBuildCall2(g->b, LLVMIntrinsicGetType(g->ctx, id, types, 2), fn, args, nargs, "");
}

/* The vector at p + i (not inbounds: masked-off lanes may lie outside the buffer). */
static LLVMValueRef vptr(Cg *g, LLVMValueRef p, LLVMValueRef i)
{
    LLVMValueRef e = LLVMBuildGEP2(g->b, g->real, p, &i, 1, "");
    return LLVMBuildBitCast(g->b, e, LLVMPointerType(cg_vec_type(g, g->lanes), 0), "");
}

static LLVMValueRef mload(Cg *g, LLVMValueRef p, LLVMValueRef i, LLVMValueRef mask)
{
    LLVMValueRef args[] = {vptr(g, p, i), cg_i32(g, g->real_size), mask, cg_vzero(g, g->lanes)};
    return masked_op(g, "llvm.masked.load", args, 4);
}

static void mstore(Cg *g, LLVMValueRef v, LLVMValueRef p, LLVMValueRef i, LLVMValueRef mask)
{
    LLVMValueRef args[] = {v, vptr(g, p, i), cg_i32(g, g->real_size), mask};
    masked_op(g, "llvm.masked.store", args, 4);
}

/* Lanes a = a0 + j (j < lanes) with a < lim (out), and those with a + shift in [0, lim2)
 * too (in). im2col: a the output column, the image column a + v - p; col2im the reverse. */
static void row_masks(Cg *g, LLVMValueRef a0, long long lim, LLVMValueRef shift, long long lim2,
                      LLVMValueRef *out, LLVMValueRef *in)
{
    int w = g->lanes;
    LLVMTypeRef vt = LLVMVectorType(g->i64, (unsigned)w);
    LLVMValueRef lane[CG_MAX_LANES], l1[CG_MAX_LANES], l2[CG_MAX_LANES];
    for (int j = 0; j < w; j++) {
        lane[j] = cg_i64(g, j);
        l1[j] = cg_i64(g, lim);
        l2[j] = cg_i64(g, lim2);
    }
    LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(g->i32, (unsigned)w));
    LLVMValueRef sa = LLVMBuildInsertElement(g->b, LLVMGetUndef(vt), a0, cg_i32(g, 0), "");
    LLVMValueRef a = LLVMBuildAdd(g->b, LLVMBuildShuffleVector(g->b, sa, LLVMGetUndef(vt), zeros, ""),
                                  LLVMConstVector(lane, (unsigned)w), "");
    LLVMValueRef sv = LLVMBuildInsertElement(g->b, LLVMGetUndef(vt), shift, cg_i32(g, 0), "");
    LLVMValueRef b = LLVMBuildAdd(g->b, a, LLVMBuildShuffleVector(g->b, sv, LLVMGetUndef(vt), zeros, ""), "");
    *out = LLVMBuildICmp(g->b, LLVMIntSLT, a, LLVMConstVector(l1, (unsigned)w), "");
    LLVMValueRef lo = LLVMBuildICmp(g->b, LLVMIntSGE, b, LLVMConstNull(vt), "");
    LLVMValueRef hi = LLVMBuildICmp(g->b, LLVMIntSLT, b, LLVMConstVector(l2, (unsigned)w), "");
    *in = LLVMBuildAnd(g->b, *out, LLVMBuildAnd(g->b, lo, hi, ""), "");
}

/* The loops over r = (c, u, v), oy and the row's vectors for stride 1: the image row iy
 * (and whether it is inside), the vector's first column ox0 and masks. */
typedef struct RowLoop {
    CgLoop lr, ly, lv;
    LLVMValueRef row_in;  /* i1: iy in [0, H) */
    LLVMValueRef img;     /* the image index of column ox0 + v - p of row iy (row clamped) */
    LLVMValueRef col;     /* r*P + oy*OW + ox0 */
    LLVMValueRef out, in; /* lanes inside the output row; and inside the image */
} RowLoop;

static RowLoop row_begin(Cg *g, const Geo *q)
{
    RowLoop l;
    LLVMValueRef iy;
    Tap t = rows_begin(g, q, &l.lr, &l.ly, &iy, &l.row_in);
    l.lv = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, (q->OW + g->lanes - 1) / g->lanes), "ov");
    LLVMValueRef ox0 = cg_imul(g, l.lv.i, g->lanes);
    LLVMValueRef shift = LLVMBuildNSWSub(g->b, t.v, cg_i64(g, q->p), "");
    row_masks(g, ox0, q->OW, shift, q->W, &l.out, &l.in);
    l.in = LLVMBuildSelect(g->b, l.row_in, l.in, LLVMConstNull(LLVMTypeOf(l.in)), "");
    l.img = cg_iadd(g, cg_iadd(g, cg_imul(g, cg_iadd(g, cg_imul(g, t.c, q->H), iy), q->W), ox0), shift);
    l.col = cg_iadd(g, cg_iadd(g, cg_imul(g, l.lr.i, q->P), cg_imul(g, l.ly.i, q->OW)), ox0);
    return l;
}

static void row_end(Cg *g, RowLoop *l)
{
    cg_loop_end(g, &l->lv);
    cg_loop_end(g, &l->ly);
    cg_loop_end(g, &l->lr);
}

static void im2col(Cg *g, const Geo *q, LLVMValueRef x, LLVMValueRef cols)
{
    if (q->s == 1) {
        /* whole-vector stores in increasing order: the lanes past a row's end land on the
         * next row's start, which its own store writes after (the scratch has a vector of
         * room after each sample's matrix for the last) */
        RowLoop l = row_begin(g, q);
        cg_vstore(g, mload(g, x, l.img, l.in), cg_gep(g, cols, l.col), g->lanes, g->lanes);
        row_end(g, &l);
        return;
    }
    ColLoop l = col_begin(g, q);
    LLVMValueRef v = LLVMBuildSelect(g->b, l.inside, cg_load_at(g, x, l.img), cg_real(g, 0), "");
    cg_store_at(g, cols, l.col, v);
    col_end(g, &l);
}

/* Stride 1: each vector of dx is the sum, over u then v, of the matrix's values read from
 * it (masked off where they fall outside), in a register, stored once: the order of the
 * scatter below, without its masked stores and reloads of the same row (which the store
 * buffer cannot forward: the first version spent 40% of the kernel there). */
static void col2im_rows(Cg *g, const Geo *q, LLVMValueRef cols, LLVMValueRef dx)
{
    LLVMTypeRef vt = cg_vec_type(g, g->lanes);
    LLVMValueRef acc = cg_slot(g, vt, "acc");
    CgLoop lc = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, q->C), "c");
    CgLoop ly = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, q->H), "iy");
    CgLoop lv = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, (q->W + g->lanes - 1) / g->lanes), "iv");
    LLVMValueRef ix0 = cg_imul(g, lv.i, g->lanes);
    LLVMBuildStore(g->b, cg_vzero(g, g->lanes), acc);
    for (long long u = 0; u < q->kh; u++)
        for (long long v = 0; v < q->kw; v++) {
            /* oy = iy + p - u, ox = ix + p - v */
            LLVMValueRef oy = cg_iadd(g, ly.i, cg_i64(g, q->p - u)), in, out;
            LLVMValueRef yin = LLVMBuildAnd(g->b, LLVMBuildICmp(g->b, LLVMIntSGE, oy, cg_i64(g, 0), ""),
                                            LLVMBuildICmp(g->b, LLVMIntSLT, oy, cg_i64(g, q->OH), ""), "");
            row_masks(g, ix0, q->W, cg_i64(g, q->p - v), q->OW, &out, &in);
            in = LLVMBuildSelect(g->b, yin, in, LLVMConstNull(LLVMTypeOf(in)), "");
            LLVMValueRef r = cg_iadd(g, cg_imul(g, lc.i, q->kh * q->kw), cg_i64(g, u * q->kw + v));
            LLVMValueRef at = cg_iadd(g, cg_iadd(g, cg_imul(g, r, q->P), cg_imul(g, oy, q->OW)),
                                      cg_iadd(g, ix0, cg_i64(g, q->p - v)));
            at = LLVMBuildSelect(g->b, yin, at, cg_i64(g, 0), "");
            LLVMValueRef sum = LLVMBuildFAdd(g->b, LLVMBuildLoad2(g->b, vt, acc, ""), mload(g, cols, at, in), "");
            LLVMBuildStore(g->b, sum, acc);
        }
    LLVMValueRef at = cg_iadd(g, cg_imul(g, cg_iadd(g, cg_imul(g, lc.i, q->H), ly.i), q->W), ix0);
    LLVMValueRef out, in;
    row_masks(g, ix0, q->W, cg_i64(g, 0), q->W, &out, &in);
    mstore(g, LLVMBuildLoad2(g->b, vt, acc, ""), dx, at, out);
    cg_loop_end(g, &lv);
    cg_loop_end(g, &ly);
    cg_loop_end(g, &lc);
}

/* dx = 0, then each column value added at the pixel it was read from (in r, oy, ox order) */
static void col2im(Cg *g, const Geo *q, LLVMValueRef cols, LLVMValueRef dx)
{
    if (q->s == 1) {
        col2im_rows(g, q, cols, dx);
        return;
    }
    CgLoop lz = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, q->C * q->H * q->W), "i");
    cg_store_at(g, dx, lz.i, cg_real(g, 0));
    cg_loop_end(g, &lz);
    ColLoop l = col_begin(g, q);
    LLVMBasicBlockRef yes = cg_block(g, "inside"), next = cg_block(g, "next");
    LLVMBuildCondBr(g->b, l.inside, yes, next);
    LLVMPositionBuilderAtEnd(g->b, yes);
    LLVMValueRef sum = LLVMBuildFAdd(g->b, cg_load_at(g, dx, l.img), cg_load_at(g, cols, l.col), "");
    cg_store_at(g, dx, l.img, sum);
    LLVMBuildBr(g->b, next);
    LLVMPositionBuilderAtEnd(g->b, next);
    col_end(g, &l);
}

/* ---- axpy form: C(m, n) = sum over k of A(m, k) B(k, n), B and C rows of N ---- */

typedef struct Axpy {
    LLVMValueRef a, b;      /* A(m, k) = a[m*a_rs + k*a_ks]; B(k, n) = b[k*N + n] */
    long long a_rs, a_ks, M, N, K;
    const CgFuse *fuse;     /* the epilogue: C at (sample, m*N + n) through the chain... */
    LLVMValueRef sample;
    LLVMValueRef c;         /* ...or, when fuse is NULL, stored at c[m*N + n] */
} Axpy;

static void axpy_store(Cg *g, const Axpy *x, LLVMValueRef m, LLVMValueRef n, LLVMValueRef v, int on)
{
    LLVMValueRef at = cg_iadd(g, cg_imul(g, m, x->N), n);
    if (x->fuse)
        cg_fuse_epilogue(g, x->fuse, v, x->sample, at, g->lanes, on);
    else
        cg_vstore(g, v, cg_gep(g, x->c, at), g->lanes, on);
}

static void axpy_tile(Cg *g, const Axpy *x, int R, int V, int last_on, LLVMValueRef m0, LLVMValueRef n0)
{
    int w = g->lanes;
    LLVMTypeRef vt = cg_vec_type(g, w);
    LLVMValueRef acc[MAX_R * MAX_V], bv[MAX_V];
    for (int i = 0; i < R * V; i++) {
        acc[i] = cg_slot(g, vt, "acc");
        LLVMBuildStore(g->b, cg_vzero(g, w), acc[i]);
    }
    CgLoop lk = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, x->K), "k");
    LLVMValueRef brow = cg_iadd(g, cg_imul(g, lk.i, x->N), n0);
    for (int v = 0; v < V; v++)
        bv[v] = cg_vload(g, cg_gep(g, x->b, cg_iadd(g, brow, cg_i64(g, v * w))), w, v == V - 1 ? last_on : w);
    for (int r = 0; r < R; r++) {
        LLVMValueRef i = cg_iadd(g, cg_imul(g, cg_iadd(g, m0, cg_i64(g, r)), x->a_rs), cg_imul(g, lk.i, x->a_ks));
        LLVMValueRef a = cg_splat(g, cg_load_at(g, x->a, i), w);
        for (int v = 0; v < V; v++) {
            LLVMValueRef old = LLVMBuildLoad2(g->b, vt, acc[r * V + v], "");
            LLVMBuildStore(g->b, cg_vfma(g, a, bv[v], old), acc[r * V + v]);
        }
    }
    cg_loop_end(g, &lk);
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++)
            axpy_store(g, x, cg_iadd(g, m0, cg_i64(g, r)), cg_iadd(g, n0, cg_i64(g, v * w)),
                       LLVMBuildLoad2(g->b, vt, acc[r * V + v], ""), v == V - 1 ? last_on : w);
}

/* All rows of the column block at n0: R at a time, then one at a time. */
static void axpy_rows(Cg *g, const Axpy *x, int R, int V, int last_on, LLVMValueRef n0)
{
    long long whole = x->M / R;
    if (whole) {
        CgLoop lr = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, whole), "mb");
        axpy_tile(g, x, R, V, last_on, cg_imul(g, lr.i, R), n0);
        cg_loop_end(g, &lr);
    }
    for (long long m = whole * R; m < x->M; m++)
        axpy_tile(g, x, 1, V, last_on, cg_i64(g, m), n0);
}

static void axpy_product(Cg *g, const Axpy *x)
{
    Blocks bl = blocks(g);
    int w = g->lanes, V = bl.axpy_v;
    long long per = (long long)V * w, nfull = x->N / per, rest = x->N % per;
    if (nfull) {
        CgLoop ln = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, nfull), "nb");
        axpy_rows(g, x, bl.axpy_r, V, w, cg_imul(g, ln.i, per));
        cg_loop_end(g, &ln);
    }
    if (rest) {
        int vt = (int)((rest + w - 1) / w);
        axpy_rows(g, x, bl.axpy_r, vt, (int)(rest - (long long)(vt - 1) * w), cg_i64(g, nfull * per));
    }
}

/* ---- forward ---- */

/* A non-varying value (the bias broadcast expand_last(expand_last(b))) that a consumer of
 * the conv adds, computed now, before the conv, so the epilogue can load it (cg_fuse.c
 * takes what is computed already). */
static void emit_early(Cg *g, int conv, int id)
{
    const CgNode *n = node(g, id);
    IrKind kind = n->op < IR_NUM_OPS ? ir_op_info(n->op)->kind : IR_KIND_OTHER;
    if (n->varying || id < conv || g->fs->done[id] || !g->fs->live[id] || kind == IR_KIND_LEAF ||
        n->where != CG_AT_WS)
        return;
    for (int k = 0; k < n->nargs; k++)
        emit_early(g, conv, n->args[k]);
    cg_emit_node(g, id);
    g->fs->done[id] = true;
}

static void early_operands(Cg *g, int conv)
{
    for (int u = conv + 1; u < g->plan->nnodes; u++) {
        const CgNode *n = node(g, u);
        if (!g->fs->live[u] || g->fs->done[u] || n->nargs != 2 || !cg_op_vector(n->op, n->num))
            continue;
        if (n->args[0] == conv || n->args[1] == conv)
            emit_early(g, conv, n->args[n->args[0] == conv]);
    }
}

typedef struct ConvCtx {
    CgFuse fuse;
    bool fill;
} ConvCtx;

static ConvCtx *conv_ctx; /* the forward conv being emitted: its body's parameters */

static void forward_sample(Cg *g, int id, LLVMValueRef b, LLVMValueRef *extra)
{
    const CgNode *n = node(g, id);
    Geo q = geo_of(g, id);
    LLVMValueRef cols = aux_at(g, id, extra[0], node(g, n->args[0])->varying ? b : cg_i64(g, 0));
    if (conv_ctx->fill)
        im2col(g, &q, cg_sample_ptr(g, n->args[0], b), cols);
    Axpy x = {cg_sample_ptr(g, n->args[1], b), cols, q.KK, 1, q.F, q.P, q.KK, &conv_ctx->fuse, b, NULL};
    axpy_product(g, &x);
}

static void emit_forward(Cg *g, int id)
{
    const CgNode *n = node(g, id);
    ConvCtx ctx = {.fill = fills_cols(g, id)};
    early_operands(g, id);
    cg_fuse_plan(g, id, &ctx.fuse);
    int nodes[3 + CG_FUSE_BUFFERS] = {n->args[0], n->args[1], id};
    int nn = 3 + cg_fuse_buffers(g, &ctx.fuse, nodes + 3);
    LLVMValueRef extra[1] = {aux_base(g, id)};
    Geo q = geo_of(g, id);
    conv_ctx = &ctx;
    cg_per_sample(g, id, nodes, nn, extra, 1, forward_sample, (double)(q.F * q.P * q.KK));
    conv_ctx = NULL;
}

/* ---- backward_input: K^T d into the scratch, then col2im ---- */

static void bwd_input_sample(Cg *g, int id, LLVMValueRef b, LLVMValueRef *extra)
{
    const CgNode *n = node(g, id);
    Geo q = geo_of(g, id);
    LLVMValueRef cols = aux_at(g, id, extra[0], b);
    Axpy x = {cg_sample_ptr(g, n->args[1], b), cg_sample_ptr(g, n->args[0], b), 1, q.KK, q.KK, q.P,
              q.F, NULL, b, cols};
    axpy_product(g, &x);
    col2im(g, &q, cols, cg_sample_ptr(g, id, b));
}

static void emit_bwd_input(Cg *g, int id)
{
    const CgNode *n = node(g, id);
    int nodes[3] = {n->args[0], n->args[1], id};
    LLVMValueRef extra[1] = {aux_base(g, id)};
    Geo q = geo_of(g, id);
    cg_per_sample(g, id, nodes, 3, extra, 1, bwd_input_sample, (double)(q.F * q.P * q.KK));
}

/* ---- the weight gradient as a plain loop nest: one sample's (a gradient not averaged),
 * or the batch mean in the checked step (run once after a non-finite batch, unoptimised:
 * a tenth of the blocked kernel's code) ---- */

/* out[f, r] = scale * sum over samples [b0, b1) and positions of x(r, position) d(f, position) */
static void weight_nest(Cg *g, int id, LLVMValueRef b0, LLVMValueRef b1, LLVMValueRef out, LLVMValueRef scale)
{
    const CgNode *n = node(g, id);
    Geo q = geo_of(g, id);
    LLVMValueRef acc = cg_slot(g, g->real, "acc");
    CgLoop lf = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, q.F), "f");
    CgLoop lr = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, q.KK), "r");
    LLVMBuildStore(g->b, cg_real(g, 0), acc);
    Tap t = tap_of(g, &q, lr.i);
    CgLoop lb = cg_loop_begin(g, b0, b1, "b");
    LLVMValueRef x = cg_sample_ptr(g, n->args[0], lb.i), d = cg_sample_ptr(g, n->args[1], lb.i);
    CgLoop ly = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, q.OH), "oy");
    LLVMValueRef yin, xin;
    LLVMValueRef iy = coord(g, &q, ly.i, t.u, q.H, &yin);
    CgLoop lx = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, q.OW), "ox");
    LLVMValueRef ix = coord(g, &q, lx.i, t.v, q.W, &xin);
    LLVMValueRef in = LLVMBuildAnd(g->b, yin, xin, "");
    LLVMValueRef at = LLVMBuildSelect(g->b, in, cg_iadd(g, cg_imul(g, cg_iadd(g, cg_imul(g, t.c, q.H), iy), q.W), ix), cg_i64(g, 0), "");
    LLVMValueRef xv = LLVMBuildSelect(g->b, in, cg_load_at(g, x, at), cg_real(g, 0), "");
    LLVMValueRef dv = cg_load_at(g, d, cg_iadd(g, cg_iadd(g, cg_imul(g, lf.i, q.P), cg_imul(g, ly.i, q.OW)), lx.i));
    LLVMValueRef old = LLVMBuildLoad2(g->b, g->real, acc, "");
    LLVMBuildStore(g->b, LLVMBuildFAdd(g->b, old, LLVMBuildFMul(g->b, xv, dv, ""), ""), acc);
    cg_loop_end(g, &lx);
    cg_loop_end(g, &ly);
    cg_loop_end(g, &lb);
    LLVMValueRef sum = LLVMBuildLoad2(g->b, g->real, acc, "");
    cg_store_at(g, out, cg_iadd(g, cg_imul(g, lf.i, q.KK), lr.i), scale ? LLVMBuildFMul(g->b, sum, scale, "") : sum);
    cg_loop_end(g, &lr);
    cg_loop_end(g, &lf);
}

static void bwd_weight_sample(Cg *g, int id, LLVMValueRef b, LLVMValueRef *extra)
{
    (void)extra;
    weight_nest(g, id, b, cg_iadd(g, b, cg_i64(g, 1)), cg_sample_ptr(g, id, b), NULL);
}

static void weight_mean_nest(Cg *g, int id, LLVMValueRef b, LLVMValueRef *extra)
{
    (void)b, (void)extra;
    weight_nest(g, id, cg_i64(g, 0), g->fs->n, g->fs->base[id], g->fs->inv_n);
}

/* ---- the batch mean of the weight gradient: outer products over the batch and P ---- */

/* dK^T [KK, F] = sum over samples b and positions p of X_b[:, p] d_b[:, p]^T. A task owns
 * a block of V*w filters and a group of row blocks of X; per sample and chunk of positions
 * it transposes its filters' rows of d into dT [chunk, V*w] (w x w blocks through
 * registers, in L1), so that one position's values of its filters are V vector loads. A
 * tile of R rows of X then keeps R*V accumulators, each row's X value broadcast, over the
 * chunk between one load and one store of its sums (wacc [KK, fs]): no horizontal
 * reductions. Every sample in order, so each element is one task's sum in a fixed order. */
enum { WG_MAX_R = 12, WG_ROW_BLOCKS = 24, WG_CHUNK_BYTES = 24 << 10 };

typedef struct Wg {
    long long P, KK, F, fs; /* fs: wacc's row length, whole column blocks */
    int w, R, V;
    long long nrb, ncb, rpt; /* row blocks of R (the last may be short), column blocks, row blocks a task */
    long long pc;            /* positions a chunk: dT's chunk is pc x V*w, 24 KB at most */
} Wg;

static long long ll_min(long long a, long long b)
{
    return a < b ? a : b;
}

/* 32 registers: up to 4 vectors of filters and 24 accumulators (the second conv of
 * fashion_cnn: 6 rows x 64 filters, 4 loads of dT and 6 broadcasts a position for 24
 * multiply-adds); 16 registers: 2 vectors and 12. Fewer vectors when that leaves fewer
 * than 2 tasks (the first conv: 9 rows x 32 filters would be one task). A task
 * transposes its filters' d once for all its rows: groups of up to 24 row blocks keep
 * that under a twentieth of its multiply-adds' time. */
static Wg wg_shape(const Cg *g, const Geo *q)
{
    Wg s = {.P = q->P, .KK = q->KK, .F = q->F, .w = g->lanes};
    int vmax = g->vregs >= 32 ? 4 : 2, accs = g->vregs >= 32 ? 24 : 12;
    long long nvec = (q->F + s.w - 1) / s.w;
    s.V = (int)ll_min(nvec, vmax);
    for (;;) {
        s.R = (int)ll_min(ll_min(accs / s.V, WG_MAX_R), q->KK);
        s.nrb = (q->KK + s.R - 1) / s.R;
        s.ncb = (nvec + s.V - 1) / s.V;
        long long groups = (s.nrb + WG_ROW_BLOCKS - 1) / WG_ROW_BLOCKS;
        s.rpt = (s.nrb + groups - 1) / groups;
        if (s.ncb * groups >= 2 || s.V == 1)
            break;
        s.V = (s.V + 1) / 2;
    }
    s.fs = s.ncb * s.V * s.w;
    assert(s.fs <= (q->F + 63) / 64 * 64); /* cg_plan.c's room */
    long long per = WG_CHUNK_BYTES / (g->real_size * s.V * s.w) / s.w * s.w;
    s.pc = ll_min(per > s.w ? per : s.w, q->P);
    return s;
}

/* The operands of a task's work on one sample and chunk. */
typedef struct WgAt {
    LLVMValueRef x, d;       /* sample b's X and d at the chunk's first position */
    LLVMValueRef t, acc, c0; /* dT, the sums, the task's first filter */
    LLVMValueRef len;        /* positions in the chunk */
} WgAt;

/* dT[p, j*w + r] = d[c0 + j*w + r, p] for p < len: w x w blocks, then the last positions */
static void transpose_block(Cg *g, const Wg *s, const WgAt *at, LLVMValueRef j)
{
    int w = s->w, vw = s->V * w;
    LLVMValueRef f0 = cg_iadd(g, at->c0, cg_imul(g, j, w)), col = cg_imul(g, j, w);
    LLVMValueRef whole = LLVMBuildSDiv(g->b, at->len, cg_i64(g, w), "");
    CgLoop lp = cg_loop_begin(g, cg_i64(g, 0), whole, "pb");
    LLVMValueRef p0 = cg_imul(g, lp.i, w), v[CG_MAX_LANES];
    for (int r = 0; r < w; r++)
        v[r] = cg_vload(g, cg_gep(g, at->d, cg_iadd(g, cg_imul(g, cg_iadd(g, f0, cg_i64(g, r)), s->P), p0)), w, w);
    cg_vtranspose(g, v, w);
    for (int c = 0; c < w; c++)
        cg_vstore(g, v[c], cg_gep(g, at->t, cg_iadd(g, cg_imul(g, cg_iadd(g, p0, cg_i64(g, c)), vw), col)), w, w);
    cg_loop_end(g, &lp);
    CgLoop lt = cg_loop_begin(g, cg_imul(g, whole, w), at->len, "p");
    CgLoop lr = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, w), "r");
    LLVMValueRef x = cg_load_at(g, at->d, cg_iadd(g, cg_imul(g, cg_iadd(g, f0, lr.i), s->P), lt.i));
    cg_store_at(g, at->t, cg_iadd(g, cg_imul(g, lt.i, vw), cg_iadd(g, col, lr.i)), x);
    cg_loop_end_as(g, &lr, CG_LOOP_SCALAR);
    cg_loop_end_as(g, &lt, CG_LOOP_SCALAR);
}

/* dT[p, j*w + r] = (filter f = c0 + j*w + r) < F ? d[f, p] : 0, one by one */
static void transpose_edge(Cg *g, const Wg *s, const WgAt *at, LLVMValueRef j)
{
    int w = s->w;
    LLVMValueRef f0 = cg_iadd(g, at->c0, cg_imul(g, j, w));
    CgLoop lp = cg_loop_begin(g, cg_i64(g, 0), at->len, "p");
    CgLoop lr = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, w), "r");
    LLVMValueRef f = cg_iadd(g, f0, lr.i);
    LLVMValueRef in = LLVMBuildICmp(g->b, LLVMIntSLT, f, cg_i64(g, s->F), "");
    LLVMValueRef i = LLVMBuildSelect(g->b, in, cg_iadd(g, cg_imul(g, f, s->P), lp.i), cg_i64(g, 0), "");
    LLVMValueRef x = LLVMBuildSelect(g->b, in, cg_load_at(g, at->d, i), cg_real(g, 0), "");
    cg_store_at(g, at->t, cg_iadd(g, cg_imul(g, lp.i, (long long)s->V * w), cg_iadd(g, cg_imul(g, j, w), lr.i)), x);
    cg_loop_end_as(g, &lr, CG_LOOP_SCALAR);
    cg_loop_end_as(g, &lp, CG_LOOP_SCALAR);
}

/* The task's filters' d over the chunk, transposed: whole blocks of w filters through
 * registers; when the column blocks reach past F, the blocks there one by one. */
static void transpose_chunk(Cg *g, const Wg *s, const WgAt *at)
{
    CgLoop lj = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, s->V), "fb");
    if (s->fs == s->F) { /* every block whole: the usual case (F = 32, 64, ...) */
        transpose_block(g, s, at, lj.i);
        cg_loop_end(g, &lj);
        return;
    }
    LLVMValueRef end = cg_iadd(g, at->c0, cg_imul(g, cg_iadd(g, lj.i, cg_i64(g, 1)), s->w));
    LLVMValueRef whole = LLVMBuildICmp(g->b, LLVMIntSLE, end, cg_i64(g, s->F), "");
    LLVMBasicBlockRef yes = cg_block(g, "whole"), no = cg_block(g, "edge"), next = cg_block(g, "fb.end");
    LLVMBuildCondBr(g->b, whole, yes, no);
    LLVMPositionBuilderAtEnd(g->b, yes);
    transpose_block(g, s, at, lj.i);
    LLVMBuildBr(g->b, next);
    LLVMPositionBuilderAtEnd(g->b, no);
    transpose_edge(g, s, at, lj.i);
    LLVMBuildBr(g->b, next);
    LLVMPositionBuilderAtEnd(g->b, next);
    cg_loop_end(g, &lj);
}

/* X's rows are short streams (a chunk's positions, 8 cache lines in fashion_cnn's second
 * conv) that the hardware prefetchers hardly catch, and X comes from L3 or memory (the
 * batch's X is 14 MB there): at position p, a tile asks for line (p / R) mod L of row
 * k0 + R + p mod R, L a whole chunk's lines, so the next tile's rows are in cache when it
 * starts. Divisions by constants only: this is the multiply-adds' loop. */
static void wg_prefetch(Cg *g, const Wg *s, const WgAt *at, int R, LLVMValueRef k0, LLVMValueRef p)
{
    long long per_line = 64 / g->real_size, lines = (s->pc + per_line - 1) / per_line;
    LLVMValueRef row = cg_iadd(g, cg_iadd(g, k0, cg_i64(g, R)), LLVMBuildURem(g->b, p, cg_i64(g, R), ""));
    LLVMValueRef line = LLVMBuildURem(g->b, LLVMBuildUDiv(g->b, p, cg_i64(g, R), ""), cg_i64(g, lines), "");
    cg_prefetch(g, cg_gep(g, at->x, cg_iadd(g, cg_imul(g, row, s->P), cg_imul(g, line, per_line))));
}

/* wacc[k0 + r, c0 + v*w ...] += sum over the chunk's p of X[k0 + r, p] dT[p, v*w ...], r < R */
static void wg_tile(Cg *g, const Wg *s, const WgAt *at, int R, LLVMValueRef k0)
{
    int w = s->w, V = s->V;
    LLVMTypeRef vt = cg_vec_type(g, w);
    LLVMValueRef acc[WG_MAX_R * MAX_V], sums[WG_MAX_R * MAX_V], bv[MAX_V];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) {
            LLVMValueRef row = cg_imul(g, cg_iadd(g, k0, cg_i64(g, r)), s->fs);
            sums[r * V + v] = cg_gep(g, at->acc, cg_iadd(g, row, cg_iadd(g, at->c0, cg_i64(g, v * w))));
            acc[r * V + v] = cg_slot(g, vt, "acc");
            LLVMBuildStore(g->b, cg_vload(g, sums[r * V + v], w, w), acc[r * V + v]);
        }
    CgLoop lp = cg_loop_begin(g, cg_i64(g, 0), at->len, "p");
    wg_prefetch(g, s, at, R, k0, lp.i);
    for (int v = 0; v < V; v++)
        bv[v] = cg_vload(g, cg_gep(g, at->t, cg_iadd(g, cg_imul(g, lp.i, (long long)V * w), cg_i64(g, v * w))), w, w);
    for (int r = 0; r < R; r++) {
        LLVMValueRef i = cg_iadd(g, cg_imul(g, cg_iadd(g, k0, cg_i64(g, r)), s->P), lp.i);
        LLVMValueRef a = cg_splat(g, cg_load_at(g, at->x, i), w);
        for (int v = 0; v < V; v++) {
            LLVMValueRef old = LLVMBuildLoad2(g->b, vt, acc[r * V + v], "");
            LLVMBuildStore(g->b, cg_vfma(g, a, bv[v], old), acc[r * V + v]);
        }
    }
    cg_loop_end(g, &lp);
    for (int i = 0; i < R * V; i++)
        cg_vstore(g, LLVMBuildLoad2(g->b, vt, acc[i], ""), sums[i], w, w);
}

/* The task's row blocks [lo, hi) over the chunk: whole ones, then the short last one. */
static void wg_rows(Cg *g, const Wg *s, const WgAt *at, LLVMValueRef lo, LLVMValueRef hi)
{
    long long whole = s->KK / s->R;
    CgLoop lr = cg_loop_begin(g, lo, cg_imin(g, hi, cg_i64(g, whole)), "rb");
    wg_tile(g, s, at, s->R, cg_imul(g, lr.i, s->R));
    cg_loop_end(g, &lr);
    if (whole == s->nrb)
        return;
    LLVMBasicBlockRef yes = cg_block(g, "short"), next = cg_block(g, "rows.end");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSGT, hi, cg_i64(g, whole), ""), yes, next);
    LLVMPositionBuilderAtEnd(g->b, yes);
    wg_tile(g, s, at, (int)(s->KK - whole * s->R), cg_i64(g, whole * s->R));
    LLVMBuildBr(g->b, next);
    LLVMPositionBuilderAtEnd(g->b, next);
}

/* wacc[k, c] for k in [k0, k1), c in [c0, c1): = 0 (out NULL), or out[c*KK + k] = it / n */
static void wg_sums(Cg *g, const Wg *s, const WgAt *at, LLVMValueRef k0, LLVMValueRef k1,
                    LLVMValueRef c1, LLVMValueRef out)
{
    CgLoop lk = cg_loop_begin(g, k0, k1, "k");
    CgLoop lc = cg_loop_begin(g, at->c0, c1, "c");
    LLVMValueRef i = cg_iadd(g, cg_imul(g, lk.i, s->fs), lc.i);
    if (out)
        cg_store_at(g, out, cg_iadd(g, cg_imul(g, lc.i, s->KK), lk.i),
                    LLVMBuildFMul(g->b, cg_load_at(g, at->acc, i), g->fs->inv_n, ""));
    else
        cg_store_at(g, at->acc, i, cg_real(g, 0));
    cg_loop_end_as(g, &lc, CG_LOOP_SCALAR);
    cg_loop_end_as(g, &lk, CG_LOOP_SCALAR);
}

/* Task t: column block t % ncb, row group t / ncb; X a sample every xs. */
static void wg_task(Cg *g, const Wg *s, LLVMValueRef t, LLVMValueRef *extra, long long xs, int id)
{
    const CgNode *n = node(g, id);
    long long vw = (long long)s->V * s->w;
    WgAt at = {.acc = extra[1]};
    at.t = cg_real_ptr(g, cg_slot(g, LLVMArrayType(g->real, (unsigned)(s->pc * vw)), "dT"));
    LLVMValueRef lo = cg_imul(g, LLVMBuildSDiv(g->b, t, cg_i64(g, s->ncb), ""), s->rpt);
    LLVMValueRef hi = cg_imin(g, cg_iadd(g, lo, cg_i64(g, s->rpt)), cg_i64(g, s->nrb));
    at.c0 = cg_imul(g, LLVMBuildSRem(g->b, t, cg_i64(g, s->ncb), ""), vw);
    LLVMValueRef k0 = cg_imul(g, lo, s->R), k1 = cg_imin(g, cg_imul(g, hi, s->R), cg_i64(g, s->KK));
    wg_sums(g, s, &at, k0, k1, cg_iadd(g, at.c0, cg_i64(g, vw)), NULL);
    CgLoop lb = cg_loop_begin(g, cg_i64(g, 0), g->fs->n, "b");
    CgLoop lc = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, (s->P + s->pc - 1) / s->pc), "chunk");
    LLVMValueRef p0 = cg_imul(g, lc.i, s->pc);
    at.len = cg_imin(g, cg_i64(g, s->pc), LLVMBuildNSWSub(g->b, cg_i64(g, s->P), p0, ""));
    at.x = cg_gep(g, extra[0], cg_iadd(g, cg_imul(g, lb.i, xs), p0));
    at.d = cg_gep(g, cg_sample_ptr(g, n->args[1], lb.i), p0);
    transpose_chunk(g, s, &at);
    wg_rows(g, s, &at, lo, hi);
    cg_loop_end(g, &lc);
    cg_loop_end(g, &lb);
    LLVMValueRef c1 = cg_imin(g, cg_iadd(g, at.c0, cg_i64(g, vw)), cg_i64(g, s->F));
    wg_sums(g, s, &at, k0, k1, c1, g->fs->base[id]);
}

static int cols_of; /* the weight gradient whose scratch cols_sample fills */

static void cols_sample(Cg *g, int x, LLVMValueRef b, LLVMValueRef *extra)
{
    int id = cols_of;
    const CgNode *n = node(g, id);
    assert(n->args[0] == x);
    (void)x;
    Geo q = geo_of(g, id);
    im2col(g, &q, cg_sample_ptr(g, n->args[0], b), aux_at(g, id, extra[0], b));
}

static void emit_weight_mean(Cg *g, int id)
{
    const CgNode *n = node(g, id);
    Geo q = geo_of(g, id);
    Wg s = wg_shape(g, &q);
    int nodes[3] = {n->args[0], n->args[1], id};
    if (g->fs->prof == CG_PROF_CHECK) {
        cg_per_sample(g, id, nodes, 3, NULL, 0, weight_mean_nest, (double)(q.F * q.P * q.KK));
        return;
    }
    if (fills_cols(g, id)) {
        LLVMValueRef cols[1] = {aux_base(g, id)};
        cols_of = id;
        cg_per_sample(g, n->args[0], nodes, 3, cols, 1, cols_sample, (double)(q.KK * q.P));
    }
    LLVMValueRef work = LLVMBuildSIToFP(g->b, g->fs->n, g->f64, "work");
    work = LLVMBuildFMul(g->b, work, LLVMConstReal(g->f64, (double)(q.F * q.KK * q.P)), "");
    LLVMValueRef extra[2] = {aux_base(g, id), cg_ws_buffer(g, n->wacc, false)};
    CgTask t;
    cg_task_begin(g, &t, n->name ? n->name : "conv_weight", nodes, 3, extra, 2);
    CgLoop lt = cg_loop_begin(g, t.lo, t.hi, "t");
    wg_task(g, &s, lt.i, extra, n->aux_size, id);
    cg_loop_end(g, &lt);
    long long groups = (s.nrb + s.rpt - 1) / s.rpt;
    cg_task_end(g, &t, cg_i64(g, s.ncb * groups), work);
}

void cg_conv_emit(Cg *g, int id)
{
    const CgNode *n = node(g, id);
    switch (n->op) {
    case IR_CONV2D: emit_forward(g, id); return;
    case IR_CONV2D_BWD_INPUT: emit_bwd_input(g, id); return;
    case CG_BMEAN_CONVW: emit_weight_mean(g, id); return;
    case IR_CONV2D_BWD_WEIGHT: {
        int nodes[3] = {n->args[0], n->args[1], id};
        Geo q = geo_of(g, id);
        cg_per_sample(g, id, nodes, 3, NULL, 0, bwd_weight_sample, (double)(q.F * q.P * q.KK));
        return;
    }
    default: assert(0);
    }
}
