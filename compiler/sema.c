/* sema.c - the checker's entry points: every model, then every train block; choosing the
 * model to compile. The parts live in sema_model.c, sema_expr.c, sema_dense.c,
 * sema_train.c and sema_print.c. */
#include "sema.h"

#include <string.h>

#include "sema_priv.h"

/* A name table of the models, so a file of many models is checked in linear time. */
static bool unique_models(Sema *s, Model *const *models, int n)
{
    SemaScope seen = {0};
    bool ok = true;
    for (int i = 0; i < n; i++) {
        const SemaEntry *e = sema_scope_get(&seen, models[i]->name);
        if (e) {
            diag_error(s->diag, models[i]->name_loc, "model '%s' is already defined on line %d",
                       models[i]->name, models[e->order - 1]->loc.line);
            ok = false;
        } else {
            sema_scope_put(s, &seen, models[i]->name, NULL, true); /* order: i + 1 */
        }
    }
    return ok;
}

bool sema_check(Program *p, Arena *a, Diag *d)
{
    int errors = d->nerrors;
    Sema s = {.arena = a, .diag = d};
    if (!p->models) {
        diag_error(d, (Loc){1, 1}, "the file defines no model");
        return false;
    }
    int n = 0;
    for (Model *m = p->models; m; m = m->next)
        n++;
    bool *ok = arena_alloc(a, sizeof *ok * (size_t)n);
    Model **models = arena_alloc(a, sizeof *models * (size_t)n);
    n = 0;
    for (Model *m = p->models; m; m = m->next) {
        models[n] = m;
        ok[n++] = sema_model(&s, m);
    }
    unique_models(&s, models, n);
    for (Train *t = p->trains; t; t = t->next)
        sema_train(&s, p, t, ok);
    return d->nerrors == errors;
}

static Model *find(Program *p, const char *name)
{
    for (Model *m = p->models; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

enum { LISTED_MODELS = 8 };

/* "'a', 'b' and 'c'", or past LISTED_MODELS names "'a', ..., 'h' and 12 more": written
 * into one buffer (a printf per name would copy the growing list each time). */
static const char *name_list(Program *p, Arena *a)
{
    int n = 0;
    size_t len = 32;
    for (Model *m = p->models; m; m = m->next, n++)
        len += n < LISTED_MODELS ? strlen(m->name) + 8 : 0;
    char *buf = arena_alloc(a, len), *at = buf;
    int i = 0;
    for (Model *m = p->models; m && i < LISTED_MODELS; m = m->next, i++)
        at += sprintf(at, "%s'%s'", i == 0 ? "" : i + 1 == n ? " and " : ", ", m->name);
    if (n > LISTED_MODELS)
        sprintf(at, " and %d more", n - LISTED_MODELS);
    return buf;
}

/* Every model's name, for "did you mean". */
static const char **all_names(Program *p, Arena *a, int *n)
{
    *n = 0;
    for (Model *m = p->models; m; m = m->next)
        ++*n;
    const char **names = arena_alloc(a, sizeof *names * (size_t)*n);
    int i = 0;
    for (Model *m = p->models; m; m = m->next)
        names[i++] = m->name;
    return names;
}

Model *sema_pick_model(Program *p, const char *name, Diag *d)
{
    Arena *a = arena_new();
    Model *m = NULL;
    if (name && !(m = find(p, name))) {
        int n;
        const char **names = all_names(p, a, &n);
        const char *near = sema_closest(name, names, n);
        diag_error(d, (Loc){0, 0}, "no model named '%s' (the file has %s)%s", name,
                   name_list(p, a), near ? arena_printf(a, "; did you mean '%s'?", near) : "");
    } else if (!name && p->models->next) {
        diag_error(d, (Loc){0, 0}, "this file has several models (%s): choose one with "
                   "--model=NAME", name_list(p, a));
    } else if (!name) {
        m = p->models;
    }
    arena_free(a);
    return m;
}
