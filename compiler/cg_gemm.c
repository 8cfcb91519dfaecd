/* cg_gemm.c - matrix products over a batch, all through one strided kernel:
 *
 *   C(b, r, j) (+)= sum over k of A(b, r, k) * B(b, k, j)
 *
 * Each operand is a base pointer and strides (batch, row or k, k or column), so one loop
 * nest serves every case: per-sample products, products with the samples as rows (W @ x_b
 * for all b is X W^T), and the gradient means that sum over the batch too
 * (mean_b outer(u_b, v_b) = U^T V / n). The innermost loop runs along a row of C and B, so
 * with a unit column stride it is a plain saxpy the loop vectorizer widens. */
#include "cg.h"

typedef struct GemmOperand {
    LLVMValueRef base;
    long long sb, s1, s2; /* strides: batch, then A's (row, k) or B's (k, column) */
} GemmOperand;

typedef struct Gemm {
    LLVMValueRef nb, rows; /* batch loop and rows of C per batch entry (i64) */
    long long k, cols;
    bool reduce;           /* sum over the batch into one C, then divide by n */
    GemmOperand a, b, c;   /* c: s1 is the row stride; columns are unit stride */
} Gemm;

static LLVMValueRef at(Cg *g, const GemmOperand *o, LLVMValueRef b, LLVMValueRef i, LLVMValueRef j)
{
    LLVMBuilderRef B = g->b;
    LLVMValueRef v = LLVMBuildNSWMul(B, b, cg_i64(g, o->sb), "");
    v = LLVMBuildNSWAdd(B, v, LLVMBuildNSWMul(B, i, cg_i64(g, o->s1), ""), "");
    if (o->s2 == 1)
        return LLVMBuildNSWAdd(B, v, j, "");
    return LLVMBuildNSWAdd(B, v, LLVMBuildNSWMul(B, j, cg_i64(g, o->s2), ""), "");
}

static void zero_row(Cg *g, const Gemm *m, LLVMValueRef crow)
{
    CgLoop lj = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, m->cols), "j");
    cg_store_at(g, crow, lj.i, cg_real(g, 0));
    cg_loop_end(g, &lj);
}

/* C row += sum over k of A(b, r, k) * B row k */
static void accumulate_row(Cg *g, const Gemm *m, LLVMValueRef b, LLVMValueRef r, LLVMValueRef crow)
{
    CgLoop lk = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, m->k), "k");
    LLVMValueRef av = cg_load_at(g, m->a.base, at(g, &m->a, b, r, lk.i));
    LLVMValueRef brow = cg_gep(g, m->b.base, at(g, &m->b, b, lk.i, cg_i64(g, 0)));
    CgLoop lj = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, m->cols), "j");
    LLVMValueRef prod = LLVMBuildFMul(g->b, av, cg_load_at(g, brow, lj.i), "");
    LLVMValueRef sum = LLVMBuildFAdd(g->b, cg_load_at(g, crow, lj.i), prod, "");
    cg_store_at(g, crow, lj.i, sum);
    cg_loop_end(g, &lj);
    cg_loop_end(g, &lk);
}

static void emit_gemm(Cg *g, const Gemm *m)
{
    LLVMValueRef zero = cg_i64(g, 0);
    if (!m->reduce) {
        CgLoop lb = cg_loop_begin(g, zero, m->nb, "b");
        CgLoop lr = cg_loop_begin(g, zero, m->rows, "r");
        LLVMValueRef crow = cg_gep(g, m->c.base, at(g, &m->c, lb.i, lr.i, zero));
        zero_row(g, m, crow);
        accumulate_row(g, m, lb.i, lr.i, crow);
        cg_loop_end(g, &lr);
        cg_loop_end(g, &lb);
        return;
    }
    CgLoop lr = cg_loop_begin(g, zero, m->rows, "r");
    LLVMValueRef crow = cg_gep(g, m->c.base, at(g, &m->c, zero, lr.i, zero));
    zero_row(g, m, crow);
    CgLoop lb = cg_loop_begin(g, zero, m->nb, "b");
    accumulate_row(g, m, lb.i, lr.i, crow);
    cg_loop_end(g, &lb);
    CgLoop lj = cg_loop_begin(g, zero, cg_i64(g, m->cols), "j");
    cg_store_at(g, crow, lj.i, LLVMBuildFDiv(g->b, cg_load_at(g, crow, lj.i), g->nreal, ""));
    cg_loop_end(g, &lj);
    cg_loop_end(g, &lr);
}

static GemmOperand operand(Cg *g, int node, long long sb, long long s1, long long s2)
{
    bool varies = g->plan->nodes[node].varying;
    return (GemmOperand){g->base[node], varies ? sb : 0, s1, s2};
}

/* W [m, k] into scratch as W^T [k, m], so the product's inner loop runs along a row. */
static LLVMValueRef transpose_to_scratch(Cg *g, int id, int w, long long m, long long k)
{
    const CgPlan *pl = g->plan;
    LLVMValueRef fixed = LLVMBuildNSWMul(g->b, g->batch_cap, cg_i64(g, pl->var_elems), "");
    LLVMValueRef off = LLVMBuildNSWAdd(g->b, fixed, cg_i64(g, pl->nodes[id].scratch), "");
    LLVMValueRef wt = cg_gep(g, g->ws, off);
    CgLoop li = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, k), "i");
    LLVMValueRef row = LLVMBuildNSWMul(g->b, li.i, cg_i64(g, m), "");
    CgLoop lj = cg_loop_begin(g, cg_i64(g, 0), cg_i64(g, m), "j");
    LLVMValueRef src = LLVMBuildNSWAdd(g->b, LLVMBuildNSWMul(g->b, lj.i, cg_i64(g, k), ""), li.i, "");
    cg_store_at(g, wt, LLVMBuildNSWAdd(g->b, row, lj.i, ""), cg_load(g, w, NULL, src));
    cg_loop_end(g, &lj);
    cg_loop_end(g, &li);
    return wt;
}

/* a's last dim contracted with b's first: [m,k]@[k], [m,k]@[k,p], [k]@[k,p], [k]@[k]. */
void cg_emit_matmul(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    Shape sa = g->plan->nodes[n->args[0]].shape, sb = g->plan->nodes[n->args[1]].shape;
    long long m = sa.rank == 2 ? sa.dims[0] : 1, k = sa.dims[sa.rank - 1];
    long long p = sb.rank == 2 ? sb.dims[1] : 1;
    Gemm gm = {.nb = cg_count(g, id), .rows = cg_i64(g, m), .k = k, .cols = p};
    if (cg_matmul_rows_are_samples(g->plan, n)) {
        /* out[b, i] = sum_k x[b, k] W[i, k]: rows are the samples, columns W's rows */
        LLVMValueRef wt = transpose_to_scratch(g, id, n->args[0], m, k);
        gm = (Gemm){.nb = cg_i64(g, 1), .rows = g->n, .k = k, .cols = m};
        gm.a = (GemmOperand){g->base[n->args[1]], 0, k, 1};
        gm.b = (GemmOperand){wt, 0, m, 1};
        gm.c = (GemmOperand){g->base[id], 0, m, 1};
        emit_gemm(g, &gm);
        return;
    }
    gm.reduce = n->op == CG_BMEAN_MATMUL;
    if (gm.reduce)
        gm.nb = g->n;
    gm.a = operand(g, n->args[0], m * k, k, 1);
    gm.b = operand(g, n->args[1], k * p, p, 1);
    gm.c = operand(g, id, m * p, p, 1);
    emit_gemm(g, &gm);
}

/* outer(a, b) = [p, 1] @ [1, q] over the flattened operands. */
void cg_emit_outer(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    long long p = cg_size(&g->plan->nodes[n->args[0]]), q = cg_size(&g->plan->nodes[n->args[1]]);
    Gemm gm = {.nb = cg_count(g, id), .rows = cg_i64(g, p), .k = 1, .cols = q};
    gm.reduce = n->op == CG_BMEAN_OUTER;
    if (gm.reduce)
        gm.nb = g->n;
    gm.a = operand(g, n->args[0], p, 1, 0);
    gm.b = operand(g, n->args[1], q, 0, 1);
    gm.c = operand(g, id, p * q, q, 1);
    emit_gemm(g, &gm);
}
