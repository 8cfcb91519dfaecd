/* rt_plot.c - --plot FILE.svg: the training curves as an SVG drawn in plain C.
 *
 * One panel per kind of number, stacked: the loss per epoch (train, and test or validation
 * where the run has them), the accuracy in % where it applies, and each param's gradient
 * norm per epoch on a log axis (the L2 norm of the epoch's mean gradient, summed by the
 * --log machinery: rt_grad_norm). Each panel has axes with ticks and labels and a legend.
 * The epochs are recorded as they end (rt_plot_epoch, from rt_report.c) and the file is
 * written once after training, whole or not at all (rt_write_file). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

enum {
    PLOT_W = 900,      /* the picture's width */
    PLOT_LEFT = 80,    /* left of the plot area: the y tick labels */
    PLOT_AREA_W = 560, /* plot area width; the legend is to its right */
    PLOT_AREA_H = 200, /* plot area height */
    PLOT_PANEL_H = 290 /* a panel: title, area, x ticks and label */
};

/* The series of the loss and accuracy panels, in RtPlotEpoch's order. */
enum { S_LOSS, S_ACC, S_TEST_LOSS, S_TEST_ACC, S_VAL_LOSS, S_VAL_ACC, S_COUNT };

static const char *const series_name[S_COUNT] = {"train loss", "train acc", "test loss",
                                                 "test acc", "validation loss", "validation acc"};
static const char *const series_color[S_COUNT] = {"#1f77b4", "#1f77b4", "#d62728",
                                                  "#d62728", "#2ca02c", "#2ca02c"};
/* Gradient norms, one colour a param: Tableau's 10, then again dashed, then dotted. */
static const char *const param_color[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
static const char *const param_dash[] = {"none", "8,4", "2,3"};
enum { LEGEND_ROWS = 12 }; /* rows of a legend column */

struct RtPlot {
    int n, cap;        /* epochs recorded */
    double *v;         /* n rows of S_COUNT values (NAN: absent) */
    double *gnorm;     /* n rows of nparams gradient norms */
};

static void *plot_grow(void *p, size_t bytes)
{
    void *q = realloc(p, bytes);
    if (!q) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    return q;
}

void rt_plot_epoch(NncRun *run, const RtPlotEpoch *e)
{
    if (!run->o.plot)
        return;
    if (!run->plot)
        run->plot = plot_grow(calloc(1, sizeof *run->plot), sizeof *run->plot);
    RtPlot *pl = run->plot;
    int np = run->m->nparams;
    if (pl->n == pl->cap) {
        pl->cap = pl->cap ? 2 * pl->cap : 64;
        pl->v = plot_grow(pl->v, sizeof(double) * S_COUNT * (size_t)pl->cap);
        pl->gnorm = plot_grow(pl->gnorm, sizeof(double) * (size_t)(np ? np : 1) * (size_t)pl->cap);
    }
    double *row = pl->v + (size_t)pl->n * S_COUNT;
    row[S_LOSS] = e->loss;
    row[S_ACC] = e->acc;
    row[S_TEST_LOSS] = e->test_loss;
    row[S_TEST_ACC] = e->test_acc;
    row[S_VAL_LOSS] = e->val_loss;
    row[S_VAL_ACC] = e->val_acc;
    for (int i = 0; i < np; i++)
        pl->gnorm[(size_t)pl->n * (size_t)np + (size_t)i] = run->seen ? rt_grad_norm(run, i) : NAN;
    pl->n++;
}

void rt_plot_free(NncRun *run)
{
    if (!run->plot)
        return;
    free(run->plot->v);
    free(run->plot->gnorm);
    free(run->plot);
    run->plot = NULL;
}

/* ---- axes ---- */

typedef struct Axis {
    double lo, hi;
    int log; /* lo and hi are powers of ten, values mapped by log10 */
} Axis;

/* 1, 2 or 5 times a power of ten, near x. */
static double nice_step(double x)
{
    double p = pow(10, floor(log10(x))), f = x / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static double axis_step(const Axis *a, int ticks)
{
    return a->log ? fmax(1, ceil((log10(a->hi) - log10(a->lo)) / ticks)) : nice_step((a->hi - a->lo) / ticks);
}

/* A linear axis over [lo, hi] widened to whole steps; a flat series gets some room. */
static Axis linear_axis(double lo, double hi)
{
    if (!(lo <= hi))
        lo = 0, hi = 1;
    if (hi - lo < 1e-12 * fmax(1, fabs(hi))) {
        double pad = fabs(hi) > 0 ? fabs(hi) * 0.1 : 1;
        lo -= pad, hi += pad;
    }
    Axis a = {lo, hi, 0};
    double step = axis_step(&a, 5);
    a.lo = floor(lo / step) * step;
    a.hi = ceil(hi / step) * step;
    return a;
}

/* A log axis over whole decades around the positive values in [lo, hi]. */
static Axis log_axis(double lo, double hi)
{
    if (!(lo > 0 && lo <= hi))
        lo = 0.1, hi = 10;
    double dlo = floor(log10(lo)), dhi = ceil(log10(hi));
    if (dhi <= dlo)
        dhi = dlo + 1;
    return (Axis){pow(10, dlo), pow(10, dhi), 1};
}

/* 0 at the axis' low end, 1 at its high end. */
static double axis_frac(const Axis *a, double v)
{
    return a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : (v - a->lo) / (a->hi - a->lo);
}

/* ---- SVG ---- */

typedef struct Canvas {
    FILE *f;
    int top; /* the panel's plot area's top */
    Axis x, y;
} Canvas;

static double px(const Canvas *c, double epoch)
{
    return PLOT_LEFT + axis_frac(&c->x, epoch) * PLOT_AREA_W;
}

static double py(const Canvas *c, double v)
{
    return c->top + (1 - axis_frac(&c->y, v)) * PLOT_AREA_H;
}

/* Text with the bytes XML gives meaning to escaped; control bytes as '?'. */
static void put_xml(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc((unsigned char)*s < 0x20 ? '?' : *s, f);
        }
    }
}

static void put_tick_label(FILE *f, const Axis *a, double v, double step)
{
    if (a->log) {
        fprintf(f, "1e%d", (int)lround(log10(v)));
        return;
    }
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    fprintf(f, "%.*f", decimals, fabs(v) < step * 1e-9 ? 0.0 : v);
}

static void put_y_ticks(const Canvas *c)
{
    const Axis *a = &c->y;
    double step = axis_step(a, 5);
    double lo = a->log ? log10(a->lo) : a->lo, hi = a->log ? log10(a->hi) : a->hi;
    for (double t = lo; t <= hi + step * 1e-6; t += step) {
        double v = a->log ? pow(10, t) : t, y = py(c, v);
        fprintf(c->f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n",
                PLOT_LEFT, y, PLOT_LEFT + PLOT_AREA_W, y);
        fprintf(c->f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\"/>\n",
                PLOT_LEFT - 5, y, PLOT_LEFT, y);
        fprintf(c->f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", PLOT_LEFT - 8, y + 4);
        put_tick_label(c->f, a, v, step);
        fputs("</text>\n", c->f);
    }
}

/* Epoch 1 and the multiples of a round step. */
static void put_x_ticks(const Canvas *c)
{
    double step = fmax(1, round(axis_step(&c->x, 8)));
    int bottom = c->top + PLOT_AREA_H;
    for (double t = c->x.lo; t <= c->x.hi + 1e-9; t = t == c->x.lo && step > 1 ? step : t + step) {
        double x = px(c, t);
        fprintf(c->f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\"/>\n", x, bottom,
                x, bottom + 5);
        fprintf(c->f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>\n", x, bottom + 20, t);
    }
}

/* Title, frame, ticks and axis labels of a panel whose area starts at c->top. */
static void put_frame(const Canvas *c, const char *title, const char *ylabel)
{
    FILE *f = c->f;
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"15\" font-weight=\"bold\">", PLOT_LEFT, c->top - 12);
    put_xml(f, title);
    fputs("</text>\n", f);
    put_y_ticks(c);
    put_x_ticks(c);
    fprintf(f, "<rect class=\"area\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
               "stroke=\"black\"/>\n",
            PLOT_LEFT, c->top, PLOT_AREA_W, PLOT_AREA_H);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">epoch</text>\n", PLOT_LEFT + PLOT_AREA_W / 2,
            c->top + PLOT_AREA_H + 40);
    fprintf(f, "<text x=\"20\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 20 %d)\">%s</text>\n",
            c->top + PLOT_AREA_H / 2, c->top + PLOT_AREA_H / 2, ylabel);
}

/* One series: values v[k * stride] for epochs 1..n, broken where a value is missing (NaN,
 * or not positive on a log axis); dots on the epochs when there are few. */
static void put_series(const Canvas *c, const double *v, int n, size_t stride, const char *color,
                       const char *dash)
{
    FILE *f = c->f;
    int open = 0;
    for (int k = 0; k < n; k++) {
        double y = v[(size_t)k * stride];
        int ok = isfinite(y) && (!c->y.log || y > 0);
        if (ok && !open)
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-dasharray=\"%s\" stroke-width=\"2.5\" "
                       "stroke-linejoin=\"round\" points=\"",
                    color, dash);
        if (!ok && open)
            fputs("\"/>\n", f);
        if (ok)
            fprintf(f, "%.1f,%.1f ", px(c, k + 1), py(c, y));
        open = ok;
    }
    if (open)
        fputs("\"/>\n", f);
    for (int k = 0; n <= 40 && k < n; k++) {
        double y = v[(size_t)k * stride];
        if (isfinite(y) && (!c->y.log || y > 0))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", px(c, k + 1), py(c, y),
                    color);
    }
}

/* Entry `row` of a legend of `count`, in columns of LEGEND_ROWS beside the plot area. */
static void put_legend(const Canvas *c, int row, int count, const char *name, const char *color,
                       const char *dash)
{
    int columns = (count + LEGEND_ROWS - 1) / LEGEND_ROWS, width = (PLOT_W - PLOT_LEFT - PLOT_AREA_W - 20) / columns;
    int x = PLOT_LEFT + PLOT_AREA_W + 15 + width * (row / LEGEND_ROWS), y = c->top + 10 + 18 * (row % LEGEND_ROWS);
    fprintf(c->f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-dasharray=\"%s\" "
                  "stroke-width=\"3\"/>\n",
            x, y, x + 24, y, color, dash);
    fprintf(c->f, "<text x=\"%d\" y=\"%d\">", x + 30, y + 4);
    put_xml(c->f, name);
    fputs("</text>\n", c->f);
}

/* The range of the finite (log: positive) values of series `first, first + 2, ...` or of
 * every column of a row of `cols`. */
static void value_range(const double *v, int n, int cols, int first, int every, int log, double *lo,
                        double *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (int k = 0; k < n; k++)
        for (int s = first; s < cols; s += every) {
            double y = v[(size_t)k * (size_t)cols + (size_t)s];
            if (isfinite(y) && (!log || y > 0))
                *lo = fmin(*lo, y), *hi = fmax(*hi, y);
        }
}

/* The loss (first = S_LOSS) or accuracy (S_ACC) panel: the series of that kind that have a
 * value in some epoch. */
static void put_metric_panel(Canvas *c, const RtPlot *pl, int first)
{
    double lo, hi;
    value_range(pl->v, pl->n, S_COUNT, first, 2, 0, &lo, &hi);
    c->y = first == S_ACC ? (Axis){0, 100, 0} : linear_axis(lo, hi);
    put_frame(c, first == S_ACC ? "accuracy" : "loss", first == S_ACC ? "accuracy (%)" : "loss");
    int present[3], count = 0;
    for (int s = first; s < S_COUNT; s += 2) {
        double a, b;
        value_range(pl->v + s, pl->n, S_COUNT, 0, S_COUNT, 0, &a, &b);
        if (a <= b)
            present[count++] = s;
    }
    /* train last, on top; test and validation dashed, so a curve under another shows */
    for (int k = count - 1; k >= 0; k--) {
        int s = present[k];
        const char *dash = s == first ? "none" : "7,4";
        put_series(c, pl->v + s, pl->n, S_COUNT, series_color[s], dash);
        put_legend(c, k, count, series_name[s], series_color[s], dash);
    }
}

static void put_gradient_panel(Canvas *c, const RtPlot *pl, const NncModelDesc *m)
{
    double lo, hi;
    value_range(pl->gnorm, pl->n, m->nparams, 0, 1, 1, &lo, &hi);
    c->y = log_axis(lo, hi);
    put_frame(c, "gradient norm per param (L2 norm of the epoch's mean gradient)", "gradient norm");
    int ncolors = (int)(sizeof param_color / sizeof *param_color);
    for (int i = 0; i < m->nparams; i++) {
        const char *color = param_color[i % ncolors], *dash = param_dash[i / ncolors % 3];
        put_series(c, pl->gnorm + i, pl->n, (size_t)m->nparams, color, dash);
        put_legend(c, i, m->nparams, m->params[i].name, color, dash);
    }
}

/* Whether any epoch has a value in series s. */
static int has_series(const RtPlot *pl, int s)
{
    for (int k = 0; k < pl->n; k++)
        if (isfinite(pl->v[(size_t)k * S_COUNT + (size_t)s]))
            return 1;
    return 0;
}

static void put_svg(FILE *f, const NncRun *run, const RtPlot *pl)
{
    const NncModelDesc *m = run->m;
    int acc = has_series(pl, S_ACC) || has_series(pl, S_TEST_ACC) || has_series(pl, S_VAL_ACC);
    int panels = 1 + acc + (m->nparams > 0);
    int height = 50 + panels * PLOT_PANEL_H;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
               "<text x=\"%d\" y=\"28\" font-size=\"18\" font-weight=\"bold\">",
            PLOT_W, height, PLOT_W, height, PLOT_LEFT);
    put_xml(f, m->name);
    fprintf(f, ": %d epoch%s</text>\n", pl->n, pl->n == 1 ? "" : "s");
    Canvas c = {.f = f, .top = 50 + 35, .x = {1, pl->n > 1 ? pl->n : 2, 0}};
    put_metric_panel(&c, pl, S_LOSS);
    if (acc) {
        c.top += PLOT_PANEL_H;
        put_metric_panel(&c, pl, S_ACC);
    }
    if (m->nparams > 0) {
        c.top += PLOT_PANEL_H;
        put_gradient_panel(&c, pl, m);
    }
    fputs("</svg>\n", f);
}

int rt_plot_write(NncRun *run)
{
    if (!run->o.plot)
        return 0;
    RtPlot empty = {0};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    put_svg(f, run, run->plot ? run->plot : &empty);
    int rc = fclose(f) == 0 ? rt_write_file(run->o.plot, text, len, 1) : (rt_error(run->o.prog, "out of memory"), -1);
    free(text);
    if (rc == 0 && !run->o.quiet)
        printf("plotted %s\n", run->o.plot);
    return rc;
}
