/* sema_names.c - name tables and "did you mean" suggestions. */
#include <stdint.h>
#include <string.h>

#include "sema_priv.h"

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static SemaEntry *slot(const SemaScope *sc, const char *name)
{
    uint32_t mask = (uint32_t)sc->cap - 1;
    for (uint32_t i = hash(name) & mask;; i = (i + 1) & mask)
        if (!sc->v[i].name || strcmp(sc->v[i].name, name) == 0)
            return &sc->v[i];
}

SemaEntry *sema_scope_get(const SemaScope *sc, const char *name)
{
    if (sc->cap == 0)
        return NULL;
    SemaEntry *e = slot(sc, name);
    return e->name ? e : NULL;
}

/* Keeps the table at most half full so probes stay short. */
static void grow(Sema *s, SemaScope *sc)
{
    SemaScope old = *sc;
    sc->cap = old.cap ? old.cap * 2 : 16;
    sc->v = arena_alloc(s->arena, sizeof *sc->v * (size_t)sc->cap);
    for (int i = 0; i < old.cap; i++)
        if (old.v[i].name)
            *slot(sc, old.v[i].name) = old.v[i];
}

void sema_scope_put(Sema *s, SemaScope *sc, const char *name, Stmt *stmt, bool ok)
{
    if (2 * (sc->n + 1) > sc->cap)
        grow(s, sc);
    SemaEntry *e = slot(sc, name);
    if (!e->name)
        sc->n++;
    *e = (SemaEntry){name, stmt, ok, sc->n};
}

/* Levenshtein distance, giving up (returning limit + 1) for long names. */
static int distance(const char *a, const char *b, int limit)
{
    enum { MAXLEN = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAXLEN || lb >= MAXLEN || la > lb + (size_t)limit || lb > la + (size_t)limit)
        return limit + 1;
    int prev[MAXLEN + 1], cur[MAXLEN + 1];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

/* Close enough: one edit for short names, two for longer ones. */
static int allowed(const char *name)
{
    return strlen(name) <= 3 ? 1 : 2;
}

typedef struct Best {
    const char *name;
    int dist, rank;
} Best;

/* Ties go to the higher rank, so the output never depends on table order. */
static void consider(Best *b, const char *name, const char *cand, int rank)
{
    int d = distance(name, cand, allowed(name));
    if (d > allowed(name) || d == 0)
        return;
    if (!b->name || d < b->dist || (d == b->dist && rank > b->rank))
        *b = (Best){cand, d, rank};
}

/* Ties: the first candidate in the list. */
const char *sema_closest(const char *name, const char *const *cands, int n)
{
    Best b = {NULL, 0, 0};
    for (int i = 0; i < n; i++)
        consider(&b, name, cands[i], n - i);
    return b.name;
}

/* Ties: the latest definition, most likely the one just written about. */
const char *sema_closest_in_scope(const SemaScope *sc, const char *name)
{
    Best b = {NULL, 0, 0};
    for (int i = 0; i < sc->cap; i++)
        if (sc->v[i].name)
            consider(&b, name, sc->v[i].name, sc->v[i].order);
    return b.name;
}

const char *sema_did_you_mean(Sema *s, const char *suggestion)
{
    return suggestion ? arena_printf(s->arena, "; did you mean '%s'?", suggestion) : "";
}

bool sema_quiet(const Sema *s)
{
    return s->diag->nerrors >= (s->diag->max_errors > 0 ? s->diag->max_errors : 20);
}
