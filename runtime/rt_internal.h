/* rt_internal.h - private to the runtime library: the run's state and the helpers its
 * files share. Nothing here is part of the contract with generated code (nnc_rt.h). */
#ifndef NNC_RT_INTERNAL_H
#define NNC_RT_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "nnc_rt.h"

#if defined(__GNUC__)
#define RT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define RT_PRINTF(f, a)
#endif

/* ---- rt_rng.c: the deterministic generator ---- */

/* xoshiro256** (Blackman and Vigna), its 256-bit state filled by splitmix64 from a key
 * mixed from (seed, stream). Streams keep the users of one seed independent: param i draws
 * from stream i, shuffling from RT_STREAM_SHUFFLE. */
typedef struct RtRng {
    uint64_t s[4];
} RtRng;

#define RT_STREAM_SHUFFLE 0x5348554646ULL /* "SHUFF": far from any param index */

void rt_rng_seed(RtRng *r, uint64_t seed, uint64_t stream);
uint64_t rt_rng_next(RtRng *r);
double rt_rng_uniform(RtRng *r);   /* [0, 1), 53 random bits */
double rt_rng_normal(RtRng *r);    /* N(0, 1), Box-Muller; uses two draws a call */
uint64_t rt_rng_below(RtRng *r, uint64_t n); /* uniform in [0, n), unbiased; n >= 1 */

/* ---- rt_util.c ---- */

void *rt_alloc(size_t bytes);           /* zeroed, 64-byte aligned; exits on no memory */
void rt_free(void *p);
double rt_get(const void *buf, size_t i, int real_size);
void rt_set(void *buf, size_t i, int real_size, double v);
double rt_now(void);                    /* monotonic seconds */
/* base_dir/path unless path is absolute or base_dir is NULL, empty or "."; malloc'd. */
char *rt_join(const char *base_dir, const char *path);
/* The whole file, decompressed when gz and gzipped (zlib reads plain files too); malloc'd
 * with a NUL after the end. Regular files and pipes only: a device such as /dev/zero never
 * ends. More than max bytes: "too large: more than MAX bytes, LIMIT". NULL with a message
 * naming the file when it cannot be read, also when gzip data is cut short. */
unsigned char *rt_read_file(const char *path, size_t max, int gz, const char *limit, size_t *len);
/* A data file (csv, idx) with rt_read_file: gzipped or not, at most the machine's memory. */
unsigned char *rt_read_data(const char *path, size_t *len);
/* A data file read in pieces, gzipped or not, with rt_read_file's checks and messages. */
typedef struct RtStream {
    const char *path;
    int fd;
    void *gz; /* zlib's gzFile */
} RtStream;
/* -1 after a message naming the file. */
int rt_stream_open(RtStream *s, const char *path);
/* n bytes into p, fewer only at the end of the file: the count, or -1 after a message (a
 * read error, gzip data cut short). */
long rt_stream_read(RtStream *s, void *p, size_t n);
void rt_stream_close(RtStream *s);
/* n bytes of a file's text for a message, in cap bytes: control bytes, backslashes and
 * non-ASCII bytes as \xNN, so that a file cannot write to the terminal through us. */
void rt_printable(char *dst, size_t cap, const char *src, size_t n);
/* PATH.tmpPID: where a save writes before renaming into place; malloc'd, NULL. */
char *rt_temp_name(const char *path);
/* Before any work, whether path can be written: not a folder, and its folder takes a new
 * file (a probe, created and removed, finds what access() does not: a read-only file
 * system, a missing folder, root in a folder it may not write). -1 after a message. */
int rt_check_writable(const char *path);
/* Where writing `path` goes: the file its symbolic links finally name (malloc'd), and
 * *direct = 1 when that is a device, a pipe or a socket, which is written through rather
 * than replaced by a renamed temporary. */
char *rt_output_target(const char *path, int *direct);
/* "PROG: error: MSG" on stderr. */
void rt_error(const char *prog, const char *fmt, ...) RT_PRINTF(2, 3);
/* "PROG: note: MSG" on stderr: a flag's value was changed, the run goes on. */
void rt_note(const char *prog, const char *fmt, ...) RT_PRINTF(2, 3);
/* "FILE:ROW: error: MSG" (row > 0) or "FILE: error: MSG" on stderr. */
void rt_data_error(const char *file, long row, const char *fmt, ...) RT_PRINTF(3, 4);
/* Until called again with NULL, this thread's error messages go into buf (the first one,
 * without the "PROG: error: " of rt_error) instead of stderr: a library's NAME_error(). */
void rt_capture_errors(char *buf, size_t cap);

/* ---- rt_csv.c, rt_idx.c, rt_data.c ---- */

int rt_load_csv(const NncSourceDesc *src, const char *path, int in_size, int tgt_size,
                int real_size, NncData *out);
/* labels NULL: the images alone (tgt_size 0). */
int rt_load_idx(const char *images, const char *labels, int in_size, int tgt_size,
                int real_size, NncData *out);
/* --predict's idx images read in pieces (rt_idx.c): the header and the labels checked at
 * open; the data's length and the labels' range at finish, after the last piece. Each
 * function after a failure: -1 (NULL) after a message naming the file. */
typedef struct RtIdxIn RtIdxIn;
RtIdxIn *rt_idx_in_open(const char *images, const char *labels, int in_size, int tgt_size);
int rt_idx_in_count(const RtIdxIn *in);
/* The next n images into x as reals of real_size bytes, as rt_load_idx converts them: n
 * the same at every call but the last, which takes what is left (a thread reads ahead). */
int rt_idx_in_read(RtIdxIn *in, void *x, int n, int real_size);
int rt_idx_in_finish(RtIdxIn *in);
void rt_idx_in_close(RtIdxIn *in);
/* --predict's csv read piece by piece (rt_csv.c): rows of the inputs alone, or of the
 * inputs and targets as rt_load_csv reads them (the targets checked, then left); the first
 * row decides which. The text is read whole at open, each piece's rows parsed by
 * rt_csv_in_read into x, n the same at every call but the last. -1 (NULL) after the
 * messages rt_load_csv gives. */
typedef struct RtCsvIn RtCsvIn;
RtCsvIn *rt_csv_in_open(const NncSourceDesc *src, const char *path, int in_size, int tgt_size,
                        int real_size);
int rt_csv_in_rows(const RtCsvIn *in);
int rt_csv_in_read(RtCsvIn *in, void *x, int n);
void rt_csv_in_close(RtCsvIn *in);
/* npz("file.npz"): rt_npzdata.c */
int rt_load_npz(const NncSourceDesc *src, const char *path, int in_size, int tgt_size,
                int real_size, NncData *out);
/* Allocates n samples in out. */
void rt_data_alloc(NncData *out, int n, int in_size, int tgt_size, int real_size);
/* Sets sample i's target from a class index: one-hot over tgt_size, or the index itself
 * when the target has one element (a binary label). */
void rt_data_set_label(NncData *d, int i, long label);
/* Whether accuracy applies: every target one-hot, or one element in {0, 1}. */
int rt_data_has_accuracy(const NncData *d);

/* ---- rt_npz.c ---- */

/* Writes every param to path (via a temporary, renamed into place). 0 or -1 with a message.
 * guard: a SIGINT, SIGTERM or SIGHUP during the save removes the temporary, then acts as
 * before (the executable's saves; a library saving in threads must leave signals alone). */
int rt_npz_save(const char *path, const NncModelDesc *m, void *const *params, int guard);
/* Reads every param from path, converting f32/f64 to the model's real type. */
int rt_npz_load(const char *path, const NncModelDesc *m, void *const *params);
/* Writes len bytes to path as a save does (a temporary renamed into place; devices and
 * pipes written through; guard as above). 0, or -1 after a message. */
int rt_write_file(const char *path, const void *data, size_t len, int guard);
/* One array of any shape and a float, integer or bool type, from an .npz (data sources). */
typedef struct RtNpyArray {
    unsigned char *bytes;       /* the entry, malloc'd */
    const unsigned char *data;  /* its values, little-endian */
    int size, rank;             /* bytes a value */
    char kind;                  /* 'f', 'i' or 'u' */
    long dims[8];
    size_t count;
} RtNpyArray;
/* NAME.npy of path; -1 after a message naming the file. */
int rt_npz_read_array(const char *path, const char *name, RtNpyArray *a);
double rt_npy_get(const RtNpyArray *a, size_t i);
void rt_npy_free(RtNpyArray *a);

/* ---- rt_cli.c ---- */

typedef struct RtOptions {
    const char *prog;           /* for messages: the model's name */
    int epochs, batch;
    double lr;
    unsigned long long seed;
    const char *data, *test;    /* --data/--test as given, or NULL */
    const char *load, *save, *log;
    const char *validation;     /* --validation SRC, or NULL */
    const char *checkpoint, *resume; /* --checkpoint FILE, --resume FILE, or NULL */
    int quiet;
    int threads;                /* --threads; 0: all cores */
    const char *plot;           /* --plot FILE.svg (rt_plot.c) */
    const char *predict, *out;  /* --predict SRC, --out FILE.csv (rt_predict.c) */
    int profile;                /* --profile (rt_profile.c) */
} RtOptions;

/* Fills o from the model's defaults and argv. Returns -1 to go on, else the exit status
 * (0 after --help, 1 after a message about a bad flag). */
int rt_parse_args(RtOptions *o, int argc, char **argv, const NncModelDesc *m);
/* The source a --data/--test argument names: the kind and options of `like` (idx: the
 * argument is IMAGES,LABELS), or csv without options when `like` is inline or absent.
 * Strings point into *owned (free it after use). -1 with a message when malformed. */
int rt_source_from_arg(const char *prog, const char *flag, const char *arg,
                       const NncSourceDesc *like, NncSourceDesc *out, char **owned);

/* ---- rt_pool.c: the threads of nnc_rt_parallel ---- */

typedef struct RtPool RtPool;
int rt_default_threads(void); /* the cores online */
void rt_pool_free(RtPool *p); /* stops and joins the workers; NULL is fine */
/* nnc_rt_parallel for copies of `bytes` in all: split when that is worth it. */
void rt_parallel_copy(NncRun *run, long long ntasks, size_t bytes,
                      void (*fn)(void *ctx, long long lo, long long hi), void *ctx);

/* ---- rt_cpu.c ---- */

/* 0 when this CPU has every feature of the comma-separated list, else -1 after a message
 * naming the missing ones. */
int rt_cpu_check(const char *prog, const char *needed);

/* ---- rt_guard.c: steps that would make weights non-finite are not applied ---- */

typedef struct RtGuard RtGuard;
/* After the weights are set, before training: the bounds from the weights. -1: no memory. */
int rt_guard_start(NncRun *run);
void rt_guard_free(NncRun *run);
/* nnc_rt_batch_end: max |g| from the gradient buffers, for code that did not report it. */
void rt_guard_gmax_from_grads(NncRun *run);
/* Before the optimizer step (unless the step applied it): -1 when it leaves every weight
 * and state finite, else the first param it would not. */
int rt_guard_step(NncRun *run);
/* The bounds taken again from the weights and states, which something else changed (a
 * library's load, or its caller through the param pointers); the step count stays. */
void rt_guard_rebound(NncRun *run);

/* ---- rt_sched.c: the lr in force, gradient clipping ---- */

/* At an epoch's start: the schedule's lr for it (warm-up aside). */
void rt_sched_epoch(NncRun *run, int epoch);
/* At batch b: the lr in force (the warm-up's during the first warmup epochs). */
void rt_sched_batch(NncRun *run, int b);
/* Scales the batch's mean gradients as clip_grad_norm_(max_norm = clip) does. */
void rt_clip(NncRun *run);

/* ---- rt_valid.c: the validation set, early stopping ---- */

/* Holds m->val_fraction of the loaded train set out as the validation set. -1 after a message. */
int rt_valid_split(NncRun *run);
/* At an epoch's end: val_loss, val_correct; with patience, the best weights and the stop. */
void rt_valid_epoch(NncRun *run);
/* After training with patience: the best epoch's weights back, and a line saying so. */
void rt_valid_finish(NncRun *run);
void rt_valid_free(NncRun *run);
/* The weights as they are now become the best epoch's. */
void rt_valid_keep(NncRun *run);

/* ---- rt_ckpt.c: checkpoints, --resume, signals while training ---- */

/* SIGINT and SIGTERM set a flag while training (on = 1), or get their handlers back. */
void rt_ckpt_signals(int on);
int rt_ckpt_signalled(void);
/* The run after epochs_done epochs and batches_done batches of the next. -1 after a message. */
int rt_ckpt_save(NncRun *run, const char *path, int epochs_done, int batches_done);
/* Params, states and counters from a checkpoint (the weights allocated). -1 after a message. */
int rt_ckpt_load(NncRun *run, const char *path);
/* Shuffles the data order once, as an epoch's start does. */
void rt_shuffle(NncRun *run);
/* Optimizer steps applied so far (adam's t). */
long long rt_guard_steps(const NncRun *run);
/* Whether the step applied its update itself (nnc_rt_update_safe) in this batch. */
int rt_guard_stepped(const NncRun *run);

/* ---- the run (rt_train.c, rt_report.c, rt_run.c) ---- */

typedef struct RtBlock {
    struct RtBlock *next;
    void *p;
} RtBlock;

typedef struct RtSet {
    NncData d;
    int loaded, has_acc;
    const char *what; /* "train" or "test" */
} RtSet;

struct NncRun {
    const NncModelDesc *m;
    RtOptions o;
    int rs; /* real size */
    void **param, **grad, **state[2];
    void *ws;
    size_t ws_size;
    RtBlock *retired; /* outgrown workspaces: kept until the end, as promised */
    RtSet train, test;
    /* the epoch being trained */
    RtRng shuffle;
    int *perm;
    void *bx, *bt;       /* gathered batch */
    const void *cur_t;   /* the current batch's targets */
    int epoch, nbatches;
    double loss_sum, t0, progress_t;
    long seen, correct;
    double **gsum;       /* per-param gradient sums when logging */
    void *pred;          /* evaluation buffer: batch * out_size reals */
    FILE *log;           /* written with write(2) on its fd only (rt_report.c) */
    size_t log_size;     /* bytes of the log's whole rows */
    const char *save_path;
    int tty, shown, stopped, epochs_done; /* shown: a progress line is up */
    RtPool *pool;        /* started by the first job worth splitting (rt_pool.c) */
    int pool_failed;     /* no threads could start: run jobs alone */
    RtGuard *guard;      /* rt_guard.c */
    struct RtPlot *plot; /* --plot: the epochs so far (rt_plot.c) */
    int steps_before;    /* nnc_rt_int(NNC_STEPS): a library's steps so far (rt_lib.c) */
    double epoch_lr, cur_lr; /* the schedule's lr for the epoch; the lr in force (rt_sched.c) */
    int first_epoch;     /* where train() starts: 0, or a resumed checkpoint's epoch */
    long long steps0;    /* optimizer steps taken before first_epoch */
    RtSet val;           /* the validation set (rt_valid.c) */
    double val_loss, best_loss;
    long val_correct;
    int best_epoch, early; /* best_epoch 1-based, 0 none; early: patience ran out */
    void **best;         /* the best epoch's weights, with patience */
    /* --resume: where the run goes on, and the interrupted epoch's running totals */
    int resumed, first_batch, batch0; /* batch0: the current epoch's first batch */
    double resume_loss;
    long resume_seen, resume_correct;
    int interrupted, done_batches; /* a signal stopped the run after done_batches of epoch */
    long long step, batches; /* dropout: the current training batch's step; batches begun */
    struct RtProf *prof; /* --profile's timings, or check_batch's scan (rt_profile.c) */
    const void *cur_x;   /* the current batch's inputs */
};

/* The workspace and the outgrown ones kept since (nnc_rt_workspace), freed. */
void rt_free_workspaces(NncRun *run);
/* Loss sum and correct count of a whole set through evaluate(), in batch-sized chunks. */
void rt_evaluate_set(NncRun *run, const RtSet *s, double *loss, long *correct);
/* Correct predictions among n samples (pred: n*out_size, t: n*tgt_size). */
long rt_count_correct(const NncRun *run, const void *pred, const void *t, int n);
int rt_log_open(NncRun *run);
void rt_report_epoch(NncRun *run, double seconds);
/* The final "train: ..." / "test: ..." line of a loaded set. */
void rt_report_final(NncRun *run, const RtSet *s);

/* The L2 norm of param i's mean gradient over the epoch so far (needs run->gsum). */
double rt_grad_norm(const NncRun *run, int i);

/* ---- rt_plot.c: --plot FILE.svg ---- */

typedef struct RtPlot RtPlot;
/* One epoch's numbers; NAN where one does not apply. A validation set (issue 14) fills
 * val_loss and val_acc: the plot draws every series that has a value. */
typedef struct RtPlotEpoch {
    double loss, acc, test_loss, test_acc, val_loss, val_acc;
} RtPlotEpoch;
/* Records an ending epoch, with each param's gradient norm (rt_grad_norm); nothing
 * without --plot. */
void rt_plot_epoch(NncRun *run, const RtPlotEpoch *e);
/* Writes --plot's SVG of the epochs recorded; 0 without --plot, -1 after a message. */
int rt_plot_write(NncRun *run);
void rt_plot_free(NncRun *run);
/* ---- rt_predict.c ---- */

/* --predict: the forward pass over a source, predictions as csv. The exit status. */
int rt_predict(NncRun *run);

/* ---- rt_profile.c: --profile, and the first non-finite value ---- */

typedef struct RtProf RtProf;
/* Before training: -1 after a message when --profile cannot be done. */
int rt_profile_start(NncRun *run);
/* An epoch's measured seconds, which the profile's rows should add up to. */
void rt_profile_epoch(NncRun *run, double seconds);
/* After training: the table, on stdout. */
void rt_profile_report(NncRun *run);
void rt_profile_free(NncRun *run);
/* After a batch of n samples made a non-finite loss or gradient: runs it again on the
 * checked path and, when it finds one, a note naming the first operation that made a
 * non-finite value, its place in the source and its sample. */
void rt_nan_origin(NncRun *run, int n);

/* ---- rt_predict.c ---- */

/* --predict: the forward pass over a source, predictions as csv. The exit status. */
int rt_predict(NncRun *run);

#endif
