/* interp_image.c - the reference maths of the image ops (docs/design.md, notes in ir.h):
 * convolution as PyTorch's F.conv2d (cross-correlation, zero padding), its two backward
 * helpers, max and average pooling and theirs, concat and slice. Loops straight from the
 * definitions, one sample, f64; the window sits at (oy*stride - pad, ox*stride - pad). */
#include <math.h>
#include <string.h>

#include "interp.h"

/* An image [c, h, w] and the window sliding over it. */
typedef struct Img {
    int c, h, w;
} Img;

static Img img(Shape s)
{
    return (Img){s.dims[0], s.dims[1], s.dims[2]};
}

/* x[c, i, j], 0 outside the image (the zero padding). */
static double at(const double *x, Img s, int c, int i, int j)
{
    return i < 0 || i >= s.h || j < 0 || j >= s.w ? 0 : x[((size_t)c * s.h + i) * s.w + j];
}

static size_t idx(Img s, int c, int i, int j)
{
    return ((size_t)c * s.h + i) * s.w + j;
}

static size_t kidx(Shape k, int f, int c, int u, int v)
{
    return (((size_t)f * k.dims[1] + c) * k.dims[2] + u) * k.dims[3] + v;
}

/* y[f, oy, ox] = sum over c, u, v of K[f, c, u, v] x[c, oy*s+u-p, ox*s+v-p] */
static void conv2d(IrWindow w, Img xs, const double *x, Shape ks, const double *k, Img ys, double *y)
{
    for (int f = 0; f < ys.c; f++)
        for (int oy = 0; oy < ys.h; oy++)
            for (int ox = 0; ox < ys.w; ox++) {
                double sum = 0;
                for (int c = 0; c < xs.c; c++)
                    for (int u = 0; u < w.kh; u++)
                        for (int v = 0; v < w.kw; v++)
                            sum += k[kidx(ks, f, c, u, v)] *
                                   at(x, xs, c, oy * w.stride + u - w.pad, ox * w.stride + v - w.pad);
                y[idx(ys, f, oy, ox)] = sum;
            }
}

/* dx[c, i, j] = sum of d[f, oy, ox] K[f, c, u, v] over i = oy*s+u-p, j = ox*s+v-p */
static void conv2d_bwd_input(IrWindow w, Img ds, const double *d, Shape ks, const double *k, Img xs,
                             double *dx)
{
    memset(dx, 0, sizeof *dx * (size_t)xs.c * xs.h * xs.w);
    for (int f = 0; f < ds.c; f++)
        for (int oy = 0; oy < ds.h; oy++)
            for (int ox = 0; ox < ds.w; ox++)
                for (int c = 0; c < xs.c; c++)
                    for (int u = 0; u < w.kh; u++)
                        for (int v = 0; v < w.kw; v++) {
                            int i = oy * w.stride + u - w.pad, j = ox * w.stride + v - w.pad;
                            if (i >= 0 && i < xs.h && j >= 0 && j < xs.w)
                                dx[idx(xs, c, i, j)] += d[idx(ds, f, oy, ox)] * k[kidx(ks, f, c, u, v)];
                        }
}

/* dK[f, c, u, v] = sum over oy, ox of d[f, oy, ox] x[c, oy*s+u-p, ox*s+v-p] */
static void conv2d_bwd_weight(IrWindow w, Img xs, const double *x, Img ds, const double *d, Shape ks,
                              double *dk)
{
    for (int f = 0; f < ks.dims[0]; f++)
        for (int c = 0; c < ks.dims[1]; c++)
            for (int u = 0; u < w.kh; u++)
                for (int v = 0; v < w.kw; v++) {
                    double sum = 0;
                    for (int oy = 0; oy < ds.h; oy++)
                        for (int ox = 0; ox < ds.w; ox++)
                            sum += d[idx(ds, f, oy, ox)] *
                                   at(x, xs, c, oy * w.stride + u - w.pad, ox * w.stride + v - w.pad);
                    dk[kidx(ks, f, c, u, v)] = sum;
                }
}

/* The index of window (c, oy, ox)'s first maximum in row-major order; a NaN counts as
 * the maximum (as PyTorch's max_pool2d, so NaN propagates). */
size_t interp_pool_argmax(IrWindow w, Shape as, const double *a, int c, int oy, int ox)
{
    Img s = img(as);
    size_t best = idx(s, c, oy * w.stride, ox * w.stride);
    for (int u = 0; u < w.kh; u++)
        for (int v = 0; v < w.kw; v++) {
            size_t i = idx(s, c, oy * w.stride + u, ox * w.stride + v);
            if (a[i] > a[best] || (isnan(a[i]) && !isnan(a[best])))
                best = i;
        }
    return best;
}

/* maxpool (take_max) or the window sums of avgpool, divided by k*k. */
static void pool(IrWindow w, bool take_max, Shape as, const double *a, Img ys, double *y)
{
    Img s = img(as);
    for (int c = 0; c < ys.c; c++)
        for (int oy = 0; oy < ys.h; oy++)
            for (int ox = 0; ox < ys.w; ox++) {
                double v = 0;
                if (take_max) {
                    v = a[interp_pool_argmax(w, as, a, c, oy, ox)];
                } else {
                    for (int u = 0; u < w.kh; u++)
                        for (int q = 0; q < w.kw; q++)
                            v += a[idx(s, c, oy * w.stride + u, ox * w.stride + q)];
                    v /= (double)w.kh * w.kw;
                }
                y[idx(ys, c, oy, ox)] = v;
            }
}

/* da: each window's d to its first maximum (maxpool, a given) or d/(k*k) to each of its
 * elements (avgpool, a NULL); overlapping windows add. */
static void pool_bwd(IrWindow w, Shape as, const double *a, Img ds, const double *d, double *da)
{
    Img s = img(as);
    memset(da, 0, sizeof *da * (size_t)s.c * s.h * s.w);
    for (int c = 0; c < ds.c; c++)
        for (int oy = 0; oy < ds.h; oy++)
            for (int ox = 0; ox < ds.w; ox++) {
                double g = d[idx(ds, c, oy, ox)];
                if (a) {
                    da[interp_pool_argmax(w, as, a, c, oy, ox)] += g;
                    continue;
                }
                for (int u = 0; u < w.kh; u++)
                    for (int q = 0; q < w.kw; q++)
                        da[idx(s, c, oy * w.stride + u, ox * w.stride + q)] += g / ((double)w.kh * w.kw);
            }
}

static size_t row_size(Shape s)
{
    return (size_t)(shape_size(s) / (s.rank ? s.dims[0] : 1));
}

bool interp_image_node(const IrNode *n, const IrNode *na, const double *a, const IrNode *nb,
                       const double *b, double *out)
{
    IrWindow w = n->win;
    switch (n->op) {
    case IR_CONV2D:
        conv2d(w, img(na->shape), a, nb->shape, b, img(n->shape), out);
        return true;
    case IR_CONV2D_BWD_INPUT:
        conv2d_bwd_input(w, img(na->shape), a, nb->shape, b, img(n->shape), out);
        return true;
    case IR_CONV2D_BWD_WEIGHT:
        conv2d_bwd_weight(w, img(na->shape), a, img(nb->shape), b, n->shape, out);
        return true;
    case IR_MAXPOOL: case IR_AVGPOOL:
        pool(w, n->op == IR_MAXPOOL, na->shape, a, img(n->shape), out);
        return true;
    case IR_MAXPOOL_BWD:
        pool_bwd(w, na->shape, a, img(nb->shape), b, out);
        return true;
    case IR_AVGPOOL_BWD:
        pool_bwd(w, n->shape, NULL, img(na->shape), a, out);
        return true;
    case IR_CONCAT: {
        size_t sa = (size_t)shape_size(na->shape), sb = (size_t)shape_size(nb->shape);
        memcpy(out, a, sa * sizeof *out);
        memcpy(out + sa, b, sb * sizeof *out);
        return true;
    }
    case IR_SLICE:
        memcpy(out, a + (size_t)n->index * row_size(na->shape), (size_t)shape_size(n->shape) * sizeof *out);
        return true;
    default:
        return false;
    }
}
