/* lower.c - a checked model becomes the forward IR.
 *
 * One walk over the statements in order. Each statement's expression becomes nodes;
 * the top node takes the statement's name and the others are numbered after it
 * (h.1, h.2, ...) in definition order. Loss sugar (mse, bce, cross_entropy, dot)
 * becomes primitive ops here, except the two fused, numerically stable losses. */
#include "lower.h"

#include <stdint.h>
#include <string.h>

typedef struct Binding {
    const void *key; /* a Stmt (named values) or an Expr (loss-call arguments); NULL: empty */
    int node;
} Binding;

/* binds: a hash table (open addressing, at most half full), so each use of a name is
 * found in constant time and lowering stays linear in the model's size. */
typedef struct Lower {
    IrProgram *p;
    Diag *d;
    Binding *binds;
    size_t nbinds, cap;
    bool failed;
    int nmasks; /* dropout masks so far: the next one's id */
} Lower;

static Binding *bind_slot(const Lower *L, const void *key)
{
    size_t mask = L->cap - 1;
    uint64_t h = (uint64_t)(uintptr_t)key * 0x9e3779b97f4a7c15ull;
    for (size_t i = (size_t)(h >> 32) & mask;; i = (i + 1) & mask)
        if (!L->binds[i].key || L->binds[i].key == key)
            return &L->binds[i];
}

static void bind(Lower *L, const void *key, int node)
{
    if (2 * (L->nbinds + 1) > L->cap) {
        Lower old = *L;
        L->cap = old.cap ? 2 * old.cap : 64;
        L->binds = arena_alloc(L->p->arena, L->cap * sizeof *L->binds);
        for (size_t i = 0; i < old.cap; i++)
            if (old.binds[i].key)
                *bind_slot(L, old.binds[i].key) = old.binds[i];
    }
    Binding *b = bind_slot(L, key);
    L->nbinds += !b->key;
    *b = (Binding){key, node};
}

static int bound(const Lower *L, const void *key)
{
    const Binding *b = L->cap ? bind_slot(L, key) : NULL;
    return b && b->key ? b->node : -1;
}

static int fail(Lower *L, Loc loc, const char *what, const char *name)
{
    if (!L->failed)
        diag_error(L->d, loc, "internal error: cannot lower %s '%s'", what, name ? name : "?");
    L->failed = true;
    return -1;
}

static int lower_expr(Lower *L, const Expr *e);

/* ---- calls ---- */

typedef struct UnaryFn {
    const char *name;
    IrOp op;
} UnaryFn;

static const UnaryFn unary_fns[] = {
    {"sigmoid", IR_SIGMOID}, {"tanh", IR_TANH}, {"relu", IR_RELU}, {"exp", IR_EXP},
    {"log", IR_LOG}, {"sqrt", IR_SQRT}, {"abs", IR_ABS}, {"softplus", IR_SOFTPLUS},
    {"softmax", IR_SOFTMAX}, {"log_softmax", IR_LOG_SOFTMAX}, {"sum", IR_SUM},
    {"mean", IR_MEAN}, {"transpose", IR_TRANSPOSE},
};

static int unary_fn(const char *name)
{
    for (size_t i = 0; i < sizeof unary_fns / sizeof *unary_fns; i++)
        if (strcmp(name, unary_fns[i].name) == 0)
            return (int)unary_fns[i].op;
    return -1;
}

/* mse(y, t) -> mean((y - t)^2) */
static int lower_mse(Lower *L, int y, int t, Loc loc)
{
    int diff = ir_binary(L->p, IR_SUB, y, t, loc);
    return ir_unary(L->p, IR_MEAN, ir_unary_num(L->p, IR_POW, diff, 2, loc), loc);
}

/* bce(p, t) -> -mean(t*log(p) + (1-t)*log(1-p)); bce(sigmoid(z), t) -> sigmoid_bce(z, t) */
static int lower_bce(Lower *L, int p, int t, Loc loc)
{
    IrProgram *ir = L->p;
    if (ir->nodes[p].op == IR_SIGMOID)
        return ir_binary(ir, IR_SIGMOID_BCE, ir->nodes[p].args[0], t, loc);
    int pos = ir_binary(ir, IR_MUL, t, ir_unary(ir, IR_LOG, p, loc), loc);
    int one_t = ir_binary(ir, IR_SUB, ir_const(ir, 1, loc), t, loc);
    int one_p = ir_binary(ir, IR_SUB, ir_const(ir, 1, loc), p, loc);
    int neg = ir_binary(ir, IR_MUL, one_t, ir_unary(ir, IR_LOG, one_p, loc), loc);
    int mean = ir_unary(ir, IR_MEAN, ir_binary(ir, IR_ADD, pos, neg, loc), loc);
    return ir_unary(ir, IR_NEG, mean, loc);
}

/* cross_entropy(p, t) -> -sum(t*log(p)); cross_entropy(softmax(z), t) -> softmax_ce(z, t) */
static int lower_cross_entropy(Lower *L, int p, int t, Loc loc)
{
    IrProgram *ir = L->p;
    if (ir->nodes[p].op == IR_SOFTMAX)
        return ir_binary(ir, IR_SOFTMAX_CE, ir->nodes[p].args[0], t, loc);
    int prod = ir_binary(ir, IR_MUL, t, ir_unary(ir, IR_LOG, p, loc), loc);
    return ir_unary(ir, IR_NEG, ir_unary(ir, IR_SUM, prod, loc), loc);
}

static int lower_binary_call(Lower *L, const Expr *e, int a, int b)
{
    IrProgram *ir = L->p;
    const char *f = e->str;
    if (strcmp(f, "mse") == 0)
        return lower_mse(L, a, b, e->loc);
    if (strcmp(f, "bce") == 0)
        return lower_bce(L, a, b, e->loc);
    if (strcmp(f, "cross_entropy") == 0)
        return lower_cross_entropy(L, a, b, e->loc);
    if (strcmp(f, "dot") == 0)
        return ir_unary(ir, IR_SUM, ir_binary(ir, IR_MUL, a, b, e->loc), e->loc);
    if (strcmp(f, "outer") == 0)
        return ir_binary(ir, IR_OUTER, a, b, e->loc);
    return fail(L, e->loc, "call", f);
}

/* ---- image calls (sema leaves them canonical: options named and folded) ---- */

/* The folded number of e's option `name`, or `dflt`. */
static int option(const Expr *e, const char *name, int dflt)
{
    for (int i = 0; i < e->nargs; i++)
        if (e->args[i].name && strcmp(e->args[i].name, name) == 0 && e->args[i].value->kind == EX_NUM)
            return (int)e->args[i].value->num;
    return dflt;
}

static bool positional(const Expr *e, int i)
{
    return i < e->nargs && !e->args[i].name;
}

/* conv2d(x, K[, b]) -> conv2d(x, K) + expand_last(expand_last(b)) */
static int lower_conv2d(Lower *L, const Expr *e, int x)
{
    IrProgram *p = L->p;
    int k = lower_expr(L, e->args[1].value);
    if (k < 0)
        return -1;
    Shape ks = p->nodes[k].shape;
    IrWindow win = {ks.dims[2], ks.dims[3], option(e, "stride", 1), option(e, "padding", 0)};
    int c = ir_image(p, IR_CONV2D, x, k, win, NULL, e->loc);
    if (!positional(e, 2))
        return c;
    int b = lower_expr(L, e->args[2].value);
    if (b < 0)
        return -1;
    Shape out = p->nodes[c].shape, rows = {2, {out.dims[0], out.dims[1]}};
    int wide = ir_unary_to(p, IR_EXPAND_LAST, ir_unary_to(p, IR_EXPAND_LAST, b, rows, e->loc), out, e->loc);
    return ir_binary(p, IR_ADD, c, wide, e->loc);
}

/* concat(a, b, c) -> concat(concat(a, b), c) */
static int lower_concat(Lower *L, const Expr *e, int a)
{
    for (int i = 1; i < e->nargs && a >= 0; i++) {
        int b = lower_expr(L, e->args[i].value);
        a = b < 0 ? -1 : ir_image(L->p, IR_CONCAT, a, b, (IrWindow){0}, NULL, e->loc);
    }
    return a;
}

/* An image function's call, a its first argument's node; -2 when e is not one. */
static int lower_image(Lower *L, const Expr *e, int a)
{
    IrProgram *p = L->p;
    const char *f = e->str;
    bool max = strcmp(f, "maxpool") == 0;
    if (strcmp(f, "conv2d") == 0)
        return lower_conv2d(L, e, a);
    if (max || strcmp(f, "avgpool") == 0) {
        int k = e->args[1].value->kind == EX_NUM ? (int)e->args[1].value->num : 1;
        IrWindow win = {k, k, option(e, "stride", k), 0};
        return ir_image(p, max ? IR_MAXPOOL : IR_AVGPOOL, a, -1, win, NULL, e->loc);
    }
    if (strcmp(f, "flatten") == 0 || strcmp(f, "reshape") == 0)
        return ir_unary_to(p, IR_RESHAPE, a, e->shape, e->loc);
    if (strcmp(f, "concat") == 0)
        return lower_concat(L, e, a);
    if (strcmp(f, "dropout") == 0) { /* a * mask: the backward pass is d * mask */
        double prob = e->args[1].value->kind == EX_NUM ? e->args[1].value->num : 0;
        int mask = ir_dropout_mask(p, L->nmasks++, prob, p->nodes[a].shape, e->loc);
        return ir_binary(p, IR_MUL, a, mask, e->loc);
    }
    return -2;
}

/* leaky_relu's alpha: sema leaves it as a folded number (default filled in). */
static double leaky_alpha(const Expr *e)
{
    return e->nargs > 1 && e->args[1].value->kind == EX_NUM ? e->args[1].value->num : 0.01;
}

static int lower_call(Lower *L, const Expr *e)
{
    if (e->nargs < 1)
        return fail(L, e->loc, "call", e->str);
    int a = lower_expr(L, e->args[0].value);
    if (a < 0)
        return -1;
    /* The loss call's first argument may be the prediction (Model.output). */
    bind(L, e->args[0].value, a);
    if (strcmp(e->str, "leaky_relu") == 0)
        return ir_unary_num(L->p, IR_LEAKY_RELU, a, leaky_alpha(e), e->loc);
    int image = lower_image(L, e, a);
    if (image != -2)
        return image;
    int op = unary_fn(e->str);
    if (op >= 0 && e->nargs == 1)
        return ir_unary(L->p, (IrOp)op, a, e->loc);
    if (e->nargs != 2)
        return fail(L, e->loc, "call", e->str);
    int b = lower_expr(L, e->args[1].value);
    return b < 0 ? -1 : lower_binary_call(L, e, a, b);
}

/* ---- expressions ---- */

static int binary_op(char c)
{
    switch (c) {
    case '+': return IR_ADD;
    case '-': return IR_SUB;
    case '*': return IR_MUL;
    case '/': return IR_DIV;
    case '@': return IR_MATMUL;
    default: return -1;
    }
}

static int lower_binary(Lower *L, const Expr *e)
{
    int a = lower_expr(L, e->lhs);
    if (a < 0)
        return -1;
    if (e->op == '^') /* sema folded the exponent to a number */
        return e->rhs->kind == EX_NUM ? ir_unary_num(L->p, IR_POW, a, e->rhs->num, e->loc)
                                      : fail(L, e->loc, "exponent of", "^");
    int op = binary_op(e->op);
    if (op < 0)
        return fail(L, e->loc, "operator", (char[2]){e->op, 0});
    int b = lower_expr(L, e->rhs);
    return b < 0 ? -1 : ir_binary(L->p, (IrOp)op, a, b, e->loc);
}

static int lower_expr(Lower *L, const Expr *e)
{
    switch (e->kind) {
    case EX_NUM:
        return ir_const(L->p, e->num, e->loc);
    case EX_NAME: {
        int n = e->decl ? bound(L, e->decl) : -1;
        return n >= 0 ? n : fail(L, e->loc, "name", e->str);
    }
    case EX_NEG:
        if (e->lhs->kind == EX_NUM) /* a negative literal is a constant, not an op */
            return ir_const(L->p, -e->lhs->num, e->loc);
        {
            int a = lower_expr(L, e->lhs);
            return a < 0 ? -1 : ir_unary(L->p, IR_NEG, a, e->loc);
        }
    case EX_BIN:
        return lower_binary(L, e);
    case EX_CALL:
        return lower_call(L, e);
    default:
        return fail(L, e->loc, "expression", e->str);
    }
}

/* ---- statements ---- */

/* The top node takes the statement's name; the statement's other new nodes are its
 * numbered temporaries. Constants stay nameless: they print inline. */
static void name_nodes(Lower *L, const char *name, int first, int top)
{
    IrProgram *p = L->p;
    int k = 0;
    for (int id = first; id < p->nnodes; id++) {
        IrNode *n = &p->nodes[id];
        if (id == top)
            n->name = name;
        else if (n->op != IR_CONST && !n->name)
            n->name = arena_printf(p->arena, "%s.%d", name, ++k);
    }
}

static int leaf(Lower *L, const Stmt *s, IrOp op)
{
    IrProgram *p = L->p;
    IrNode n = {.op = op, .shape = s->shape, .name = s->name, .loc = s->name_loc};
    if (op == IR_PARAM) { /* p->params was sized by count_params */
        n.index = p->nparams;
        p->params[p->nparams] = (IrParam){.name = s->name, .shape = s->shape, .init = s->init,
                                          .loc = s->name_loc, .node = p->nnodes, .grad = -1};
        p->nparams++;
    }
    return ir_add(p, n);
}

static void lower_stmt(Lower *L, const Stmt *s)
{
    IrProgram *p = L->p;
    int first = p->nnodes, node = -1;
    switch (s->kind) {
    case ST_INPUT:
        node = p->input = leaf(L, s, IR_INPUT);
        break;
    case ST_TARGET:
        node = p->target = leaf(L, s, IR_TARGET);
        break;
    case ST_PARAM:
        node = leaf(L, s, IR_PARAM);
        break;
    case ST_LET:
    case ST_LOSS:
        node = lower_expr(L, s->value);
        if (node < 0)
            return;
        name_nodes(L, s->kind == ST_LOSS ? "loss" : s->name, first, node);
        if (s->kind == ST_LOSS)
            p->loss = node;
        break;
    case ST_OUTPUT:
        return;
    }
    bind(L, s, node);
}

/* Model.output is a name, or the loss call's first argument (bound while lowering it). */
static int output_node(const Lower *L, const Model *m)
{
    const Expr *o = m->output;
    if (!o)
        return L->p->loss;
    int n = o->kind == EX_NAME && o->decl ? bound(L, o->decl) : bound(L, o);
    return n >= 0 ? n : L->p->loss;
}

/* The params array is allocated once at its final size: growing it by one per param
 * left every old copy in the arena, memory quadratic in the param count. */
static int count_params(const Model *m)
{
    int n = 0;
    for (const Stmt *s = m->stmts; s; s = s->next)
        n += s->kind == ST_PARAM;
    return n;
}

IrProgram *lower_model(const Model *m, Arena *a, Diag *d)
{
    Lower L = {.p = ir_new(a), .d = d};
    L.p->params = arena_alloc(a, sizeof *L.p->params * (size_t)(count_params(m) + 1));
    for (const Stmt *s = m->stmts; s && !L.failed; s = s->next)
        lower_stmt(&L, s);
    if (L.failed)
        return NULL;
    if (L.p->loss < 0 || L.p->input < 0) {
        diag_error(d, m->loc, "internal error: model '%s' has no %s", m->name,
                   L.p->loss < 0 ? "loss" : "input");
        return NULL;
    }
    L.p->output = output_node(&L, m);
    L.p->nforward = L.p->nnodes;
    return L.p;
}
