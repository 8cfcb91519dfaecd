/* sema_train.c - train blocks: the model they name, options with their defaults and limits,
 * and data sources (inline data flattened and checked against the model's shapes). */
#include <math.h>
#include <string.h>

#include "sema_priv.h"

static const char *const keys[] = {"data", "test", "epochs", "batch", "optimizer", "seed", "shuffle",
                                   "validation", "patience", "schedule", "warmup", "clip"};
enum { NKEYS = sizeof keys / sizeof *keys };

typedef struct TrainCtx {
    Sema *s;
    Train *t;
    Model *m;
    bool model_ok; /* the model checked cleanly, so its shapes can be trusted */
} TrainCtx;

/* ---- numbers and flags ---- */

static bool whole(TrainCtx *c, const Expr *e, const char *key, double min, double max, long long *out)
{
    double v;
    if (!sema_fold(c->s, e, arena_printf(c->s->arena, "'%s'", key), &v))
        return false;
    if (v != floor(v) || v < min || v > max) {
        diag_error(c->s->diag, e->loc, "%s must be a whole number from %.0f to %.0f, not %g",
                   key, min, max, v);
        return false;
    }
    *out = (long long)v;
    return true;
}

static bool flag(TrainCtx *c, const Expr *e, const char *what, bool *out)
{
    if (e->kind == EX_NAME && (strcmp(e->str, "true") == 0 || strcmp(e->str, "false") == 0)) {
        *out = e->str[0] == 't';
        return true;
    }
    diag_error(c->s->diag, e->loc, "%s must be true or false", what);
    return false;
}

/* ---- optimizer ---- */

/* Each optimizer: its name, its defaults (spec sections 8 and 10) and its settings. */
typedef struct OptInfo {
    const char *name;
    Optimizer defaults;
    const char *settings; /* for messages, and which names setting() accepts */
} OptInfo;

static const OptInfo optimizers[] = {
    {"sgd", {OPT_SGD, 0.01, 0, 0.9, 0.999, 1e-8, 0, 0.99, false}, "lr, momentum, nesterov, weight_decay"},
    {"adam", {OPT_ADAM, 0.001, 0, 0.9, 0.999, 1e-8, 0, 0.99, false}, "lr, beta1, beta2, eps, weight_decay"},
    {"adamw", {OPT_ADAMW, 0.001, 0, 0.9, 0.999, 1e-8, 0.01, 0.99, false}, "lr, beta1, beta2, eps, weight_decay"},
    {"rmsprop", {OPT_RMSPROP, 0.01, 0, 0.9, 0.999, 1e-8, 0, 0.99, false}, "lr, alpha, eps, momentum, weight_decay"},
    {"adagrad", {OPT_ADAGRAD, 0.01, 0, 0.9, 0.999, 1e-10, 0, 0.99, false}, "lr, eps, weight_decay"},
};
enum { NOPTS = sizeof optimizers / sizeof *optimizers };

/* Whether `name` is one of a comma-separated list. */
static bool listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ',' || p[n] == 0))
            return true;
    return false;
}

/* Where each named number goes. */
static double *setting(Optimizer *o, const char *name)
{
    static const char *const names[] = {"lr", "momentum", "beta1", "beta2", "eps", "weight_decay", "alpha"};
    double *const slots[] = {&o->lr, &o->momentum, &o->beta1, &o->beta2, &o->eps, &o->weight_decay, &o->alpha};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(name, names[i]) == 0)
            return slots[i];
    return NULL;
}

static bool in_range(TrainCtx *c, const Arg *a, double v)
{
    const char *rule = NULL;
    if ((strcmp(a->name, "lr") == 0 || strcmp(a->name, "eps") == 0) && !(v > 0))
        rule = "> 0";
    else if (strcmp(a->name, "weight_decay") == 0 && !(v >= 0))
        rule = ">= 0";
    else if (strcmp(a->name, "momentum") == 0 || strncmp(a->name, "beta", 4) == 0 ||
             strcmp(a->name, "alpha") == 0)
        rule = v >= 0 && v < 1 ? NULL : "in [0, 1)";
    if (rule)
        diag_error(c->s->diag, a->value->loc, "%s must be %s, not %g", a->name, rule, v);
    return !rule;
}

static bool opt_arg(TrainCtx *c, const Expr *e, const Arg *a, const OptInfo *info, Optimizer *o)
{
    if (!a->name) {
        diag_error(c->s->diag, a->loc, "optimizer settings are named, as in %s(lr = 0.1)", e->str);
        return false;
    }
    if (!listed(info->settings, a->name)) {
        diag_error(c->s->diag, a->loc, "unknown named argument '%s' for %s (it takes %s)",
                   a->name, e->str, info->settings);
        return false;
    }
    if (strcmp(a->name, "nesterov") == 0)
        return flag(c, a->value, "nesterov", &o->nesterov);
    double v;
    if (!sema_fold(c->s, a->value, arena_printf(c->s->arena, "'%s'", a->name), &v) ||
        !in_range(c, a, v))
        return false;
    *setting(o, a->name) = v;
    return true;
}

/* nesterov = true needs momentum, as PyTorch requires. */
static bool nesterov_ok(TrainCtx *c, const Expr *e, const Optimizer *o)
{
    if (!o->nesterov || o->momentum > 0)
        return true;
    for (int i = 0; i < e->nargs; i++)
        if (e->args[i].name && strcmp(e->args[i].name, "nesterov") == 0)
            diag_error(c->s->diag, e->args[i].loc, "nesterov = true needs momentum > 0, as in "
                       "sgd(lr = 0.1, momentum = 0.9, nesterov = true)");
    return false;
}

static bool optimizer(TrainCtx *c, const Expr *e, Optimizer *o)
{
    bool named = e->kind == EX_NAME || e->kind == EX_CALL;
    const OptInfo *info = NULL;
    for (int i = 0; named && i < NOPTS; i++)
        if (strcmp(e->str, optimizers[i].name) == 0)
            info = &optimizers[i];
    if (!info) {
        diag_error(c->s->diag, e->loc, "the optimizer is sgd(...), adam(...), adamw(...), "
                   "rmsprop(...) or adagrad(...)");
        return false;
    }
    *o = info->defaults;
    bool ok = true;
    for (int i = 0; e->kind == EX_CALL && i < e->nargs; i++)
        ok = opt_arg(c, e, &e->args[i], info, o) && ok;
    return ok && nesterov_ok(c, e, o);
}

/* ---- schedules ---- */

/* A schedule's named number: gamma > 0, min_lr >= 0, every a whole number >= 1. */
static bool sched_arg(TrainCtx *c, const Expr *e, const Arg *a, const char *takes, Schedule *sc)
{
    if (!a->name || !listed(takes, a->name)) {
        diag_error(c->s->diag, a->loc, a->name ? "unknown named argument '%s' for %s (it takes %s)"
                   : "%s%s's settings are named (it takes %s)", a->name ? a->name : "", e->str, takes);
        return false;
    }
    if (strcmp(a->name, "every") == 0)
        return whole(c, a->value, "every", 1, 2147483647.0, &sc->every);
    double v;
    if (!sema_fold(c->s, a->value, arena_printf(c->s->arena, "'%s'", a->name), &v))
        return false;
    bool gamma = strcmp(a->name, "gamma") == 0;
    if (gamma ? !(v > 0) : !(v >= 0)) {
        diag_error(c->s->diag, a->value->loc, "%s must be %s, not %g", a->name, gamma ? "> 0" : ">= 0", v);
        return false;
    }
    *(gamma ? &sc->gamma : &sc->min_lr) = v;
    return true;
}

static bool schedule(TrainCtx *c, const Expr *e, Schedule *sc)
{
    static const char *const names[] = {"step", "exponential", "cosine"};
    static const char *const takes[] = {"every, gamma", "gamma", "min_lr"};
    int k = -1;
    for (int i = 0; (e->kind == EX_NAME || e->kind == EX_CALL) && i < 3; i++)
        if (strcmp(e->str, names[i]) == 0)
            k = i;
    if (k < 0) {
        diag_error(c->s->diag, e->loc, "the schedule is step(every = N, gamma = 0.1), "
                   "exponential(gamma = 0.95) or cosine(min_lr = 0)");
        return false;
    }
    *sc = (Schedule){(SchedKind)(k + 1), 0, k == 1 ? 0.95 : 0.1, 0};
    bool ok = true;
    for (int i = 0; e->kind == EX_CALL && i < e->nargs; i++)
        ok = sched_arg(c, e, &e->args[i], takes[k], sc) && ok;
    if (ok && k == 0 && sc->every == 0) {
        diag_error(c->s->diag, e->loc, "step needs every = N, the epochs between lr steps");
        return false;
    }
    return ok;
}

/* ---- file sources ---- */

static bool string_arg(TrainCtx *c, const Expr *call, int i, const char *what, const char **out)
{
    const Arg *a = &call->args[i];
    if (a->name || a->value->kind != EX_STR) {
        diag_error(c->s->diag, a->loc, "%s needs %s as a \"string\"", call->str, what);
        return false;
    }
    *out = a->value->str;
    return true;
}

static bool label(TrainCtx *c, const Arg *a, Source *src)
{
    if (!flag(c, a->value, "label", &src->label))
        return false;
    if (src->label && !c->m->target) {
        diag_error(c->s->diag, a->loc, "label = true needs a target to one-hot encode into, "
                   "but model '%s' has none", c->m->name);
        return false;
    }
    return true;
}

static bool csv_option(TrainCtx *c, const Arg *a, Source *src)
{
    if (!a->name) {
        diag_error(c->s->diag, a->loc, "csv takes one file name; its options are named "
                   "(header = true, label = true)");
        return false;
    }
    bool is_header = strcmp(a->name, "header") == 0;
    if (!is_header && strcmp(a->name, "label") != 0) {
        diag_error(c->s->diag, a->loc, "unknown named argument '%s' for csv (it takes header, "
                   "label)", a->name);
        return false;
    }
    if (is_header)
        return flag(c, a->value, "header", &src->header);
    return label(c, a, src);
}

static bool csv(TrainCtx *c, const Expr *e, Source *src)
{
    src->kind = SRC_CSV;
    if (e->nargs < 1) {
        diag_error(c->s->diag, e->loc, "csv needs a file name, as in csv(\"train.csv\")");
        return false;
    }
    bool ok = string_arg(c, e, 0, "the file name", &src->path);
    for (int i = 1; i < e->nargs; i++)
        ok = csv_option(c, &e->args[i], src) && ok;
    return ok;
}

static bool idx(TrainCtx *c, const Expr *e, Source *src)
{
    src->kind = SRC_IDX;
    for (int i = 0; i < e->nargs; i++)
        if (e->args[i].name) {
            diag_error(c->s->diag, e->args[i].loc, "unknown named argument '%s' for idx (it "
                       "takes no options)", e->args[i].name);
            return false;
        }
    if (e->nargs != 2) {
        diag_error(c->s->diag, e->loc, "idx takes 2 file names (images, labels), not %d", e->nargs);
        return false;
    }
    if (!c->m->target) {
        diag_error(c->s->diag, e->loc, "idx labels need a target, but model '%s' has none", c->m->name);
        return false;
    }
    return string_arg(c, e, 0, "the images file", &src->path) &&
           string_arg(c, e, 1, "the labels file", &src->path2);
}

/* npz("file.npz"[, label = true]): arrays named as the input and the target */
static bool npz(TrainCtx *c, const Expr *e, Source *src)
{
    src->kind = SRC_NPZ;
    if (e->nargs < 1 || e->args[0].name) {
        diag_error(c->s->diag, e->loc, "npz needs a file name, as in npz(\"train.npz\")");
        return false;
    }
    bool ok = string_arg(c, e, 0, "the file name", &src->path);
    for (int i = 1; i < e->nargs; i++) {
        const Arg *a = &e->args[i];
        if (!a->name || strcmp(a->name, "label") != 0) {
            diag_error(c->s->diag, a->loc, "npz takes one file name and label = true|false");
            ok = false;
        } else {
            ok = label(c, a, src) && ok;
        }
    }
    return ok;
}

/* ---- inline data ---- */

static long long count(const Datum *d)
{
    if (!d->is_list)
        return 1;
    long long n = 0;
    for (int i = 0; i < d->nitems; i++)
        n += count(d->items[i]);
    return n;
}

static bool fill(TrainCtx *c, const Datum *d, double **at)
{
    if (!d->is_list)
        return sema_fold(c->s, d->num, "a data value", (*at)++);
    bool ok = true;
    for (int i = 0; i < d->nitems; i++)
        ok = fill(c, d->items[i], at) && ok;
    return ok;
}

static bool sample_part(TrainCtx *c, const Datum *d, int i, const Stmt *decl)
{
    long long n = count(d), want = shape_size(decl->shape);
    if (n == want)
        return true;
    char buf[SHAPE_STR_MAX];
    diag_error(c->s->diag, d->loc, "sample %d has %lld %s value%s, but %s %s%s needs %lld", i + 1,
               n, decl->kind == ST_INPUT ? "input" : "target", n == 1 ? "" : "s",
               decl->kind == ST_INPUT ? "input" : "target", decl->name,
               decl->shape.rank ? shape_str(decl->shape, buf) : "", want);
    return false;
}

static bool sample_ok(TrainCtx *c, const Sample *sm, int i)
{
    bool ok = sample_part(c, sm->x, i, c->m->input);
    if (c->m->target && !sm->t) {
        diag_error(c->s->diag, sm->loc, "sample %d has no target: write it as x -> t", i + 1);
        return false;
    }
    if (!c->m->target && sm->t) {
        diag_error(c->s->diag, sm->t->loc, "model '%s' has no target, so samples have no '->' part",
                   c->m->name);
        return false;
    }
    return (!sm->t || sample_part(c, sm->t, i, c->m->target)) && ok;
}

static bool inline_data(TrainCtx *c, const TrainItem *it, Source *src)
{
    src->kind = SRC_INLINE;
    src->loc = it->data_loc;
    if (it->nsamples == 0) {
        diag_error(c->s->diag, it->data_loc, "inline data has no samples");
        return false;
    }
    if (!c->model_ok)
        return true; /* the shapes to check against are unknown */
    bool ok = true;
    for (int i = 0; i < it->nsamples; i++)
        ok = sample_ok(c, &it->samples[i], i) && ok;
    if (!ok)
        return false;
    size_t nx = (size_t)shape_size(c->m->input->shape);
    size_t nt = c->m->target ? (size_t)shape_size(c->m->target->shape) : 0;
    src->nsamples = it->nsamples;
    double *x = src->x = arena_alloc(c->s->arena, sizeof *x * nx * (size_t)it->nsamples);
    double *t = src->t = nt ? arena_alloc(c->s->arena, sizeof *t * nt * (size_t)it->nsamples) : NULL;
    for (int i = 0; i < it->nsamples; i++)
        ok = fill(c, it->samples[i].x, &x) && (!nt || fill(c, it->samples[i].t, &t)) && ok;
    return ok;
}

static bool source(TrainCtx *c, const TrainItem *it, Source *src)
{
    if (!it->value)
        return inline_data(c, it, src);
    const Expr *e = it->value;
    src->loc = e->loc;
    if (e->kind == EX_CALL && strcmp(e->str, "csv") == 0)
        return csv(c, e, src);
    if (e->kind == EX_CALL && strcmp(e->str, "idx") == 0)
        return idx(c, e, src);
    if (e->kind == EX_CALL && strcmp(e->str, "npz") == 0)
        return npz(c, e, src);
    diag_error(c->s->diag, e->loc, "%s is inline data [x -> t, ...], csv(\"file\"), "
               "idx(\"images\", \"labels\") or npz(\"file\")", it->key);
    return false;
}

/* ---- the block ---- */

static bool positive(TrainCtx *c, const Expr *e, const char *key, double *out)
{
    double v;
    if (!sema_fold(c->s, e, arena_printf(c->s->arena, "'%s'", key), &v))
        return false;
    if (!(v > 0)) {
        diag_error(c->s->diag, e->loc, "%s must be > 0, not %g", key, v);
        return false;
    }
    *out = v;
    return true;
}

/* validation = SOURCE, or the fraction of data held out */
static bool validation(TrainCtx *c, const TrainItem *it)
{
    const Expr *e = it->value;
    if (!e || e->kind == EX_CALL)
        return source(c, it, &c->t->validation);
    double v;
    if (!sema_fold(c->s, e, "'validation'", &v))
        return false;
    if (!(v > 0 && v < 1)) {
        diag_error(c->s->diag, e->loc, "validation is a source or a fraction of the data in "
                   "(0, 1), not %g", v);
        return false;
    }
    c->t->val_fraction = v;
    return true;
}

static bool item(TrainCtx *c, const TrainItem *it)
{
    Train *t = c->t;
    const Expr *e = it->value;
    const char *k = it->key;
    if (strcmp(k, "data") == 0 || strcmp(k, "test") == 0)
        return source(c, it, k[0] == 'd' ? &t->data : &t->test);
    if (strcmp(k, "validation") == 0)
        return validation(c, it);
    if (!e) {
        diag_error(c->s->diag, it->data_loc, "inline data only goes in 'data', 'test' or 'validation'");
        return false;
    }
    if (strcmp(k, "epochs") == 0)
        return whole(c, e, k, 0, 2147483647.0, &t->epochs);
    if (strcmp(k, "batch") == 0)
        return whole(c, e, k, 1, 2147483647.0, &t->batch);
    if (strcmp(k, "seed") == 0)
        return whole(c, e, k, 0, 9007199254740992.0, &t->seed);
    if (strcmp(k, "shuffle") == 0)
        return flag(c, e, "shuffle", &t->shuffle);
    if (strcmp(k, "patience") == 0)
        return whole(c, e, k, 1, 2147483647.0, &t->patience);
    if (strcmp(k, "warmup") == 0)
        return whole(c, e, k, 0, 2147483647.0, &t->warmup);
    if (strcmp(k, "clip") == 0)
        return positive(c, e, k, &t->clip);
    if (strcmp(k, "schedule") == 0)
        return schedule(c, e, &t->schedule);
    return optimizer(c, e, &t->opt);
}

static bool known_key(TrainCtx *c, const TrainItem *it)
{
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(keys[i], it->key) == 0)
            return true;
    const char *near = sema_closest(it->key, keys, NKEYS);
    if (near)
        diag_error(c->s->diag, it->loc, "unknown train option '%s'; did you mean '%s'?", it->key, near);
    else
        diag_error(c->s->diag, it->loc, "unknown train option '%s' (data, test, epochs, batch, "
                   "optimizer, seed, shuffle, validation, patience, schedule, warmup, clip)", it->key);
    return false;
}

static bool repeated(TrainCtx *c, const TrainItem *it)
{
    for (const TrainItem *p = c->t->items; p != it; p = p->next)
        if (strcmp(p->key, it->key) == 0) {
            diag_error(c->s->diag, it->loc, "train option '%s' is set twice (first on line %d)",
                       it->key, p->loc.line);
            return true;
        }
    return false;
}

static Model *find_model(Program *p, const char *name, const bool *ok_in, bool *ok)
{
    int i = 0;
    for (Model *m = p->models; m; m = m->next, i++)
        if (strcmp(m->name, name) == 0) {
            *ok = ok_in[i];
            return m;
        }
    return NULL;
}

static void unknown_model(Sema *s, Program *p, Train *t)
{
    int n = 0;
    for (Model *m = p->models; m; m = m->next)
        n++;
    const char **names = arena_alloc(s->arena, sizeof *names * (size_t)(n ? n : 1));
    n = 0;
    for (Model *m = p->models; m; m = m->next)
        names[n++] = m->name;
    diag_error(s->diag, t->name_loc, "train block for unknown model '%s'%s", t->model_name,
               sema_did_you_mean(s, sema_closest(t->model_name, names, n)));
}

static void defaults(Train *t)
{
    t->epochs = 10;
    t->batch = 32;
    t->seed = 0;
    t->shuffle = true;
    t->opt = optimizers[0].defaults;
    t->validation = (Source){.kind = SRC_NONE};
    t->val_fraction = 0;
    t->patience = t->warmup = 0;
    t->clip = 0;
    t->schedule = (Schedule){SCHED_NONE, 0, 0.1, 0};
}

static const TrainItem *find_item(const Train *t, const char *key)
{
    for (const TrainItem *it = t->items; it; it = it->next)
        if (strcmp(it->key, key) == 0)
            return it;
    return NULL;
}

/* What one option says about another: warm-up within the epochs, patience with a
 * validation set to watch. */
static void cross_checks(Sema *s, const Train *t)
{
    const TrainItem *w = find_item(t, "warmup"), *p = find_item(t, "patience");
    if (w && t->warmup > t->epochs)
        diag_error(s->diag, w->value->loc, "warmup (%lld epochs) is longer than the training "
                   "(%lld epochs)", t->warmup, t->epochs);
    if (p && t->patience && t->validation.kind == SRC_NONE && t->val_fraction == 0)
        diag_error(s->diag, p->loc, "patience needs a validation set to watch: add "
                   "'validation = 0.1' (a fraction of data) or a source");
}

void sema_train(Sema *s, Program *p, Train *t, const bool *model_ok)
{
    TrainCtx c = {s, t, NULL, false};
    defaults(t);
    c.m = find_model(p, t->model_name, model_ok, &c.model_ok);
    if (!c.m) {
        unknown_model(s, p, t);
        return;
    }
    if (c.m->train) {
        diag_error(s->diag, t->loc, "model '%s' already has a train block (line %d)",
                   t->model_name, c.m->train->loc.line);
        return;
    }
    c.m->train = t;
    t->model = c.m;
    bool has_data = false;
    for (TrainItem *it = t->items; it; it = it->next) {
        has_data |= strcmp(it->key, "data") == 0;
        if (known_key(&c, it) && !repeated(&c, it))
            item(&c, it);
    }
    if (!has_data)
        diag_error(s->diag, t->loc, "the train block for '%s' has no data: add 'data = ...'",
                   t->model_name);
    cross_checks(s, t);
}
