/* cg.h - the code generator's internals, shared by codegen.c and the cg_*.c files.
 *
 * The IR describes one sample. The code generator first builds a plan (cg_plan.c): a copy of
 * the IR's nodes plus the nodes that take gradients' means over the batch, which buffer
 * holds each node's value, and which nodes each generated function must compute. Then it
 * emits LLVM IR (kernels in cg_kernels.c and cg_gemm.c, functions in cg_train.c, the
 * descriptor in cg_desc.c) and hands the module to the target (cg_target.c, cg_link.c,
 * cg_jit.c). */
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
    int index;      /* CG_AT_PARAM / CG_AT_GRAD: the param */
    bool varying;   /* one value per sample: an [n, shape] buffer; else one value */
    const char *name;
    CgWhere where;
    long long offset;  /* CG_AT_WS: in elements; varying buffers are scaled by the batch size */
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

/* ---- emission state ---- */

typedef struct CgRtFn {
    LLVMValueRef fn;
    LLVMTypeRef type;
} CgRtFn;

enum { CG_RT_INT, CG_RT_REAL, CG_RT_PARAM, CG_RT_GRAD, CG_RT_STATE, CG_RT_WORKSPACE,
       CG_RT_EPOCH_BEGIN, CG_RT_BATCH, CG_RT_BATCH_END, CG_RT_EPOCH_END, CG_RT_PARALLEL,
       CG_NRT };

typedef struct Cg {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef real, realp, i8p, i1, i32, i64, f64, voidt;
    int real_size;
    int lanes; /* reals in the host's widest vector register */
    const IrProgram *ir;
    CgPlan *plan;
    Arena *arena;
    CgRtFn rt[CG_NRT];
    /* the function being emitted */
    LLVMValueRef fn;
    LLVMBasicBlockRef entry;
    LLVMValueRef *base; /* per plan node: its buffer (real*), NULL for constants */
    LLVMValueRef n;     /* the batch's sample count, i64 */
    LLVMValueRef nreal; /* the same as a real */
    LLVMValueRef inv_n; /* 1 / n: batch means multiply by it (one division per kernel) */
    LLVMValueRef ws;    /* the workspace, real* */
    LLVMValueRef batch_cap; /* nnc_rt_int(run, NNC_BATCH), i64: varying buffers hold this many */
    LLVMValueRef run;       /* the NncRun* of the function being emitted (not in tasks) */
    const bool *live;       /* the nodes the function computes (now) */
    const bool *readers;    /* the nodes whose reads count: live, or more (cg_fuse.c) */
    bool *done;             /* computed already, in another node's kernel (cg_fuse.c) */
    struct CgSgd *sgd;      /* in a step with sgd fused in (cg_sgd.c), else NULL */
    LLVMValueRef scan_fn;   /* nnc_scan (cg_check.c) */
    LLVMTypeRef scan_type;
} Cg;

void cg_init(Cg *g, LLVMContextRef ctx, LLVMModuleRef mod, const IrProgram *p, CgPlan *plan,
             int real_size, Arena *a);
void cg_dispose(Cg *g);

/* ---- helpers (cg_util.c) ---- */

LLVMValueRef cg_i64(Cg *g, long long v);
LLVMValueRef cg_i32(Cg *g, int v);
LLVMValueRef cg_real(Cg *g, double v);
LLVMValueRef cg_binary(Cg *g, int op, LLVMValueRef x, LLVMValueRef y);
LLVMValueRef cg_call_rt(Cg *g, int which, LLVMValueRef *args, unsigned nargs);
/* A stack slot in the entry block (promoted to a register by the optimiser). */
LLVMValueRef cg_slot(Cg *g, LLVMTypeRef type, const char *name);
LLVMValueRef cg_gep(Cg *g, LLVMValueRef ptr, LLVMValueRef index);
LLVMValueRef cg_load_at(Cg *g, LLVMValueRef ptr, LLVMValueRef index);
void cg_store_at(Cg *g, LLVMValueRef ptr, LLVMValueRef index, LLVMValueRef v);
/* A math function of one real: exp log sqrt fabs (intrinsics), tanh log1p (libm). */
LLVMValueRef cg_math(Cg *g, const char *fn, LLVMValueRef x);
LLVMValueRef cg_pow(Cg *g, LLVMValueRef x, double c);
/* An overloaded intrinsic (llvm.pow, llvm.exp, ...) on one type. */
LLVMValueRef cg_intrinsic(Cg *g, const char *name, LLVMTypeRef type, LLVMValueRef *args,
                          unsigned nargs);

/* Loops from `from` to `to` (i64), the body between begin and end. */
typedef struct CgLoop {
    LLVMBasicBlockRef head, exit;
    LLVMValueRef i;
} CgLoop;
CgLoop cg_loop_begin(Cg *g, LLVMValueRef from, LLVMValueRef to, const char *name);
void cg_loop_end(Cg *g, CgLoop *l);

/* Node element access: sample b (ignored unless the node varies), flat element i. */
LLVMValueRef cg_load(Cg *g, int node, LLVMValueRef b, LLVMValueRef i);
void cg_store(Cg *g, int node, LLVMValueRef b, LLVMValueRef i, LLVMValueRef v);
/* The number of samples a node's buffer holds: n when varying, else 1. */
LLVMValueRef cg_count(Cg *g, int node);
/* The smaller and the larger of two i64 values (signed). */
LLVMValueRef cg_imin(Cg *g, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_imax(Cg *g, LLVMValueRef a, LLVMValueRef b);

/* ---- explicit vectors (cg_vec.c) ---- */

LLVMTypeRef cg_vec_type(Cg *g, int lanes);
LLVMValueRef cg_splat(Cg *g, LLVMValueRef x, int lanes);
LLVMValueRef cg_vzero(Cg *g, int lanes);
/* The vector at p; only the first `on` lanes are read (the rest are 0) when on < lanes. */
LLVMValueRef cg_vload(Cg *g, LLVMValueRef p, int lanes, int on);
void cg_vstore(Cg *g, LLVMValueRef v, LLVMValueRef p, int lanes, int on);
LLVMValueRef cg_vfma(Cg *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);
/* count vectors of `lanes` -> one vector of count lanes: their sums, in a fixed order. */
LLVMValueRef cg_vsums(Cg *g, LLVMValueRef *acc, int count, int lanes);

/* ---- outlined kernels run by the thread pool (cg_task.c) ---- */

enum { CG_TASK_MAX = 16 }; /* buffers a task may see */
typedef struct CgTask {
    LLVMTypeRef type;
    LLVMValueRef rec, kernel, lo, hi; /* lo, hi: the task range, inside the kernel */
    /* the caller's state, restored by cg_task_end */
    LLVMValueRef fn, *base, n, nreal, inv_n;
    LLVMBasicBlockRef entry, block;
} CgTask;
/* Starts kernel NAME; inside it g->base[nodes[i]] and g->n are valid, and extra[] (more
 * real* values of the caller) are replaced by their copies. */
void cg_task_begin(Cg *g, CgTask *t, const char *name, const int *nodes, int nnodes,
                   LLVMValueRef *extra, int nextra);
/* Ends the kernel and, back in the caller, runs tasks [0, ntasks) through
 * nnc_rt_parallel; work (f64) is the kernel's multiply-adds, for the pool to judge. */
void cg_task_end(Cg *g, CgTask *t, LLVMValueRef ntasks, LLVMValueRef work);

/* ---- elementwise nodes fused into a product's epilogue (cg_fuse.c) ---- */

enum { CG_FUSE_MAX = 12 };
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
/* The buffers the epilogue reads or writes besides m's: up to max node ids. */
int cg_fuse_buffers(Cg *g, const CgFuse *f, int *nodes, int max);
/* Stores v, C[row, col .. col+lanes) (the first `on` lanes valid), and the chain's values. */
void cg_fuse_epilogue(Cg *g, const CgFuse *f, LLVMValueRef v, LLVMValueRef row, LLVMValueRef col,
                      int lanes, int on);

/* ---- plain sgd done by the step, fused into the weight-gradient products (cg_sgd.c) ---- */

bool cg_sgd_fusable(int opt, double momentum, int nparams);
typedef struct CgOptim CgOptim;
typedef struct CgSgd {
    LLVMValueRef lr;   /* real */
    LLVMValueRef *w;   /* per param: nnc_rt_param's buffer */
    bool *deferred;    /* per param: its gradient's product runs after the checks */
    LLVMValueRef mode; /* real slot: 1 the deferred products update w, 0 they store g */
    CgOptim *optim;    /* its sgd rule, for the other params */
} CgSgd;
/* In the step, before its nodes: sets g->sgd and marks the deferred products done. */
void cg_sgd_step_begin(Cg *g, LLVMValueRef run, LLVMValueRef lr, CgOptim *optim);
/* After the nodes and the loss: the checks, then the update (fast or slow path); stores
 * the first param with a non-finite gradient, -1 none, into bad. */
void cg_sgd_step_end(Cg *g, LLVMValueRef run, LLVMValueRef bad, LLVMValueRef loss);
/* A kernel's view of one param: its weights, lr splat, the gradient buffer, and the
 * mode (i1: update the weights, else store the gradient). */
typedef struct CgSgdKernel {
    LLVMValueRef w, lr, grad, update;
} CgSgdKernel;
/* v: the mean gradient's vector at element `at` of the param: w[at..] -= lr * v, or
 * grad[at..] = v. */
void cg_sgd_epilogue(Cg *g, const CgSgdKernel *k, LLVMValueRef v, LLVMValueRef at, int lanes, int on);

/* ---- finiteness checks (cg_check.c) ---- */

/* Defines nnc_scan, before the functions that check. */
void cg_check_helpers(Cg *g);
/* A zeroed vector slot of checks, as real*. */
LLVMValueRef cg_check_slot(Cg *g);
/* Adds x - x of p[0..size) into the slot; returns max |x| as a double. */
LLVMValueRef cg_scan(Cg *g, LLVMValueRef p, LLVMValueRef size, LLVMValueRef chk);
/* The slot's verdict: 0, or NaN when some element was not finite. */
LLVMValueRef cg_check_sum(Cg *g, LLVMValueRef chk);
/* 0 when p[0..size) is finite, else NaN. */
LLVMValueRef cg_nonfinite(Cg *g, LLVMValueRef p, long long size);

/* ---- kernels (cg_kernels.c, cg_gemm.c) ---- */

void cg_emit_node(Cg *g, int node);
void cg_emit_matmul(Cg *g, int node);
void cg_emit_outer(Cg *g, int node);
/* The batch's products in register-blocked form (cg_mm.c); false: not one of its shapes. */
bool cg_mm_emit(Cg *g, int node);

/* ---- functions (cg_train.c) and the descriptor (cg_desc.c) ---- */

/* An internal function, and the builder at the start of its body. */
LLVMValueRef cg_add_function(Cg *g, const char *name, LLVMTypeRef type);
void cg_begin_function(Cg *g, LLVMValueRef fn);
LLVMValueRef cg_real_ptr(Cg *g, LLVMValueRef p);
/* nnc_rt_param/grad (k ignored) or nnc_rt_state(run, i, k), as real* */
LLVMValueRef cg_rt_buffer(Cg *g, int which, LLVMValueRef run, int i, int k);

/* The optimizer step (cg_optim.c): helpers made before train's body, hyper-parameters
 * read at train's start, one step after each batch. */
CgOptim *cg_optim_new(Cg *g, int opt);
void cg_optim_begin(Cg *g, CgOptim *o, LLVMValueRef run);
void cg_optim_step(Cg *g, CgOptim *o, LLVMValueRef run);
/* One param's sgd update, w -= lr * grad, through the shared rule function. */
void cg_optim_sgd(Cg *g, CgOptim *o, LLVMValueRef w, LLVMValueRef grad, long long size, LLVMValueRef lr);

/* opt: NNC_OPT_* */
void cg_emit_functions(Cg *g, int opt, double momentum, LLVMValueRef *train, LLVMValueRef *evaluate);
void cg_emit_desc(Cg *g, const NncModelDesc *d, LLVMValueRef train, LLVMValueRef evaluate);
LLVMTypeRef cg_desc_type(LLVMContextRef ctx, LLVMTypeRef train_ptr, LLVMTypeRef eval_ptr,
                         LLVMTypeRef *param_type);

/* ---- target (cg_target.c), linking (cg_link.c), JIT (cg_jit.c) ---- */

/* The host's target machine; NULL after printing an error. */
LLVMTargetMachineRef cg_target_machine(int opt_level);
/* Bytes in the host's widest vector register: 64 with avx512f, 32 with avx, else 16. */
int cg_vector_bytes(void);
/* Sets the module's triple and data layout from tm. */
void cg_target_module(LLVMModuleRef mod, LLVMTargetMachineRef tm);
/* Verifies and optimises; false after printing an error. */
bool cg_verify(LLVMModuleRef mod);
bool cg_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level);
/* Links the object with the runtime into the executable out (cg_link.c). */
bool cg_link(const char *obj, const char *out);
/* Runs the module in memory (cg_jit.c); takes mod and tm. Returns nnc_main's status. */
int cg_jit_run(LLVMOrcThreadSafeContextRef tsc, LLVMModuleRef mod, LLVMTargetMachineRef tm,
               const char *name, int argc, char **argv);

#endif
