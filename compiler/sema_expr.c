/* sema_expr.c - shapes of model expressions, calls, and constant folding.
 * Each check returns false after reporting, and callers stop there, so one mistake gives
 * one message rather than a cascade. */
#include <math.h>
#include <string.h>

#include "sema_priv.h"

static const SemaFn fns[] = {
    {"sigmoid", FN_ELEMWISE, 1, 1},   {"tanh", FN_ELEMWISE, 1, 1},
    {"relu", FN_ELEMWISE, 1, 1},      {"exp", FN_ELEMWISE, 1, 1},
    {"log", FN_ELEMWISE, 1, 1},       {"sqrt", FN_ELEMWISE, 1, 1},
    {"abs", FN_ELEMWISE, 1, 1},       {"softplus", FN_ELEMWISE, 1, 1},
    {"leaky_relu", FN_LEAKY, 1, 2},   {"softmax", FN_SOFTMAX, 1, 1},
    {"log_softmax", FN_SOFTMAX, 1, 1}, {"sum", FN_REDUCE, 1, 1},
    {"mean", FN_REDUCE, 1, 1},        {"dot", FN_DOT, 2, 2},
    {"outer", FN_OUTER, 2, 2},        {"transpose", FN_TRANSPOSE, 1, 1},
    {"mse", FN_LOSS, 2, 2},           {"bce", FN_LOSS, 2, 2},
    {"cross_entropy", FN_LOSS, 2, 2}, {"dense", FN_DENSE, 2, 3},
    {"conv", FN_CONV, 3, 4},          {"conv2d", FN_CONV2D, 2, 3},
    {"maxpool", FN_POOL, 2, 2},       {"avgpool", FN_POOL, 2, 2},
    {"flatten", FN_FLATTEN, 1, 1},    {"reshape", FN_RESHAPE, 2, 2},
    {"concat", FN_CONCAT, 1, 1 << 30}, {"dropout", FN_DROPOUT, 2, 2},
};
enum { NFNS = sizeof fns / sizeof *fns };

const SemaFn *sema_fn(const char *name)
{
    for (int i = 0; i < NFNS; i++)
        if (strcmp(fns[i].name, name) == 0)
            return &fns[i];
    return NULL;
}

static const char *closest_fn(const char *name)
{
    const char *names[NFNS];
    for (int i = 0; i < NFNS; i++)
        names[i] = fns[i].name;
    return sema_closest(name, names, NFNS);
}

Expr *sema_num(Sema *s, double v, Loc loc)
{
    Expr *e = arena_alloc(s->arena, sizeof *e);
    e->kind = EX_NUM;
    e->loc = loc;
    e->num = v;
    e->depth = 1;
    return e;
}

bool sema_check_size(Sema *s, Shape sh, const char *what, Loc loc)
{
    const long long limit = 2147483647;
    long long n = 1;
    for (int i = 0; i < sh.rank; i++) {
        if (n > limit / sh.dims[i]) {
            char buf[SHAPE_STR_MAX];
            diag_error(s->diag, loc, "%s of shape %s has more than 2^31-1 elements", what,
                       shape_str(sh, buf));
            return false;
        }
        n *= sh.dims[i];
    }
    return true;
}

/* ---- constants ---- */

static bool not_constant(Sema *s, const Expr *e, const char *what)
{
    const char *why = e->kind == EX_NAME   ? arena_printf(s->arena, "the name '%s'", e->str)
                      : e->kind == EX_CALL ? arena_printf(s->arena, "a call of '%s'", e->str)
                      : e->kind == EX_STR  ? "a string"
                      : e->kind == EX_LIST ? "a bracketed list"
                                           : "a matrix product";
    diag_error(s->diag, e->loc, "%s must be a constant (numbers, + - * / ^ and parentheses), not %s",
               what, why);
    return false;
}

static bool fold(Sema *s, const Expr *e, const char *what, double *out)
{
    double a, b;
    switch (e->kind) {
    case EX_NUM:
        *out = e->num;
        return true;
    case EX_NEG:
        if (!fold(s, e->lhs, what, &a))
            return false;
        *out = -a;
        return true;
    case EX_BIN:
        if (e->op == '@')
            return not_constant(s, e, what);
        if (!fold(s, e->lhs, what, &a) || !fold(s, e->rhs, what, &b))
            return false;
        switch (e->op) {
        case '+': *out = a + b; break;
        case '-': *out = a - b; break;
        case '*': *out = a * b; break;
        case '/': *out = a / b; break;
        default: *out = pow(a, b); break;
        }
        return true;
    default:
        return not_constant(s, e, what);
    }
}

bool sema_fold(Sema *s, const Expr *e, const char *what, double *out)
{
    if (!fold(s, e, what, out))
        return false;
    if (isnan(*out)) {
        diag_error(s->diag, e->loc, "%s is undefined (the constant is not a number)", what);
        return false;
    }
    if (isinf(*out)) {
        diag_error(s->diag, e->loc, "%s evaluates to %sinfinity, not a finite number", what,
                   *out < 0 ? "-" : "");
        return false;
    }
    return true;
}

/* ---- names ---- */

static bool name(Sema *s, Expr *e)
{
    SemaEntry *d = sema_scope_get(&s->defined, e->str);
    if (d) {
        e->decl = d->stmt;
        e->shape = d->stmt->shape;
        return d->ok;
    }
    SemaEntry *later = sema_scope_get(&s->all, e->str);
    if (later && later->stmt == s->current)
        diag_error(s->diag, e->loc, "'%s' is used in its own definition", e->str);
    else if (later)
        diag_error(s->diag, e->loc, "'%s' is used before its definition on line %d", e->str,
                   later->stmt->loc.line);
    else if (sema_fn(e->str))
        diag_error(s->diag, e->loc, "'%s' is a function: call it, as in %s(x)", e->str, e->str);
    else
        diag_error(s->diag, e->loc, "unknown name '%s'%s", e->str,
                   sema_did_you_mean(s, sema_quiet(s) ? NULL : sema_closest_in_scope(&s->defined, e->str)));
    return false;
}

/* ---- operators ---- */

static bool elementwise(Sema *s, Expr *e)
{
    Shape a = e->lhs->shape, b = e->rhs->shape;
    if (shape_eq(a, b) || b.rank == 0) {
        e->shape = a;
        return true;
    }
    if (a.rank == 0) {
        e->shape = b;
        return true;
    }
    const char *verb = e->op == '+' ? "add" : e->op == '-' ? "subtract" : e->op == '*' ? "multiply" : "divide";
    char sa[SHAPE_STR_MAX], sb[SHAPE_STR_MAX];
    diag_error(s->diag, e->loc, "cannot %s %s %c %s: the shapes differ and neither is a scalar",
               verb, shape_str(a, sa), e->op, shape_str(b, sb));
    return false;
}

/* [m,n]@[n] -> [m], [m,n]@[n,k] -> [m,k], [n]@[n] -> [], [n]@[n,k] -> [k] */
static bool matmul(Sema *s, Expr *e)
{
    Shape a = e->lhs->shape, b = e->rhs->shape;
    char sa[SHAPE_STR_MAX], sb[SHAPE_STR_MAX];
    if (a.rank < 1 || a.rank > 2 || b.rank < 1 || b.rank > 2) {
        diag_error(s->diag, e->loc, "cannot multiply %s @ %s: '@' takes vectors and matrices "
                   "(rank 1 or 2)%s", shape_str(a, sa), shape_str(b, sb),
                   a.rank == 0 || b.rank == 0 ? "; use '*' to scale by a scalar" : "");
        return false;
    }
    int inner_a = a.dims[a.rank - 1], inner_b = b.dims[0];
    if (inner_a != inner_b) {
        diag_error(s->diag, e->loc, "cannot multiply %s @ %s: inner dimensions %d and %d differ",
                   shape_str(a, sa), shape_str(b, sb), inner_a, inner_b);
        return false;
    }
    Shape r = {0, {0}};
    if (a.rank == 2)
        r.dims[r.rank++] = a.dims[0];
    if (b.rank == 2)
        r.dims[r.rank++] = b.dims[1];
    e->shape = r;
    return true;
}

/* The exponent is folded here: later stages see a number. */
static bool power(Sema *s, Expr *e)
{
    double c;
    if (!sema_expr(s, e->lhs) || !sema_fold(s, e->rhs, "the exponent of '^'", &c))
        return false;
    e->rhs = sema_num(s, c, e->rhs->loc);
    e->shape = e->lhs->shape;
    return true;
}

static bool binary(Sema *s, Expr *e)
{
    if (e->op == '^')
        return power(s, e);
    bool ok = sema_expr(s, e->lhs);
    if (!sema_expr(s, e->rhs) || !ok)
        return false;
    return e->op == '@' ? matmul(s, e) : elementwise(s, e);
}

/* ---- calls ---- */

static const char *count_str(Sema *s, const SemaFn *f)
{
    if (f->min_args == f->max_args)
        return arena_printf(s->arena, "%d argument%s", f->min_args, f->min_args == 1 ? "" : "s");
    return arena_printf(s->arena, "%d or %d arguments", f->min_args, f->max_args);
}

/* Only leaky_relu has a named argument (alpha, the second). */
static bool check_args(Sema *s, Expr *e, const SemaFn *f)
{
    for (int i = 0; i < e->nargs; i++) {
        Arg *a = &e->args[i];
        if (!a->name)
            continue;
        if (f->kind == FN_LEAKY && i == 1 && strcmp(a->name, "alpha") == 0) {
            a->name = NULL;
            continue;
        }
        diag_error(s->diag, a->loc, "unknown named argument '%s' for '%s'%s", a->name, e->str,
                   f->kind == FN_LEAKY ? " (only the second argument may be named alpha)" : "");
        return false;
    }
    if (e->nargs < f->min_args || e->nargs > f->max_args) {
        diag_error(s->diag, e->loc, "'%s' takes %s, not %d", e->str, count_str(s, f), e->nargs);
        return false;
    }
    return true;
}

/* leaky_relu(a[, alpha]): alpha folded to a number, 0.01 when left out. */
static bool leaky(Sema *s, Expr *e)
{
    double alpha = 0.01;
    Loc loc = e->loc;
    if (e->nargs == 2) {
        if (!sema_fold(s, e->args[1].value, "the alpha of leaky_relu", &alpha))
            return false;
        loc = e->args[1].loc;
    }
    Arg *args = arena_alloc(s->arena, 2 * sizeof *args);
    args[0] = e->args[0];
    args[1] = (Arg){NULL, loc, sema_num(s, alpha, loc)};
    e->args = args;
    e->nargs = 2;
    e->shape = args[0].value->shape;
    return true;
}

static bool need_rank(Sema *s, Expr *e, Shape sh, bool ok, const char *need)
{
    if (!ok) {
        char buf[SHAPE_STR_MAX];
        diag_error(s->diag, e->loc, "'%s' needs %s, not %s", e->str, need, shape_str(sh, buf));
    }
    return ok;
}

static bool same_shapes(Sema *s, Expr *e, Shape a, Shape b)
{
    if (shape_eq(a, b))
        return true;
    char sa[SHAPE_STR_MAX], sb[SHAPE_STR_MAX];
    diag_error(s->diag, e->loc, "'%s' needs two arguments of the same shape, not %s and %s",
               e->str, shape_str(a, sa), shape_str(b, sb));
    return false;
}

static bool outer(Sema *s, Expr *e, Shape a, Shape b)
{
    if (!need_rank(s, e, a.rank ? b : a, a.rank >= 1 && b.rank >= 1, "vectors or tensors of rank >= 1"))
        return false;
    char sa[SHAPE_STR_MAX], sb[SHAPE_STR_MAX];
    if (a.rank + b.rank > MAX_RANK) {
        diag_error(s->diag, e->loc, "'outer' of %s and %s would have rank %d (at most %d)",
                   shape_str(a, sa), shape_str(b, sb), a.rank + b.rank, MAX_RANK);
        return false;
    }
    Shape r = a;
    for (int i = 0; i < b.rank; i++)
        r.dims[r.rank++] = b.dims[i];
    e->shape = r;
    return sema_check_size(s, r, "the result of 'outer'", e->loc);
}

static bool apply(Sema *s, Expr *e, const SemaFn *f)
{
    Shape a = e->args[0].value->shape, b = e->nargs > 1 ? e->args[1].value->shape : a;
    Shape scalar = {0, {0}};
    switch (f->kind) {
    case FN_ELEMWISE: e->shape = a; return true;
    case FN_LEAKY: return leaky(s, e);
    case FN_SOFTMAX:
        e->shape = a;
        return need_rank(s, e, a, a.rank >= 1, "a vector or a tensor of rank >= 1");
    case FN_REDUCE: e->shape = scalar; return true;
    case FN_DOT:
        e->shape = scalar;
        return need_rank(s, e, a, a.rank >= 1, "vectors or tensors of rank >= 1") &&
               same_shapes(s, e, a, b);
    case FN_OUTER: return outer(s, e, a, b);
    case FN_TRANSPOSE:
        e->shape = (Shape){2, {a.dims[1], a.dims[0]}};
        return need_rank(s, e, a, a.rank == 2, "a matrix (rank 2)");
    case FN_LOSS: e->shape = scalar; return same_shapes(s, e, a, b);
    default: break; /* dense; call() took the others */
    }
    diag_error(s->diag, e->loc, "'dense' may only be the whole right-hand side, as in 'h = dense(x, 10, relu)'");
    return false;
}

static bool unknown_function(Sema *s, Expr *e)
{
    if (sema_scope_get(&s->defined, e->str) || sema_scope_get(&s->all, e->str))
        diag_error(s->diag, e->loc, "'%s' is not a function", e->str);
    else
        diag_error(s->diag, e->loc, "unknown function '%s'%s", e->str,
                   sema_did_you_mean(s, closest_fn(e->str)));
    return false;
}

static bool call(Sema *s, Expr *e)
{
    const SemaFn *f = sema_fn(e->str);
    if (!f)
        return unknown_function(s, e);
    if (f->kind >= FN_CONV2D) /* options and counts of their own */
        return sema_image_call(s, e, f);
    if (f->kind == FN_CONV) {
        diag_error(s->diag, e->loc, "'conv' may only be the whole right-hand side, as in "
                   "'h = conv(x, 16, 3, relu)'");
        return false;
    }
    if (!check_args(s, e, f))
        return false;
    if (f->kind == FN_DENSE)
        return apply(s, e, f);
    /* leaky_relu's alpha is a constant, folded in apply. */
    int checked = f->kind == FN_LEAKY ? 1 : e->nargs;
    bool ok = true;
    for (int i = 0; i < checked; i++)
        ok = sema_expr(s, e->args[i].value) && ok;
    return ok && apply(s, e, f);
}

bool sema_expr(Sema *s, Expr *e)
{
    switch (e->kind) {
    case EX_NUM:
        e->shape = (Shape){0, {0}};
        return true;
    case EX_STR:
        diag_error(s->diag, e->loc, "a string is not a value in a model");
        return false;
    case EX_NAME:
        return name(s, e);
    case EX_NEG:
        if (!sema_expr(s, e->lhs))
            return false;
        e->shape = e->lhs->shape;
        return true;
    case EX_BIN:
        return binary(s, e);
    case EX_CALL:
        return call(s, e);
    case EX_LIST:
        diag_error(s->diag, e->loc, "a bracketed list is not a value; it gives the dims of "
                   "reshape, as in reshape(x, [1, 28, 28])");
        return false;
    }
    return false;
}
