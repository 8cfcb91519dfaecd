/* autodiff.c - reverse-mode differentiation of the IR, source to source.
 *
 * A table of rules, one per op: given the adjoint d of a node's result, each rule
 * returns the contribution to the adjoint of one operand. The walk visits, from the loss
 * down, only the nodes on a path from a param to the loss, and sums the contributions
 * where a value is used more than once (printed as dv += ...). Every backward node
 * records the chain-rule step that made it and the forward node's source location.
 * Rules reuse forward values where the maths allows (sigmoid' = y(1-y), exp' = y, ...). */
#include "autodiff.h"

#include <stdlib.h>

#include "irprint.h"

typedef struct Ad {
    IrProgram *p;
    Diag *d;
    bool *on_path; /* forward node: depends on a param and the loss depends on it */
    int *adj;      /* forward node: its adjoint so far, -1 before the first contribution */
    const char *law; /* set by a rule: the derivative law it applied */
    Loc loc;       /* the forward node being differentiated */
} Ad;

/* A rule: the contribution of node y's adjoint d to the adjoint of operand i. */
typedef int (*AdRule)(Ad *ad, int y, int d, int i);

/* ---- building backward nodes (grad, rule and loc are set by the caller) ---- */

static const IrNode *N(const Ad *ad, int id) { return &ad->p->nodes[id]; }
static int arg(const Ad *ad, int y, int i) { return N(ad, y)->args[i]; }
static int un(Ad *ad, IrOp op, int a) { return ir_unary(ad->p, op, a, ad->loc); }
static int bin(Ad *ad, IrOp op, int a, int b) { return ir_binary(ad->p, op, a, b, ad->loc); }
static int num(Ad *ad, double v) { return ir_const(ad->p, v, ad->loc); }
static int to(Ad *ad, IrOp op, int a, Shape s) { return ir_unary_to(ad->p, op, a, s, ad->loc); }

/* How laws name a forward value: its name, or a constant's number. */
static const char *nm(Ad *ad, int id)
{
    const IrNode *n = N(ad, id);
    if (n->name)
        return n->name;
    return n->op == IR_CONST ? arena_printf(ad->p->arena, "%g", n->num)
                             : arena_printf(ad->p->arena, "$%d", id);
}

/* The local derivative d(y)/d(operand i) of an elementwise step, in the forward step's
 * own names: in fmt, %1$s is operand 0 (x or a); for unary ops %2$s is the result y,
 * for binary ones %2$s is b and %3$s the result. */
static void say(Ad *ad, int y, int i, const char *fmt)
{
    const char *a = nm(ad, arg(ad, y, 0)), *r = nm(ad, y);
    const char *rhs = arena_printf(ad->p->arena, fmt, a, N(ad, y)->nargs > 1 ? nm(ad, arg(ad, y, 1)) : r, r);
    ad->law = arena_printf(ad->p->arena, "d(%s)/d(%s) = %s", r, nm(ad, arg(ad, y, i)), rhs);
}

/* ---- elementwise, one operand: x = operand, y = result ---- */

static int rule_neg(Ad *ad, int y, int d, int i)
{
    (void)i;
    say(ad, y, i, "-1");
    return un(ad, IR_NEG, d);
}

static int rule_exp(Ad *ad, int y, int d, int i)
{
    (void)i;
    say(ad, y, i, "exp(%1$s) = %2$s");
    return bin(ad, IR_MUL, d, y);
}

static int rule_log(Ad *ad, int y, int d, int i)
{
    say(ad, y, i, "1 / %1$s");
    return bin(ad, IR_DIV, d, arg(ad, y, i));
}

static int rule_sqrt(Ad *ad, int y, int d, int i)
{
    (void)i;
    say(ad, y, i, "1 / (2 * sqrt(%1$s)) = 1 / (2 * %2$s)");
    return bin(ad, IR_DIV, d, bin(ad, IR_MUL, num(ad, 2), y));
}

static int rule_abs(Ad *ad, int y, int d, int i)
{
    say(ad, y, i, "sign(%1$s)");
    return bin(ad, IR_MUL, d, un(ad, IR_SIGN, arg(ad, y, i)));
}

static int rule_sigmoid(Ad *ad, int y, int d, int i)
{
    (void)i;
    say(ad, y, i, "sigmoid'(%1$s) = %2$s * (1 - %2$s)");
    /* one call a statement: C leaves the order of evaluating arguments open, and the
     * nodes' ids (and --emit=dot's order) would differ between compilers */
    int one_minus_y = bin(ad, IR_SUB, num(ad, 1), y);
    return bin(ad, IR_MUL, bin(ad, IR_MUL, d, y), one_minus_y);
}

static int rule_tanh(Ad *ad, int y, int d, int i)
{
    (void)i;
    say(ad, y, i, "tanh'(%1$s) = 1 - %2$s^2");
    int y2 = ir_unary_num(ad->p, IR_POW, y, 2, ad->loc);
    return bin(ad, IR_MUL, d, bin(ad, IR_SUB, num(ad, 1), y2));
}

static int rule_relu(Ad *ad, int y, int d, int i)
{
    say(ad, y, i, "step(%1$s), 1 where %1$s > 0 else 0");
    return bin(ad, IR_MUL, d, un(ad, IR_STEP, arg(ad, y, i)));
}

static int rule_softplus(Ad *ad, int y, int d, int i)
{
    say(ad, y, i, "sigmoid(%1$s)");
    return bin(ad, IR_MUL, d, un(ad, IR_SIGMOID, arg(ad, y, i)));
}

static int rule_leaky_relu(Ad *ad, int y, int d, int i)
{
    double alpha = N(ad, y)->num;
    say(ad, y, i, arena_printf(ad->p->arena, "leaky_step(%%1$s), 1 where %%1$s > 0 else %g", alpha));
    return bin(ad, IR_MUL, d, ir_unary_num(ad->p, IR_LEAKY_STEP, arg(ad, y, i), alpha, ad->loc));
}

/* a^0 is 1 everywhere (0^0 too, as pow has it): its derivative is 0, not 0 * a^-1,
 * which is NaN at a = 0 where the simplifier (off at -O0) does not fold it away. */
static int rule_pow(Ad *ad, int y, int d, int i)
{
    double c = N(ad, y)->num;
    if (c == 0) {
        say(ad, y, i, "0 (%1$s^0 = 1)");
        return bin(ad, IR_MUL, d, num(ad, 0));
    }
    say(ad, y, i, arena_printf(ad->p->arena, "%g * %%1$s^%g", c, c - 1));
    int xc = ir_unary_num(ad->p, IR_POW, arg(ad, y, i), c - 1, ad->loc);
    return bin(ad, IR_MUL, bin(ad, IR_MUL, d, num(ad, c)), xc);
}

/* ---- elementwise, two operands a, b (a rank-0 side is summed by the caller) ---- */

/* y = c + c or c * c: one operand on both sides, so one rule gives its whole derivative
 * (the walk asks only for operand 0), not two equal contributions summed. */
static bool same_sides(const IrNode *n)
{
    return (n->op == IR_ADD || n->op == IR_MUL) && n->args[0] == n->args[1];
}

static int rule_add(Ad *ad, int y, int d, int i)
{
    if (same_sides(N(ad, y))) {
        say(ad, y, i, "2, as both sides are %1$s");
        return bin(ad, IR_MUL, d, num(ad, 2));
    }
    say(ad, y, i, "1");
    return d;
}

static int rule_sub(Ad *ad, int y, int d, int i)
{
    say(ad, y, i, i == 0 ? "1" : "-1");
    return i == 0 ? d : un(ad, IR_NEG, d);
}

static int rule_mul(Ad *ad, int y, int d, int i)
{
    if (same_sides(N(ad, y))) { /* the power rule of c^2 */
        say(ad, y, i, "2 * %1$s, as both sides are %1$s");
        return bin(ad, IR_MUL, bin(ad, IR_MUL, d, num(ad, 2)), arg(ad, y, 0));
    }
    say(ad, y, i, i == 0 ? "%2$s" : "%1$s");
    return bin(ad, IR_MUL, d, arg(ad, y, 1 - i));
}

static int rule_div(Ad *ad, int y, int d, int i)
{
    int b = arg(ad, y, 1);
    if (i == 0) {
        say(ad, y, i, "1 / %2$s");
        return bin(ad, IR_DIV, d, b);
    }
    say(ad, y, i, "-%1$s / %2$s^2 = -%3$s / %2$s");
    return bin(ad, IR_DIV, bin(ad, IR_MUL, un(ad, IR_NEG, d), y), b);
}

/* ---- linear algebra: by shape case, without materialising transposes ---- */

static int rule_matmul(Ad *ad, int y, int d, int i)
{
    int a = arg(ad, y, 0), b = arg(ad, y, 1);
    int ra = N(ad, a)->shape.rank, rb = N(ad, b)->shape.rank;
    if (ra == 2 && rb == 1) {
        ad->law = i == 0 ? "for A @ b, dA = outer(d, b)" : "for A @ b, db = d @ A";
        return i == 0 ? bin(ad, IR_OUTER, d, b) : bin(ad, IR_MATMUL, d, a);
    }
    if (ra == 2 && rb == 2) {
        ad->law = i == 0 ? "for A @ B, dA = d @ transpose(B)" : "for A @ B, dB = transpose(A) @ d";
        return i == 0 ? bin(ad, IR_MATMUL, d, un(ad, IR_TRANSPOSE, b))
                      : bin(ad, IR_MATMUL, un(ad, IR_TRANSPOSE, a), d);
    }
    if (ra == 1 && rb == 2) {
        ad->law = i == 0 ? "for a @ B, da = B @ d" : "for a @ B, dB = outer(a, d)";
        return i == 0 ? bin(ad, IR_MATMUL, b, d) : bin(ad, IR_OUTER, a, d);
    }
    ad->law = i == 0 ? "for a @ b = sum(a * b), da = d * b" : "for a @ b = sum(a * b), db = d * a";
    return bin(ad, IR_MUL, d, i == 0 ? b : a);
}

/* v as a value of shape s: itself when it has it, else a reshape (a view, no arithmetic). */
static int reshaped(Ad *ad, int v, Shape s)
{
    return shape_eq(N(ad, v)->shape, s) ? v : to(ad, IR_RESHAPE, v, s);
}

static Shape vec(long long n) { return (Shape){.rank = 1, .dims = {(int)n}}; }
static Shape mat(long long m, long long n) { return (Shape){.rank = 2, .dims = {(int)m, (int)n}}; }

/* outer(a, b)[i.., j..] = a[i..] * b[j..]: over a and b flattened to vectors of p and q
 * elements it is the vector case, so da = d @ b and db = a @ d with d a [p, q] matrix,
 * each reshaped back to its operand's shape. */
static int rule_outer(Ad *ad, int y, int d, int i)
{
    int a = arg(ad, y, 0), b = arg(ad, y, 1);
    Shape sa = N(ad, a)->shape, sb = N(ad, b)->shape;
    long long p = shape_size(sa), q = shape_size(sb);
    if (sa.rank == 1 && sb.rank == 1)
        ad->law = i == 0 ? "for outer(a, b), da = d @ b" : "for outer(a, b), db = a @ d";
    else
        ad->law = arena_printf(ad->p->arena, "for outer(a, b), %s with a and b flattened and d "
                               "as a [%lld, %lld] matrix", i == 0 ? "da = d @ b" : "db = a @ d", p, q);
    int dm = reshaped(ad, d, mat(p, q));
    if (i == 0)
        return reshaped(ad, bin(ad, IR_MATMUL, dm, reshaped(ad, b, vec(q))), sa);
    return reshaped(ad, bin(ad, IR_MATMUL, reshaped(ad, a, vec(p)), dm), sb);
}

static int rule_reshape(Ad *ad, int y, int d, int i)
{
    Shape s = N(ad, arg(ad, y, i))->shape;
    char buf[SHAPE_STR_MAX];
    ad->law = arena_printf(ad->p->arena, "for reshape(x), dx = d reshaped back to %s", shape_str(s, buf));
    return to(ad, IR_RESHAPE, d, s);
}

static int rule_transpose(Ad *ad, int y, int d, int i)
{
    (void)y, (void)i;
    ad->law = "for transpose(x), dx = transpose(d)";
    return un(ad, IR_TRANSPOSE, d);
}

/* ---- reductions and broadcasts ---- */

static int rule_sum(Ad *ad, int y, int d, int i)
{
    Shape s = N(ad, arg(ad, y, i))->shape;
    ad->law = "for sum(x), dx = broadcast(d) (every element gets d)";
    return s.rank == 0 ? d : to(ad, IR_BROADCAST, d, s);
}

static int rule_mean(Ad *ad, int y, int d, int i)
{
    Shape s = N(ad, arg(ad, y, i))->shape;
    long long n = shape_size(s);
    ad->law = arena_printf(ad->p->arena, "for mean(x) of N = %lld elements, dx = broadcast(d / N)", n);
    int share = bin(ad, IR_DIV, d, num(ad, (double)n));
    return s.rank == 0 ? share : to(ad, IR_BROADCAST, share, s);
}

static int rule_broadcast(Ad *ad, int y, int d, int i)
{
    (void)y, (void)i;
    ad->law = "for broadcast(x), dx = sum(d)";
    return un(ad, IR_SUM, d);
}

static int rule_sum_last(Ad *ad, int y, int d, int i)
{
    ad->law = "for sum_last(x), dx = expand_last(d)";
    return to(ad, IR_EXPAND_LAST, d, N(ad, arg(ad, y, i))->shape);
}

static int rule_expand_last(Ad *ad, int y, int d, int i)
{
    (void)y, (void)i;
    ad->law = "for expand_last(x), dx = sum_last(d)";
    return un(ad, IR_SUM_LAST, d);
}

/* ---- last-dim normalisations ---- */

/* expand_last(sum_last(v)): each row's sum, repeated along the row. */
static int row_sums(Ad *ad, int v)
{
    return to(ad, IR_EXPAND_LAST, un(ad, IR_SUM_LAST, v), N(ad, v)->shape);
}

static int rule_softmax(Ad *ad, int y, int d, int i)
{
    (void)i;
    ad->law = "for y = softmax(x), dx = y * (d - expand_last(sum_last(d * y)))";
    return bin(ad, IR_MUL, y, bin(ad, IR_SUB, d, row_sums(ad, bin(ad, IR_MUL, d, y))));
}

static int rule_log_softmax(Ad *ad, int y, int d, int i)
{
    (void)i;
    ad->law = "for y = log_softmax(x), dx = d - exp(y) * expand_last(sum_last(d))";
    int sums = row_sums(ad, d); /* before exp(y): see rule_sigmoid */
    return bin(ad, IR_SUB, d, bin(ad, IR_MUL, un(ad, IR_EXP, y), sums));
}

/* ---- fused losses: the forward's prediction node is reused, so no exp or log ---- */

/* The forward node computing op(z) (lowering makes it the prediction), else a new one. */
static int find_unary(Ad *ad, IrOp op, int z)
{
    for (int id = 0; id < ad->p->nforward; id++)
        if (N(ad, id)->op == op && N(ad, id)->args[0] == z)
            return id;
    return un(ad, op, z);
}

static int rule_softmax_ce(Ad *ad, int y, int d, int i)
{
    int z = arg(ad, y, 0), t = arg(ad, y, 1);
    if (i == 1) {
        ad->law = "softmax_ce(z, t) = -sum(t * log_softmax(z)), so dt = -d * log_softmax(z)";
        int ls = un(ad, IR_LOG_SOFTMAX, z); /* before -d: see rule_sigmoid */
        return bin(ad, IR_MUL, un(ad, IR_NEG, d), ls);
    }
    ad->law = arena_printf(ad->p->arena, "d%1$s = d * (softmax(%1$s) * sum_last(%2$s) - %2$s), "
                           "which is d * (softmax(%1$s) - %2$s) for a one-hot %2$s", nm(ad, z), nm(ad, t));
    int s = find_unary(ad, IR_SOFTMAX, z);
    return bin(ad, IR_MUL, d, bin(ad, IR_SUB, bin(ad, IR_MUL, s, row_sums(ad, t)), t));
}

static int rule_sigmoid_bce(Ad *ad, int y, int d, int i)
{
    int z = arg(ad, y, 0), t = arg(ad, y, 1);
    long long n = shape_size(N(ad, z)->shape);
    int scaled = bin(ad, IR_MUL, d, num(ad, 1.0 / (double)n)); /* / N as a constant multiply */
    if (i == 1) {
        ad->law = arena_printf(ad->p->arena, "sigmoid_bce(z, t) = mean(softplus(z) - t * z), "
                                             "so dt = -d / N * z, N = %lld", n);
        return bin(ad, IR_MUL, un(ad, IR_NEG, scaled), z);
    }
    ad->law = arena_printf(ad->p->arena, "d%s = d / N * (sigmoid(%s) - %s), N = %lld",
                           nm(ad, z), nm(ad, z), nm(ad, t), n);
    return bin(ad, IR_MUL, scaled, bin(ad, IR_SUB, find_unary(ad, IR_SIGMOID, z), t));
}

/* ---- images: the backward helpers (no derivative of their own), window kept ---- */

/* op(a, b) with y's window, of the given shape (NULL: inferred). */
static int image(Ad *ad, int y, IrOp op, int a, int b, const Shape *s)
{
    return ir_image(ad->p, op, a, b, N(ad, y)->win, s, ad->loc);
}

static int rule_conv2d(Ad *ad, int y, int d, int i)
{
    int x = arg(ad, y, 0), k = arg(ad, y, 1);
    if (i == 0) {
        ad->law = "for conv2d(x, K), dx = conv2d_backward_input(d, K): each input value gets the "
                  "sum of d times the kernel weights it met";
        return image(ad, y, IR_CONV2D_BWD_INPUT, d, k, &N(ad, x)->shape);
    }
    ad->law = "for conv2d(x, K), dK = conv2d_backward_weight(x, d): each kernel weight gets the "
              "sum of d times the input values it met";
    return image(ad, y, IR_CONV2D_BWD_WEIGHT, x, d, &N(ad, k)->shape);
}

static int rule_maxpool(Ad *ad, int y, int d, int i)
{
    ad->law = "for maxpool(a), da = maxpool_backward(a, d): each window's d goes to its first "
              "maximum (row-major), 0 elsewhere";
    return image(ad, y, IR_MAXPOOL_BWD, arg(ad, y, i), d, NULL);
}

static int rule_avgpool(Ad *ad, int y, int d, int i)
{
    int k = N(ad, y)->win.kh;
    ad->law = arena_printf(ad->p->arena, "for avgpool(a), da = avgpool_backward(d): each window's "
                           "d / %d spread over its %d x %d elements", k * k, k, k);
    return image(ad, y, IR_AVGPOOL_BWD, d, -1, &N(ad, arg(ad, y, i))->shape);
}

static int rule_concat(Ad *ad, int y, int d, int i)
{
    int n = N(ad, arg(ad, y, 0))->shape.dims[0], m = N(ad, arg(ad, y, 1))->shape.dims[0];
    ad->law = arena_printf(ad->p->arena, "for concat(a, b), %s = slice(d, %d, %d): the rows of d "
                           "that came from %s", i == 0 ? "da" : "db", i == 0 ? 0 : n, i == 0 ? n : m,
                           i == 0 ? "a" : "b");
    return ir_slice(ad->p, d, i == 0 ? 0 : n, i == 0 ? n : m, ad->loc);
}

/* The table. Leaves have no operands; the derivative helpers (step, sign, ...) are
 * constant almost everywhere and never on a path to the loss: they have no rule. */
static const AdRule rules[IR_NUM_OPS] = {
    [IR_NEG] = rule_neg, [IR_EXP] = rule_exp, [IR_LOG] = rule_log, [IR_SQRT] = rule_sqrt,
    [IR_ABS] = rule_abs, [IR_SIGMOID] = rule_sigmoid, [IR_TANH] = rule_tanh,
    [IR_RELU] = rule_relu, [IR_SOFTPLUS] = rule_softplus, [IR_LEAKY_RELU] = rule_leaky_relu,
    [IR_POW] = rule_pow, [IR_ADD] = rule_add, [IR_SUB] = rule_sub, [IR_MUL] = rule_mul,
    [IR_DIV] = rule_div, [IR_MATMUL] = rule_matmul, [IR_OUTER] = rule_outer,
    [IR_TRANSPOSE] = rule_transpose, [IR_RESHAPE] = rule_reshape, [IR_SUM] = rule_sum, [IR_MEAN] = rule_mean,
    [IR_BROADCAST] = rule_broadcast, [IR_SUM_LAST] = rule_sum_last,
    [IR_EXPAND_LAST] = rule_expand_last, [IR_SOFTMAX] = rule_softmax,
    [IR_LOG_SOFTMAX] = rule_log_softmax, [IR_SOFTMAX_CE] = rule_softmax_ce,
    [IR_SIGMOID_BCE] = rule_sigmoid_bce, [IR_CONV2D] = rule_conv2d, [IR_MAXPOOL] = rule_maxpool,
    [IR_AVGPOOL] = rule_avgpool, [IR_CONCAT] = rule_concat,
};

/* ---- the walk ---- */

/* on_path[v]: v depends on a param and the loss depends on v. */
static void find_path(Ad *ad)
{
    IrProgram *p = ad->p;
    bool *reach = arena_xcalloc((size_t)p->nforward + 1, sizeof *reach);
    for (int id = 0; id < p->nforward; id++) {
        const IrNode *n = N(ad, id);
        ad->on_path[id] = n->op == IR_PARAM;
        for (int i = 0; i < n->nargs; i++)
            ad->on_path[id] |= ad->on_path[n->args[i]];
    }
    reach[p->loss] = true;
    for (int id = p->loss; id >= 0; id--)
        for (int i = 0; reach[id] && i < N(ad, id)->nargs; i++)
            reach[N(ad, id)->args[i]] = true;
    for (int id = 0; id < p->nforward; id++)
        ad->on_path[id] &= reach[id];
    free(reach);
}

static const char *adjoint_name(Ad *ad, int v)
{
    const char *name = N(ad, v)->name;
    return name ? arena_printf(ad->p->arena, "d%s", name) : arena_printf(ad->p->arena, "d$%d", v);
}

/* Nodes [first, nnodes) belong to the backward step described by rule, at loc. */
static void mark(Ad *ad, int first, const char *rule)
{
    for (int id = first; id < ad->p->nnodes; id++) {
        IrNode *n = &ad->p->nodes[id];
        n->grad = true;
        n->rule = rule;
        n->loc = ad->loc;
    }
}

/* Adds contribution c (made by nodes from `first` on) to the adjoint of v. The first
 * contribution becomes dv itself (an existing node is wrapped as c * 1, the raw chain-rule
 * factor, so that dv has a line of its own); later ones make dv = dv + c, shown as +=. */
static void accumulate(Ad *ad, int v, int c, int first, const char *rule)
{
    if (ad->adj[v] < 0) {
        if (c < first)
            c = bin(ad, IR_MUL, c, num(ad, 1));
        mark(ad, first, rule);
        ad->p->nodes[c].name = adjoint_name(ad, v);
        ad->adj[v] = c;
        return;
    }
    int sum = bin(ad, IR_ADD, ad->adj[v], c);
    mark(ad, first, rule);
    ad->p->nodes[sum].name = adjoint_name(ad, v);
    ad->adj[v] = sum;
}

/* Applies y's rule for operand i: the chain-rule step d(operand) += d(y) * dy/d(operand). */
static bool differentiate_operand(Ad *ad, int y, int i)
{
    const IrNode *n = N(ad, y);
    int v = n->args[i], first = ad->p->nnodes;
    AdRule rule = rules[n->op];
    ad->law = NULL;
    int c = rule ? rule(ad, y, ad->adj[y], i) : -1;
    if (c < 0) {
        diag_error(ad->d, n->loc, "no derivative rule for '%s' (of shape rank %d)",
                   ir_op_name(n->op), N(ad, v)->shape.rank);
        return false;
    }
    const char *law = ad->law;
    Shape vs = N(ad, v)->shape;
    if (vs.rank == 0 && N(ad, c)->shape.rank > 0) {
        c = un(ad, IR_SUM, c); /* a scalar broadcast over the other side gets the sum */
        law = arena_printf(ad->p->arena, "%s, summed as %s is a scalar used for every element",
                           law, nm(ad, v));
    }
    if (!shape_eq(N(ad, c)->shape, vs)) {
        diag_error(ad->d, n->loc, "internal error: gradient of '%s' has the wrong shape",
                   ir_op_name(n->op));
        return false;
    }
    const char *rule_text = arena_printf(ad->p->arena, "%s: %s",
                                         ir_print_expr(ad->p, y, ad->p->arena), law);
    accumulate(ad, v, c, first, rule_text);
    return true;
}

static bool walk(Ad *ad)
{
    IrProgram *p = ad->p;
    const IrNode *loss = N(ad, p->loss);
    ad->loc = loss->loc;
    int seed = num(ad, 1);
    mark(ad, seed, arena_printf(p->arena, "seed: d(%s)/d(%s) = 1", loss->name ? loss->name : "loss",
                                loss->name ? loss->name : "loss"));
    p->nodes[seed].name = adjoint_name(ad, p->loss);
    ad->adj[p->loss] = seed;
    for (int y = p->loss; y >= 0; y--) {
        if (!ad->on_path[y] || ad->adj[y] < 0)
            continue;
        ad->loc = N(ad, y)->loc;
        int nargs = same_sides(N(ad, y)) ? 1 : N(ad, y)->nargs;
        for (int i = 0; i < nargs; i++)
            if (ad->on_path[N(ad, y)->args[i]] && !differentiate_operand(ad, y, i))
                return false;
    }
    return true;
}

static void set_grads(Ad *ad)
{
    IrProgram *p = ad->p;
    for (int i = 0; i < p->nparams; i++) {
        IrParam *q = &p->params[i];
        q->grad = ad->on_path[q->node] ? ad->adj[q->node] : -1;
        if (q->grad < 0)
            diag_warning(ad->d, q->loc, "param '%s' does not affect the loss; it gets no gradient",
                         q->name);
    }
}

bool ad_differentiate(IrProgram *p, Diag *d)
{
    if (p->loss < 0 || p->loss >= p->nforward) {
        diag_error(d, (Loc){0, 0}, "internal error: the program has no loss to differentiate");
        return false;
    }
    Ad ad = {.p = p, .d = d};
    ad.on_path = arena_xcalloc((size_t)p->nforward + 1, sizeof *ad.on_path);
    ad.adj = arena_xcalloc((size_t)p->nforward + 1, sizeof *ad.adj);
    for (int i = 0; i < p->nforward; i++)
        ad.adj[i] = -1;
    find_path(&ad);
    bool ok = !ad.on_path[p->loss] || walk(&ad);
    if (ok)
        set_grads(&ad);
    free(ad.on_path);
    free(ad.adj);
    return ok;
}
