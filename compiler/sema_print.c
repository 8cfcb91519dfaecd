/* sema_print.c - --emit=ast: the checked tree as an indented outline.
 * Each line starts with the node's LINE:COL, then the node, then its shape; children are
 * indented below their parent. Numbers print in their shortest exact form. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sema.h"

typedef struct Printer {
    FILE *out;
} Printer;

/* Whole numbers as integers, others in the shortest %g spelling that reads back exactly. */
static const char *num_str(double v, char buf[32])
{
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, 32, "%.0f", v == 0 ? 0.0 : v);
        return buf;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, 32, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

/* "12:5    " then two spaces per level. */
static void lead(Printer *p, Loc loc, int depth)
{
    char at[32];
    snprintf(at, sizeof at, "%d:%d", loc.line, loc.col);
    fprintf(p->out, "%-9s%*s", at, 2 * depth, "");
}

static const char *kind_name(StmtKind k)
{
    static const char *const names[] = {
        [ST_INPUT] = "input", [ST_TARGET] = "target", [ST_PARAM] = "param",
        [ST_LET] = "let", [ST_OUTPUT] = "output", [ST_LOSS] = "loss",
    };
    return names[k];
}

static void expr_named(Printer *p, const Expr *e, int depth, const char *name);

static void expr(Printer *p, const Expr *e, int depth)
{
    expr_named(p, e, depth, NULL);
}

/* name: the option the expression is the value of ("stride = num 2 []"). */
static void expr_named(Printer *p, const Expr *e, int depth, const char *name)
{
    char sh[SHAPE_STR_MAX], nb[32];
    lead(p, e->loc, depth);
    shape_str(e->shape, sh);
    if (name)
        fprintf(p->out, "%s = ", name);
    switch (e->kind) {
    case EX_NUM: fprintf(p->out, "num %s %s\n", num_str(e->num, nb), sh); return;
    case EX_STR: fprintf(p->out, "string \"%s\"\n", e->str); return;
    case EX_NAME:
        fprintf(p->out, "name %s %s (%s)\n", e->str, sh, e->decl ? kind_name(e->decl->kind) : "?");
        return;
    case EX_NEG:
        fprintf(p->out, "neg %s\n", sh);
        expr(p, e->lhs, depth + 1);
        return;
    case EX_BIN:
        fprintf(p->out, "%c %s\n", e->op, sh);
        expr(p, e->lhs, depth + 1);
        expr(p, e->rhs, depth + 1);
        return;
    case EX_CALL: case EX_LIST:
        if (e->kind == EX_CALL)
            fprintf(p->out, "call %s %s\n", e->str, sh);
        else
            fprintf(p->out, "list %s\n", sh);
        for (int i = 0; i < e->nargs; i++)
            expr_named(p, e->args[i].value, depth + 1, e->args[i].name);
        return;
    }
}

static void init(Printer *p, Init in)
{
    static const char *const names[] = {
        [INIT_ZEROS] = "zeros", [INIT_ONES] = "ones", [INIT_CONST] = "const",
        [INIT_UNIFORM] = "uniform", [INIT_NORMAL] = "normal", [INIT_XAVIER] = "xavier",
        [INIT_HE] = "he",
    };
    char a[32], b[32];
    fprintf(p->out, " = %s", names[in.kind]);
    if (in.kind == INIT_CONST)
        fprintf(p->out, "(%s)", num_str(in.a, a));
    else if (in.kind == INIT_UNIFORM || in.kind == INIT_NORMAL)
        fprintf(p->out, "(%s, %s)", num_str(in.a, a), num_str(in.b, b));
}

static void stmt(Printer *p, const Stmt *st)
{
    char sh[SHAPE_STR_MAX];
    lead(p, st->loc, 1);
    fprintf(p->out, "%s", kind_name(st->kind));
    if (st->kind != ST_OUTPUT && st->kind != ST_LOSS)
        fprintf(p->out, " %s", st->name);
    if (st->kind != ST_OUTPUT)
        fprintf(p->out, " %s", shape_str(st->shape, sh));
    if (st->kind == ST_PARAM) {
        init(p, st->init);
        if (st->from_dense)
            fputs(st->from_conv ? " (from conv)" : " (from dense)", p->out);
    }
    fputc('\n', p->out);
    if (st->value)
        expr(p, st->value, 2);
}

static void model(Printer *p, const Model *m)
{
    lead(p, m->loc, 0);
    fprintf(p->out, "model %s\n", m->name);
    for (const Stmt *st = m->stmts; st; st = st->next)
        stmt(p, st);
    if (m->output) {
        lead(p, m->output->loc, 1);
        fputs("prediction\n", p->out);
        expr(p, m->output, 2);
    }
}

static void values(Printer *p, const double *v, long long n)
{
    char nb[32];
    fputc('[', p->out);
    for (long long i = 0; i < n; i++)
        fprintf(p->out, "%s%s", i ? ", " : "", num_str(v[i], nb));
    fputc(']', p->out);
}

static void source(Printer *p, const char *key, const Source *s, const Train *t)
{
    static const char *const bools[] = {"false", "true"};
    const Model *m = t->model;
    lead(p, s->kind == SRC_NONE ? t->loc : s->loc, 1);
    switch (s->kind) {
    case SRC_NONE: fprintf(p->out, "%s none\n", key); return;
    case SRC_CSV:
        fprintf(p->out, "%s csv \"%s\" header=%s label=%s\n", key, s->path, bools[s->header],
                bools[s->label]);
        return;
    case SRC_IDX: fprintf(p->out, "%s idx \"%s\" \"%s\"\n", key, s->path, s->path2); return;
    case SRC_NPZ: fprintf(p->out, "%s npz \"%s\" label=%s\n", key, s->path, bools[s->label]); return;
    case SRC_INLINE: break;
    }
    long long nx = shape_size(m->input->shape), nt = m->target ? shape_size(m->target->shape) : 0;
    fprintf(p->out, "%s inline, %d sample%s\n", key, s->nsamples, s->nsamples == 1 ? "" : "s");
    for (int i = 0; i < s->nsamples; i++) {
        lead(p, s->loc, 2);
        values(p, s->x + i * nx, nx);
        if (nt) {
            fputs(" -> ", p->out);
            values(p, s->t + i * nt, nt);
        }
        fputc('\n', p->out);
    }
}

/* The optimizer's settings, in its call's order; weight decay only when it has one. */
static void optimizer(Printer *p, const Optimizer *o)
{
    static const char *const names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad"};
    char a[32], b[32], c[32], d[32], e[32];
    fprintf(p->out, "optimizer %s lr=%s", names[o->kind], num_str(o->lr, a));
    if (o->kind == OPT_SGD)
        fprintf(p->out, " momentum=%s%s", num_str(o->momentum, b), o->nesterov ? " nesterov=true" : "");
    else if (o->kind == OPT_ADAM || o->kind == OPT_ADAMW)
        fprintf(p->out, " beta1=%s beta2=%s eps=%s", num_str(o->beta1, b), num_str(o->beta2, c),
                num_str(o->eps, d));
    else if (o->kind == OPT_RMSPROP)
        fprintf(p->out, " alpha=%s eps=%s momentum=%s", num_str(o->alpha, b), num_str(o->eps, c),
                num_str(o->momentum, d));
    else
        fprintf(p->out, " eps=%s", num_str(o->eps, b));
    if (o->weight_decay != 0 || o->kind == OPT_ADAMW)
        fprintf(p->out, " weight_decay=%s", num_str(o->weight_decay, e));
    fputc('\n', p->out);
}

/* spec section 10's options, on a line of their own when any is set */
static void options(Printer *p, const Train *t)
{
    static const char *const scheds[] = {"none", "step", "exponential", "cosine"};
    char a[32], b[32];
    const Schedule *s = &t->schedule;
    if (t->val_fraction == 0 && !t->patience && s->kind == SCHED_NONE && !t->warmup && t->clip == 0)
        return;
    lead(p, t->loc, 1);
    if (t->val_fraction != 0)
        fprintf(p->out, "validation %s ", num_str(t->val_fraction, a));
    fprintf(p->out, "patience %lld warmup %lld clip %s schedule %s", t->patience, t->warmup,
            num_str(t->clip, a), scheds[s->kind]);
    if (s->kind == SCHED_STEP)
        fprintf(p->out, " every=%lld gamma=%s", s->every, num_str(s->gamma, b));
    else if (s->kind == SCHED_EXPONENTIAL)
        fprintf(p->out, " gamma=%s", num_str(s->gamma, b));
    else if (s->kind == SCHED_COSINE)
        fprintf(p->out, " min_lr=%s", num_str(s->min_lr, b));
    fputc('\n', p->out);
}

static void train(Printer *p, const Train *t)
{
    lead(p, t->loc, 0);
    fprintf(p->out, "train %s\n", t->model_name);
    source(p, "data", &t->data, t);
    source(p, "test", &t->test, t);
    lead(p, t->loc, 1);
    fprintf(p->out, "epochs %lld batch %lld seed %lld shuffle %s\n", t->epochs, t->batch, t->seed,
            t->shuffle ? "true" : "false");
    lead(p, t->loc, 1);
    optimizer(p, &t->opt);
    if (t->validation.kind != SRC_NONE)
        source(p, "validation", &t->validation, t);
    options(p, t);
}

void sema_print_ast(FILE *out, const Program *prog)
{
    Printer p = {out};
    for (const Model *m = prog->models; m; m = m->next)
        model(&p, m);
    for (const Train *t = prog->trains; t; t = t->next)
        train(&p, t);
}
