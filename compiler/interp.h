/* interp.h - the reference interpreter: plain, obviously correct f64 evaluation of the IR,
 * forward and backward, one sample at a time. */
#ifndef NNC_INTERP_H
#define NNC_INTERP_H

#include "ast.h"
#include "ir.h"

/* Fills a dropout mask node's values for the sample being run (training only). */
typedef void (*InterpMaskFn)(void *ctx, const IrNode *n, double *out);

/* One sample's values: val[id] holds node id's shape_size(shape) elements, row-major. */
typedef struct Interp {
    const IrProgram *p;
    double **val;
    double *store; /* one block behind every val[id] */
    /* dropout masks: NULL (evaluation, --check, --predict) makes every mask all ones */
    InterpMaskFn mask;
    void *mask_ctx;
} Interp;

/* calloc that never returns NULL: "nnc: out of memory" and exit 1 instead. The
 * interpreter, its trainer and --check allocate per run with it. */
void *interp_calloc(size_t n, size_t size);

/* Allocates the value buffers of every node of p (aborts when memory runs out). */
void interp_init(Interp *in, const IrProgram *p);
void interp_free(Interp *in);

/* Evaluates nodes [0, upto): upto = p->nforward for the forward pass, p->nnodes for
 * forward and backward. The leaves come from x (the input's values), t (the target's;
 * NULL reads as zeros) and params[i] (param i's values). */
void interp_run(Interp *in, const double *x, const double *t, const double *const *params,
                int upto);

/* Evaluates node id alone, from the values of its operands. */
void interp_node(Interp *in, int id);

/* interp_image.c: an image op (conv2d, pools, their backward helpers, concat, slice) of
 * node n from its operands' values; false when n is not one. */
bool interp_image_node(const IrNode *n, const IrNode *na, const double *a, const IrNode *nb,
                       const double *b, double *out);
/* The element index of maxpool window (c, oy, ox)'s first maximum in a (shape as). */
size_t interp_pool_argmax(IrWindow w, Shape as, const double *a, int c, int oy, int ox);

/* The value of the loss node after a run. */
double interp_loss(const Interp *in);

/* Numerically stable scalar helpers, shared with the tests. */
double interp_softplus(double x);
double interp_sigmoid(double x);
/* One element of an elementwise op (num: exponent or alpha); the simplifier folds
 * constants with these, so folding is the reference maths by construction. */
double interp_unary(IrOp op, double x, double num);
double interp_binary(IrOp op, double a, double b);

/* `nnc --interp MODEL.nn [-- ARGS]`: the whole training program of the executable (same
 * runtime, flags and output), with the interpreter doing the maths. Slow; it is the
 * reference the compiled code is tested against. Returns the exit status. */
int interp_main(const IrProgram *p, const Model *m, const char *source_path, int real_size,
                int argc, char **argv);

#endif
