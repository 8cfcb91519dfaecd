/* sema.c - the checker's entry points: every model, then every train block; choosing the
 * model to compile. The parts live in sema_model.c, sema_expr.c, sema_dense.c,
 * sema_train.c and sema_print.c. */
#include "sema.h"

#include <string.h>

#include "sema_priv.h"

static bool unique_models(Program *p, Diag *d)
{
    bool ok = true;
    for (Model *m = p->models; m; m = m->next)
        for (Model *o = p->models; o != m; o = o->next)
            if (strcmp(o->name, m->name) == 0) {
                diag_error(d, m->name_loc, "model '%s' is already defined on line %d", m->name,
                           o->loc.line);
                ok = false;
                break;
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
    n = 0;
    for (Model *m = p->models; m; m = m->next)
        ok[n++] = sema_model(&s, m);
    unique_models(p, d);
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

/* "'a', 'b' and 'c'" */
static const char *name_list(Program *p, Arena *a)
{
    const char *list = "";
    for (Model *m = p->models; m; m = m->next)
        list = arena_printf(a, "%s%s'%s'", list,
                            m == p->models ? "" : m->next ? ", " : " and ", m->name);
    return list;
}

Model *sema_pick_model(Program *p, const char *name, Diag *d)
{
    Arena *a = arena_new();
    Model *m = NULL;
    if (name && !(m = find(p, name))) {
        const char *names[64];
        int n = 0;
        for (Model *k = p->models; k && n < 64; k = k->next)
            names[n++] = k->name;
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
