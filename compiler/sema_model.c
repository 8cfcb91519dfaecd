/* sema_model.c - the statements of one model: declarations and their shapes, initialisers,
 * single assignment, the input/target/loss/output rules, and the default output. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "sema.h"
#include "sema_priv.h"

void sema_define(Sema *s, Stmt *st, bool ok)
{
    SemaEntry *old = sema_scope_get(&s->defined, st->name);
    if (!old) {
        sema_scope_put(s, &s->defined, st->name, st, ok);
        return;
    }
    int line = old->stmt->loc.line;
    if (st->kind == ST_PARAM && old->stmt->kind == ST_PARAM)
        diag_error(s->diag, st->name_loc, "duplicate param '%s' (first declared on line %d)",
                   st->name, line);
    else
        diag_error(s->diag, st->name_loc, "'%s' is already defined on line %d; each name is "
                   "assigned only once", st->name, line);
}

/* ---- declared shapes ---- */

static bool dim(Sema *s, const Expr *e, int *out)
{
    double v;
    if (!sema_fold(s, e, "a dimension", &v))
        return false;
    if (v != floor(v) || v < 1) {
        diag_error(s->diag, e->loc, "a dimension must be a whole number >= 1, not %g", v);
        return false;
    }
    if (v > 2147483647.0) {
        diag_error(s->diag, e->loc, "dimension %.0f is too large (at most 2147483647)", v);
        return false;
    }
    *out = (int)v;
    return true;
}

static bool declared_shape(Sema *s, Stmt *st)
{
    if (st->ndims > MAX_RANK) {
        diag_error(s->diag, st->dims[MAX_RANK]->loc, "'%s' has %d dimensions; at most %d are "
                   "allowed", st->name, st->ndims, MAX_RANK);
        return false;
    }
    st->shape.rank = st->ndims;
    bool ok = true;
    for (int i = 0; i < st->ndims; i++)
        ok = dim(s, st->dims[i], &st->shape.dims[i]) && ok;
    return ok && sema_check_size(s, st->shape, arena_printf(s->arena, "'%s'", st->name),
                                 st->name_loc);
}

/* ---- initialisers ---- */

static const struct {
    const char *name;
    InitKind kind;
    int nargs;
} inits[] = {
    {"zeros", INIT_ZEROS, 0},     {"ones", INIT_ONES, 0},     {"const", INIT_CONST, 1},
    {"uniform", INIT_UNIFORM, 2}, {"normal", INIT_NORMAL, 2}, {"xavier", INIT_XAVIER, 0},
    {"he", INIT_HE, 0},
};
enum { NINITS = sizeof inits / sizeof *inits };
static const char *const init_forms =
    "zeros, ones, const(v), uniform(a, b), normal(mean, std), xavier or he";

static int find_init(const char *name)
{
    for (int i = 0; i < NINITS; i++)
        if (strcmp(inits[i].name, name) == 0)
            return i;
    return -1;
}

static bool unknown_init(Sema *s, const Expr *e)
{
    const char *names[NINITS];
    for (int i = 0; i < NINITS; i++)
        names[i] = inits[i].name;
    const char *near = sema_closest(e->str, names, NINITS);
    if (near)
        diag_error(s->diag, e->loc, "unknown initialiser '%s'; did you mean '%s'?", e->str, near);
    else
        diag_error(s->diag, e->loc, "unknown initialiser '%s' (%s)", e->str, init_forms);
    return false;
}

static bool init_args(Sema *s, const Expr *e, int want, double *v)
{
    int got = e->kind == EX_CALL ? e->nargs : 0;
    if (got != want) {
        diag_error(s->diag, e->loc, "initialiser '%s' takes %d argument%s, not %d", e->str,
                   want, want == 1 ? "" : "s", got);
        return false;
    }
    for (int i = 0; i < got; i++) {
        if (e->args[i].name) {
            diag_error(s->diag, e->args[i].loc, "unknown named argument '%s' for '%s' (its "
                       "arguments are positional)", e->args[i].name, e->str);
            return false;
        }
        if (!sema_fold(s, e->args[i].value, "an initialiser argument", &v[i]))
            return false;
    }
    return true;
}

static bool init(Sema *s, Stmt *st)
{
    const Expr *e = st->init_expr;
    st->init = (Init){INIT_ZEROS, 0, 0};
    if (!e)
        return true;
    if (e->kind != EX_NAME && e->kind != EX_CALL) {
        diag_error(s->diag, e->loc, "a param's initialiser is one of %s", init_forms);
        return false;
    }
    int i = find_init(e->str);
    double v[2] = {0, 0};
    if (i < 0)
        return unknown_init(s, e);
    if (!init_args(s, e, inits[i].nargs, v))
        return false;
    st->init = (Init){inits[i].kind, v[0], v[1]};
    if (st->init.kind == INIT_UNIFORM && v[0] > v[1]) {
        diag_error(s->diag, e->loc, "uniform(a, b) needs a <= b, not %g > %g", v[0], v[1]);
        return false;
    }
    if (st->init.kind == INIT_NORMAL && v[1] < 0) {
        diag_error(s->diag, e->args[1].loc, "normal(mean, std) needs std >= 0, not %g", v[1]);
        return false;
    }
    return true;
}

/* ---- initialisers at the chosen precision ---- */

/* The largest |z| of the runtime's normal draws: Box-Muller with u1 >= 2^-53 reaches
 * sqrt(-2 ln 2^-53) = 8.5718 (runtime/rt_rng.c). */
static const double NORMAL_Z_MAX = 8.572;

/* The largest magnitude an initialiser's values reach (computed in f64 as the runtime
 * does); infinite when computing them overflows. xavier and he stay below 13. */
static double init_reach(Init in)
{
    switch (in.kind) {
    case INIT_CONST: return fabs(in.a);
    case INIT_UNIFORM: return isfinite(in.b - in.a) ? fmax(fabs(in.a), fabs(in.b)) : INFINITY;
    case INIT_NORMAL: return fabs(in.a) + NORMAL_Z_MAX * in.b;
    default: return 0;
    }
}

static bool init_fits(const Stmt *st, int real_size, Diag *d)
{
    double max = real_size == 4 ? FLT_MAX : DBL_MAX, reach = init_reach(st->init);
    if (reach <= max)
        return true;
    const char *prec = real_size == 4 ? "f32" : "f64";
    const Init in = st->init;
    Loc loc = st->init_expr ? st->init_expr->loc : st->name_loc;
    if (in.kind == INIT_CONST)
        diag_error(d, loc, "const(%g) makes '%s' infinite: the largest %s value is %g%s", in.a,
                   st->name, prec, max, real_size == 4 ? " (--precision=f64 holds more)" : "");
    else if (in.kind == INIT_UNIFORM && !isfinite(in.b - in.a))
        diag_error(d, loc, "uniform(%g, %g) makes '%s' infinite: its width b - a overflows",
                   in.a, in.b, st->name);
    else if (in.kind == INIT_UNIFORM)
        diag_error(d, loc, "uniform(%g, %g) makes '%s' infinite: the largest %s value is %g",
                   in.a, in.b, st->name, prec, max);
    else if (!isfinite(reach))
        diag_error(d, loc, "normal(%g, %g) can make '%s' infinite: its values reach |mean| + "
                   "%.2f std, which overflows", in.a, in.b, st->name, NORMAL_Z_MAX);
    else
        diag_error(d, loc, "normal(%g, %g) can make '%s' infinite: its values reach |mean| + "
                   "%.2f std = %g, beyond the largest %s value %g", in.a, in.b, st->name,
                   NORMAL_Z_MAX, reach, prec, max);
    return false;
}

bool sema_check_inits(const Model *m, int real_size, Diag *d)
{
    bool ok = true;
    for (const Stmt *st = m->stmts; st; st = st->next)
        if (st->kind == ST_PARAM)
            ok = init_fits(st, real_size, d) && ok;
    return ok;
}

/* ---- statements ---- */

/* The one input, the (at most one) target, the one loss, the (at most one) output. */
/* `NAME = fn(...)` for a layer sugar fn (dense, conv): its params come before the let. */
static bool layer_call(const Stmt *st, const char *fn)
{
    return st->kind == ST_LET && st->value->kind == EX_CALL && strcmp(st->value->str, fn) == 0;
}

static bool only_one(Sema *s, Stmt **slot, Stmt *st, const char *what, const char *rule)
{
    if (*slot) {
        diag_error(s->diag, st->loc, "a model has %s %s; the first is on line %d", rule, what,
                   (*slot)->loc.line);
        return false;
    }
    *slot = st;
    return true;
}

static void declaration(Sema *s, Stmt *st)
{
    bool ok = declared_shape(s, st);
    if (st->kind == ST_PARAM)
        ok = init(s, st) && ok;
    sema_define(s, st, ok);
}

static bool output(Sema *s, Stmt *st)
{
    Expr *e = st->value;
    if (e->kind != EX_NAME) {
        diag_error(s->diag, e->loc, "output must name a value, as in 'output y'");
        return false;
    }
    if (!sema_expr(s, e))
        return false;
    StmtKind k = e->decl->kind;
    if (k == ST_PARAM || k == ST_TARGET) {
        diag_error(s->diag, e->loc, "output must name a computed value, but '%s' is a %s",
                   e->str, k == ST_PARAM ? "param" : "target");
        return false;
    }
    return true;
}

static void loss(Sema *s, Stmt *st)
{
    if (!sema_expr(s, st->value))
        return;
    st->shape = st->value->shape;
    if (st->shape.rank == 0)
        return;
    char buf[SHAPE_STR_MAX];
    bool one = shape_size(st->shape) == 1;
    diag_error(s->diag, st->value->loc, "the loss must be a scalar, not %s; %s",
               shape_str(st->shape, buf),
               one ? "a one-element tensor is not a scalar: wrap it in sum(...)"
                   : "reduce it with sum(...) or mean(...)");
}

static void statement(Sema *s, Stmt **link, Stmt **out)
{
    Stmt *st = *link;
    Model *m = s->model;
    s->current = st;
    switch (st->kind) {
    case ST_INPUT:
        only_one(s, &m->input, st, "input", "exactly one");
        declaration(s, st);
        break;
    case ST_TARGET:
        only_one(s, &m->target, st, "target", "at most one");
        declaration(s, st);
        break;
    case ST_PARAM:
        declaration(s, st);
        break;
    case ST_LET: {
        bool ok = layer_call(st, "dense")  ? sema_dense(s, link)
                  : layer_call(st, "conv") ? sema_conv(s, link)
                                           : sema_expr(s, st->value);
        st->shape = st->value->shape;
        sema_define(s, st, ok);
        break;
    }
    case ST_OUTPUT:
        if (only_one(s, out, st, "output", "at most one") && output(s, st))
            m->output = st->value;
        break;
    case ST_LOSS:
        if (only_one(s, &m->loss, st, "loss", "exactly one"))
            loss(s, st);
        break;
    }
}

/* Every name the model will define, so a use before its definition is told apart. */
static void collect_names(Sema *s, Model *m)
{
    for (Stmt *st = m->stmts; st; st = st->next) {
        if (!st->name || st->kind == ST_OUTPUT || st->kind == ST_LOSS)
            continue;
        if (!sema_scope_get(&s->all, st->name))
            sema_scope_put(s, &s->all, st->name, st, true);
        if (layer_call(st, "dense") || layer_call(st, "conv")) {
            sema_scope_put(s, &s->all, arena_printf(s->arena, "%s.W", st->name), st, true);
            sema_scope_put(s, &s->all, arena_printf(s->arena, "%s.b", st->name), st, true);
        }
    }
}

/* Without `output`, the prediction is the first argument of the loss function. */
static void default_output(Sema *s, Model *m)
{
    Expr *e = m->loss->value;
    const SemaFn *f = e->kind == EX_CALL ? sema_fn(e->str) : NULL;
    if (f && f->kind == FN_LOSS) {
        m->output = e->args[0].value;
        return;
    }
    diag_error(s->diag, m->loss->loc, "the loss is not a call of mse, bce or cross_entropy, so "
               "the prediction is unknown: add 'output NAME'");
}

bool sema_model(Sema *s, Model *m)
{
    int errors = s->diag->nerrors;
    s->model = m;
    s->defined = (SemaScope){0};
    s->all = (SemaScope){0};
    collect_names(s, m);
    Stmt *out = NULL;
    for (Stmt **link = &m->stmts; *link; link = &(*link)->next) {
        statement(s, link, &out);
        /* dense inserted its params before the let: step over them to the let. */
        while ((*link)->kind == ST_PARAM && (*link)->from_dense)
            link = &(*link)->next;
    }
    if (!m->input)
        diag_error(s->diag, m->loc, "model '%s' has no input: add 'input NAME[dims]'", m->name);
    if (!m->loss)
        diag_error(s->diag, m->loc, "model '%s' has no loss: add 'loss = ...'", m->name);
    else if (!out && s->diag->nerrors == errors)
        default_output(s, m);
    return s->diag->nerrors == errors;
}
