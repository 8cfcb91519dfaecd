/* cg_mm.c - the batch's matrix products as register-blocked kernels over explicit vectors.
 *
 *   C(m, n) = sum over k of A(m, k) B(k, n)
 *
 * Two forms, chosen by which dimension is contiguous, so no operand is ever transposed:
 *   dot   A and B both run along k (the forward W @ x_b over the batch: X W^T). A block of
 *         R rows x S columns keeps R*S vector accumulators over k, then reduces them to
 *         S-lane vectors of C (cg_vsums).
 *   axpy  B and C run along n (dz_b @ W over the batch, and a weight gradient summed over
 *         the batch, U^T V). A block of R rows x V vectors of C is kept in registers while
 *         A(m, k) is broadcast against B's row k.
 * Each kernel is an outlined task function over blocks of C's columns (a weight gradient:
 * of its rows) (cg_task.c), so the thread pool can split it; every element of C is a whole
 * sum in a fixed order. */
#include "cg.h"

/* Register blocks, sized to the target's vector registers (Cg.vregs):
 *   dot   R x S accumulators, and R + S vectors loaded a step:   R*S + R + S registers
 *   axpy  R x V accumulators, V vectors of B and one broadcast:  R*V + V + 1
 * 32 registers (AVX-512): dot 4 x 4 (24), axpy 4 x 4 (21). 16 (AVX2, SSE): dot 3 x 3 (15),
 * axpy 6 x 2 (15, the shape of BLIS's Haswell kernel); 4 x 4 there would need 24 and 21,
 * and the spills cost more than the larger block saves. Neither changes a result: each
 * element of C has an accumulator of its own, summed in the same order whatever the block. */
enum { MAX_R = 6, MAX_S = 4 }; /* the largest blocks: array sizes */

typedef struct Blocks {
    int dot_r, dot_s, axpy_r, axpy_v;
} Blocks;

static Blocks blocks_for(int vregs)
{
    return vregs >= 32 ? (Blocks){4, 4, 4, 4} : (Blocks){3, 3, 6, 2};
}

typedef enum { MM_DOT, MM_AXPY } MmKind;

/* A kernel's view of a param whose sgd update it does (cg_sgd.c): its weights, lr splat,
 * the gradient buffer, and whether to update the weights (else store the gradient). */
typedef struct Update {
    LLVMValueRef w, lr, grad, update;
} Update;

typedef struct Mm {
    MmKind kind;
    int a, b, c;          /* nodes */
    long long rows_per;   /* rows of C: M = rows_per * (samples when by_sample, else 1) */
    bool by_sample;
    long long N;          /* columns of C */
    long long K;          /* contracted length; -1: the samples */
    long long a_rs, a_ks; /* A(m, k) = a[m*a_rs + k*a_ks] */
    long long b_rs;       /* axpy: B(k, n) = b[k*b_rs + n]; dot: B(k, n) = b[n*b_rs + k] */
    long long c_rs;       /* C(m, n) = c[m*c_rs + n] */
    bool mean;            /* C is a sum over the samples: divide by n */
    CgFuse fuse;          /* by_sample with one row a sample: what the epilogue also computes */
    int param;            /* a weight gradient whose sgd update is fused in (cg_sgd.c), or -1 */
    Update upd;           /* inside the kernel: that param's weights and lr */
    Blocks bl;            /* the register blocks */
} Mm;

static LLVMValueRef i64c(Cg *g, long long v)
{
    return cg_i64(g, v);
}

static LLVMValueRef add(Cg *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildNSWAdd(g->b, a, b, "");
}

static LLVMValueRef mul(Cg *g, LLVMValueRef a, long long k)
{
    return k == 1 ? a : LLVMBuildNSWMul(g->b, a, i64c(g, k), "");
}

/* &p[i] */
static LLVMValueRef at(Cg *g, LLVMValueRef p, LLVMValueRef i)
{
    return cg_gep(g, p, i);
}

static LLVMValueRef rows_of(Cg *g, const Mm *m)
{
    return m->by_sample ? mul(g, g->fs->n, m->rows_per) : i64c(g, m->rows_per);
}

static LLVMValueRef k_of(Cg *g, const Mm *m)
{
    return m->K < 0 ? g->fs->n : i64c(g, m->K);
}

/* ---- accumulators: stack slots the optimiser keeps in registers ---- */

static void acc_init(Cg *g, LLVMValueRef *slot, int count, int lanes)
{
    for (int i = 0; i < count; i++) {
        slot[i] = cg_slot(g, cg_vec_type(g, lanes), "acc");
        LLVMBuildStore(g->b, cg_vzero(g, lanes), slot[i]);
    }
}

static void acc_fma(Cg *g, LLVMValueRef slot, LLVMValueRef x, LLVMValueRef y, int lanes)
{
    LLVMValueRef old = LLVMBuildLoad2(g->b, cg_vec_type(g, lanes), slot, "");
    LLVMBuildStore(g->b, cg_vfma(g, x, y, old), slot);
}

static LLVMValueRef acc_get(Cg *g, LLVMValueRef slot, int lanes)
{
    return LLVMBuildLoad2(g->b, cg_vec_type(g, lanes), slot, "");
}

/* ---- the epilogue: one vector of C ---- */

/* v: the mean gradient's vector at element `at` of the param: w[at..] -= lr * v, or
 * grad[at..] = v. */
static void update_epilogue(Cg *g, const Update *k, LLVMValueRef v, LLVMValueRef at, int lanes, int on)
{
    LLVMBasicBlockRef upd = cg_block(g, "update");
    LLVMBasicBlockRef st = cg_block(g, "store");
    LLVMBasicBlockRef next = cg_block(g, "next");
    LLVMBuildCondBr(g->b, k->update, upd, st);
    LLVMPositionBuilderAtEnd(g->b, upd);
    LLVMValueRef p = cg_gep(g, k->w, at);
    LLVMValueRef w = cg_vload(g, p, lanes, on);
    cg_vstore(g, LLVMBuildFSub(g->b, w, LLVMBuildFMul(g->b, k->lr, v, ""), ""), p, lanes, on);
    LLVMBuildBr(g->b, next);
    LLVMPositionBuilderAtEnd(g->b, st);
    cg_vstore(g, v, cg_gep(g, k->grad, at), lanes, on);
    LLVMBuildBr(g->b, next);
    LLVMPositionBuilderAtEnd(g->b, next);
}

static void store_c(Cg *g, const Mm *m, LLVMValueRef row, LLVMValueRef col, LLVMValueRef v,
                    int lanes, int on)
{
    if (m->mean)
        v = LLVMBuildFMul(g->b, v, cg_splat(g, g->fs->inv_n, lanes), "");
    if (m->param >= 0) {
        update_epilogue(g, &m->upd, v, add(g, mul(g, row, m->c_rs), col), lanes, on);
        return;
    }
    if (m->by_sample && m->rows_per == 1) {
        cg_fuse_epilogue(g, &m->fuse, v, row, col, lanes, on);
        return;
    }
    LLVMValueRef p = at(g, g->fs->base[m->c], add(g, mul(g, row, m->c_rs), col));
    cg_vstore(g, v, p, lanes, on);
}

/* ---- dot: R x S accumulators along k ---- */

static void dot_step(Cg *g, const Mm *m, LLVMValueRef *acc, int R, int S, LLVMValueRef m0,
                     LLVMValueRef n0, LLVMValueRef k0, int on)
{
    int w = g->lanes;
    LLVMValueRef av[MAX_R], bv[MAX_S];
    for (int r = 0; r < R; r++) {
        LLVMValueRef i = add(g, mul(g, add(g, m0, i64c(g, r)), m->a_rs), k0);
        av[r] = cg_vload(g, at(g, g->fs->base[m->a], i), w, on);
    }
    for (int s = 0; s < S; s++) {
        LLVMValueRef i = add(g, mul(g, add(g, n0, i64c(g, s)), m->b_rs), k0);
        bv[s] = cg_vload(g, at(g, g->fs->base[m->b], i), w, on);
    }
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++)
            acc_fma(g, acc[r * S + s], av[r], bv[s], w);
}

static void dot_block(Cg *g, const Mm *m, int R, int S, LLVMValueRef m0, LLVMValueRef n0)
{
    int w = g->lanes;
    LLVMValueRef acc[MAX_R * MAX_S];
    acc_init(g, acc, R * S, w);
    long long full = m->K / w, tail = m->K % w;
    CgLoop lk = cg_loop_begin(g, i64c(g, 0), i64c(g, full), "k");
    dot_step(g, m, acc, R, S, m0, n0, mul(g, lk.i, w), w);
    cg_loop_end(g, &lk);
    if (tail)
        dot_step(g, m, acc, R, S, m0, n0, i64c(g, full * w), (int)tail);
    for (int r = 0; r < R; r++) {
        LLVMValueRef row[MAX_S];
        for (int s = 0; s < S; s++)
            row[s] = acc_get(g, acc[r * S + s], w);
        LLVMValueRef v = cg_vsums(g, row, S, w);
        store_c(g, m, add(g, m0, i64c(g, r)), n0, v, S, S);
    }
}

/* ---- axpy: R rows x V vectors of C, A broadcast ---- */

static void axpy_block(Cg *g, const Mm *m, int R, int V, int last_on, LLVMValueRef m0,
                       LLVMValueRef n0)
{
    int w = g->lanes;
    LLVMValueRef acc[MAX_R * MAX_S], bv[MAX_S];
    acc_init(g, acc, R * V, w);
    CgLoop lk = cg_loop_begin(g, i64c(g, 0), k_of(g, m), "k");
    LLVMValueRef brow = add(g, mul(g, lk.i, m->b_rs), n0);
    for (int v = 0; v < V; v++)
        bv[v] = cg_vload(g, at(g, g->fs->base[m->b], add(g, brow, i64c(g, v * w))), w,
                         v == V - 1 ? last_on : w);
    for (int r = 0; r < R; r++) {
        LLVMValueRef i = add(g, mul(g, add(g, m0, i64c(g, r)), m->a_rs), mul(g, lk.i, m->a_ks));
        LLVMValueRef a = cg_splat(g, cg_load_at(g, g->fs->base[m->a], i), w);
        for (int v = 0; v < V; v++)
            acc_fma(g, acc[r * V + v], a, bv[v], w);
    }
    cg_loop_end(g, &lk);
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++)
            store_c(g, m, add(g, m0, i64c(g, r)), add(g, n0, i64c(g, v * w)),
                    acc_get(g, acc[r * V + v], w), w, v == V - 1 ? last_on : w);
}

/* ---- one column block: all rows, R at a time, then one at a time ---- */

typedef struct Cols {
    int width;   /* dot: S columns; axpy: V vectors */
    int last_on; /* axpy: lanes of the last vector */
} Cols;

static void block(Cg *g, const Mm *m, int R, Cols c, LLVMValueRef m0, LLVMValueRef n0)
{
    if (m->kind == MM_DOT)
        dot_block(g, m, R, c.width, m0, n0);
    else
        axpy_block(g, m, R, c.width, c.last_on, m0, n0);
}

/* Products of fewer multiply-adds per sample than this get one-row blocks only: they
 * take little time, and half the code is half the compile. */
enum { SMALL = 4096 };

static long long macs_per_sample(const Mm *m)
{
    return m->by_sample ? m->rows_per * m->N * m->K : m->rows_per * m->N;
}

/* Rows [lo, hi) of the column block at n0: R at a time, then one at a time (lo is a
 * multiple of R). */
static void column_block(Cg *g, const Mm *m, Cols c, LLVMValueRef lo, LLVMValueRef hi,
                         LLVMValueRef n0)
{
    int R = m->kind == MM_DOT ? m->bl.dot_r : m->bl.axpy_r;
    LLVMValueRef end = lo;
    if (macs_per_sample(m) >= SMALL) {
        LLVMValueRef nrb = LLVMBuildSDiv(g->b, LLVMBuildNSWSub(g->b, hi, lo, ""), i64c(g, R), "");
        CgLoop lr = cg_loop_begin(g, i64c(g, 0), nrb, "rb");
        block(g, m, R, c, add(g, lo, mul(g, lr.i, R)), n0);
        cg_loop_end(g, &lr);
        end = add(g, lo, mul(g, nrb, R));
    }
    CgLoop lt = cg_loop_begin(g, end, hi, "r");
    block(g, m, 1, c, lt.i, n0);
    cg_loop_end(g, &lt);
}

/* Rows of A a task's column blocks pass over together: as many as fill half the core's
 * L2 (the other half for the B panels passing through and C), a multiple of R. Each
 * column block's B panel (S rows of W, or K x V vectors) is a few KB and stays in L1
 * while the panel's rows stream from L2; without the split, a batch whose A passes the L2
 * (128 samples x 784 f32 is 392 KB, over Haswell's 256 KB) would stream from L3 once per
 * column block. The split changes no sum: each element of C is still one sum over k. */
static long long panel_rows(Cg *g, const Mm *m)
{
    int R = m->kind == MM_DOT ? m->bl.dot_r : m->bl.axpy_r;
    if (m->K < 0 || macs_per_sample(m) < SMALL)
        return 1LL << 40;
    long long rows = g->l2 / 2 / (m->K * g->real_size) / R * R;
    return rows > R ? rows : R;
}

/* Columns per block, and the full blocks and the narrower last one. */
static void column_split(Cg *g, const Mm *m, Cols *full, Cols *tail, long long *nfull,
                         long long *per)
{
    int w = g->lanes;
    if (m->kind == MM_DOT) {
        int S = m->N < m->bl.dot_s ? (int)m->N : m->bl.dot_s;
        *per = S;
        *full = (Cols){S, 0};
        *tail = (Cols){(int)(m->N % S), 0};
    } else {
        *per = (long long)m->bl.axpy_v * w;
        *full = (Cols){m->bl.axpy_v, w};
        long long rest = m->N % *per;
        *tail = (Cols){(int)((rest + w - 1) / w), (int)(rest - (rest + w - 1) / w * w + w)};
    }
    *nfull = m->N / *per;
}

static void emit_tasks(Cg *g, Mm *m, CgTask *t)
{
    Cols full, tail;
    long long nfull, per, panel = panel_rows(g, m);
    column_split(g, m, &full, &tail, &nfull, &per);
    LLVMValueRef rows = rows_of(g, m);
    LLVMValueRef npanels = LLVMBuildSDiv(g->b, add(g, rows, i64c(g, panel - 1)), i64c(g, panel), "");
    CgLoop lp = cg_loop_begin(g, i64c(g, 0), npanels, "panel");
    LLVMValueRef lo = mul(g, lp.i, panel), hi = cg_imin(g, add(g, lo, i64c(g, panel)), rows);
    CgLoop lj = cg_loop_begin(g, t->lo, t->hi, "jb");
    LLVMValueRef n0 = mul(g, lj.i, per);
    if (tail.width == 0) {
        column_block(g, m, full, lo, hi, n0);
    } else {
        LLVMBasicBlockRef yes = cg_block(g, "full");
        LLVMBasicBlockRef no = cg_block(g, "tail");
        LLVMBasicBlockRef join = cg_block(g, "next");
        LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, lj.i, i64c(g, nfull), ""), yes, no);
        LLVMPositionBuilderAtEnd(g->b, yes);
        column_block(g, m, full, lo, hi, n0);
        LLVMBuildBr(g->b, join);
        LLVMPositionBuilderAtEnd(g->b, no);
        column_block(g, m, tail, lo, hi, n0);
        LLVMBuildBr(g->b, join);
        LLVMPositionBuilderAtEnd(g->b, join);
    }
    cg_loop_end(g, &lj);
    cg_loop_end(g, &lp);
}

/* A weight gradient (C = U^T V / n, C's rows the weight's rows) is split between tasks by
 * blocks of rows, as the forward product W x_b is split by W's rows (dot: C's columns).
 * A thread then updates the rows it reads in the next forward pass, so a weight does not
 * move between the cores' caches every step. Within a task, each block of columns keeps
 * its panel of V in L1 while the task's rows pass over it. */
static bool by_rows(const Mm *m)
{
    return m->kind == MM_AXPY && !m->by_sample && macs_per_sample(m) >= SMALL;
}

/* Rows [lo*R, hi*R) (clipped to C's rows) of the column block at n0. */
static void row_block(Cg *g, const Mm *m, Cols c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef n0)
{
    int R = m->bl.axpy_r;
    long long whole = m->rows_per / R; /* blocks of R rows; then single rows */
    CgLoop lr = cg_loop_begin(g, lo, cg_imin(g, hi, i64c(g, whole)), "rb");
    block(g, m, R, c, mul(g, lr.i, R), n0);
    cg_loop_end(g, &lr);
    LLVMValueRef from = cg_imax(g, mul(g, lo, R), i64c(g, whole * R));
    CgLoop lt = cg_loop_begin(g, from, cg_imin(g, mul(g, hi, R), i64c(g, m->rows_per)), "r");
    block(g, m, 1, c, lt.i, n0);
    cg_loop_end(g, &lt);
}

static void emit_row_tasks(Cg *g, Mm *m, CgTask *t)
{
    Cols full, tail;
    long long nfull, per;
    column_split(g, m, &full, &tail, &nfull, &per);
    CgLoop lj = cg_loop_begin(g, i64c(g, 0), i64c(g, nfull), "jb");
    row_block(g, m, full, t->lo, t->hi, mul(g, lj.i, per));
    cg_loop_end(g, &lj);
    if (tail.width > 0)
        row_block(g, m, tail, t->lo, t->hi, i64c(g, nfull * per));
}

/* ---- one kernel per distinct product ----
 * Kernels of the same shape, kind, blocks, fused chain and buffer layout are the same code
 * on other buffers (which the record carries): the first is emitted, the others call it.
 * A stack of 40 equal layers then has a handful of kernels instead of 120, and LLVM
 * optimises and compiles each once. The signature is everything the emission reads:
 * the product's numbers, each buffer's varying-ness and size, and the chain's ops, their
 * numbers and where each operand comes from (a buffer's position, a constant, C itself). */

static int position(const int *nodes, int nnodes, int id)
{
    for (int i = 0; i < nnodes; i++)
        if (nodes[i] == id)
            return i;
    return -1;
}

static const char *operand_code(Cg *g, const Mm *m, const int *nodes, int nnodes, int id)
{
    const CgNode *n = &g->plan->nodes[id];
    if (id == m->c)
        return "C";
    for (int i = 0; i < m->fuse.count; i++)
        if (m->fuse.nodes[i] == id)
            return arena_printf(g->arena, "L%d", i);
    if (n->where == CG_AT_CONST)
        return arena_printf(g->arena, "K%.17g", n->num);
    return arena_printf(g->arena, "B%d", position(nodes, nnodes, id));
}

static const char *signature(Cg *g, const Mm *m, const int *nodes, int nnodes, int nextra)
{
    Arena *a = g->arena;
    char *s = arena_printf(a, "%d %lld %d %lld %lld %lld %lld %lld %lld %d %d %d %d %d %d %d|",
                           m->kind, m->rows_per, m->by_sample, m->N, m->K, m->a_rs, m->a_ks,
                           m->b_rs, m->c_rs, m->mean, m->param >= 0, nextra, m->bl.dot_r,
                           m->bl.dot_s, m->bl.axpy_r, m->bl.axpy_v);
    for (int i = 0; i < nnodes; i++) {
        const CgNode *n = &g->plan->nodes[nodes[i]];
        s = arena_printf(a, "%s%d,%lld,%d;", s, n->varying, cg_size(n), g->fs->base[nodes[i]] != NULL);
    }
    const CgFuse *f = &m->fuse;
    s = arena_printf(a, "%s|%d %lld %d", s, f->count, f->size, f->store_m);
    for (int i = 0; i < f->count; i++) {
        const CgNode *n = &g->plan->nodes[f->nodes[i]];
        s = arena_printf(a, "%s;%d %.17g %d %s", s, n->op, n->num, f->store[i],
                         operand_code(g, m, nodes, nnodes, f->nodes[i]));
        for (int k = 0; k < n->nargs; k++)
            s = arena_printf(a, "%s %s", s, operand_code(g, m, nodes, nnodes, n->args[k]));
    }
    return s;
}

static void emit_mm(Cg *g, Mm *m, int id)
{
    if (m->by_sample && m->rows_per == 1)
        cg_fuse_plan(g, id, &m->fuse);
    else
        cg_fuse_none(g, id, &m->fuse);
    Cols full, tail;
    long long nfull, per;
    column_split(g, m, &full, &tail, &nfull, &per);
    long long ntasks = by_rows(m) ? (m->rows_per + m->bl.axpy_r - 1) / m->bl.axpy_r : nfull + (tail.width > 0);
    /* work: M * N * K multiply-adds, in the caller */
    LLVMValueRef work = LLVMBuildSIToFP(g->b, rows_of(g, m), g->f64, "");
    work = LLVMBuildFMul(g->b, work, LLVMBuildSIToFP(g->b, k_of(g, m), g->f64, ""), "");
    work = LLVMBuildFMul(g->b, work, LLVMConstReal(g->f64, (double)m->N), "work");
    int nodes[3 + CG_FUSE_BUFFERS] = {m->a, m->b, m->c};
    int nnodes = 3 + cg_fuse_buffers(g, &m->fuse, nodes + 3);
    CgTask t;
    const char *name = g->plan->nodes[id].name;
    LLVMValueRef extra[3];
    int nextra = 0;
    if (m->param >= 0) { /* the weights, lr and whether to update them */
        extra[0] = g->fs->sgd->w[m->param];
        extra[1] = g->fs->sgd->lr;
        extra[2] = g->fs->sgd->update;
        nextra = 3;
    }
    const char *sig = signature(g, m, nodes, nnodes, nextra);
    if (cg_task_reuse(g, sig, nodes, nnodes, extra, nextra, i64c(g, ntasks), work))
        return;
    cg_task_begin(g, &t, name ? name : "mm", nodes, nnodes, extra, nextra);
    t.signature = sig;
    if (m->param >= 0)
        m->upd = (Update){extra[0], cg_splat(g, extra[1], g->lanes), g->fs->base[m->c], extra[2]};
    if (by_rows(m))
        emit_row_tasks(g, m, &t);
    else
        emit_tasks(g, m, &t);
    cg_task_end(g, &t, i64c(g, ntasks), work);
}

/* ---- which products take these forms ---- */

static const CgNode *node(Cg *g, int id)
{
    return &g->plan->nodes[id];
}

static bool classify(Cg *g, int id, Mm *m)
{
    const CgNode *n = node(g, id);
    if (n->nargs != 2)
        return false;
    const CgNode *a = node(g, n->args[0]), *b = node(g, n->args[1]);
    if (a->where == CG_AT_CONST || b->where == CG_AT_CONST)
        return false;
    if (n->op == IR_MATMUL && !a->varying && b->varying && a->shape.rank == 2 && b->shape.rank == 1) {
        /* W @ x_b for every b: C[b, i] = sum_k X[b, k] W[i, k] */
        long long rows = a->shape.dims[0], k = a->shape.dims[1];
        *m = (Mm){.kind = MM_DOT, .a = n->args[1], .b = n->args[0], .c = id, .rows_per = 1,
                  .by_sample = true, .N = rows, .K = k, .a_rs = k, .a_ks = 1, .b_rs = k, .c_rs = rows};
        return true;
    }
    if (n->op == IR_MATMUL && a->varying && !b->varying && b->shape.rank == 2) {
        /* a_b @ W for every b: the samples' rows stacked, times W */
        long long k = b->shape.dims[0], p = b->shape.dims[1];
        long long rows = a->shape.rank == 2 ? a->shape.dims[0] : 1;
        *m = (Mm){.kind = MM_AXPY, .a = n->args[0], .b = n->args[1], .c = id, .rows_per = rows,
                  .by_sample = true, .N = p, .K = k, .a_rs = k, .a_ks = 1, .b_rs = p, .c_rs = p};
        return true;
    }
    if (n->op == CG_BMEAN_OUTER && a->varying && b->varying) {
        /* mean over b of outer(u_b, v_b) = U^T V / n */
        long long p = cg_size(a), q = cg_size(b);
        *m = (Mm){.kind = MM_AXPY, .a = n->args[0], .b = n->args[1], .c = id, .rows_per = p,
                  .N = q, .K = -1, .a_rs = 1, .a_ks = p, .b_rs = q, .c_rs = q, .mean = true};
        return true;
    }
    return false;
}

bool cg_mm_emit(Cg *g, int id)
{
    Mm m;
    if (!classify(g, id, &m))
        return false;
    m.bl = blocks_for(g->vregs);
    const CgNode *c = node(g, id);
    m.param = g->fs->sgd && c->op == CG_BMEAN_OUTER && c->where == CG_AT_GRAD && g->fs->sgd->deferred[c->index]
            ? c->index : -1;
    emit_mm(g, &m, id);
    return true;
}
