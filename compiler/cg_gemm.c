/* cg_gemm.c - the matrix products cg_mm.c does not take (per-sample products, products of
 * values that do not vary), all through one strided kernel:
 *
 *   C(b, r, j) (+)= sum over k of A(b, r, k) * B(b, k, j)
 *
 * Each operand is a base pointer and strides (batch, row or k, k or column), so one loop
 * nest serves every case, including gradient means that sum over the batch too. The
 * innermost loop runs along a row of C and B, so with a unit column stride it is a plain
 * saxpy the loop vectorizer widens. */
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
    cg_store_at(g, crow, lj.i, LLVMBuildFMul(g->b, cg_load_at(g, crow, lj.i), g->fs->inv_n, ""));
    cg_loop_end(g, &lj);
    cg_loop_end(g, &lr);
}

static GemmOperand operand(Cg *g, int node, long long sb, long long s1, long long s2)
{
    bool varies = g->plan->nodes[node].varying;
    return (GemmOperand){g->fs->base[node], varies ? sb : 0, s1, s2};
}

/* a's last dim contracted with b's first: [m,k]@[k], [m,k]@[k,p], [k]@[k,p], [k]@[k]. */
static void emit_matmul(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    Shape sa = g->plan->nodes[n->args[0]].shape, sb = g->plan->nodes[n->args[1]].shape;
    long long m = sa.rank == 2 ? sa.dims[0] : 1, k = sa.dims[sa.rank - 1];
    long long p = sb.rank == 2 ? sb.dims[1] : 1;
    Gemm gm = {.nb = cg_count(g, id), .rows = cg_i64(g, m), .k = k, .cols = p};
    gm.reduce = n->op == CG_BMEAN_MATMUL;
    if (gm.reduce)
        gm.nb = g->fs->n;
    gm.a = operand(g, n->args[0], m * k, k, 1);
    gm.b = operand(g, n->args[1], k * p, p, 1);
    gm.c = operand(g, id, m * p, p, 1);
    emit_gemm(g, &gm);
}

/* outer(a, b) = [p, 1] @ [1, q] over the flattened operands. */
static void emit_outer(Cg *g, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    long long p = cg_size(&g->plan->nodes[n->args[0]]), q = cg_size(&g->plan->nodes[n->args[1]]);
    Gemm gm = {.nb = cg_count(g, id), .rows = cg_i64(g, p), .k = 1, .cols = q};
    gm.reduce = n->op == CG_BMEAN_OUTER;
    if (gm.reduce)
        gm.nb = g->fs->n;
    gm.a = operand(g, n->args[0], p, 1, 0);
    gm.b = operand(g, n->args[1], q, 0, 1);
    gm.c = operand(g, id, p * q, q, 1);
    emit_gemm(g, &gm);
}

void cg_gemm_emit(Cg *g, int id)
{
    int op = g->plan->nodes[id].op;
    if (op == IR_OUTER || op == CG_BMEAN_OUTER)
        emit_outer(g, id);
    else
        emit_matmul(g, id);
}
