/* ast.h - the syntax tree of a .nn file, as the parser builds it and sema annotates it.
 * Every node carries its source location. All nodes live in the compilation's arena. */
#ifndef NNC_AST_H
#define NNC_AST_H

#include <stdbool.h>

#include "diag.h"

enum { MAX_RANK = 4 };

/* A static per-sample shape; rank 0 is a scalar. Sema guarantees every dim >= 1
 * and the element count <= 2^31-1. */
typedef struct Shape {
    int rank;
    int dims[MAX_RANK];
} Shape;

/* Element count (sema keeps it <= 2^31-1). */
long long shape_size(Shape s);
bool shape_eq(Shape a, Shape b);
/* "[4, 2]", "[]" for a scalar; buf needs SHAPE_STR_MAX bytes. */
enum { SHAPE_STR_MAX = 64 };
const char *shape_str(Shape s, char *buf);

/* ---- expressions ---- */

typedef enum {
    EX_NUM,  /* num */
    EX_STR,  /* str: a "string" (only meaningful in train blocks) */
    EX_NAME, /* str: identifier, possibly dotted (h.W) */
    EX_NEG,  /* -lhs */
    EX_BIN,  /* lhs op rhs, op one of + - * / @ ^ */
    EX_CALL, /* str(args) */
    EX_LIST, /* [args...]: a bracketed list of constants, only as a call's argument (reshape) */
} ExprKind;

typedef struct Expr Expr;

typedef struct Arg {
    const char *name; /* NULL for a positional argument */
    Loc loc;          /* of the name, or of the value when positional */
    Expr *value;
} Arg;

struct Stmt;

struct Expr {
    ExprKind kind;
    Loc loc; /* the operator for EX_BIN/EX_NEG, the name for EX_CALL/EX_NAME */
    double num;
    const char *str;
    char op;
    Expr *lhs, *rhs;
    Arg *args;
    int nargs;
    /* Filled by sema. */
    Shape shape;
    struct Stmt *decl; /* EX_NAME: the statement that defines the name */
    int depth;         /* height of this subtree (parser; bounded so recursion is safe) */
};

/* ---- model statements ---- */

typedef enum {
    ST_INPUT,  /* input NAME[dims] */
    ST_TARGET, /* target NAME[dims] */
    ST_PARAM,  /* param NAME[dims] = init */
    ST_LET,    /* NAME = value */
    ST_OUTPUT, /* output NAME */
    ST_LOSS,   /* loss = value */
} StmtKind;

typedef enum {
    INIT_ZEROS,
    INIT_ONES,
    INIT_CONST,   /* a */
    INIT_UNIFORM, /* a, b */
    INIT_NORMAL,  /* a = mean, b = std */
    INIT_XAVIER,
    INIT_HE,
} InitKind;

typedef struct Init {
    InitKind kind;
    double a, b;
} Init;

typedef struct Stmt {
    StmtKind kind;
    Loc loc;      /* the statement's first token */
    const char *name;
    Loc name_loc;
    Expr **dims;  /* declared dims, constant expressions (NULL/0 for a scalar) */
    int ndims;
    Expr *init_expr; /* param initialiser as written, NULL = zeros */
    Expr *value;     /* ST_LET, ST_LOSS */
    struct Stmt *next;
    /* Filled by sema. */
    Shape shape;
    Init init;
    bool from_dense; /* a param created by layer sugar (dense or conv) */
    bool from_conv;  /* ... by conv */
} Stmt;

typedef struct Model {
    const char *name;
    Loc loc; /* the 'model' keyword */
    Loc name_loc;
    Stmt *stmts;
    struct Model *next;
    /* Filled by sema. */
    Stmt *input, *target, *loss; /* target may be NULL */
    Expr *output;                /* the prediction expression (an EX_NAME or the loss's first argument) */
    struct Train *train;         /* its train block, or NULL */
} Model;

/* ---- train blocks ---- */

/* Inline data as written: a number (constant expression) or a nested list. */
typedef struct Datum {
    Loc loc;
    Expr *num;            /* when not a list */
    struct Datum **items; /* when a list */
    int nitems;
    bool is_list;
} Datum;

typedef struct Sample {
    Loc loc;
    Datum *x, *t; /* t NULL when written without '->' */
} Sample;

typedef struct TrainItem {
    const char *key;
    Loc loc;        /* the key */
    Expr *value;    /* key = expression (numbers, sgd(...), csv(...), true, ...) */
    Sample *samples;/* key = [x -> t, ...] inline data; value is NULL then */
    int nsamples;
    Loc data_loc;   /* the '[' of inline data */
    struct TrainItem *next;
} TrainItem;

typedef enum { SRC_NONE, SRC_INLINE, SRC_CSV, SRC_IDX, SRC_NPZ } SourceKind;

typedef struct Source {
    SourceKind kind;
    Loc loc;
    const char *path, *path2; /* csv, npz: path; idx: images, labels (as written) */
    bool header, label;       /* csv options (npz: label) */
    int nsamples;             /* inline */
    double *x, *t;            /* inline, flattened row-major: nsamples * input/target size */
} Source;

typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW, OPT_RMSPROP, OPT_ADAGRAD } OptKind;

typedef struct Optimizer {
    OptKind kind;
    double lr, momentum, beta1, beta2, eps;
    double weight_decay, alpha; /* alpha: rmsprop's smoothing */
    bool nesterov;
} Optimizer;

typedef enum { SCHED_NONE, SCHED_STEP, SCHED_EXPONENTIAL, SCHED_COSINE } SchedKind;

/* The lr schedule of spec section 10, stepped once an epoch after the warm-up. */
typedef struct Schedule {
    SchedKind kind;
    long long every;     /* step */
    double gamma, min_lr; /* step, exponential; cosine */
} Schedule;

typedef struct Train {
    const char *model_name;
    Loc loc, name_loc;
    TrainItem *items;
    struct Train *next;
    /* Filled by sema (defaults where not given). */
    Model *model;
    Source data, test;
    long long epochs, batch, seed;
    Optimizer opt;
    bool shuffle;
    /* spec section 10's options */
    Source validation;    /* kind SRC_NONE: none, or val_fraction of data held out */
    double val_fraction;
    long long patience;   /* 0: no early stopping */
    long long warmup;     /* epochs */
    double clip;          /* 0: none */
    Schedule schedule;
} Train;

typedef struct Program {
    Model *models;
    Train *trains;
} Program;

#endif
