/* sema_dense.c - the layer sugar `h = dense(a, units[, act])` and
 * `h = conv(a, filters, size[, act], stride = s, padding = p)`.
 * dense becomes params h.W[units, n] and h.b[units], inserted just before the let, and the
 * let's value act(h.W @ a + h.b); conv becomes h.W[filters, C, size, size] and h.b[filters]
 * and act(conv2d(a, h.W, h.b, stride = s, padding = p)). Every new node carries the call's
 * location. */
#include <math.h>
#include <string.h>

#include "sema_priv.h"

static Expr *node(Sema *s, ExprKind kind, Loc loc, Shape shape)
{
    Expr *e = arena_alloc(s->arena, sizeof *e);
    e->kind = kind;
    e->loc = loc;
    e->shape = shape;
    e->depth = 1;
    return e;
}

static Expr *bin(Sema *s, char op, Expr *lhs, Expr *rhs, Loc loc, Shape shape)
{
    Expr *e = node(s, EX_BIN, loc, shape);
    e->op = op;
    e->lhs = lhs;
    e->rhs = rhs;
    e->depth = 1 + (lhs->depth > rhs->depth ? lhs->depth : rhs->depth);
    return e;
}

static Expr *name_of(Sema *s, Stmt *decl, Loc loc)
{
    Expr *e = node(s, EX_NAME, loc, decl->shape);
    e->str = decl->name;
    e->decl = decl;
    return e;
}

static Stmt *param(Sema *s, const Stmt *let, const char *suffix, Shape shape, InitKind init)
{
    Loc loc = let->value->loc;
    Stmt *p = arena_alloc(s->arena, sizeof *p);
    p->kind = ST_PARAM;
    p->loc = p->name_loc = loc;
    p->name = arena_printf(s->arena, "%s.%s", let->name, suffix);
    p->ndims = shape.rank;
    p->dims = arena_alloc(s->arena, sizeof *p->dims * (size_t)shape.rank);
    for (int i = 0; i < shape.rank; i++)
        p->dims[i] = sema_num(s, shape.dims[i], loc);
    p->shape = shape;
    p->init = (Init){init, 0, 0};
    if (init != INIT_ZEROS) {
        p->init_expr = node(s, EX_NAME, loc, (Shape){0, {0}});
        p->init_expr->str = init == INIT_HE ? "he" : "xavier";
    }
    p->from_dense = true;
    return p;
}

static bool units_of(Sema *s, const Expr *e, int *units)
{
    double v;
    if (!sema_fold(s, e, "the units of dense", &v))
        return false;
    if (v != floor(v) || v < 1 || v > 2147483647.0) {
        diag_error(s->diag, e->loc, "the units of dense must be a whole number >= 1, not %g", v);
        return false;
    }
    *units = (int)v;
    return true;
}

/* act, argument `at` of the call: a function name (NULL when left out: a linear layer). */
static bool activation(Sema *s, const Expr *call, int at, const SemaFn **act)
{
    *act = NULL;
    if (call->nargs <= at || call->args[at].name)
        return true;
    const Expr *e = call->args[at].value;
    const SemaFn *f = e->kind == EX_NAME ? sema_fn(e->str) : NULL;
    if (f && (f->kind == FN_ELEMWISE || f->kind == FN_LEAKY || f->kind == FN_SOFTMAX)) {
        *act = f;
        return true;
    }
    diag_error(s->diag, e->loc, "the activation of %s is the name of an elementwise function, "
               "leaky_relu, softmax or log_softmax, as in %s", call->str,
               strcmp(call->str, "conv") == 0 ? "conv(x, 16, 3, relu)" : "dense(x, 10, relu)");
    return false;
}

static bool dense_args(Sema *s, Expr *call, int *units, const SemaFn **act)
{
    for (int i = 0; i < call->nargs; i++)
        if (call->args[i].name) {
            diag_error(s->diag, call->args[i].loc, "unknown named argument '%s' for 'dense'",
                       call->args[i].name);
            return false;
        }
    if (call->nargs < 2 || call->nargs > 3) {
        diag_error(s->diag, call->loc, "'dense' takes 2 or 3 arguments, not %d", call->nargs);
        return false;
    }
    bool ok = sema_expr(s, call->args[0].value);
    ok = units_of(s, call->args[1].value, units) && ok;
    ok = activation(s, call, 2, act) && ok;
    Shape in = call->args[0].value->shape;
    if (ok && in.rank != 1) {
        char buf[SHAPE_STR_MAX];
        diag_error(s->diag, call->args[0].loc, "dense needs a vector input, not %s",
                   shape_str(in, buf));
        return false;
    }
    return ok;
}

/* act(z), leaky_relu with its default alpha; z without act. */
static Expr *activate(Sema *s, Expr *z, const SemaFn *act, Loc loc)
{
    if (!act)
        return z;
    Expr *e = node(s, EX_CALL, loc, z->shape);
    e->str = act->name;
    e->nargs = act->kind == FN_LEAKY ? 2 : 1;
    e->args = arena_alloc(s->arena, sizeof *e->args * (size_t)e->nargs);
    e->args[0] = (Arg){NULL, loc, z};
    if (act->kind == FN_LEAKY)
        e->args[1] = (Arg){NULL, loc, sema_num(s, 0.01, loc)};
    e->depth = z->depth + 1;
    return e;
}

/* act(W @ a + b) */
static Expr *layer(Sema *s, Expr *call, Stmt *w, Stmt *b, const SemaFn *act)
{
    Loc loc = call->loc;
    Expr *a = call->args[0].value;
    Expr *z = bin(s, '+', bin(s, '@', name_of(s, w, loc), a, loc, b->shape),
                  name_of(s, b, loc), loc, b->shape);
    return activate(s, z, act, loc);
}

/* The params go in before the let, defined. */
static void insert_params(Sema *s, Stmt **link, Stmt *w, Stmt *b)
{
    w->next = b;
    b->next = *link;
    *link = w;
    sema_define(s, w, true);
    sema_define(s, b, true);
}

static bool he_for(const SemaFn *act)
{
    return act && (act->kind == FN_LEAKY || strcmp(act->name, "relu") == 0);
}

bool sema_dense(Sema *s, Stmt **link)
{
    Stmt *let = *link;
    Expr *call = let->value;
    int units;
    const SemaFn *act;
    if (!dense_args(s, call, &units, &act))
        return false;
    int n = call->args[0].value->shape.dims[0];
    Shape wshape = {2, {units, n}}, bshape = {1, {units}};
    const char *what = arena_printf(s->arena, "'%s.W'", let->name);
    if (!sema_check_size(s, wshape, what, call->loc))
        return false;
    Stmt *w = param(s, let, "W", wshape, he_for(act) ? INIT_HE : INIT_XAVIER);
    Stmt *b = param(s, let, "b", bshape, INIT_ZEROS);
    insert_params(s, link, w, b);
    let->value = layer(s, call, w, b, act);
    return true;
}

/* conv(a, filters, size[, act]) with stride and padding: checked, sizes in *filters, *size. */
static bool conv_args(Sema *s, Expr *call, SemaOpt *opts, int *filters, int *size, const SemaFn **act)
{
    int npos = sema_options(s, call, "conv", opts, 2);
    if (npos < 0)
        return false;
    if (npos < 3 || npos > 4) {
        diag_error(s->diag, call->loc, "'conv' takes 3 or 4 arguments (input, filters, size, "
                   "activation) and the options stride and padding, not %d", npos);
        return false;
    }
    bool ok = sema_expr(s, call->args[0].value);
    ok = sema_whole(s, call->args[1].value, "the filters of conv", 1, filters) && ok;
    ok = sema_whole(s, call->args[2].value, "the kernel size of conv", 1, size) && ok;
    ok = activation(s, call, 3, act) && ok;
    return ok && sema_image_input(s, "conv", &call->args[0]);
}

/* conv2d(a, W, b, stride = s, padding = p), as sema leaves a checked conv2d call. */
static Expr *conv2d_call(Sema *s, Expr *call, Stmt *w, Stmt *b, const SemaOpt *opts)
{
    Loc loc = call->loc;
    Expr *e = node(s, EX_CALL, loc, (Shape){0, {0}});
    e->str = "conv2d";
    e->nargs = 5;
    e->args = arena_alloc(s->arena, sizeof *e->args * 5);
    e->args[0] = call->args[0];
    e->args[1] = (Arg){NULL, loc, name_of(s, w, loc)};
    e->args[2] = (Arg){NULL, loc, name_of(s, b, loc)};
    for (int i = 0; i < 2; i++)
        e->args[3 + i] = (Arg){opts[i].name, loc, sema_num(s, opts[i].value, loc)};
    e->depth = call->args[0].value->depth + 1;
    return e;
}

bool sema_conv(Sema *s, Stmt **link)
{
    Stmt *let = *link;
    Expr *call = let->value;
    SemaOpt opts[] = {{"stride", 1, false, {0, 0}}, {"padding", 0, false, {0, 0}}};
    int filters, size;
    const SemaFn *act;
    if (!conv_args(s, call, opts, &filters, &size, &act))
        return false;
    int channels = call->args[0].value->shape.dims[0];
    Shape wshape = {4, {filters, channels, size, size}}, bshape = {1, {filters}};
    if (!sema_check_size(s, wshape, arena_printf(s->arena, "'%s.W'", let->name), call->loc))
        return false;
    Stmt *w = param(s, let, "W", wshape, he_for(act) ? INIT_HE : INIT_XAVIER);
    Stmt *b = param(s, let, "b", bshape, INIT_ZEROS);
    w->from_conv = b->from_conv = true;
    Expr *z = conv2d_call(s, call, w, b, opts);
    if (!sema_conv2d_shape(s, z, "conv", (int)opts[0].value, (int)opts[1].value))
        return false;
    insert_params(s, link, w, b);
    let->value = activate(s, z, act, call->loc);
    return true;
}
