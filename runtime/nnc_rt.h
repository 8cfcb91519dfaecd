/* nnc_rt.h - the contract between the code nnc generates and the runtime library.
 *
 * The generated module defines one constant `const NncModelDesc nnc_model`, which names
 * the model, its params, its data and its two generated functions. The runtime owns main(),
 * the command line, data, weights, progress and files; the generated code owns the maths:
 * forward, backward, the optimizer step and the epoch/batch loop, which calls back into the
 * runtime (nnc_rt_*) for batches and reporting. Generated code never reads NncRun's fields:
 * it only calls the functions below, so the struct may change freely.
 *
 * Buffers are arrays of "real": float when real_size == 4, double when 8. Batches are
 * contiguous, row-major, sample after sample. */
#ifndef NNC_RT_H
#define NNC_RT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NncRun NncRun;

/* Same values as InitKind in compiler/ast.h. */
enum { NNC_INIT_ZEROS, NNC_INIT_ONES, NNC_INIT_CONST, NNC_INIT_UNIFORM, NNC_INIT_NORMAL,
       NNC_INIT_XAVIER, NNC_INIT_HE };
/* Same values as SourceKind in compiler/ast.h. */
enum { NNC_SRC_NONE, NNC_SRC_INLINE, NNC_SRC_CSV, NNC_SRC_IDX, NNC_SRC_NPZ };
/* Same values as OptKind in compiler/ast.h. */
enum { NNC_OPT_SGD, NNC_OPT_ADAM, NNC_OPT_ADAMW, NNC_OPT_RMSPROP, NNC_OPT_ADAGRAD };
/* Same values as SchedKind in compiler/ast.h. */
enum { NNC_SCHED_NONE, NNC_SCHED_STEP, NNC_SCHED_EXPONENTIAL, NNC_SCHED_COSINE };

typedef struct NncParamDesc {
    const char *name; /* key in the .npz: W1, h.W, ... */
    int rank;
    int dims[4];
    int size;         /* element count */
    int init;         /* NNC_INIT_* */
    double a, b;      /* const: a; uniform: [a, b); normal: mean a, std b */
} NncParamDesc;

typedef struct NncSourceDesc {
    int kind;                 /* NNC_SRC_* */
    const char *path, *path2; /* as written; relative ones are relative to base_dir */
    int header, label;        /* csv options */
    int nsamples;             /* inline */
    const double *x, *t;      /* inline: nsamples*in_size and nsamples*tgt_size values */
    const char *x_name, *t_name; /* npz: the arrays' names (the model's input and target) */
} NncSourceDesc;

typedef struct NncModelDesc {
    const char *name;     /* the model's name: default weights file NAME.npz */
    const char *base_dir; /* folder of the .nn file */
    int real_size;        /* 4 (f32) or 8 (f64) */
    int in_rank, in_dims[4], in_size;
    int tgt_rank, tgt_dims[4], tgt_size; /* tgt_size 0: the model has no target */
    int out_size;                        /* elements of one sample's prediction */
    int nparams;
    const NncParamDesc *params;
    /* the train block, with the spec's defaults filled in */
    int epochs, batch, opt; /* opt: NNC_OPT_* */
    double lr, momentum, beta1, beta2, eps;
    long long seed;
    int shuffle;
    NncSourceDesc data, test;
    /* Trains for nnc_rt_int(run, NNC_EPOCHS) epochs. */
    void (*train)(NncRun *run);
    /* Forward pass only on n <= nnc_rt_int(run, NNC_BATCH) samples: writes n*out_size
     * predictions to pred and returns the sum of the n per-sample losses. t is NULL when
     * the model has no target; the loss is still computed when it needs none (an
     * autoencoder's mean((W2 @ h - x)^2)). Only a loss that reads a target missing from
     * the call is skipped, and 0 returned. */
    double (*evaluate)(NncRun *run, const void *x, const void *t, int n, void *pred);
    /* For trainers living in the nnc process (nnc --interp): their own state, found again
     * through nnc_rt_model(run)->ctx. NULL in generated code. */
    const void *ctx;
    /* The CPU features the generated code was compiled for (LLVM's names, comma-separated),
     * checked before it runs. */
    const char *cpu_features;
    /* spec section 10's training options, with their defaults filled in */
    int nesterov;
    double weight_decay, alpha; /* alpha: rmsprop */
    int sched, sched_every;     /* NNC_SCHED_*; step's every */
    double gamma, min_lr;       /* step, exponential; cosine */
    int warmup, patience;       /* epochs; 0: none */
    double clip;                /* max global gradient norm; 0: none */
    double val_fraction;        /* of data held out, when validation has kind NONE */
    NncSourceDesc validation;
    /* ---- seeing inside (issue 15): --profile and the first non-finite value ---- */
    /* train() with a call of nnc_rt_mark after each kernel of the step, each param's
     * update and each runtime call of the loop (--profile selects it); NULL: none. */
    void (*train_profile)(NncRun *run);
    /* The step on one batch, node by node unfused, calling nnc_rt_mark after each node
     * with its buffer; it updates no weight. Run only after a non-finite loss or gradient,
     * to name the first operation that made one. As evaluate; NULL: none. */
    double (*check_batch)(NncRun *run, const void *x, const void *t, int n, void *pred);
    int nops;                 /* the rows nnc_rt_mark counts in */
    const struct NncOpDesc *ops;
    const char *source;       /* the .nn file's name, for FILE:LINE */
} NncModelDesc;

/* A row of the profile: an operation of the step (a plan node), a param's update, or a
 * runtime call of the training loop. */
enum { NNC_OP_FORWARD, NNC_OP_BACKWARD, NNC_OP_UPDATE, NNC_OP_RUNTIME };
/* The ops are the step's nodes, one update a param, then these runtime calls of the
 * training loop, in this order: the last NNC_NROWS rows. */
enum { NNC_ROW_EPOCH, NNC_ROW_GATHER, NNC_ROW_STEP_REST, NNC_ROW_BATCH_END, NNC_NROWS };
typedef struct NncOpDesc {
    const char *op;   /* the op's name: matmul, sigmoid, "update", "gather the batch" */
    const char *expr; /* the operation as written, by operand names: log(p), W1 @ x */
    const char *name; /* the value it makes (h.1, dW1), or NULL */
    int kind;         /* NNC_OP_* */
    int line, col;    /* in source; 0: none */
    int size;         /* elements per sample (a node's buffer) */
    int fused_into;   /* the row whose kernel computes it in --profile's step, -1: its own */
    double flops;     /* floating-point operations of a product per count nnc_rt_mark gets, else 0 */
} NncOpDesc;

/* ---- called by generated code ---- */

/* nnc_rt_int; NNC_NEED_GRADS: 1 when the runtime reads the gradient buffers after
 * nnc_rt_batch_end_checked (--log sums them), so code that fuses the update into the
 * gradient's product must still store the gradients. */
/* NNC_FIRST_EPOCH, NNC_STEPS: where a resumed run goes on (0 otherwise): the epoch train()
 * starts at, the optimizer steps taken before it (adam's t goes on from there; a library's
 * train_step calls train() once a step, after the steps before it);
 * NNC_FIRST_BATCH, asked after each nnc_rt_epoch_begin: the batch that epoch starts at. */
enum { NNC_EPOCHS, NNC_BATCH, NNC_NEED_GRADS, NNC_FIRST_EPOCH, NNC_STEPS, NNC_FIRST_BATCH,
       NNC_PROFILING /* --profile: the step's marks are on */ };
/* nnc_rt_real. NNC_LR is the lr in force for the batch of the last nnc_rt_batch (warm-up
 * and schedule applied); NNC_GRAD_SCALE the factor clipping multiplies the batch's mean
 * gradients by (1 without clip), known after nnc_rt_batch_end*. */
enum { NNC_LR, NNC_MOMENTUM, NNC_BETA1, NNC_BETA2, NNC_EPS, NNC_WEIGHT_DECAY, NNC_ALPHA };
int nnc_rt_int(NncRun *run, int which);
const NncModelDesc *nnc_rt_model(NncRun *run);
double nnc_rt_real(NncRun *run, int which);

void *nnc_rt_param(NncRun *run, int i);        /* the weights of param i */
void *nnc_rt_grad(NncRun *run, int i);         /* where the batch's mean gradient of param i goes */
void *nnc_rt_state(NncRun *run, int i, int k); /* optimizer state k (0: velocity or m, 1: v), zeroed */
/* Scratch memory, 64-byte aligned, the same block on every call with the same size or less.
 * A bigger request moves to a new block; an outgrown block stays valid until the run ends.
 * Contents do not survive a callback: nnc_rt_epoch_end runs evaluate() on the test set. */
void *nnc_rt_workspace(NncRun *run, size_t bytes);

/* Runs fn(ctx, lo, hi) on slices [lo, hi) that together cover tasks [0, ntasks), on the
 * run's threads (--threads N, default all cores; rt_pool.c), and returns when every slice
 * is done. Slices are contiguous; fn must give the same result however the tasks are
 * split. work is the tasks' multiply-adds: small work runs at once on the calling thread. */
void nnc_rt_parallel(NncRun *run, long long ntasks, double work,
                     void (*fn)(void *ctx, long long lo, long long hi), void *ctx);

/* The loop the generated train() runs:
 *   for e in nnc_rt_int(run, NNC_FIRST_EPOCH)..epochs-1:
 *     nb = nnc_rt_epoch_begin(run, e)            shuffles; the number of batches
 *     for b in nnc_rt_int(run, NNC_FIRST_BATCH)..nb-1:
 *       n = nnc_rt_batch(run, b, &x, &t)         gathers batch b (the last may be short)
 *       forward and backward: loss_sum, pred, and the mean gradient in nnc_rt_grad(run, i)
 *       if nnc_rt_batch_end(run, b, loss_sum, pred, n): return   (non-finite loss: stop, no update)
 *       optimizer step on every param (adam's step count t = 1, 2, ... across epochs)
 *     nnc_rt_epoch_end(run, e)                    reports, logs, evaluates the test set */
int nnc_rt_epoch_begin(NncRun *run, int epoch);
int nnc_rt_batch(NncRun *run, int b, const void **x, const void **t);
/* nnc_rt_batch_end returns 1 (stop) when loss_sum or a gradient is NaN or infinite, after a
 * message naming the epoch and batch; the runtime then saves the weights as they are. */
int nnc_rt_batch_end(NncRun *run, int b, double loss_sum, const void *pred, int n);
/* The same for code that checked its gradients itself: bad is the first param whose mean
 * gradient holds a NaN or an infinity, -1 none. The gradient buffers are then read only
 * when --log sums them for the gradient norms. */
int nnc_rt_batch_end_checked(NncRun *run, int b, double loss_sum, const void *pred, int n, int bad);
/* The last good weights are kept: before the optimizer step, nnc_rt_batch_end* also stops
 * (1) when the step would make a weight or an optimizer state NaN or infinite. Code that
 * checks its own gradients writes each param's max |g| of the batch's mean gradient (or an
 * upper bound) to nnc_rt_gmax(run)[i] before nnc_rt_batch_end_checked. Code that would apply
 * the update itself asks nnc_rt_update_safe first (after its gradient checks passed):
 * 1, and it must apply it; 0, and it leaves the update to the optimizer step after
 * nnc_rt_batch_end_checked. */
double *nnc_rt_gmax(NncRun *run);
int nnc_rt_update_safe(NncRun *run);
void nnc_rt_epoch_end(NncRun *run, int epoch);
/* train_profile and check_batch only: row's work is done. The profile charges it the time
 * since the previous mark (the epoch's row: since the epoch began), and count units of its
 * flops; check_batch's scan looks for a non-finite value in buf's count samples of the
 * row's size (count -1: one value for the whole batch; buf NULL: nothing to scan). */
void nnc_rt_mark(NncRun *run, int row, const void *buf, long long count);

/* The dropout mask of mask `id` for sample `sample` (its position in the batch) of the
 * run's current step: n values, each 0 or 1/(1-p). Pure function of (seed, step, id, sample),
 * step counting the training batches from 0 across epochs (nnc_rt_batch), so any thread
 * may call it in any order. Evaluation, --check and --predict use no mask (all ones). */
void nnc_rt_dropout_f32(NncRun *run, int id, long long sample, double p, long long n, float *out);
void nnc_rt_dropout_f64(NncRun *run, int id, long long sample, double p, long long n, double *out);

/* ---- shared with the compiler (nnc links this library too, for --check and --run) ---- */

/* Fills param `index`'s initial values in f64, deterministic in (seed, index) alone, so a
 * seed gives the same weights whatever other params exist; f32 builds round these.
 * Generator: xoshiro256** seeded through splitmix64 from (seed, index) (runtime/rt_rng.c). */
void nnc_init_param(const NncParamDesc *p, int index, unsigned long long seed, double *out);

/* A data set in memory: n samples of in_size inputs and tgt_size targets, as real_size reals. */
typedef struct NncData {
    int n, in_size, tgt_size, real_size;
    void *x, *t;
} NncData;

/* Loads a source (relative paths against base_dir). On bad data prints a message naming
 * the file and the row or offset to stderr and returns -1; 0 on success. */
int nnc_load_data(const NncSourceDesc *src, const char *base_dir, int in_size, int tgt_size,
                  int real_size, NncData *out);
void nnc_free_data(NncData *d);

/* Whether the runtime can check CPU feature `name` (LLVM's name: avx2, avx512f, ...). */
int nnc_cpu_feature_known(const char *name);

/* ---- the entry point: the executable's main() and `nnc --run` call this ---- */
/* argv[0] is the program's name, as main() gets it; the flags follow. Returns the exit
 * status (0, or 1 after a message) and frees all it allocated, so it can run inside nnc;
 * only running out of memory exits. */
int nnc_main(int argc, char **argv, const NncModelDesc *model);

/* ---- a model as a library (nnc --emit=lib/shared; rt_lib.c) ---- */
/* The generated NAME_new, NAME_predict, ... (spec section 11) call these with the model's
 * descriptor. An NncRun here is one model: its weights, optimizer state, workspace and
 * threads; two never share anything, and messages go to the calling thread's
 * nnc_lib_error(), never to stderr. Buffers are reals of the model's real_size. */
NncRun *nnc_lib_new(const NncModelDesc *m, unsigned long long seed); /* NULL: nnc_lib_error() */
void nnc_lib_free(NncRun *run);
int nnc_lib_load(NncRun *run, const char *npz);       /* 0, or -1 and nnc_lib_error() */
int nnc_lib_save(const NncRun *run, const char *npz);
const char *nnc_lib_error(void);                      /* "" when none */
void nnc_lib_predict(NncRun *run, int n, const void *x, void *y);
/* One step of the generated train(): the mean loss, or NaN (nnc_lib_error()) when the step
 * was not applied. */
double nnc_lib_train_step(NncRun *run, int n, const void *x, const void *t);
void *nnc_lib_param(NncRun *run, const char *name, int *count);

#ifdef __cplusplus
}
#endif

#endif
