/* cg_kernels.c - one loop nest per node over the batch: elementwise ops, reductions,
 * broadcasts, transposes, softmax and the fused losses; products go to cg_mm.c or, in
 * the shapes it does not take, cg_gemm.c. What an element op computes is cg_ops.c's.
 *
 * Every nest is `for b in samples: for i in elements`, with constant inner bounds and
 * unit strides where the op allows, so the loop vectorizer can widen the inner loop. A
 * node that does not vary runs its nest once (b = 0). */
#include "cg.h"

#include <stdlib.h>

static LLVMValueRef zero64(Cg *g)
{
    return cg_i64(g, 0);
}

static LLVMValueRef select_(Cg *g, LLVMValueRef c, LLVMValueRef t, LLVMValueRef f)
{
    return LLVMBuildSelect(g->b, c, t, f, "");
}


/* ---- reductions ---- */

static void acc_add(Cg *g, LLVMValueRef acc, LLVMValueRef v)
{
    LLVMValueRef old = LLVMBuildLoad2(g->b, g->real, acc, "");
    LLVMBuildStore(g->b, LLVMBuildFAdd(g->b, old, v, ""), acc);
}

/* out[b, r] = sum over j < len of a[b, r*len + j] (over div), for r < rows. */
static void emit_row_sums(Cg *g, int id, int a, long long rows, long long len, long long div)
{
    LLVMValueRef acc = cg_slot(g, g->real, "acc");
    CgLoop lb = cg_loop_begin(g, zero64(g), cg_count(g, id), "b");
    CgLoop lr = cg_loop_begin(g, zero64(g), cg_i64(g, rows), "r");
    LLVMBuildStore(g->b, cg_real(g, 0), acc);
    LLVMValueRef row = LLVMBuildNSWMul(g->b, lr.i, cg_i64(g, len), "");
    CgLoop lj = cg_loop_begin(g, zero64(g), cg_i64(g, len), "j");
    acc_add(g, acc, cg_load(g, a, lb.i, LLVMBuildNSWAdd(g->b, row, lj.i, "")));
    cg_loop_end_as(g, &lj, CG_LOOP_ROLLED);
    LLVMValueRef sum = LLVMBuildLoad2(g->b, g->real, acc, "");
    if (div != 1)
        sum = LLVMBuildFDiv(g->b, sum, cg_real(g, (double)div), "");
    cg_store(g, id, lb.i, lr.i, sum);
    cg_loop_end(g, &lr);
    cg_loop_end(g, &lb);
}

static long long last_dim(Shape s)
{
    return s.rank ? s.dims[s.rank - 1] : 1;
}

static void emit_reduce(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    const CgNode *a = &g->plan->nodes[n->args[0]];
    long long size = cg_size(a);
    if (n->op == IR_SUM_LAST)
        emit_row_sums(g, id, n->args[0], size / last_dim(a->shape), last_dim(a->shape), 1);
    else
        emit_row_sums(g, id, n->args[0], 1, size, n->op == IR_MEAN ? size : 1);
}

/* broadcast and expand_last: out[b, r*len + j] = a[b, r]. */
static void emit_expand(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    long long len = n->op == IR_BROADCAST ? cg_size(n) : last_dim(n->shape);
    CgLoop lb = cg_loop_begin(g, zero64(g), cg_count(g, id), "b");
    CgLoop lr = cg_loop_begin(g, zero64(g), cg_i64(g, cg_size(n) / len), "r");
    LLVMValueRef v = cg_load(g, n->args[0], lb.i, lr.i);
    LLVMValueRef row = LLVMBuildNSWMul(g->b, lr.i, cg_i64(g, len), "");
    CgLoop lj = cg_loop_begin(g, zero64(g), cg_i64(g, len), "j");
    cg_store(g, id, lb.i, LLVMBuildNSWAdd(g->b, row, lj.i, ""), v);
    cg_loop_end_as(g, &lj, CG_LOOP_ROLLED);
    cg_loop_end(g, &lr);
    cg_loop_end(g, &lb);
}

/* a [rows, cols] -> out [cols, rows] */
static void emit_transpose(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    Shape s = g->plan->nodes[n->args[0]].shape;
    long long rows = s.dims[0], cols = s.dims[1];
    CgLoop lb = cg_loop_begin(g, zero64(g), cg_count(g, id), "b");
    CgLoop li = cg_loop_begin(g, zero64(g), cg_i64(g, cols), "i");
    LLVMValueRef orow = LLVMBuildNSWMul(g->b, li.i, cg_i64(g, rows), "");
    CgLoop lj = cg_loop_begin(g, zero64(g), cg_i64(g, rows), "j");
    LLVMValueRef src = LLVMBuildNSWAdd(g->b, LLVMBuildNSWMul(g->b, lj.i, cg_i64(g, cols), ""), li.i, "");
    cg_store(g, id, lb.i, LLVMBuildNSWAdd(g->b, orow, lj.i, ""), cg_load(g, n->args[0], lb.i, src));
    cg_loop_end(g, &lj);
    cg_loop_end(g, &li);
    cg_loop_end(g, &lb);
}

/* ---- softmax family: row by row over the last dim ---- */

/* log(sum(exp(z))) of the row starting at `row` of node z, max taken out first. */
static LLVMValueRef log_sum_exp(Cg *g, int z, LLVMValueRef b, LLVMValueRef row, long long len)
{
    LLVMValueRef mx = cg_slot(g, g->real, "max"), s = cg_slot(g, g->real, "sum");
    LLVMBuildStore(g->b, cg_load(g, z, b, row), mx);
    CgLoop lm = cg_loop_begin(g, cg_i64(g, 1), cg_i64(g, len), "j");
    LLVMValueRef v = cg_load(g, z, b, LLVMBuildNSWAdd(g->b, row, lm.i, ""));
    LLVMValueRef m = LLVMBuildLoad2(g->b, g->real, mx, "");
    LLVMBuildStore(g->b, select_(g, LLVMBuildFCmp(g->b, LLVMRealOGT, v, m, ""), v, m), mx);
    cg_loop_end(g, &lm);
    LLVMValueRef max = LLVMBuildLoad2(g->b, g->real, mx, "max");
    LLVMBuildStore(g->b, cg_real(g, 0), s);
    CgLoop ls = cg_loop_begin(g, zero64(g), cg_i64(g, len), "j");
    v = cg_load(g, z, b, LLVMBuildNSWAdd(g->b, row, ls.i, ""));
    acc_add(g, s, cg_math(g, "exp", LLVMBuildFSub(g->b, v, max, "")));
    cg_loop_end(g, &ls);
    LLVMValueRef sum = LLVMBuildLoad2(g->b, g->real, s, "");
    return LLVMBuildFAdd(g->b, max, cg_math(g, "log", sum), "lse");
}

/* softmax / log_softmax (id), or the fused softmax cross-entropy accumulated into acc. */
static void softmax_rows(Cg *g, int id, int z, int t, LLVMValueRef b, LLVMValueRef acc)
{
    const CgNode *n = &g->plan->nodes[z];
    long long len = last_dim(n->shape);
    CgLoop lr = cg_loop_begin(g, zero64(g), cg_i64(g, cg_size(n) / len), "r");
    LLVMValueRef row = LLVMBuildNSWMul(g->b, lr.i, cg_i64(g, len), "");
    LLVMValueRef lse = log_sum_exp(g, z, b, row, len);
    CgLoop lj = cg_loop_begin(g, zero64(g), cg_i64(g, len), "j");
    LLVMValueRef at = LLVMBuildNSWAdd(g->b, row, lj.i, "");
    LLVMValueRef ls = LLVMBuildFSub(g->b, cg_load(g, z, b, at), lse, "");
    int op = g->plan->nodes[id].op;
    if (op == IR_SOFTMAX_CE)
        acc_add(g, acc, LLVMBuildFNeg(g->b, LLVMBuildFMul(g->b, cg_load(g, t, b, at), ls, ""), ""));
    else
        cg_store(g, id, b, at, op == IR_SOFTMAX ? cg_math(g, "exp", ls) : ls);
    cg_loop_end(g, &lj);
    cg_loop_end(g, &lr);
}

static void emit_softmax(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    LLVMValueRef acc = n->op == IR_SOFTMAX_CE ? cg_slot(g, g->real, "loss") : NULL;
    CgLoop lb = cg_loop_begin(g, zero64(g), cg_count(g, id), "b");
    if (acc)
        LLVMBuildStore(g->b, cg_real(g, 0), acc);
    softmax_rows(g, id, n->args[0], n->nargs > 1 ? n->args[1] : -1, lb.i, acc);
    if (acc)
        cg_store(g, id, lb.i, zero64(g), LLVMBuildLoad2(g->b, g->real, acc, ""));
    cg_loop_end(g, &lb);
}

/* mean over elements of softplus(z) - t*z */
static void emit_sigmoid_bce(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    int z = n->args[0], t = n->args[1];
    long long size = cg_size(&g->plan->nodes[z]);
    LLVMValueRef acc = cg_slot(g, g->real, "loss");
    CgLoop lb = cg_loop_begin(g, zero64(g), cg_count(g, id), "b");
    LLVMBuildStore(g->b, cg_real(g, 0), acc);
    CgLoop li = cg_loop_begin(g, zero64(g), cg_i64(g, size), "i");
    LLVMValueRef zv = cg_load(g, z, lb.i, li.i), tv = cg_load(g, t, lb.i, li.i);
    acc_add(g, acc, LLVMBuildFSub(g->b, cg_op_softplus(g, zv), LLVMBuildFMul(g->b, tv, zv, ""), ""));
    cg_loop_end(g, &li);
    LLVMValueRef sum = LLVMBuildLoad2(g->b, g->real, acc, "");
    cg_store(g, id, lb.i, zero64(g), LLVMBuildFDiv(g->b, sum, cg_real(g, (double)size), ""));
    cg_loop_end(g, &lb);
}

/* out[i] = sum over the batch of a[b, i], then * (1/n): the inner loop runs along a row. */
static void emit_batch_mean(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    LLVMValueRef size = cg_i64(g, cg_size(n));
    CgLoop lz = cg_loop_begin(g, zero64(g), size, "i");
    cg_store(g, id, NULL, lz.i, cg_real(g, 0));
    cg_loop_end(g, &lz);
    CgLoop lb = cg_loop_begin(g, zero64(g), g->fs->n, "b");
    CgLoop li = cg_loop_begin(g, zero64(g), size, "i");
    LLVMValueRef v = LLVMBuildFAdd(g->b, cg_load(g, id, NULL, li.i), cg_load(g, n->args[0], lb.i, li.i), "");
    cg_store(g, id, NULL, li.i, v);
    cg_loop_end(g, &li);
    cg_loop_end(g, &lb);
    CgLoop ld = cg_loop_begin(g, zero64(g), size, "i");
    cg_store(g, id, NULL, ld.i, LLVMBuildFMul(g->b, cg_load(g, id, NULL, ld.i), g->fs->inv_n, ""));
    cg_loop_end(g, &ld);
}

void cg_emit_node(Cg *g, int id)
{
    int op = g->plan->nodes[id].op;
    IrKind kind = op < IR_NUM_OPS ? ir_op_info(op)->kind : IR_KIND_OTHER;
    if (op == IR_DROPOUT_MASK) {
        cg_pool_emit(g, id); /* a leaf the runtime fills */
        return;
    }
    if (kind == IR_KIND_LEAF)
        return;
    if (kind == IR_KIND_UNARY || kind == IR_KIND_BINARY || op == IR_RESHAPE) {
        cg_fuse_run(g, id); /* with the elementwise nodes after it that can share its loop */
        return;
    }
    switch (op) {
    case IR_MATMUL: case CG_BMEAN_MATMUL: case IR_OUTER: case CG_BMEAN_OUTER:
        /* the register-blocked kernels where the shapes allow, else the strided nest; the
         * checked step (run once after a non-finite batch, not optimised) takes the nest,
         * a tenth of the code to compile */
        if (g->fs->prof == CG_PROF_CHECK || !cg_mm_emit(g, id))
            cg_gemm_emit(g, id);
        return;
    case IR_TRANSPOSE: emit_transpose(g, id); return;
    case IR_SUM: case IR_MEAN: case IR_SUM_LAST: emit_reduce(g, id); return;
    case IR_BROADCAST: case IR_EXPAND_LAST: emit_expand(g, id); return;
    case IR_SOFTMAX: case IR_LOG_SOFTMAX: case IR_SOFTMAX_CE: emit_softmax(g, id); return;
    case IR_SIGMOID_BCE: emit_sigmoid_bce(g, id); return;
    case CG_BMEAN: emit_batch_mean(g, id); return;
    case IR_CONV2D: case IR_CONV2D_BWD_INPUT: case IR_CONV2D_BWD_WEIGHT: case CG_BMEAN_CONVW:
        cg_conv_emit(g, id);
        return;
    case IR_MAXPOOL: case IR_MAXPOOL_BWD: case IR_AVGPOOL: case IR_AVGPOOL_BWD: case IR_CONCAT:
    case IR_SLICE:
        cg_pool_emit(g, id);
        return;
    default: abort();
    }
}
