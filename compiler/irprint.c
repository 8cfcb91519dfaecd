/* irprint.c - the IR as people read it: --emit=ir and --emit=grad.
 *
 * One assignment a line: name, shape, = expression, then a comment with the source line
 * and, for the backward pass, the chain-rule step that produced it. A node gets a line
 * of its own when it has a name (or must be referred to several times); a nameless node
 * used once is printed inline, in infix with the fewest parentheses that keep the tree. */
#include "irprint.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { EXPR_COL_MAX = 40 };

/* Binding strength, loosest first, as in the language's grammar. */
enum { PREC_TOP, PREC_ADD, PREC_MUL, PREC_NEG, PREC_POW, PREC_ATOM };

typedef struct Printer {
    const IrProgram *p;
    const Diag *d;
    bool *own_line; /* NULL: every named node is referred to by name */
    int *uses;
} Printer;

/* ---- numbers and names ---- */

/* The shortest text that reads back as the same double. */
static void put_num(FILE *out, double v)
{
    if (isnan(v) || isinf(v)) {
        fputs(isnan(v) ? "nan" : v < 0 ? "-inf" : "inf", out);
        return;
    }
    char buf[32];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, out);
}

/* A nameless constant (rank 0, or a broadcast of one): the simplifier's folded values.
 * Its value goes in *v. */
static bool folded_const(const IrProgram *p, int id, double *v)
{
    const IrNode *n = &p->nodes[id];
    if (n->name)
        return false;
    if (n->op == IR_BROADCAST)
        n = &p->nodes[n->args[0]];
    if (n->op != IR_CONST || n->name)
        return false;
    *v = n->num;
    return true;
}

static bool referred(const Printer *pr, int id)
{
    return pr->own_line ? pr->own_line[id] : pr->p->nodes[id].name != NULL;
}

static void put_label(FILE *out, const IrProgram *p, int id)
{
    if (p->nodes[id].name)
        fputs(p->nodes[id].name, out);
    else
        fprintf(out, "$%d", id);
}

/* ---- expressions ---- */

static int binary_prec(IrOp op)
{
    switch (op) {
    case IR_ADD: case IR_SUB: return PREC_ADD;
    case IR_MUL: case IR_DIV: case IR_MATMUL: return PREC_MUL;
    default: return -1;
    }
}

static const char *binary_sym(IrOp op)
{
    switch (op) {
    case IR_ADD: return " + ";
    case IR_SUB: return " - ";
    case IR_MUL: return " * ";
    case IR_DIV: return " / ";
    default: return " @ ";
    }
}

/* How tightly the text of node id binds when printed inline. */
static int node_prec(const Printer *pr, int id)
{
    const IrNode *n = &pr->p->nodes[id];
    if (referred(pr, id))
        return PREC_ATOM;
    if (n->op == IR_CONST)
        return n->num < 0 || signbit(n->num) ? PREC_NEG : PREC_ATOM;
    if (n->op == IR_NEG)
        return PREC_NEG;
    if (n->op == IR_POW)
        return PREC_POW;
    int b = binary_prec(n->op);
    return b >= 0 ? b : PREC_ATOM;
}

static void put_def(const Printer *pr, FILE *out, int id);

/* Operand id where the context needs at least binding strength `need`. */
static void put_operand(const Printer *pr, FILE *out, int id, int need)
{
    if (referred(pr, id)) {
        put_label(out, pr->p, id);
        return;
    }
    bool paren = node_prec(pr, id) < need;
    if (paren)
        fputc('(', out);
    put_def(pr, out, id);
    if (paren)
        fputc(')', out);
}

/* The attributes of an image op after its operands, as the language spells its options:
 * conv2d(x, K, stride = 2, padding = 1), maxpool(a, 2), slice(d, 0, 3). */
static void put_image_attrs(FILE *out, const IrNode *n)
{
    IrWindow w = n->win;
    switch (n->op) {
    case IR_MAXPOOL: case IR_MAXPOOL_BWD: case IR_AVGPOOL: case IR_AVGPOOL_BWD:
        fprintf(out, ", %d", w.kh);
        if (w.stride != w.kh)
            fprintf(out, ", stride = %d", w.stride);
        return;
    case IR_CONV2D: case IR_CONV2D_BWD_INPUT: case IR_CONV2D_BWD_WEIGHT:
        if (w.stride != 1)
            fprintf(out, ", stride = %d", w.stride);
        if (w.pad != 0)
            fprintf(out, ", padding = %d", w.pad);
        return;
    case IR_SLICE:
        fprintf(out, ", %d, %d", n->index, n->shape.rank ? n->shape.dims[0] : 0);
        return;
    default:
        return;
    }
}

static void put_call(const Printer *pr, FILE *out, const IrNode *n)
{
    fprintf(out, "%s(", ir_op_name(n->op));
    for (int i = 0; i < n->nargs; i++) {
        if (i)
            fputs(", ", out);
        put_operand(pr, out, n->args[i], PREC_TOP);
    }
    if (ir_op_info(n->op)->num_arg) {
        fputs(", ", out);
        put_num(out, n->num);
    }
    put_image_attrs(out, n);
    if (n->op == IR_RESHAPE) { /* the text alone must say what it makes */
        char buf[SHAPE_STR_MAX];
        fprintf(out, ", %s", shape_str(n->shape, buf));
    }
    fputc(')', out);
}

static void put_init(FILE *out, Init in)
{
    static const char *const names[] = {"zeros", "ones", "const", "uniform", "normal", "xavier", "he"};
    fputs(in.kind >= INIT_ZEROS && in.kind <= INIT_HE ? names[in.kind] : "?", out);
    if (in.kind == INIT_CONST || in.kind == INIT_UNIFORM || in.kind == INIT_NORMAL) {
        fputc('(', out);
        put_num(out, in.a);
        if (in.kind != INIT_CONST) {
            fputs(", ", out);
            put_num(out, in.b);
        }
        fputc(')', out);
    }
}

/* The expression that defines node id (its right-hand side). */
static void put_def(const Printer *pr, FILE *out, int id)
{
    const IrNode *n = &pr->p->nodes[id];
    int prec = binary_prec(n->op);
    switch (n->op) {
    case IR_INPUT: fputs("input", out); return;
    case IR_TARGET: fputs("target", out); return;
    case IR_PARAM:
        fputs("param ", out);
        if (n->index >= 0 && n->index < pr->p->nparams)
            put_init(out, pr->p->params[n->index].init);
        return;
    case IR_CONST: put_num(out, n->num); return;
    case IR_DROPOUT_MASK:
        fprintf(out, "dropout_mask(%d, p = ", n->index);
        put_num(out, n->num);
        fputc(')', out);
        return;
    case IR_NEG:
        fputc('-', out);
        put_operand(pr, out, n->args[0], PREC_NEG + 1);
        return;
    case IR_POW:
        put_operand(pr, out, n->args[0], PREC_ATOM);
        fputs(" ^ ", out);
        put_num(out, n->num);
        return;
    default:
        break;
    }
    if (prec < 0) {
        put_call(pr, out, n);
        return;
    }
    /* Left-associative: the right operand needs parentheses at equal strength. */
    put_operand(pr, out, n->args[0], prec);
    fputs(binary_sym(n->op), out);
    put_operand(pr, out, n->args[1], prec + 1);
}

const char *ir_print_expr(const IrProgram *p, int id, Arena *a)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return "?";
    Printer pr = {.p = p};
    put_label(f, p, id);
    fputs(" = ", f);
    put_def(&pr, f, id);
    fclose(f);
    const char *s = arena_strdup(a, text ? text : "?");
    free(text);
    return s;
}

/* ---- lines ---- */

typedef struct Line {
    char *name, *shape, *expr, *note;
    bool accumulate; /* printed as name += expr */
} Line;

/* A named node, or one used from the other pass or other than once. Constants print inline
 * wherever they are used; a folded one that only a gradient keeps shows in the gradients. */
static bool needs_line(const Printer *pr, int id, bool cross)
{
    const IrNode *n = &pr->p->nodes[id];
    double v;
    if (n->name)
        return true;
    if (n->op == IR_CONST || (pr->uses[id] == 0 && folded_const(pr->p, id, &v)))
        return false;
    return cross || pr->uses[id] != 1;
}

/* Which nodes are printed on a line of their own; the rest print inline. */
static void plan_lines(Printer *pr)
{
    const IrProgram *p = pr->p;
    bool *cross = calloc((size_t)p->nnodes + 1, sizeof *cross);
    for (int id = 0; id < p->nnodes; id++)
        for (int i = 0; i < p->nodes[id].nargs; i++) {
            int a = p->nodes[id].args[i];
            pr->uses[a]++;
            cross[a] |= (a < p->nforward) != (id < p->nforward);
        }
    /* The loss, the output and the gradients are named in the summary lines. */
    int roots[] = {p->loss, p->output};
    for (size_t i = 0; i < sizeof roots / sizeof *roots; i++)
        if (roots[i] >= 0 && roots[i] < p->nnodes)
            pr->own_line[roots[i]] = true;
    double v;
    for (int i = 0; i < p->nparams; i++) {
        int g = p->params[i].grad;
        if (g >= 0 && g < p->nnodes && !folded_const(p, g, &v)) /* a constant shows its value */
            pr->own_line[g] = true;
    }
    for (int id = 0; id < p->nnodes; id++)
        pr->own_line[id] |= needs_line(pr, id, cross[id]);
    free(cross);
}

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path;
}

/* "xor.nn:12  h = sigmoid(h.2): ..." */
static char *note_text(const Printer *pr, const IrNode *n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (n->loc.line > 0)
        fprintf(f, "%s:%d", pr->d && pr->d->path ? base_name(pr->d->path) : "line", n->loc.line);
    if (n->rule)
        fprintf(f, "%s%s", n->loc.line > 0 ? "  " : "", n->rule);
    fclose(f);
    return text;
}

/* Whether node id's line defines name (as its name or as an alias). */
static bool line_defines(const Printer *pr, int id, const char *name)
{
    const IrNode *n = &pr->p->nodes[id];
    if (!pr->own_line[id] || !n->name)
        return false;
    if (strcmp(n->name, name) == 0)
        return true;
    for (int i = 0; i < n->naliases; i++)
        if (strcmp(n->aliases[i], name) == 0)
            return true;
    return false;
}

/* dv += c: an adjoint accumulating a further contribution, v's last line being the
 * first operand's. A line with aliases shows its sum in full (dv = du = dv + c). */
static bool is_accumulation(const Printer *pr, int id)
{
    const IrNode *n = &pr->p->nodes[id];
    if (n->op != IR_ADD || !n->grad || !n->name || n->naliases > 0)
        return false;
    int a = n->args[0];
    if (!line_defines(pr, a, n->name))
        return false;
    for (int k = a + 1; k < id; k++)
        if (line_defines(pr, k, n->name))
            return false;
    return true;
}

/* "dy.2 = dy.1 = db2": the name, then the adjoints merged into it. */
static void put_names(FILE *out, const IrProgram *p, int id)
{
    put_label(out, p, id);
    for (int i = 0; i < p->nodes[id].naliases; i++)
        fprintf(out, " = %s", p->nodes[id].aliases[i]);
}

static Line make_line(const Printer *pr, int id)
{
    const IrNode *n = &pr->p->nodes[id];
    Line l = {.accumulate = is_accumulation(pr, id)};
    size_t len;
    FILE *f = open_memstream(&l.name, &len);
    put_names(f, pr->p, id);
    fclose(f);
    char buf[SHAPE_STR_MAX];
    l.shape = strdup(shape_str(n->shape, buf));
    f = open_memstream(&l.expr, &len);
    if (l.accumulate)
        put_operand(pr, f, n->args[1], PREC_TOP);
    else
        put_def(pr, f, id);
    fclose(f);
    l.note = note_text(pr, n);
    return l;
}

static int width(const char *s)
{
    return (int)strlen(s);
}

/* Aligned columns: name, shape, = expression, # note. */
static void put_lines(FILE *out, Line *lines, int n)
{
    int wname = 0, wshape = 0, wexpr = 0;
    for (int i = 0; i < n; i++) {
        wname = width(lines[i].name) > wname ? width(lines[i].name) : wname;
        wshape = width(lines[i].shape) > wshape ? width(lines[i].shape) : wshape;
        if (width(lines[i].expr) <= EXPR_COL_MAX && width(lines[i].expr) > wexpr)
            wexpr = width(lines[i].expr);
    }
    for (int i = 0; i < n; i++) {
        Line *l = &lines[i];
        fprintf(out, "  %-*s %-*s %s %s", wname, l->name, wshape, l->shape,
                l->accumulate ? "+=" : " =", l->expr);
        if (l->note[0])
            fprintf(out, "%*s  # %s", wexpr > width(l->expr) ? wexpr - width(l->expr) : 0, "", l->note);
        fputc('\n', out);
        free(l->name);
        free(l->shape);
        free(l->expr);
        free(l->note);
    }
}

/* Prints the lines of nodes [from, to); returns how many. */
static int put_section(FILE *out, const Printer *pr, int from, int to)
{
    Line *lines = malloc(((size_t)(to - from) + 1) * sizeof *lines);
    int n = 0;
    for (int id = from; id < to; id++)
        if (pr->own_line[id])
            lines[n++] = make_line(pr, id);
    put_lines(out, lines, n);
    free(lines);
    return n;
}

static void put_gradients(FILE *out, const IrProgram *p)
{
    fputs("\ngradients of the loss for one sample:\n", out);
    for (int i = 0; i < p->nparams; i++) {
        const IrParam *q = &p->params[i];
        if (q->grad < 0) {
            fprintf(out, "  d(loss)/d%s = 0   (%s does not affect the loss)\n", q->name, q->name);
            continue;
        }
        fprintf(out, "  d(loss)/d%s = ", q->name);
        double v;
        if (folded_const(p, q->grad, &v)) {
            put_num(out, v);
            fputs(q->shape.rank ? "   (a constant, in every element)\n" : "   (a constant)\n", out);
            continue;
        }
        put_label(out, p, q->grad);
        fputc('\n', out);
    }
}

static bool any_grad(const IrProgram *p)
{
    for (int i = 0; i < p->nparams; i++)
        if (p->params[i].grad >= 0)
            return true;
    return false;
}

void ir_print(FILE *out, const IrProgram *p, const Diag *d, bool with_grad)
{
    Printer pr = {.p = p, .d = d};
    pr.own_line = calloc((size_t)p->nnodes + 1, sizeof *pr.own_line);
    pr.uses = calloc((size_t)p->nnodes + 1, sizeof *pr.uses);
    plan_lines(&pr);
    int nforward = p->nforward < p->nnodes ? p->nforward : p->nnodes;
    fputs("forward pass for one sample:\n", out);
    put_section(out, &pr, 0, nforward);
    fputs("  output ", out);
    if (p->output >= 0)
        put_label(out, p, p->output);
    fputs(", loss ", out);
    if (p->loss >= 0)
        put_label(out, p, p->loss);
    fputc('\n', out);
    if (with_grad) {
        fputs("\nbackward pass (reverse mode; dv is d(loss)/dv, d the adjoint flowing in):\n", out);
        if (put_section(out, &pr, nforward, p->nnodes) == 0)
            fputs(any_grad(p) ? "  (nothing to compute: each gradient is a constant or a forward value)\n"
                              : "  (none: no param affects the loss)\n",
                  out);
        put_gradients(out, p);
    }
    free(pr.own_line);
    free(pr.uses);
}
