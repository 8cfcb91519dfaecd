/* sema_priv.h - what the sema*.c files share: the checker's state, name tables, the
 * table of functions, and the per-part entry points. Not for other modules. */
#ifndef NNC_SEMA_PRIV_H
#define NNC_SEMA_PRIV_H

#include <stdbool.h>

#include "arena.h"
#include "ast.h"
#include "diag.h"

/* A name table: open addressing, grown in the arena. */
typedef struct SemaEntry {
    const char *name;
    Stmt *stmt;
    bool ok;   /* the definition checked without errors (else uses stay quiet) */
    int order; /* definitions are numbered in order: suggestions prefer the latest */
} SemaEntry;

typedef struct SemaScope {
    SemaEntry *v;
    int n, cap;
} SemaScope;

typedef struct Sema {
    Arena *arena;
    Diag *diag;
    Model *model;     /* the model being checked */
    Stmt *current;    /* the statement being checked */
    SemaScope defined; /* names defined so far, in statement order */
    SemaScope all;     /* every name the model defines (to tell "later" from "unknown") */
} Sema;

void sema_scope_put(Sema *s, SemaScope *sc, const char *name, Stmt *stmt, bool ok);
SemaEntry *sema_scope_get(const SemaScope *sc, const char *name);
/* The candidate closest to name by edit distance, if close enough to be a likely typo. */
const char *sema_closest(const char *name, const char *const *cands, int n);
const char *sema_closest_in_scope(const SemaScope *sc, const char *name);
/* No more messages will be shown: skip the work of composing them. */
bool sema_quiet(const Sema *s);
/* "; did you mean 'x'?" or "". */
const char *sema_did_you_mean(Sema *s, const char *suggestion);

/* Functions usable in model expressions. */
typedef enum {
    FN_ELEMWISE,  /* sigmoid tanh relu exp log sqrt abs softplus */
    FN_LEAKY,     /* leaky_relu(a[, alpha]) */
    FN_SOFTMAX,   /* softmax, log_softmax: over the last dim */
    FN_REDUCE,    /* sum, mean */
    FN_DOT,
    FN_OUTER,
    FN_TRANSPOSE,
    FN_LOSS,      /* mse, bce, cross_entropy */
    FN_DENSE,
    FN_CONV,      /* the conv layer sugar */
    /* the image functions (sema_image.c) */
    FN_CONV2D,
    FN_POOL,      /* maxpool, avgpool */
    FN_FLATTEN,
    FN_RESHAPE,
    FN_CONCAT,
    FN_DROPOUT,
} SemaFnKind;

typedef struct SemaFn {
    const char *name;
    SemaFnKind kind;
    int min_args, max_args;
} SemaFn;

const SemaFn *sema_fn(const char *name);

/* sema_expr.c: annotates e (shapes, decls, folded exponents); false after an error. */
bool sema_expr(Sema *s, Expr *e);
/* Folds a constant expression; `what` names the place for the message
 * ("the exponent of '^'"). */
bool sema_fold(Sema *s, const Expr *e, const char *what, double *out);
Expr *sema_num(Sema *s, double v, Loc loc);
/* Element count of a shape under construction; false (reported at loc) past 2^31-1. */
bool sema_check_size(Sema *s, Shape sh, const char *what, Loc loc);

/* sema_image.c: checks a call of an image function (kind >= FN_CONV2D) and puts it in
 * the canonical form lowering reads (options named and folded, after the positional ones). */
bool sema_image_call(Sema *s, Expr *e, const SemaFn *f);
/* A named option of an image function: a whole number, its default until given. */
typedef struct SemaOpt {
    const char *name;
    double value;
    bool given;
    Loc loc;
} SemaOpt;
/* Folds call e's named options (after its positional arguments) into opts; returns the
 * positional count, -1 after an error. */
int sema_options(Sema *s, const Expr *e, const char *fn, SemaOpt *opts, int nopts);
/* A whole-number constant >= min; `what` names it in the message. */
bool sema_whole(Sema *s, const Expr *e, const char *what, int min, int *out);
/* Whether argument a of fn is an image [C, H, W]; reported when not. */
bool sema_image_input(Sema *s, const char *fn, const Arg *a);
/* The shape of conv2d call e (x, K[, b], then stride and padding), fn as the user wrote it. */
bool sema_conv2d_shape(Sema *s, Expr *e, const char *fn, int stride, int pad);

/* sema_dense.c: expands `NAME = dense(...)` and `NAME = conv(...)` at *link (the let);
 * params are defined. */
bool sema_dense(Sema *s, Stmt **link);
bool sema_conv(Sema *s, Stmt **link);
/* sema_model.c: defines st->name, reporting a second definition. */
void sema_define(Sema *s, Stmt *st, bool ok);

/* sema_model.c / sema_train.c */
bool sema_model(Sema *s, Model *m);
void sema_train(Sema *s, Program *p, Train *t, const bool *model_ok);

#endif
