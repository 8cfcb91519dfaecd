/* dot.c - the forward and backward graphs as Graphviz: --emit=dot.
 *
 * Every node of the program is a Graphviz node (named n<id>, so no source name needs
 * quoting as an id) in one of two clusters, forward and backward; its label is its name,
 * op and shape, and source line. Leaves, params, the loss and the params' gradients are
 * told apart by shape and colour; edges into a backward node are dashed and red, and a
 * dotted edge runs from each param's gradient to the param it updates. Nodes are numbered
 * and listed in a canonical order (operands first, from the loss and the gradients), not
 * by id: the ids follow the order autodiff made the nodes in, which depends on the C
 * compiler's order of evaluating a call's arguments. Labels are quoted
 * strings with every byte Graphviz could read as markup escaped, and text that is not
 * UTF-8 (a file name) replaced, so any program renders without a warning. */
#include "dot.h"

#include <stdlib.h>
#include <string.h>

/* ---- text ---- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if it is not one. */
static int dot_utf8_len(const unsigned char *s, size_t n)
{
    int len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
            : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || (size_t)len > n || (len == 2 && s[0] < 0xc2))
        return 0;
    for (int i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* s inside a quoted dot string: quotes and backslashes escaped (a backslash would start
 * \n, \l or \N), control bytes and broken UTF-8 as '?'. */
static void dot_put_text(FILE *out, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        int len = dot_utf8_len(u + i, n - i);
        if (len == 0 || (len == 1 && u[i] < 0x20)) {
            fputc('?', out);
            i++;
            continue;
        }
        if (u[i] == '"' || u[i] == '\\')
            fputc('\\', out);
        fwrite(u + i, 1, (size_t)len, out);
        i += (size_t)len;
    }
}

static const char *dot_base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path ? path : "line";
}

/* ---- the canonical order ---- */

typedef struct DotOrder {
    int *seq;  /* the nodes in canonical order */
    int *num;  /* per node id: its number in seq, -1 before it is placed */
    int count;
} DotOrder;

/* Places id after its operands, depth first (an explicit stack: graphs may be deep). */
static void dot_place(const IrProgram *p, DotOrder *o, int root, int *stack)
{
    if (o->num[root] >= 0)
        return;
    int top = 0;
    stack[top++] = root;
    while (top > 0) {
        int id = stack[top - 1], pending = -1;
        const IrNode *n = &p->nodes[id];
        for (int k = n->nargs - 1; k >= 0; k--)
            if (o->num[n->args[k]] < 0)
                pending = n->args[k];
        if (pending >= 0 && o->num[id] == -1) {
            stack[top++] = pending;
            continue;
        }
        top--;
        if (o->num[id] < 0) {
            o->num[id] = o->count;
            o->seq[o->count++] = id;
        }
    }
}

/* From the loss, the output and each param's gradient in param order, then the rest
 * (leaves nothing uses, dead nodes of -O0) in id order. */
static DotOrder dot_order(const IrProgram *p)
{
    size_t n = (size_t)p->nnodes + 1;
    DotOrder o = {malloc(n * sizeof(int)), malloc(n * sizeof(int)), 0};
    int *stack = malloc(n * sizeof(int));
    if (!o.seq || !o.num || !stack)
        abort();
    for (int id = 0; id < p->nnodes; id++)
        o.num[id] = -1;
    for (int i = 0; i < p->nparams; i++)
        dot_place(p, &o, p->params[i].node, stack);
    if (p->loss >= 0)
        dot_place(p, &o, p->loss, stack);
    if (p->output >= 0)
        dot_place(p, &o, p->output, stack);
    for (int i = 0; i < p->nparams; i++)
        if (p->params[i].grad >= 0)
            dot_place(p, &o, p->params[i].grad, stack);
    for (int id = 0; id < p->nnodes; id++)
        dot_place(p, &o, id, stack);
    free(stack);
    return o;
}

/* ---- nodes ---- */

/* The param whose gradient node id is, or -1. */
static int dot_grad_of(const IrProgram *p, int id)
{
    for (int i = 0; i < p->nparams; i++)
        if (p->params[i].grad == id)
            return i;
    return -1;
}

typedef struct DotStyle {
    const char *shape, *fill, *extra;
} DotStyle;

static DotStyle dot_style(const IrProgram *p, int id)
{
    const IrNode *n = &p->nodes[id];
    if (dot_grad_of(p, id) >= 0)
        return (DotStyle){"doubleoctagon", "orange", ""};
    switch (n->op) {
    case IR_INPUT:
    case IR_TARGET: return (DotStyle){"invhouse", "lightblue", ""};
    case IR_PARAM: return (DotStyle){"box", "gold", ", style=\"filled,bold\""};
    case IR_CONST: return (DotStyle){"plaintext", "white", ", fontsize=10"};
    default: break;
    }
    if (id == p->loss)
        return (DotStyle){"doublecircle", "palegreen", ""};
    if (id == p->output)
        return (DotStyle){"ellipse", "palegreen", ""};
    return (DotStyle){"ellipse", n->grad ? "mistyrose" : "white", ""};
}

/* Enough digits for a picture (--emit=grad has the exact ones). */
static void dot_put_num(FILE *out, double v)
{
    fprintf(out, "%g", v);
}

/* "h.2\nadd [4]\nxor.nn:12", a constant its value, a gradient what it is the gradient of. */
static void dot_put_label(FILE *out, const IrProgram *p, const Diag *d, int id)
{
    const IrNode *n = &p->nodes[id];
    if (n->op == IR_CONST) {
        dot_put_num(out, n->num);
        return;
    }
    if (n->name) {
        dot_put_text(out, n->name);
        for (int i = 0; i < n->naliases; i++) {
            fputs(" = ", out);
            dot_put_text(out, n->aliases[i]);
        }
        fputs("\\n", out);
    }
    char shape[SHAPE_STR_MAX];
    fputs(ir_op_name(n->op), out);
    if (ir_op_info(n->op)->num && n->op != IR_CONST) {
        fputc(' ', out);
        dot_put_num(out, n->num);
    }
    fprintf(out, " %s", shape_str(n->shape, shape));
    if (n->loc.line > 0) {
        fputs("\\n", out);
        dot_put_text(out, dot_base_name(d ? d->path : NULL));
        fprintf(out, ":%d", n->loc.line);
    }
    int param = dot_grad_of(p, id);
    if (param >= 0) {
        fputs("\\nd(loss)/d", out);
        dot_put_text(out, p->params[param].name);
    }
}

static void dot_put_node(FILE *out, const IrProgram *p, const Diag *d, const DotOrder *o, int id)
{
    DotStyle st = dot_style(p, id);
    fprintf(out, "    n%d [label=\"", o->num[id]);
    dot_put_label(out, p, d, id);
    fprintf(out, "\", shape=%s, fillcolor=%s%s", st.shape, st.fill,
            *st.extra ? st.extra : ", style=filled");
    if (p->nodes[id].rule) {
        fputs(", tooltip=\"", out);
        dot_put_text(out, p->nodes[id].rule);
        fputc('"', out);
    }
    fputs("];\n", out);
}

static void dot_put_cluster(FILE *out, const IrProgram *p, const Diag *d, const DotOrder *o, bool grad)
{
    fprintf(out, "  subgraph cluster_%s {\n    label=\"%s\";\n    style=rounded;\n    color=%s;\n",
            grad ? "backward" : "forward",
            grad ? "backward pass (reverse mode, dv = d(loss)/dv)" : "forward pass (one sample)",
            grad ? "firebrick" : "gray40");
    for (int k = 0; k < o->count; k++)
        if (p->nodes[o->seq[k]].grad == grad)
            dot_put_node(out, p, d, o, o->seq[k]);
    fputs("  }\n", out);
}

/* ---- edges ---- */

static void dot_put_edges(FILE *out, const IrProgram *p, const DotOrder *o)
{
    for (int s = 0; s < o->count; s++) {
        const IrNode *n = &p->nodes[o->seq[s]];
        for (int k = 0; k < n->nargs; k++) {
            fprintf(out, "  n%d -> n%d", o->num[n->args[k]], s);
            if (n->grad)
                fputs(" [style=dashed, color=firebrick]", out);
            fputs(";\n", out);
        }
    }
    for (int i = 0; i < p->nparams; i++)
        if (p->params[i].grad >= 0)
            fprintf(out, "  n%d -> n%d [style=dotted, color=darkorange, constraint=false, "
                         "tooltip=\"update\"];\n",
                    o->num[p->params[i].grad], o->num[p->params[i].node]);
}

void dot_print(FILE *out, const IrProgram *p, const Diag *d)
{
    fputs("digraph nnc {\n"
          "  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=12, newrank=true];\n"
          "  node [fontname=\"Helvetica\", fontsize=11];\n"
          "  edge [color=gray30];\n",
          out);
    DotOrder o = dot_order(p);
    dot_put_cluster(out, p, d, &o, false);
    bool any_backward = false;
    for (int id = 0; id < p->nnodes; id++)
        any_backward |= p->nodes[id].grad;
    if (any_backward)
        dot_put_cluster(out, p, d, &o, true);
    dot_put_edges(out, p, &o);
    fputs("}\n", out);
    free(o.seq);
    free(o.num);
}
