/* simplify.c - the whole-program simplifier: constant folding, algebraic identities,
 * common-subexpression elimination and dead-code elimination, repeated until nothing changes.
 *
 * A pass rebuilds the program node by node, in order. A node's operands are already
 * rewritten when it is reached, so rules cascade within one pass; every node a rule makes
 * goes through the same rules and through one hash table (CSE) before it is appended.
 * Rules change no value beyond rounding and no node's shape. The forward pass is rebuilt
 * first, so forward nodes stay first; dead nodes are dropped at the end of the pass. */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "simplify.h"

#include "interp.h"

/* One pass normally reaches the fixed point; the rest is a safety net. */
enum { SIMP_MAX_PASSES = 8, SIMP_MAX_DEPTH = 64 };

/* Per pass, the names adjoints collect. A node may merge thousands of adjoints (a chain of
 * adds passes one gradient along), so each step is O(1): a hash set of the (dst id, name)
 * pairs seen, and per dst id the capacity of an alias array this pass made (0: none, or one
 * shared with another node, to be copied before it grows). */
typedef struct AliasKey {
    const char *name;
    int id;
} AliasKey;

typedef struct AliasNode {
    int cap;
    bool in_set; /* the node's names are in the set */
} AliasNode;

typedef struct AliasBook {
    AliasKey *set; /* open addressing, name NULL = empty */
    size_t cap, count;
    AliasNode *nodes;
    size_t nnodes;
} AliasBook;

typedef struct Simp {
    const IrProgram *src;
    IrProgram *dst;
    int *map;          /* src id -> dst id of the same value */
    int *table;        /* CSE: open addressing over dst ids, -1 = empty */
    size_t tcap, tcount;
    const IrNode *cur; /* the src node being rebuilt: nodes made for it take its loc, rule, grad */
    int depth;         /* of rule applications within one src node */
    bool changed;
    AliasBook book;
} Simp;

static int simp_node(Simp *S, IrNode n);

static const IrNode *dnode(const Simp *S, int id)
{
    return &S->dst->nodes[id];
}

/* ---- structural equality and the CSE table ---- */

static bool commutes(IrOp op)
{
    return op == IR_ADD || op == IR_MUL;
}

static bool uses_num(IrOp op)
{
    return ir_op_info(op)->num;
}

/* The operands as CSE compares them: a commutative op's sorted, so a*b meets b*a. */
static void key_args(const IrNode *n, int out[2])
{
    out[0] = n->nargs > 0 ? n->args[0] : -1;
    out[1] = n->nargs > 1 ? n->args[1] : -1;
    if (commutes(n->op) && out[0] > out[1]) {
        int t = out[0];
        out[0] = out[1];
        out[1] = t;
    }
}

/* Bits, not ==: keeps -0 apart from 0 and lets a NaN meet itself. */
static uint64_t num_bits(const IrNode *n)
{
    uint64_t u = 0;
    if (uses_num(n->op))
        memcpy(&u, &n->num, sizeof u);
    return u;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static uint64_t node_hash(const IrNode *n)
{
    int a[2];
    key_args(n, a);
    uint64_t h = mix((uint64_t)n->op, (uint32_t)a[0]);
    h = mix(h, (uint32_t)a[1]);
    h = mix(h, num_bits(n));
    h = mix(h, (uint32_t)n->index);
    h = mix(h, (uint32_t)n->win.kh);
    h = mix(h, (uint32_t)n->win.kw);
    h = mix(h, (uint32_t)n->win.stride);
    h = mix(h, (uint32_t)n->win.pad);
    h = mix(h, (uint32_t)n->shape.rank);
    for (int i = 0; i < n->shape.rank; i++)
        h = mix(h, (uint32_t)n->shape.dims[i]);
    return h;
}

static bool node_same(const IrNode *x, const IrNode *y)
{
    int a[2], b[2];
    key_args(x, a);
    key_args(y, b);
    return x->op == y->op && x->nargs == y->nargs && a[0] == b[0] && a[1] == b[1] &&
           num_bits(x) == num_bits(y) && x->index == y->index &&
           memcmp(&x->win, &y->win, sizeof x->win) == 0 && shape_eq(x->shape, y->shape);
}

/* The table slot holding a node equal to n, or the empty slot where it belongs. */
static int *table_slot(const Simp *S, const IrNode *n)
{
    size_t mask = S->tcap - 1;
    for (size_t i = node_hash(n) & mask;; i = (i + 1) & mask)
        if (S->table[i] < 0 || node_same(dnode(S, S->table[i]), n))
            return &S->table[i];
}

static void table_grow(Simp *S)
{
    int *old = S->table;
    size_t oldcap = S->tcap;
    S->tcap = oldcap ? 2 * oldcap : 256;
    S->table = arena_xcalloc(S->tcap, sizeof *S->table);
    memset(S->table, 0xff, S->tcap * sizeof *S->table); /* all -1 */
    for (size_t i = 0; i < oldcap; i++)
        if (old[i] >= 0)
            *table_slot(S, dnode(S, old[i])) = old[i];
    free(old);
}

/* The dst node equal to n; appended when there is none yet. */
static int intern(Simp *S, IrNode n)
{
    if (2 * (S->tcount + 1) > S->tcap)
        table_grow(S);
    int *slot = table_slot(S, &n);
    if (*slot >= 0) {
        if (S->depth == 0) /* a src node met its twin: a merge, not a rule's helper */
            S->changed = true;
        return *slot;
    }
    int id = ir_add(S->dst, n);
    *slot = id;
    S->tcount++;
    return id;
}

/* ---- making nodes on behalf of the node being rebuilt ---- */

static int mk(Simp *S, IrOp op, int a, int b, double num, Shape shape)
{
    IrNode n = {.op = op, .shape = shape, .args = {a, b}, .nargs = (a >= 0) + (b >= 0),
                .num = num, .loc = S->cur->loc, .rule = S->cur->rule, .grad = S->cur->grad};
    return simp_node(S, n);
}

static const Shape scalar_shape = {0};

/* id as a value of `shape`: itself, or a broadcast of it when it is rank 0; -1 otherwise. */
static int as_shape(Simp *S, int id, Shape shape)
{
    if (id < 0)
        return -1;
    Shape s = dnode(S, id)->shape;
    if (shape_eq(s, shape))
        return id;
    return s.rank == 0 ? mk(S, IR_BROADCAST, id, -1, 0, shape) : -1;
}

/* The constant v as a value of `shape`: a rank-0 const, broadcast for a tensor. */
static int mk_const(Simp *S, double v, Shape shape)
{
    if (!isfinite(v)) /* leave overflow and domain errors to run time */
        return -1;
    return as_shape(S, mk(S, IR_CONST, -1, -1, v, scalar_shape), shape);
}

/* Elementwise op on a and b (one side may be rank 0), as a value of `shape`. */
static int mk2(Simp *S, IrOp op, int a, int b, Shape shape)
{
    Shape sa = dnode(S, a)->shape, sb = dnode(S, b)->shape;
    return as_shape(S, mk(S, op, a, b, 0, sa.rank ? sa : sb), shape);
}

static int mk_neg(Simp *S, int a, Shape shape)
{
    return as_shape(S, mk(S, IR_NEG, a, -1, 0, dnode(S, a)->shape), shape);
}

/* ---- what a node is ---- */

static IrOp op_of(const Simp *S, int id)
{
    return dnode(S, id)->op;
}

static int arg_of(const Simp *S, int id, int k)
{
    return dnode(S, id)->args[k];
}

/* The rank-0 value id repeats: id itself when rank 0, a broadcast's operand; else -1. */
static int scalar_of(const Simp *S, int id)
{
    const IrNode *n = dnode(S, id);
    if (n->shape.rank == 0)
        return id;
    return n->op == IR_BROADCAST ? n->args[0] : -1;
}

/* Whether id is a constant (rank 0, or a broadcast of one); its value in *v. */
static bool const_of(const Simp *S, int id, double *v)
{
    int s = scalar_of(S, id);
    if (s < 0 || op_of(S, s) != IR_CONST)
        return false;
    *v = dnode(S, s)->num;
    return true;
}

static bool is_num(const Simp *S, int id, double want)
{
    double v;
    return const_of(S, id, &v) && v == want;
}

/* ---- the rules: each returns the dst id of an equal value, or -1 ---- */

/* f(c) folds; f(broadcast s) = broadcast f(s); neg neg x = x; x^1 = x; x^0 = 1; ... */
static int rw_unary(Simp *S, const IrNode *n)
{
    int a = n->args[0], s = scalar_of(S, a);
    IrOp inner = op_of(S, a);
    double v;
    if (const_of(S, a, &v))
        return mk_const(S, interp_unary(n->op, v, n->num), n->shape);
    if (s >= 0 && s != a)
        return as_shape(S, mk(S, n->op, s, -1, n->num, scalar_shape), n->shape);
    switch (n->op) {
    case IR_NEG:
        return inner == IR_NEG ? arg_of(S, a, 0) : -1;
    case IR_ABS: /* abs is even and idempotent */
        if (inner == IR_NEG)
            return mk(S, IR_ABS, arg_of(S, a, 0), -1, 0, n->shape);
        return inner == IR_ABS ? a : -1;
    case IR_RELU:
        return inner == IR_RELU ? a : -1;
    case IR_POW:
        if (n->num == 1)
            return a;
        return n->num == 0 ? mk_const(S, 1, n->shape) : -1;
    default:
        return -1;
    }
}

/* x - c for a constant c = -k < 0 (exact: IEEE subtraction is addition of the negation). */
static int sub_const(Simp *S, int x, double k, IrOp op, Shape shape)
{
    int c = mk_const(S, -k, scalar_shape);
    return c < 0 ? -1 : mk2(S, op, x, c, shape);
}

static int rw_add(Simp *S, const IrNode *n, int a, int b)
{
    double k;
    if (is_num(S, b, 0))
        return as_shape(S, a, n->shape);
    if (is_num(S, a, 0))
        return as_shape(S, b, n->shape);
    if (const_of(S, b, &k) && k < 0) /* a + -3 = a - 3 */
        return sub_const(S, a, k, IR_SUB, n->shape);
    if (const_of(S, a, &k) && k < 0)
        return sub_const(S, b, k, IR_SUB, n->shape);
    if (op_of(S, b) == IR_NEG) /* a + -b = a - b */
        return mk2(S, IR_SUB, a, arg_of(S, b, 0), n->shape);
    if (op_of(S, a) == IR_NEG) /* -a + b = b - a */
        return mk2(S, IR_SUB, b, arg_of(S, a, 0), n->shape);
    return -1;
}

static int rw_sub(Simp *S, const IrNode *n, int a, int b)
{
    double k;
    if (is_num(S, b, 0))
        return as_shape(S, a, n->shape);
    if (is_num(S, a, 0))
        return mk_neg(S, b, n->shape);
    if (const_of(S, b, &k) && k < 0) /* a - -3 = a + 3 */
        return sub_const(S, a, k, IR_ADD, n->shape);
    if (op_of(S, b) == IR_NEG) /* a - -b = a + b */
        return mk2(S, IR_ADD, a, arg_of(S, b, 0), n->shape);
    return -1;
}

/* x * k for a constant k on side `kside` (0 left, 1 right), the constant side kept. */
static int mul_const(Simp *S, int x, double k, int kside, Shape shape)
{
    int c = mk_const(S, k, scalar_shape);
    if (c < 0)
        return -1;
    return kside == 0 ? mk2(S, IR_MUL, c, x, shape) : mk2(S, IR_MUL, x, c, shape);
}

/* The non-constant operand of a mul or div by a constant, the constant in *k. */
static int split_const(const Simp *S, int id, IrOp op, double *k)
{
    if (op_of(S, id) != op)
        return -1;
    int a = arg_of(S, id, 0), b = arg_of(S, id, 1);
    if (const_of(S, b, k))
        return a;
    return op == IR_MUL && const_of(S, a, k) ? b : -1;
}

/* x * k, k constant: identities, then chains of constants combined into one. */
static int rw_mul_by(Simp *S, const IrNode *n, int x, double k, int kside)
{
    double k2;
    int y;
    if (k == 1)
        return as_shape(S, x, n->shape);
    if (k == 0)
        return mk_const(S, 0, n->shape);
    if (k == -1)
        return mk_neg(S, x, n->shape);
    if ((y = split_const(S, x, IR_MUL, &k2)) >= 0)
        return mul_const(S, y, k * k2, kside, n->shape);
    if ((y = split_const(S, x, IR_DIV, &k2)) >= 0)
        return mul_const(S, y, k / k2, kside, n->shape);
    if (op_of(S, x) == IR_DIV && const_of(S, arg_of(S, x, 0), &k2)) { /* k * (k2 / y) */
        int c = mk_const(S, k * k2, scalar_shape);
        return c < 0 ? -1 : mk2(S, IR_DIV, c, arg_of(S, x, 1), n->shape);
    }
    if (op_of(S, x) == IR_NEG)
        return mul_const(S, arg_of(S, x, 0), -k, kside, n->shape);
    return -1;
}

static int rw_mul(Simp *S, const IrNode *n, int a, int b)
{
    double k;
    if (const_of(S, b, &k))
        return rw_mul_by(S, n, a, k, 1);
    if (const_of(S, a, &k))
        return rw_mul_by(S, n, b, k, 0);
    if (op_of(S, a) == IR_NEG && op_of(S, b) == IR_NEG)
        return mk2(S, IR_MUL, arg_of(S, a, 0), arg_of(S, b, 0), n->shape);
    return -1;
}

/* x / k, k constant. */
static int rw_div_by(Simp *S, const IrNode *n, int x, double k)
{
    double k2;
    int y, c;
    if (k == 1)
        return as_shape(S, x, n->shape);
    if (k == -1)
        return mk_neg(S, x, n->shape);
    if ((y = split_const(S, x, IR_MUL, &k2)) >= 0)
        return mul_const(S, y, k2 / k, 1, n->shape);
    if ((y = split_const(S, x, IR_DIV, &k2)) >= 0)
        return (c = mk_const(S, k2 * k, scalar_shape)) < 0 ? -1 : mk2(S, IR_DIV, y, c, n->shape);
    if (op_of(S, x) == IR_DIV && const_of(S, arg_of(S, x, 0), &k2)) /* (k2 / y) / k */
        return (c = mk_const(S, k2 / k, scalar_shape)) < 0 ? -1
                                                            : mk2(S, IR_DIV, c, arg_of(S, x, 1), n->shape);
    if (op_of(S, x) == IR_NEG)
        return (c = mk_const(S, -k, scalar_shape)) < 0 ? -1 : mk2(S, IR_DIV, arg_of(S, x, 0), c, n->shape);
    return -1;
}

static int rw_div(Simp *S, const IrNode *n, int a, int b)
{
    double k;
    if (const_of(S, b, &k))
        return rw_div_by(S, n, a, k);
    if (op_of(S, a) == IR_NEG && op_of(S, b) == IR_NEG)
        return mk2(S, IR_DIV, arg_of(S, a, 0), arg_of(S, b, 0), n->shape);
    return -1;
}

/* add sub mul div: fold constants, compute on scalars before broadcasting, then identities. */
static int rw_binary(Simp *S, const IrNode *n)
{
    int a = n->args[0], b = n->args[1];
    int sa = scalar_of(S, a), sb = scalar_of(S, b);
    double va, vb;
    if (const_of(S, a, &va) && const_of(S, b, &vb))
        return mk_const(S, interp_binary(n->op, va, vb), n->shape);
    if (sa >= 0 && sb >= 0 && n->shape.rank > 0) /* op(bc r, bc s) = bc op(r, s) */
        return as_shape(S, mk(S, n->op, sa, sb, 0, scalar_shape), n->shape);
    /* a broadcast beside a full-shape operand: the rank-0 operand broadcasts by itself */
    if (sa >= 0 && sa != a && shape_eq(dnode(S, b)->shape, n->shape))
        return mk(S, n->op, sa, b, 0, n->shape);
    if (sb >= 0 && sb != b && shape_eq(dnode(S, a)->shape, n->shape))
        return mk(S, n->op, a, sb, 0, n->shape);
    switch (n->op) {
    case IR_ADD: return rw_add(S, n, a, b);
    case IR_SUB: return rw_sub(S, n, a, b);
    case IR_MUL: return rw_mul(S, n, a, b);
    default: return rw_div(S, n, a, b);
    }
}

/* matmul and outer: a zero side gives zeros; constants fold. */
static int rw_product(Simp *S, const IrNode *n)
{
    int a = n->args[0], b = n->args[1];
    int sa = scalar_of(S, a), sb = scalar_of(S, b);
    double va, vb;
    if (is_num(S, a, 0) || is_num(S, b, 0))
        return mk_const(S, 0, n->shape);
    if (n->op == IR_OUTER && sa >= 0 && sb >= 0) /* every element is r * s */
        return as_shape(S, mk(S, IR_MUL, sa, sb, 0, scalar_shape), n->shape);
    if (n->op == IR_MATMUL && const_of(S, a, &va) && const_of(S, b, &vb)) {
        Shape sh = dnode(S, a)->shape;
        return mk_const(S, va * vb * sh.dims[sh.rank - 1], n->shape);
    }
    return -1;
}

static int rw_transpose(Simp *S, const IrNode *n)
{
    int a = n->args[0], s = scalar_of(S, a);
    if (op_of(S, a) == IR_TRANSPOSE)
        return arg_of(S, a, 0);
    return s >= 0 ? as_shape(S, s, n->shape) : -1;
}

/* sum and mean: of a scalar, the scalar; of a broadcast, n times it and itself; of a
 * reshape, of its operand (the same elements in the same order). */
static int rw_reduce(Simp *S, const IrNode *n)
{
    int a = n->args[0], s = scalar_of(S, a);
    if (op_of(S, a) == IR_RESHAPE)
        return mk(S, n->op, arg_of(S, a, 0), -1, 0, n->shape);
    if (s < 0)
        return -1;
    if (s == a || n->op == IR_MEAN)
        return s;
    int count = mk_const(S, (double)shape_size(dnode(S, a)->shape), scalar_shape);
    return mk2(S, IR_MUL, s, count, n->shape);
}

static int rw_sum_last(Simp *S, const IrNode *n)
{
    int a = n->args[0], s = scalar_of(S, a);
    Shape sh = dnode(S, a)->shape;
    if (s >= 0) {
        int count = mk_const(S, sh.dims[sh.rank - 1], scalar_shape);
        return mk2(S, IR_MUL, s, count, n->shape);
    }
    return sh.rank == 1 ? mk(S, IR_SUM, a, -1, 0, n->shape) : -1; /* one canonical total */
}

static int rw_expand_last(Simp *S, const IrNode *n)
{
    int s = scalar_of(S, n->args[0]);
    return s >= 0 ? as_shape(S, s, n->shape) : -1;
}

/* reshape: to its operand's own shape, nothing; of a reshape, of the inner operand; of a
 * broadcast scalar, a broadcast to the new shape. */
static int rw_reshape(Simp *S, const IrNode *n)
{
    int a = n->args[0], s = scalar_of(S, a);
    if (shape_eq(dnode(S, a)->shape, n->shape))
        return a;
    if (op_of(S, a) == IR_RESHAPE)
        return mk(S, IR_RESHAPE, arg_of(S, a, 0), -1, 0, n->shape);
    return s >= 0 ? as_shape(S, s, n->shape) : -1;
}

static int rewrite(Simp *S, const IrNode *n)
{
    switch (ir_op_info(n->op)->kind) {
    case IR_KIND_UNARY: return rw_unary(S, n);
    case IR_KIND_BINARY: return rw_binary(S, n);
    default: break;
    }
    switch (n->op) {
    case IR_MATMUL: case IR_OUTER:
        return rw_product(S, n);
    case IR_TRANSPOSE:
        return rw_transpose(S, n);
    case IR_RESHAPE:
        return rw_reshape(S, n);
    case IR_SUM: case IR_MEAN:
        return rw_reduce(S, n);
    case IR_BROADCAST: /* to rank 0: the operand itself */
        return n->shape.rank == 0 ? n->args[0] : -1;
    case IR_SUM_LAST:
        return rw_sum_last(S, n);
    case IR_EXPAND_LAST:
        return rw_expand_last(S, n);
    default:
        return -1;
    }
}

/* n (operands already in dst) with the rules applied: the dst id of an equal value of n's shape. */
static int simp_node(Simp *S, IrNode n)
{
    if (S->depth < SIMP_MAX_DEPTH) {
        S->depth++;
        int r = rewrite(S, &n);
        S->depth--;
        /* a rule that cannot keep the shape is a bug; keep the node as it was */
        if (r >= 0 && shape_eq(dnode(S, r)->shape, n.shape)) {
            S->changed = true;
            return r;
        }
    }
    return intern(S, n);
}

/* ---- names ---- */

/* h.1 and dh.2 are generated temporaries; h, dh and h.W (dense) come from the source. */
static bool is_temp_name(const char *s)
{
    const char *dot = strrchr(s, '.');
    if (!dot || !dot[1])
        return false;
    for (const char *c = dot + 1; *c; c++)
        if (!isdigit((unsigned char)*c))
            return false;
    return true;
}

/* Forward values: the survivor of a src node takes its name when that name says more
 * (source names win over generated ones). Leaves keep their declared names. */
static void take_forward_name(IrNode *s, const IrNode *o)
{
    int have = s->name ? 1 + !is_temp_name(s->name) : 0;
    int offer = o->name ? 1 + !is_temp_name(o->name) : 0;
    if (s->nargs > 0 && offer > have)
        s->name = o->name;
}

static uint64_t alias_hash(const char *name, int id)
{
    uint64_t h = (uint32_t)id;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = (h ^ *c) * 0x100000001b3ull;
    return mix(h, 0);
}

static AliasKey *alias_slot(const AliasBook *b, const char *name, int id)
{
    size_t mask = b->cap - 1;
    for (size_t i = alias_hash(name, id) & mask;; i = (i + 1) & mask)
        if (!b->set[i].name || (b->set[i].id == id && strcmp(b->set[i].name, name) == 0))
            return &b->set[i];
}

/* Adds (id, name) to the set; false when it was there. */
static bool alias_insert(AliasBook *b, const char *name, int id)
{
    if (2 * (b->count + 1) > b->cap) {
        AliasBook old = *b;
        b->cap = old.cap ? 2 * old.cap : 256;
        b->set = arena_xcalloc(b->cap, sizeof *b->set);
        for (size_t i = 0; i < old.cap; i++)
            if (old.set[i].name)
                *alias_slot(b, old.set[i].name, old.set[i].id) = old.set[i];
        free(old.set);
    }
    AliasKey *k = alias_slot(b, name, id);
    if (k->name)
        return false;
    *k = (AliasKey){name, id};
    b->count++;
    return true;
}

/* Dst node id's bookkeeping, the table grown to hold it. */
static AliasNode *alias_node(AliasBook *b, int id)
{
    if ((size_t)id >= b->nnodes) {
        size_t n = b->nnodes ? b->nnodes : 64;
        while (n <= (size_t)id)
            n *= 2;
        AliasNode *t = arena_xcalloc(n, sizeof *t);
        if (b->nnodes)
            memcpy(t, b->nodes, b->nnodes * sizeof *t);
        free(b->nodes);
        b->nodes = t;
        b->nnodes = n;
    }
    return &b->nodes[id];
}

/* Appends name to named dst node id's aliases unless it goes by it already. An array
 * another node may share (from src, or handed over by take_adjoint_name) is copied
 * first; one this pass made grows in place. */
static void add_alias(Simp *S, int id, const char *name)
{
    IrNode *s = &S->dst->nodes[id];
    AliasNode *an = alias_node(&S->book, id);
    if (!an->in_set) {
        alias_insert(&S->book, s->name, id);
        for (int i = 0; i < s->naliases; i++)
            alias_insert(&S->book, s->aliases[i], id);
        an->in_set = true;
    }
    if (!alias_insert(&S->book, name, id))
        return;
    if (s->naliases >= an->cap) { /* cap 0: shared, or none */
        int n = s->naliases ? 2 * s->naliases : 4;
        const char **v = arena_alloc(S->dst->arena, (size_t)n * sizeof *v);
        if (s->naliases)
            memcpy(v, s->aliases, (size_t)s->naliases * sizeof *v);
        s->aliases = v;
        an->cap = n;
    }
    s->aliases[s->naliases++] = name;
}

/* Adjoints: the name a line shows must be the one its note describes. The first named src
 * node to land on s names it and brings its rule and loc along (s may be a nameless helper
 * made for another step); the names of later ones become aliases, in src order. */
static void take_adjoint_name(Simp *S, int id, const IrNode *o)
{
    IrNode *s = &S->dst->nodes[id];
    if (!o->name)
        return;
    if (!s->name) {
        s->name = o->name;
        s->rule = o->rule;
        s->loc = o->loc;
        s->aliases = o->aliases;
        s->naliases = o->naliases;
        *alias_node(&S->book, id) = (AliasNode){0}; /* shares o's array; names not in the set */
        return;
    }
    add_alias(S, id, o->name);
    for (int i = 0; i < o->naliases; i++)
        add_alias(S, id, o->aliases[i]);
}

/* r is the survivor of src node o. Forward values never take a backward name; constants
 * stay nameless (printed as values). */
static void take_name(Simp *S, int r, const IrNode *o)
{
    IrNode *s = &S->dst->nodes[r];
    double v;
    if (const_of(S, r, &v) || (!s->grad && o->grad))
        return;
    if (s->grad)
        take_adjoint_name(S, r, o);
    else
        take_forward_name(s, o);
}

/* ---- a pass ---- */

static void rebuild_node(Simp *S, int i)
{
    const IrNode *o = &S->src->nodes[i];
    IrNode n = *o;
    for (int k = 0; k < n.nargs; k++)
        n.args[k] = S->map[o->args[k]];
    S->cur = o;
    int r = simp_node(S, n);
    S->map[i] = r;
    take_name(S, r, o);
}

static int map_id(const int *map, int id)
{
    return id >= 0 ? map[id] : -1;
}

/* The program's handles (params, input, target, loss, output) through map. */
static void remap_handles(IrProgram *q, const IrProgram *p, const int *map)
{
    if (q->params != p->params) {
        q->params = arena_alloc(q->arena, (size_t)(p->nparams ? p->nparams : 1) * sizeof *q->params);
        memcpy(q->params, p->params, (size_t)p->nparams * sizeof *q->params);
        q->nparams = p->nparams;
    }
    for (int i = 0; i < q->nparams; i++) {
        q->params[i].node = map_id(map, p->params[i].node);
        q->params[i].grad = map_id(map, p->params[i].grad);
    }
    q->input = map_id(map, p->input);
    q->target = map_id(map, p->target);
    q->loss = map_id(map, p->loss);
    q->output = map_id(map, p->output);
}

/* Constants print as their values: a name on one would stand for every use of it. */
static void strip_const_names(Simp *S)
{
    double v;
    for (int id = 0; id < S->dst->nnodes; id++)
        if (const_of(S, id, &v)) {
            S->dst->nodes[id].name = NULL;
            S->dst->nodes[id].aliases = NULL;
            S->dst->nodes[id].naliases = 0;
        }
}

static void mark(bool *live, int id)
{
    if (id >= 0)
        live[id] = true;
}

/* Drops, in place, what the loss, the output, the gradients and the leaves do not need.
 * Returns whether anything went. */
static bool dce(IrProgram *q)
{
    int n = q->nnodes;
    bool *live = arena_xcalloc((size_t)n + 1, sizeof *live);
    int *map = arena_xcalloc((size_t)n + 1, sizeof *map);
    mark(live, q->input), mark(live, q->target), mark(live, q->loss), mark(live, q->output);
    for (int i = 0; i < q->nparams; i++)
        mark(live, q->params[i].node), mark(live, q->params[i].grad);
    for (int id = n - 1; id >= 0; id--)
        for (int k = 0; live[id] && k < q->nodes[id].nargs; k++)
            live[q->nodes[id].args[k]] = true;
    int kept = 0, kept_fwd = 0;
    for (int id = 0; id < n; id++) {
        map[id] = live[id] ? kept : -1;
        if (!live[id])
            continue;
        IrNode node = q->nodes[id];
        for (int k = 0; k < node.nargs; k++)
            node.args[k] = map[node.args[k]];
        q->nodes[kept++] = node;
        kept_fwd += id < q->nforward;
    }
    q->nnodes = kept;
    q->nforward = kept_fwd;
    remap_handles(q, q, map);
    free(live);
    free(map);
    return kept < n;
}

/* One rebuild of p: rules and CSE on every node, forward first, then DCE. */
static IrProgram *simp_pass(const IrProgram *p, bool *changed)
{
    Simp S = {.src = p, .dst = ir_new(p->arena)};
    S.map = arena_xcalloc((size_t)p->nnodes + 1, sizeof *S.map);
    int nforward = p->nforward < p->nnodes ? p->nforward : p->nnodes;
    for (int i = 0; i < nforward; i++)
        rebuild_node(&S, i);
    S.dst->nforward = S.dst->nnodes;
    for (int i = nforward; i < p->nnodes; i++)
        rebuild_node(&S, i);
    remap_handles(S.dst, p, S.map);
    strip_const_names(&S);
    free(S.map);
    free(S.table);
    free(S.book.set);
    free(S.book.nodes);
    bool removed = dce(S.dst);
    *changed = S.changed || removed;
    return S.dst;
}

IrProgram *simp_program(const IrProgram *p)
{
    bool changed;
    IrProgram *q = simp_pass(p, &changed);
    for (int i = 1; i < SIMP_MAX_PASSES && changed; i++)
        q = simp_pass(q, &changed);
    return q;
}
