/* cg.h - the code generator's internals, shared by codegen.c and the cg_*.c files.
 *
 * The IR describes one sample. The code generator first builds a plan (cg_plan.c): a copy of
 * the IR's nodes plus the nodes that take gradients' means over the batch, which buffer
 * holds each node's value, and which nodes each generated function must compute. Then it
 * emits LLVM IR and hands the module to the target. The files form layers, each calling
 * only those below it (docs/design.md draws them):
 *   cg_train.c            the generated functions
 *   cg_sgd.c              the step's own sgd update
 *   cg_optim.c            the optimizer step
 *   cg_kernels.c          a node's kernel: products (cg_mm.c, else cg_gemm.c) or a loop nest
 *   cg_mm.c, cg_gemm.c    products; cg_mm.c's epilogues fuse nodes (cg_fuse.c)
 *   cg_fuse.c, cg_task.c, cg_check.c
 *   cg_ops.c              what each element op computes, on reals and vectors
 *   cg_vec.c, cg_util.c, cg_frame.c   vectors, builders, the module and its function frames
 * beside them: cg_plan.c (before), cg_desc.c, cg_target.c, cg_link.c, cg_jit.c (after). */
#ifndef NNC_CG_H
#define NNC_CG_H

#include <stdbool.h>

#include <llvm-c/Core.h>
#include <llvm-c/Orc.h>
#include <llvm-c/TargetMachine.h>

#include "arena.h"
#include "codegen.h"
#include "ir.h"
#include "nnc_rt.h"

/* ---- the plan (cg_plan.c) ---- */

/* Ops the code generator adds to the IR's: means over the batch of a varying value. */
enum {
    CG_BMEAN = IR_NUM_OPS, /* (a): mean over the batch of a */
    CG_BMEAN_MATMUL,       /* (a, b): mean over the batch of a @ b, never materialised per sample */
    CG_BMEAN_OUTER,        /* (a, b): mean over the batch of outer(a, b) */
    CG_BMEAN_CONVW,        /* (x, d): mean over the batch of conv2d_backward_weight(x, d) */
};

/* Where a node's value lives while a generated function runs. */
typedef enum {
    CG_AT_NONE,   /* not computed by any function */
    CG_AT_INPUT,  /* the batch's x */
    CG_AT_TARGET, /* the batch's t */
    CG_AT_PARAM,  /* nnc_rt_param(run, index) */
    CG_AT_CONST,  /* no memory: the number num */
    CG_AT_WS,     /* the workspace, at offset */
    CG_AT_GRAD,   /* nnc_rt_grad(run, index): a param's mean gradient computed in place */
    CG_AT_PRED,   /* the predictions buffer passed to the step function */
} CgWhere;

typedef struct CgNode {
    int op;         /* IrOp or CG_* */
    Shape shape;    /* per sample */
    int args[2], nargs;
    double num;
    int index;      /* CG_AT_PARAM / CG_AT_GRAD: the param; IR_SLICE, IR_DROPOUT_MASK: the IR's */
    IrWindow win;   /* conv and pool ops */
    bool varying;   /* one value per sample: an [n, shape] buffer; else one value */
    const char *name;
    CgWhere where;
    long long offset;  /* CG_AT_WS: in elements; varying buffers are scaled by the batch size */
    /* conv ops: a varying workspace scratch of aux_size elements a sample at aux (the
     * im2col matrix of x, shared by the nodes of one x and window; conv2d_backward_input:
     * K^T d before col2im); aux_size 0: none */
    long long aux, aux_size;
    /* CG_BMEAN_CONVW: the sums dK^T [KK, F rounded up to 64], a non-varying workspace
     * buffer (cg_conv.c) */
    long long wacc;
} CgNode;

/* The functions the module defines, each computing a set of roots. */
typedef enum { CG_FN_STEP, CG_FN_EVAL_LOSS, CG_FN_EVAL, CG_NFN } CgFn;

typedef struct CgPlan {
    CgNode *nodes;
    int nnodes, cap;
    int nir;           /* nodes [0, nir) are the IR's own */
    int nparams;
    int *mean_grad;    /* per param: the node holding its batch-mean gradient, -1 none */
    int loss, output;
    bool *live[CG_NFN];  /* per function: which nodes it computes */
    long long var_elems;   /* per-sample elements of all varying workspace buffers */
    long long fixed_elems; /* elements of the non-varying ones */
    long long pred_offset; /* varying workspace buffer for the step's predictions */
} CgPlan;

CgPlan *cg_plan(const IrProgram *p, Arena *a);
long long cg_size(const CgNode *n);

/* ---- the target (cg_target.c) ---- */

/* The machine code is generated for: the host's CPU (cpu NULL or "native") or one named
 * (x86-64-v3, znver3, ...), with features added or removed (--cpu-features: +a,-b). */
typedef struct CgTarget {
    const char *cpu;          /* LLVM's name */
    const char *required;     /* comma-separated features the executable checks at start */
    int vector_bytes;         /* the widest vector register: 64 (AVX-512), 32 (AVX), 16 */
    int vector_regs;          /* vector registers: 32 with AVX-512, else 16 */
    int l2_kb;                /* the L2 cache of a core, KB */
    LLVMTargetMachineRef tm;  /* the caller disposes it */
    const char *llvm_cpu, *llvm_features; /* what tm was made with (cg_target_machine) */
    int opt_level;
} CgTarget;

/* ---- emission state: the module's (Cg) and the function's being emitted (CgFrame) ---- */

typedef struct CgRtFn {
    LLVMValueRef fn;
    LLVMTypeRef type;
} CgRtFn;

enum { CG_RT_INT, CG_RT_REAL, CG_RT_PARAM, CG_RT_GRAD, CG_RT_STATE, CG_RT_WORKSPACE,
       CG_RT_EPOCH_BEGIN, CG_RT_BATCH, CG_RT_BATCH_END, CG_RT_EPOCH_END, CG_RT_PARALLEL,
       CG_RT_GMAX, CG_RT_UPDATE_SAFE, CG_NRT };

/* What is true inside one generated function. Frames nest as the functions are emitted:
 * a task's kernel (cg_task.c) is emitted in a frame of its own while its caller's waits,
 * and closing the kernel's frame puts the builder back where the caller was. */
typedef struct CgFrame {
    struct CgFrame *prev;   /* the enclosing function's frame, NULL at the top */
    LLVMBasicBlockRef resume; /* where the builder was in prev's function */
    LLVMValueRef fn;
    LLVMBasicBlockRef entry;
    LLVMValueRef *base;     /* per plan node: its buffer (real*), NULL for constants */
    LLVMValueRef n;         /* the batch's sample count, i64 */
    LLVMValueRef nreal;     /* the same as a real */
    LLVMValueRef inv_n;     /* 1 / n: batch means multiply by it (one division per kernel) */
    LLVMValueRef ws;        /* the workspace, real* (a pass's frame only) */
    LLVMValueRef batch_cap; /* nnc_rt_int(run, NNC_BATCH), i64: varying buffers hold this many */
    LLVMValueRef run;       /* the NncRun* (NULL in a task's kernel: the pool's threads hold none) */
    LLVMValueRef io[3];     /* a pass's x, t and pred arguments */
    /* which nodes the pass computes (now), whose reads count (cg_fuse.c), which were
     * computed already in another node's kernel; a kernel's frame shares its caller's */
    const bool *live, *readers;
    bool *done;
    struct CgSgd *sgd;      /* in a step with sgd fused in (cg_sgd.c), else NULL */
    bool training;          /* nnc_step: dropout masks are drawn (else all ones) */
    int prof;               /* CG_PROF_*: an instrumented copy of the step or train (cg_profile.c) */
    LLVMValueRef prof_on;   /* CG_PROF_GUARD: i1, whether this run profiles */
} CgFrame;

typedef struct Cg {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef real, realp, i8p, i1, i32, i64, f64, voidt;
    int real_size;
    int lanes; /* reals in the target's widest vector register */
    int vregs; /* the target's vector registers: the kernels' blocks are sized for them */
    long long l2; /* bytes of a core's L2: the products' row panels are sized for it */
    const IrProgram *ir;
    CgPlan *plan;
    Arena *arena;
    CgRtFn rt[CG_NRT];
    LLVMValueRef scan_fn;   /* nnc_scan (cg_check.c) */
    LLVMTypeRef scan_type;
    CgFrame *fs;            /* the function being emitted */
    struct CgKernel *kernels; /* emitted task kernels by signature (cg_task.c) */
    struct CgProf *prof;    /* the instrumented functions' rows (cg_profile.c), NULL before */
    LLVMValueRef train_profile, check_batch; /* those functions, for the descriptor */
} Cg;

/* ---- the module and its functions (cg_frame.c) ---- */

void cg_init(Cg *g, LLVMContextRef ctx, LLVMModuleRef mod, const IrProgram *p, CgPlan *plan,
             int real_size, const CgTarget *t, Arena *a);
void cg_dispose(Cg *g);
/* An internal function of the module. */
LLVMValueRef cg_add_function(Cg *g, const char *name, LLVMTypeRef type);
/* Opens f for fn (its entry block, the builder there) inside the current frame; the
 * fields the caller's frame shares with a kernel's (live, readers, done, sgd) are copied
 * when share is true. cg_frame_close goes back to the enclosing frame where it was. */
void cg_frame_open(Cg *g, CgFrame *f, LLVMValueRef fn, bool share);
void cg_frame_close(Cg *g);
/* A stack slot in the entry block (promoted to a register by the optimiser). */
LLVMValueRef cg_slot(Cg *g, LLVMTypeRef type, const char *name);
LLVMValueRef cg_call_rt(Cg *g, int which, LLVMValueRef *args, unsigned nargs);
LLVMValueRef cg_real_ptr(Cg *g, LLVMValueRef p);
/* nnc_rt_int(run, which) as an i64 */
LLVMValueRef cg_rt_int(Cg *g, LLVMValueRef run, int which);
/* nnc_rt_param/grad (k ignored) or nnc_rt_state(run, i, k), as real* */
LLVMValueRef cg_rt_buffer(Cg *g, int which, LLVMValueRef run, int i, int k);
/* Adds the attribute (nounwind, noinline, ...) to fn. */
void cg_fn_attr(Cg *g, LLVMValueRef fn, const char *name);

/* ---- helpers (cg_util.c) ---- */

LLVMValueRef cg_i64(Cg *g, long long v);
LLVMValueRef cg_i32(Cg *g, int v);
LLVMValueRef cg_real(Cg *g, double v);
/* The constant v of x's type: a real, or a vector of v in every lane. */
LLVMValueRef cg_const_like(Cg *g, LLVMValueRef x, double v);
LLVMValueRef cg_gep(Cg *g, LLVMValueRef ptr, LLVMValueRef index);
LLVMValueRef cg_load_at(Cg *g, LLVMValueRef ptr, LLVMValueRef index);
void cg_store_at(Cg *g, LLVMValueRef ptr, LLVMValueRef index, LLVMValueRef v);
/* A math function of one real or, for the intrinsics, a vector of reals: exp log sqrt
 * fabs (intrinsics), tanh log1p (libm, reals only). */
LLVMValueRef cg_math(Cg *g, const char *fn, LLVMValueRef x);
/* An overloaded intrinsic (llvm.pow, llvm.exp, ...) on one type. */
LLVMValueRef cg_intrinsic(Cg *g, const char *name, LLVMTypeRef type, LLVMValueRef *args,
                          unsigned nargs);
/* A hint to bring the cache line at p (a real *) into every level of the cache. */
void cg_prefetch(Cg *g, LLVMValueRef p);

/* A new basic block at the end of the current function. */
LLVMBasicBlockRef cg_block(Cg *g, const char *name);
/* Loops from `from` to `to` (i64), the body between begin and end. */
typedef struct CgLoop {
    LLVMBasicBlockRef head, exit;
    LLVMValueRef i;
} CgLoop;
CgLoop cg_loop_begin(Cg *g, LLVMValueRef from, LLVMValueRef to, const char *name);
void cg_loop_end(Cg *g, CgLoop *l);
/* ...with a hint to LLVM's loop passes (cg_util.c says when each is worth it). */
typedef enum { CG_LOOP_ROLLED, CG_LOOP_SCALAR } CgLoopKind;
void cg_loop_end_as(Cg *g, CgLoop *l, CgLoopKind kind);

/* Node element access: sample b (ignored unless the node varies), flat element i. */
LLVMValueRef cg_load(Cg *g, int node, LLVMValueRef b, LLVMValueRef i);
void cg_store(Cg *g, int node, LLVMValueRef b, LLVMValueRef i, LLVMValueRef v);
/* The number of samples a node's buffer holds: n when varying, else 1. */
LLVMValueRef cg_count(Cg *g, int node);
/* The smaller and the larger of two i64 values (signed). */
LLVMValueRef cg_imin(Cg *g, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_imax(Cg *g, LLVMValueRef a, LLVMValueRef b);

/* ---- explicit vectors (cg_vec.c) ---- */

enum { CG_MAX_LANES = 64 }; /* lanes a vector built here may have (an AVX-512 byte vector) */

LLVMTypeRef cg_vec_type(Cg *g, int lanes);
LLVMValueRef cg_splat(Cg *g, LLVMValueRef x, int lanes);
LLVMValueRef cg_vzero(Cg *g, int lanes);
/* The vector at p; only the first `on` lanes are read (the rest are 0) when on < lanes. */
LLVMValueRef cg_vload(Cg *g, LLVMValueRef p, int lanes, int on);
void cg_vstore(Cg *g, LLVMValueRef v, LLVMValueRef p, int lanes, int on);
LLVMValueRef cg_vfma(Cg *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);
/* count vectors of `lanes` -> one vector of count lanes: their sums, in a fixed order. */
LLVMValueRef cg_vsums(Cg *g, LLVMValueRef *acc, int count, int lanes);
/* The `lanes` x `lanes` matrix whose rows are v[0..lanes) transposed in place. */
void cg_vtranspose(Cg *g, LLVMValueRef *v, int lanes);

/* ---- what each element op computes (cg_ops.c) ---- */

/* Whether op has a vector form (cg_op_apply on vectors): the ops a product's epilogue can
 * compute in registers. The others call libm or need more than a few instructions. */
bool cg_op_vector(int op, double num);
/* The element op on x (and y, for the binary ones): reals, or vectors where cg_op_vector
 * says so. Every kernel builds an op through here, so fused or not, the same bits. */
LLVMValueRef cg_op_apply(Cg *g, int op, double num, LLVMValueRef x, LLVMValueRef y);
/* The numerically safe forms the fused losses use too. */
LLVMValueRef cg_op_softplus(Cg *g, LLVMValueRef x);

/* ---- outlined kernels run by the thread pool (cg_task.c) ---- */

typedef struct CgTask {
    LLVMTypeRef type;  /* the record: {i64 n, real *buffers..., extras...} */
    LLVMValueRef rec, kernel, lo, hi; /* lo, hi: the task range, inside the kernel */
    CgFrame frame;     /* the kernel's */
    const char *signature; /* set before cg_task_end: later calls with it reuse the kernel */
} CgTask;
/* A kernel emitted before with this signature: packs this call's record and runs it
 * (true); false when there is none. */
bool cg_task_reuse(Cg *g, const char *signature, const int *nodes, int nnodes,
                   LLVMValueRef *extra, int nextra, LLVMValueRef ntasks, LLVMValueRef work);
/* Starts kernel NAME in a frame of its own: inside it base[nodes[i]] and n are valid, and
 * extra[] (values of the caller of any type: buffers, reals, flags) are replaced by their
 * copies, fields of the record of the same types. */
void cg_task_begin(Cg *g, CgTask *t, const char *name, const int *nodes, int nnodes,
                   LLVMValueRef *extra, int nextra);
/* Ends the kernel and, back in the caller, runs tasks [0, ntasks) through
 * nnc_rt_parallel; work (f64) is the kernel's multiply-adds, for the pool to judge. */
void cg_task_end(Cg *g, CgTask *t, LLVMValueRef ntasks, LLVMValueRef work);

/* ---- elementwise nodes fused into a product's epilogue (cg_fuse.c) ---- */

/* Nodes a chain may hold, and so the buffers its epilogue may touch (each node and its two
 * operands); a chain that would grow past it stops, and the rest runs unfused. */
enum { CG_FUSE_MAX = 12, CG_FUSE_BUFFERS = 3 * CG_FUSE_MAX };
typedef struct CgFuse {
    int m;                  /* the product: a varying [size] node, one row of C a sample */
    long long size;
    int nodes[CG_FUSE_MAX]; /* computed after it, in this order */
    int count;
    bool store_m, store[CG_FUSE_MAX]; /* read by something outside the chain */
} CgFuse;
/* The chain after product m in the function being emitted; marks its nodes done. */
void cg_fuse_plan(Cg *g, int m, CgFuse *f);
/* No chain: the product alone, stored. */
void cg_fuse_none(Cg *g, int m, CgFuse *f);
/* The buffers the epilogue reads or writes besides m's (at most CG_FUSE_BUFFERS). */
int cg_fuse_buffers(Cg *g, const CgFuse *f, int nodes[CG_FUSE_BUFFERS]);
/* Stores v, C[row, col .. col+lanes) (the first `on` lanes valid), and the chain's values. */
void cg_fuse_epilogue(Cg *g, const CgFuse *f, LLVMValueRef v, LLVMValueRef row, LLVMValueRef col,
                      int lanes, int on);

/* The elementwise node first and the elementwise nodes after it that can share its loop
 * nest, computed in one; marks them done. */
void cg_fuse_run(Cg *g, int first);

/* ---- plain sgd done by the step, fused into the weight-gradient products (cg_sgd.c) ---- */

bool cg_sgd_fusable(const NncModelDesc *d, int nparams);
typedef struct CgOptim CgOptim;
typedef struct CgSgd {
    LLVMValueRef lr;     /* real */
    LLVMValueRef *w;     /* per param: nnc_rt_param's buffer */
    bool *deferred;      /* per param: its gradient's product runs after the checks */
    LLVMValueRef update; /* i1: the deferred products update w (else they store g) */
    CgOptim *optim;      /* its sgd rule, for the other params */
} CgSgd;
/* In the step, before its nodes: sets the frame's sgd and marks the deferred products done. */
void cg_sgd_step_begin(Cg *g, LLVMValueRef run, LLVMValueRef lr, CgOptim *optim);
/* After the nodes and the loss: the checks, then the update (fast or slow path); stores
 * the first param with a non-finite gradient, -1 none, into bad. */
void cg_sgd_step_end(Cg *g, LLVMValueRef run, LLVMValueRef bad, LLVMValueRef loss);

/* ---- finiteness checks (cg_check.c) ---- */

/* Defines nnc_scan, before the functions that check. */
void cg_check_helpers(Cg *g);
/* A zeroed vector slot of checks, as real*. */
LLVMValueRef cg_check_slot(Cg *g);
/* Adds x - x of p[0..size) into the slot; returns max |x| as a double. */
LLVMValueRef cg_scan(Cg *g, LLVMValueRef p, LLVMValueRef size, LLVMValueRef chk);
/* The slot's verdict: 0, or NaN when some element was not finite. */
LLVMValueRef cg_check_sum(Cg *g, LLVMValueRef chk);
/* 0 when p[0..size) is finite, else NaN; its max |x| (a double) is stored to max unless
 * that is NULL. */
LLVMValueRef cg_nonfinite(Cg *g, LLVMValueRef p, long long size, LLVMValueRef max);
/* nnc_rt_gmax(run) as a double*, and the address of param i's entry (runtime/nnc_rt.h:
 * where a step that checks its gradients reports their max |g| for the update guard). */
LLVMValueRef cg_gmax(Cg *g, LLVMValueRef run);
LLVMValueRef cg_gmax_at(Cg *g, LLVMValueRef gmax, int i);

/* ---- kernels (cg_kernels.c dispatches; cg_mm.c, cg_gemm.c) ---- */

void cg_emit_node(Cg *g, int node);
void cg_bind_node(Cg *g, int node); /* its buffer's address again, here (cg_train.c) */
/* The batch's products in register-blocked form (cg_mm.c); false: not one of its shapes. */
bool cg_mm_emit(Cg *g, int node);
/* Any product (matmul, outer and their batch means) as one strided loop nest (cg_gemm.c). */
void cg_gemm_emit(Cg *g, int node);
/* conv2d, its backward helpers and the batch mean of its weight gradient (cg_conv.c). */
void cg_conv_emit(Cg *g, int node);
/* pools and their backward, concat, slice, dropout masks (cg_pool.c). */
void cg_pool_emit(Cg *g, int node);
/* A workspace buffer at offset elements, scaled by the batch capacity when varying
 * (cg_train.c's layout: the varying buffers, then the others). */
LLVMValueRef cg_ws_buffer(Cg *g, long long offset, bool varying);
/* The element pointer of node's buffer for sample b (the buffer itself unless it varies). */
LLVMValueRef cg_sample_ptr(Cg *g, int node, LLVMValueRef b);
/* i64 index arithmetic of the image kernels: a + b, a * k (k a constant) */
static inline LLVMValueRef cg_iadd(Cg *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildNSWAdd(g->b, a, b, "");
}
static inline LLVMValueRef cg_imul(Cg *g, LLVMValueRef a, long long k)
{
    return k == 1 ? a : LLVMBuildNSWMul(g->b, a, cg_i64(g, k), "");
}
/* A task function over node's samples (one task a sample; one in all when it does not
 * vary) whose body computes sample b with nodes' buffers and the extras (cg_task.c's
 * record); work: multiply-adds a sample, for the pool. */
typedef void CgSampleFn(Cg *g, int node, LLVMValueRef b, LLVMValueRef *extra);
void cg_per_sample(Cg *g, int node, const int *nodes, int nnodes, LLVMValueRef *extra,
                   int nextra, CgSampleFn *body, double work);

/* ---- functions (cg_train.c), the optimizer (cg_optim.c), the descriptor (cg_desc.c) ---- */

/* The optimizer step (cg_optim.c): helpers made before train's body, hyper-parameters
 * read at train's start, one step after each batch. */
CgOptim *cg_optim_new(Cg *g, const NncModelDesc *d);
void cg_optim_begin(Cg *g, CgOptim *o, LLVMValueRef run);
/* The lr in force for the batch just gathered, as a real. */
LLVMValueRef cg_optim_lr(Cg *g, LLVMValueRef run);
void cg_optim_step(Cg *g, CgOptim *o, LLVMValueRef run);
/* One param's sgd update, w -= lr * grad, through the shared rule function. */
void cg_optim_sgd(Cg *g, CgOptim *o, LLVMValueRef w, LLVMValueRef grad, long long size, LLVMValueRef lr);

/* d: the train block's options (the optimizer's terms, whether sgd may be fused) */
void cg_emit_functions(Cg *g, const NncModelDesc *d, LLVMValueRef *train, LLVMValueRef *evaluate);
void cg_emit_desc(Cg *g, const NncModelDesc *d, LLVMValueRef train, LLVMValueRef evaluate);
LLVMTypeRef cg_desc_type(LLVMContextRef ctx, LLVMTypeRef train_ptr, LLVMTypeRef eval_ptr,
                         LLVMTypeRef *param_type);

/* ---- --profile and the first non-finite value (cg_profile.c) ---- */

/* How a function is instrumented: NONE not; TIME a mark after each kernel (--profile's
 * train, and its copy of a step with sgd fused in); CHECK the step node by node, each
 * node's buffer marked for a scan (check_batch); GUARD the normal step, its marks behind
 * nnc_rt_int(run, NNC_PROFILING). */
enum { CG_PROF_NONE, CG_PROF_TIME, CG_PROF_CHECK, CG_PROF_GUARD };
typedef struct CgProf CgProf;
/* Before the instrumented functions: their rows (the descriptor's ops). */
void cg_prof_begin(Cg *g);
const NncOpDesc *cg_prof_rows(const Cg *g, int *nrows);
/* In an instrumented step: node id's kernel and its mark. */
void cg_prof_emit_node(Cg *g, int id);
/* In --profile's train: the mark of a runtime call (NNC_ROW_*), of param's update. */
void cg_prof_mark(Cg *g, LLVMValueRef run, int row);
void cg_prof_update(Cg *g, LLVMValueRef run, int param);
/* After the checked step is emitted: its functions are not optimised. */
void cg_prof_unoptimised(Cg *g);

/* ---- target (cg_target.c), linking (cg_link.c), JIT (cg_jit.c) ---- */

/* False after printing an error (an unknown CPU or feature, no LLVM target). */
bool cg_target_init(CgTarget *t, const char *cpu, const char *features, int opt_level, Arena *a);
/* Sets the module's triple and data layout from tm. */
void cg_target_module(LLVMModuleRef mod, LLVMTargetMachineRef tm);
/* Verifies and optimises; false after printing an error. */
bool cg_verify(LLVMModuleRef mod);
bool cg_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level);
/* Another target machine like t->tm, for another thread (cg_target.c). */
LLVMTargetMachineRef cg_target_machine(const CgTarget *t);
/* Links the objects (obj2 may be NULL) with the runtime into the executable out (cg_link.c). */
bool cg_link(const char *obj, const char *obj2, const char *out);
/* Optimises mod and compiles it to obj1, or, when it is large enough, splits its task
 * kernels off to obj2 and compiles both halves on two threads (*two then) (cg_split.c). */
bool cg_split_compile(LLVMModuleRef mod, const CgTarget *t, int opt_level, const char *obj1,
                      const char *obj2, bool *two, Arena *a);
/* Runs the module in memory (cg_jit.c); takes mod and tm. Returns nnc_main's status. */
int cg_jit_run(LLVMOrcThreadSafeContextRef tsc, LLVMModuleRef mod, LLVMTargetMachineRef tm,
               const char *name, int argc, char **argv);
/* Whether the JIT defines runtime function NAME (the unit test checks all of nnc_rt.h). */
bool cg_jit_defines(const char *name);

#endif
