/* sema_image.c - shapes of the image functions: conv2d, maxpool, avgpool, flatten, reshape,
 * concat, dropout (spec section 9).
 *
 * After a successful check a call is in a canonical form that lowering reads without
 * looking again: its positional arguments, then every option of the function named and
 * folded to a number (conv2d: stride, padding; the pools: stride, default k), the
 * constants (pool size, dropout p, reshape's dims) folded to numbers too. */
#include <math.h>
#include <string.h>

#include "sema_priv.h"

enum { MAX_OPTS = 2 };

typedef SemaOpt Opt;

static const char *shape_text(Sema *s, Shape sh)
{
    char buf[SHAPE_STR_MAX];
    return arena_printf(s->arena, "%s", shape_str(sh, buf));
}

/* A whole number in [min, 2^31-1]; `what` names it ("the stride of conv2d"). */
bool sema_whole(Sema *s, const Expr *e, const char *what, int min, int *out)
{
    double v;
    if (!sema_fold(s, e, what, &v))
        return false;
    if (v != floor(v) || v < min || v > 2147483647.0) {
        diag_error(s->diag, e->loc, "%s must be a whole number >= %d, not %g", what, min, v);
        return false;
    }
    *out = (int)v;
    return true;
}

/* The named options of call e (after its positional arguments), folded into opts as whole
 * numbers >= their minimum (stride 1, padding 0). Returns the positional count, -1 after
 * an error. */
int sema_options(Sema *s, const Expr *e, const char *fn, Opt *opts, int nopts)
{
    int npos = 0;
    while (npos < e->nargs && !e->args[npos].name)
        npos++;
    for (int i = npos; i < e->nargs; i++) {
        const Arg *a = &e->args[i];
        if (!a->name) {
            diag_error(s->diag, a->loc, "the named options of '%s' come after its other arguments", fn);
            return -1;
        }
        Opt *o = NULL;
        for (int k = 0; k < nopts; k++)
            if (strcmp(opts[k].name, a->name) == 0)
                o = &opts[k];
        if (!o) {
            const char *names[MAX_OPTS];
            for (int k = 0; k < nopts; k++)
                names[k] = opts[k].name;
            diag_error(s->diag, a->loc, "unknown named argument '%s' for '%s'%s", a->name, fn,
                       nopts ? sema_did_you_mean(s, sema_closest(a->name, names, nopts))
                             : arena_printf(s->arena, " (it has no options)"));
            return -1;
        }
        if (o->given) {
            diag_error(s->diag, a->loc, "'%s' is given twice", a->name);
            return -1;
        }
        int v;
        const char *what = arena_printf(s->arena, "the %s of %s", o->name, fn);
        if (!sema_whole(s, a->value, what, strcmp(o->name, "padding") == 0 ? 0 : 1, &v))
            return -1;
        *o = (Opt){o->name, v, true, a->loc};
    }
    return npos;
}

/* e's arguments become its first npos ones, then the options, named, as numbers. */
static void canonical_args(Sema *s, Expr *e, int npos, const Opt *opts, int nopts)
{
    Arg *args = arena_alloc(s->arena, sizeof *args * (size_t)(npos + nopts + 1));
    memcpy(args, e->args, sizeof *args * (size_t)npos);
    for (int k = 0; k < nopts; k++) {
        Loc loc = opts[k].given ? opts[k].loc : e->loc;
        args[npos + k] = (Arg){opts[k].name, loc, sema_num(s, opts[k].value, loc)};
    }
    e->args = args;
    e->nargs = npos + nopts;
}

static bool arg_count(Sema *s, const Expr *e, int npos, int min, int max)
{
    if (npos >= min && npos <= max)
        return true;
    if (max > 1000)
        diag_error(s->diag, e->loc, "'%s' takes at least %d argument%s", e->str, min, min == 1 ? "" : "s");
    else if (min == max)
        diag_error(s->diag, e->loc, "'%s' takes %d argument%s, not %d", e->str, min, min == 1 ? "" : "s", npos);
    else
        diag_error(s->diag, e->loc, "'%s' takes %d or %d arguments, not %d", e->str, min, max, npos);
    return false;
}

/* One output dim: floor((n + 2 pad - k) / stride) + 1, or -1 when k exceeds the padded n. */
static long long window_out(int n, int k, int stride, int pad)
{
    long long span = (long long)n + 2LL * pad - k;
    return span < 0 ? -1 : span / stride + 1;
}

bool sema_image_input(Sema *s, const char *fn, const Arg *a)
{
    Shape x = a->value->shape;
    if (x.rank == 3)
        return true;
    diag_error(s->diag, a->loc, "%s: the input must be an image [channels, height, width] (rank 3), "
               "not %s%s", fn, shape_text(s, x),
               x.rank == 1 ? "; reshape it, as in reshape(x, [1, 28, 28])" : "");
    return false;
}

/* The kernel as the user knows it: "the kernel c1.W", or "the kernel". */
static const char *kernel_name(Sema *s, const Expr *k)
{
    return k->kind == EX_NAME ? arena_printf(s->arena, "the kernel %s", k->str) : "the kernel";
}

/* An output shape [c, h, w] whose dims may be too large for a tensor. */
static bool image_result(Sema *s, const Expr *e, const char *fn, long long c, long long h,
                         long long w, Shape *out)
{
    if (h > 2147483647LL || w > 2147483647LL) {
        diag_error(s->diag, e->loc, "%s: the result would have more than 2^31-1 elements", fn);
        return false;
    }
    *out = (Shape){3, {(int)c, (int)h, (int)w}};
    return sema_check_size(s, *out, arena_printf(s->arena, "the result of %s", fn), e->loc);
}

/* conv2d(x, K[, b]) with its stride and padding: x [C,H,W], K [F,C,kh,kw], b [F].
 * fn is the function the user wrote (conv2d, or conv for the layer sugar). */
bool sema_conv2d_shape(Sema *s, Expr *e, const char *fn, int stride, int pad)
{
    const Arg *xa = &e->args[0], *ka = &e->args[1];
    Shape x = xa->value->shape, k = ka->value->shape;
    if (!sema_image_input(s, fn, xa))
        return false;
    if (k.rank != 4) {
        diag_error(s->diag, ka->loc, "%s: the kernel must be [filters, channels, height, width] "
                   "(rank 4), not %s", fn, shape_text(s, k));
        return false;
    }
    if (k.dims[1] != x.dims[0]) {
        diag_error(s->diag, ka->loc, "%s: the input has %d channel%s, %s expects %d", fn, x.dims[0],
                   x.dims[0] == 1 ? "" : "s", kernel_name(s, ka->value), k.dims[1]);
        return false;
    }
    if (e->nargs > 2 && !e->args[2].name) {
        Shape b = e->args[2].value->shape;
        if (b.rank != 1 || b.dims[0] != k.dims[0]) {
            diag_error(s->diag, e->args[2].loc, "%s: the bias must be [%d], one value per filter, not %s",
                       fn, k.dims[0], shape_text(s, b));
            return false;
        }
    }
    long long h = window_out(x.dims[1], k.dims[2], stride, pad);
    long long w = window_out(x.dims[2], k.dims[3], stride, pad);
    if (h < 0 || w < 0) {
        diag_error(s->diag, e->loc, "%s: the kernel (%d x %d) is larger than the padded image "
                   "(%lld x %lld with padding %d)", fn, k.dims[2], k.dims[3],
                   x.dims[1] + 2LL * pad, x.dims[2] + 2LL * pad, pad);
        return false;
    }
    return image_result(s, e, fn, k.dims[0], h, w, &e->shape);
}

static bool check_values(Sema *s, Expr *e, int from, int to)
{
    bool ok = true;
    for (int i = from; i < to; i++)
        ok = sema_expr(s, e->args[i].value) && ok;
    return ok;
}

static bool conv2d(Sema *s, Expr *e)
{
    Opt opts[] = {{"stride", 1, false, {0, 0}}, {"padding", 0, false, {0, 0}}};
    int npos = sema_options(s, e, e->str, opts, 2);
    if (npos < 0 || !arg_count(s, e, npos, 2, 3) || !check_values(s, e, 0, npos))
        return false;
    canonical_args(s, e, npos, opts, 2);
    return sema_conv2d_shape(s, e, e->str, (int)opts[0].value, (int)opts[1].value);
}

/* maxpool(a, k) / avgpool(a, k), option stride (default k). */
static bool pool(Sema *s, Expr *e)
{
    Opt opts[] = {{"stride", 0, false, {0, 0}}};
    int npos = sema_options(s, e, e->str, opts, 1);
    int k;
    if (npos < 0 || !arg_count(s, e, npos, 2, 2) || !check_values(s, e, 0, 1) ||
        !sema_whole(s, e->args[1].value, arena_printf(s->arena, "the window size of %s", e->str), 1, &k))
        return false;
    if (!opts[0].given)
        opts[0].value = k;
    e->args[1].value = sema_num(s, k, e->args[1].loc);
    canonical_args(s, e, npos, opts, 1);
    if (!sema_image_input(s, e->str, &e->args[0]))
        return false;
    Shape a = e->args[0].value->shape;
    int stride = (int)opts[0].value;
    if (k > a.dims[1] || k > a.dims[2]) {
        diag_error(s->diag, e->args[1].loc, "%s: the window (%d x %d) is larger than the image (%d x %d)",
                   e->str, k, k, a.dims[1], a.dims[2]);
        return false;
    }
    return image_result(s, e, e->str, a.dims[0], window_out(a.dims[1], k, stride, 0),
                        window_out(a.dims[2], k, stride, 0), &e->shape);
}

static bool no_options(Sema *s, Expr *e, int min, int max, int *npos)
{
    *npos = sema_options(s, e, e->str, NULL, 0);
    return *npos >= 0 && arg_count(s, e, *npos, min, max);
}

static bool flatten(Sema *s, Expr *e)
{
    int npos;
    if (!no_options(s, e, 1, 1, &npos) || !check_values(s, e, 0, 1))
        return false;
    Shape a = e->args[0].value->shape;
    if (a.rank == 0) {
        diag_error(s->diag, e->args[0].loc, "flatten needs a tensor of rank >= 1, not a scalar");
        return false;
    }
    e->shape = (Shape){1, {(int)shape_size(a)}};
    return true;
}

/* reshape(a, [d1, ...]): the dims folded in place. */
static bool reshape(Sema *s, Expr *e)
{
    int npos;
    if (!no_options(s, e, 2, 2, &npos) || !check_values(s, e, 0, 1))
        return false;
    Expr *l = e->args[1].value;
    if (l->kind != EX_LIST) {
        diag_error(s->diag, e->args[1].loc, "the dims of reshape are a bracketed list of constants, "
                   "as in reshape(x, [1, 28, 28])");
        return false;
    }
    if (l->nargs > MAX_RANK) {
        diag_error(s->diag, l->loc, "reshape: %d dims, but a tensor has at most %d", l->nargs, MAX_RANK);
        return false;
    }
    Shape r = {l->nargs, {0}};
    for (int i = 0; i < l->nargs; i++) {
        if (!sema_whole(s, l->args[i].value, "a dim of reshape", 1, &r.dims[i]))
            return false;
        l->args[i].value = sema_num(s, r.dims[i], l->args[i].loc);
    }
    if (!sema_check_size(s, r, "the result of reshape", l->loc))
        return false;
    l->shape = r;
    Shape a = e->args[0].value->shape;
    if (shape_size(a) != shape_size(r)) {
        diag_error(s->diag, l->loc, "reshape: cannot make %s (%lld elements) of %s (%lld elements)",
                   shape_text(s, r), shape_size(r), shape_text(s, a), shape_size(a));
        return false;
    }
    e->shape = r;
    return true;
}

static bool rest_eq(Shape a, Shape b) /* equal but for the first dim */
{
    if (a.rank != b.rank)
        return false;
    for (int i = 1; i < a.rank; i++)
        if (a.dims[i] != b.dims[i])
            return false;
    return true;
}

/* concat(a, b, ...) along the first dim. */
static bool concat(Sema *s, Expr *e)
{
    int npos;
    if (!no_options(s, e, 1, 1 << 30, &npos) || !check_values(s, e, 0, npos))
        return false;
    Shape first = e->args[0].value->shape;
    long long rows = 0;
    for (int i = 0; i < npos; i++) {
        Shape a = e->args[i].value->shape;
        if (a.rank == 0) {
            diag_error(s->diag, e->args[i].loc, "concat joins tensors of rank >= 1 along their "
                       "first dim, not a scalar");
            return false;
        }
        if (a.rank != first.rank) {
            diag_error(s->diag, e->args[i].loc, "concat: %s and %s differ in rank", shape_text(s, first),
                       shape_text(s, a));
            return false;
        }
        if (!rest_eq(first, a)) {
            diag_error(s->diag, e->args[i].loc, "concat: %s and %s differ in a dim after the "
                       "first (only the first dim may differ)", shape_text(s, first), shape_text(s, a));
            return false;
        }
        rows += a.dims[0];
    }
    if (rows > 2147483647LL) {
        diag_error(s->diag, e->loc, "the result of concat has more than 2^31-1 elements");
        return false;
    }
    e->shape = first;
    e->shape.dims[0] = (int)rows;
    return sema_check_size(s, e->shape, "the result of concat", e->loc);
}

/* dropout(a, p), 0 <= p < 1, p folded in place. */
static bool dropout(Sema *s, Expr *e)
{
    int npos;
    double p;
    if (!no_options(s, e, 2, 2, &npos) || !check_values(s, e, 0, 1) ||
        !sema_fold(s, e->args[1].value, "the p of dropout", &p))
        return false;
    if (!(p >= 0 && p < 1)) {
        diag_error(s->diag, e->args[1].loc, "the p of dropout is the probability of zeroing an "
                   "element, in [0, 1), not %g", p);
        return false;
    }
    e->args[1].value = sema_num(s, p, e->args[1].loc);
    e->shape = e->args[0].value->shape;
    return true;
}

bool sema_image_call(Sema *s, Expr *e, const SemaFn *f)
{
    switch (f->kind) {
    case FN_CONV2D: return conv2d(s, e);
    case FN_POOL: return pool(s, e);
    case FN_FLATTEN: return flatten(s, e);
    case FN_RESHAPE: return reshape(s, e);
    case FN_CONCAT: return concat(s, e);
    case FN_DROPOUT: return dropout(s, e);
    default: return false;
    }
}
