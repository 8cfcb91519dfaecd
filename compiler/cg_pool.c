/* cg_pool.c - the image ops that are not products: max and average pooling and their
 * backward passes, concat, slice, and the dropout masks.
 *
 * Each runs as a task function over the samples (cg_task.c): a sample's output is written
 * by one task, in a fixed order, so the bits do not depend on the thread count. Pooling
 * ties go to the first maximum in row-major order (a strict >, as PyTorch and the
 * interpreter); maxpool_backward finds that maximum again from a rather than keeping an
 * index buffer: it is k*k compares per output, which costs less than writing and reading
 * an index per output would. */
#include "cg.h"

#include <assert.h>

LLVMValueRef cg_sample_ptr(Cg *g, int node, LLVMValueRef b)
{
    const CgNode *n = &g->plan->nodes[node];
    if (!n->varying)
        return g->fs->base[node];
    return cg_gep(g, g->fs->base[node], cg_imul(g, b, cg_size(n)));
}

void cg_per_sample(Cg *g, int node, const int *nodes, int nnodes, LLVMValueRef *extra,
                   int nextra, CgSampleFn *body, double work)
{
    LLVMValueRef count = cg_count(g, node);
    LLVMValueRef w = LLVMBuildFMul(g->b, LLVMBuildSIToFP(g->b, count, g->f64, ""),
                                   LLVMConstReal(g->f64, work), "work");
    const char *name = g->plan->nodes[node].name;
    CgTask t;
    cg_task_begin(g, &t, name ? name : "image", nodes, nnodes, extra, nextra);
    CgLoop lb = cg_loop_begin(g, t.lo, t.hi, "b");
    body(g, node, lb.i, extra);
    cg_loop_end(g, &lb);
    cg_task_end(g, &t, count, w);
}

/* out[0 .. size) = 0 */
static void zero(Cg *g, LLVMValueRef out, long long size)
{
    CgLoop l = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, size), "i");
    cg_store_at(g, out, l.i, cg_real(g, 0));
    cg_loop_end(g, &l);
}

/* ---- pooling: windows k x k at stride s, no padding ---- */

typedef struct Pool {
    long long C, H, W, OH, OW, k, s;
} Pool;

/* The pool of node id: the image is its first operand (maxpool, avgpool, maxpool_backward)
 * or the node itself (avgpool_backward). */
static Pool pool_of(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    Shape img = n->op == IR_AVGPOOL_BWD || n->op == IR_MAXPOOL_BWD ? n->shape : g->plan->nodes[n->args[0]].shape;
    Shape out = n->op == IR_AVGPOOL_BWD || n->op == IR_MAXPOOL_BWD
              ? g->plan->nodes[n->args[n->op == IR_MAXPOOL_BWD]].shape : n->shape;
    return (Pool){img.dims[0], img.dims[1], img.dims[2], out.dims[1], out.dims[2], n->win.kh,
                  n->win.stride};
}

/* The loops over the outputs (c, oy, ox): the index of the window's first element in the
 * image and of the output. */
typedef struct Window {
    CgLoop lc, ly, lx;
    LLVMValueRef corner, out;
} Window;

static Window window_begin(Cg *g, const Pool *p)
{
    Window w;
    w.lc = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, p->C), "c");
    w.ly = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, p->OH), "oy");
    w.lx = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, p->OW), "ox");
    LLVMValueRef row = cg_iadd(g, cg_imul(g, w.lc.i, p->H), cg_imul(g, w.ly.i, p->s));
    w.corner = cg_iadd(g, cg_imul(g, row, p->W), cg_imul(g, w.lx.i, p->s));
    w.out = cg_iadd(g, cg_imul(g, cg_iadd(g, cg_imul(g, w.lc.i, p->OH), w.ly.i), p->OW), w.lx.i);
    return w;
}

static void window_end(Cg *g, Window *w)
{
    cg_loop_end(g, &w->lx);
    cg_loop_end(g, &w->ly);
    cg_loop_end(g, &w->lc);
}

/* The window's first maximum of a: its value and index (row-major scan, strict >). The
 * window is unrolled: k*k is small and constant. */
static void window_max(Cg *g, const Pool *p, LLVMValueRef a, LLVMValueRef corner, LLVMValueRef *val,
                       LLVMValueRef *idx)
{
    LLVMValueRef best = cg_load_at(g, a, corner), at = corner;
    for (long long u = 0; u < p->k; u++)
        for (long long v = u == 0; v < p->k; v++) {
            LLVMValueRef i = cg_iadd(g, corner, cg_i64(g, u * p->W + v));
            LLVMValueRef x = cg_load_at(g, a, i);
            LLVMValueRef gt = LLVMBuildFCmp(g->b, LLVMRealOGT, x, best, "");
            best = LLVMBuildSelect(g->b, gt, x, best, "");
            at = LLVMBuildSelect(g->b, gt, i, at, "");
        }
    *val = best;
    *idx = at;
}

static void maxpool_sample(Cg *g, int id, LLVMValueRef b, LLVMValueRef *extra)
{
    (void)extra;
    const CgNode *n = &g->plan->nodes[id];
    Pool p = pool_of(g, id);
    LLVMValueRef a = cg_sample_ptr(g, n->args[0], b), out = cg_sample_ptr(g, id, b);
    Window w = window_begin(g, &p);
    LLVMValueRef val, idx;
    window_max(g, &p, a, w.corner, &val, &idx);
    cg_store_at(g, out, w.out, val);
    window_end(g, &w);
}

/* Windows that do not overlap (stride k): each element of a window is written once, d
 * where the window's first maximum is and 0 elsewhere, so nothing is zeroed first or read
 * back (0 + d, as the general form adds it, so that the bits are the same: -0 becomes +0).
 * Only the rows and columns no window covers are zeroed. */
static void maxpool_bwd_tiled(Cg *g, const Pool *p, LLVMValueRef a, LLVMValueRef d, LLVMValueRef out,
                              long long size)
{
    if (p->H != p->OH * p->k || p->W != p->OW * p->k)
        zero(g, out, size);
    Window w = window_begin(g, p);
    LLVMValueRef val, idx;
    window_max(g, p, a, w.corner, &val, &idx);
    LLVMValueRef dv = LLVMBuildFAdd(g->b, cg_real(g, 0), cg_load_at(g, d, w.out), "");
    for (long long u = 0; u < p->k; u++)
        for (long long v = 0; v < p->k; v++) {
            LLVMValueRef i = cg_iadd(g, w.corner, cg_i64(g, u * p->W + v));
            LLVMValueRef at_max = LLVMBuildICmp(g->b, LLVMIntEQ, i, idx, "");
            cg_store_at(g, out, i, LLVMBuildSelect(g->b, at_max, dv, cg_real(g, 0), ""));
        }
    window_end(g, &w);
}

/* da: each window's d added at its first maximum; windows in row-major order. */
static void maxpool_bwd_sample(Cg *g, int id, LLVMValueRef b, LLVMValueRef *extra)
{
    (void)extra;
    const CgNode *n = &g->plan->nodes[id];
    Pool p = pool_of(g, id);
    LLVMValueRef a = cg_sample_ptr(g, n->args[0], b), d = cg_sample_ptr(g, n->args[1], b);
    LLVMValueRef out = cg_sample_ptr(g, id, b);
    if (p.s == p.k) {
        maxpool_bwd_tiled(g, &p, a, d, out, cg_size(n));
        return;
    }
    zero(g, out, cg_size(n));
    Window w = window_begin(g, &p);
    LLVMValueRef val, idx;
    window_max(g, &p, a, w.corner, &val, &idx);
    LLVMValueRef sum = LLVMBuildFAdd(g->b, cg_load_at(g, out, idx), cg_load_at(g, d, w.out), "");
    cg_store_at(g, out, idx, sum);
    window_end(g, &w);
}

/* avgpool: each window's mean; avgpool_backward: d/(k*k) added over each window. */
static void avgpool_sample(Cg *g, int id, LLVMValueRef b, LLVMValueRef *extra)
{
    (void)extra;
    const CgNode *n = &g->plan->nodes[id];
    bool bwd = n->op == IR_AVGPOOL_BWD;
    Pool p = pool_of(g, id);
    LLVMValueRef src = cg_sample_ptr(g, n->args[0], b), out = cg_sample_ptr(g, id, b);
    LLVMValueRef kk = cg_real(g, (double)(p.k * p.k));
    if (bwd)
        zero(g, out, cg_size(n));
    Window w = window_begin(g, &p);
    LLVMValueRef acc = bwd ? LLVMBuildFDiv(g->b, cg_load_at(g, src, w.out), kk, "") : cg_real(g, 0);
    for (long long u = 0; u < p.k; u++)
        for (long long v = 0; v < p.k; v++) {
            LLVMValueRef i = cg_iadd(g, w.corner, cg_i64(g, u * p.W + v));
            if (bwd)
                cg_store_at(g, out, i, LLVMBuildFAdd(g->b, cg_load_at(g, out, i), acc, ""));
            else
                acc = LLVMBuildFAdd(g->b, acc, cg_load_at(g, src, i), "");
        }
    if (!bwd)
        cg_store_at(g, out, w.out, LLVMBuildFDiv(g->b, acc, kk, ""));
    window_end(g, &w);
}

/* ---- concat and slice: copies along the flat elements ---- */

/* out[b, at + i] = src[b, from + i] for i < len */
static void copy_range(Cg *g, int out, long long at, int src, long long from, long long len,
                       LLVMValueRef b)
{
    LLVMValueRef o = cg_sample_ptr(g, out, b), s = cg_sample_ptr(g, src, b);
    CgLoop l = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, len), "i");
    cg_store_at(g, o, cg_iadd(g, l.i, cg_i64(g, at)), cg_load_at(g, s, cg_iadd(g, l.i, cg_i64(g, from))));
    cg_loop_end(g, &l);
}

static void concat_sample(Cg *g, int id, LLVMValueRef b, LLVMValueRef *extra)
{
    (void)extra;
    const CgNode *n = &g->plan->nodes[id];
    long long na = cg_size(&g->plan->nodes[n->args[0]]);
    copy_range(g, id, 0, n->args[0], 0, na, b);
    copy_range(g, id, na, n->args[1], 0, cg_size(&g->plan->nodes[n->args[1]]), b);
}

static void slice_sample(Cg *g, int id, LLVMValueRef b, LLVMValueRef *extra)
{
    (void)extra;
    const CgNode *n = &g->plan->nodes[id];
    long long row = cg_size(n) / n->shape.dims[0];
    copy_range(g, id, 0, n->args[0], n->index * row, cg_size(n), b);
}

/* ---- dropout masks ---- */

/* void nnc_rt_dropout_f32/_f64(NncRun *run, int id, long long sample, double p, long long n,
 * real *out): the runtime's mask, a pure function of (seed, step, id, sample). */
static LLVMValueRef dropout_fn(Cg *g, LLVMTypeRef *type)
{
    const char *name = g->real_size == 4 ? "nnc_rt_dropout_f32" : "nnc_rt_dropout_f64";
    LLVMTypeRef params[] = {g->i8p, g->i32, g->i64, g->f64, g->i64, g->realp};
    *type = LLVMFunctionType(g->voidt, params, 6, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(g->mod, name);
    return fn ? fn : LLVMAddFunction(g->mod, name, *type);
}

/* In training the runtime draws each sample's mask (one call a sample, in the caller: the
 * pool's threads hold no run); in evaluation the mask is all ones. */
static void emit_dropout(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    LLVMValueRef out = g->fs->base[id];
    long long size = cg_size(n);
    if (!g->fs->training) {
        LLVMValueRef all = LLVMBuildNSWMul(g->b, g->fs->n, cg_i64(g, size), "");
        CgLoop l = cg_loop_begin(g, cg_i64(g, 0), all, "i");
        cg_store_at(g, out, l.i, cg_real(g, 1));
        cg_loop_end(g, &l);
        return;
    }
    LLVMTypeRef type;
    LLVMValueRef fn = dropout_fn(g, &type);
    CgLoop lb = cg_loop_begin(g, cg_i64(g, 0), g->fs->n, "b");
    LLVMValueRef args[] = {g->fs->run, cg_i32(g, n->index), lb.i, LLVMConstReal(g->f64, n->num),
                           cg_i64(g, size), cg_gep(g, out, cg_imul(g, lb.i, size))};
    LLVMBuildCall2(g->b, type, fn, args, 6, "");
    cg_loop_end(g, &lb);
}

void cg_pool_emit(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    if (n->op == IR_DROPOUT_MASK) {
        emit_dropout(g, id);
        return;
    }
    int nodes[3] = {id, n->args[0], n->nargs > 1 ? n->args[1] : n->args[0]};
    double work = (double)cg_size(n) * (n->win.kh ? n->win.kh * n->win.kh : 1);
    CgSampleFn *body = NULL;
    switch (n->op) {
    case IR_MAXPOOL: body = maxpool_sample; break;
    case IR_MAXPOOL_BWD: body = maxpool_bwd_sample; break;
    case IR_AVGPOOL: body = avgpool_sample; break;
    case IR_AVGPOOL_BWD: body = avgpool_sample; break;
    case IR_CONCAT: body = concat_sample; break;
    case IR_SLICE: body = slice_sample; break;
    default: assert(0);
    }
    cg_per_sample(g, id, nodes, 3, NULL, 0, body, work);
}
