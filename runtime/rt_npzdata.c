/* rt_npzdata.c - npz("file.npz"[, label = true]) data (spec sections 10 and 13): the arrays
 * named as the model's input and target, first dim the samples, the rest any shape with
 * a sample's element count; float32, float64 or integer values, converted to the build's
 * reals. With label = true the target array holds class indices (one a sample), one-hot
 * encoded as for csv. */
#include <math.h>

#include "rt_internal.h"

/* The values a sample of a, and its sample count; -1 after a message. */
static long per_sample(const char *path, const char *name, const RtNpyArray *a, int want,
                       const char *what)
{
    if (a->rank < 1) {
        rt_data_error(path, 0, "%s is a scalar, not an array of samples", name);
        return -1;
    }
    size_t each = a->dims[0] ? a->count / (size_t)a->dims[0] : 0;
    if (a->dims[0] > 0 && each != (size_t)want) {
        rt_data_error(path, 0, "%s has %zu value%s a sample, but the model's %s %s needs %d",
                      name, each, each == 1 ? "" : "s", what, name, want);
        return -1;
    }
    if (a->dims[0] > 0x7fffffffL) {
        rt_data_error(path, 0, "%s has more than 2^31-1 samples", name);
        return -1;
    }
    return a->dims[0];
}

static int copy_values(const RtNpyArray *a, void *dst, int rs)
{
    for (size_t i = 0; i < a->count; i++)
        rt_set(dst, i, rs, rt_npy_get(a, i));
    return 0;
}

static int labels(const char *path, const char *name, const RtNpyArray *a, NncData *d)
{
    for (int i = 0; i < d->n; i++) {
        double v = rt_npy_get(a, (size_t)i);
        int classes = d->tgt_size == 1 ? 2 : d->tgt_size;
        if (v != floor(v) || v < 0 || v >= classes) {
            rt_data_error(path, 0, "%s: sample %d has label %g, not a class index from 0 to %d",
                          name, i, v, classes - 1);
            return -1;
        }
        rt_data_set_label(d, i, (long)v);
    }
    return 0;
}

int rt_load_npz(const NncSourceDesc *src, const char *path, int in_size, int tgt_size,
                int real_size, NncData *out)
{
    RtNpyArray x, t = {0};
    if (!src->x_name || rt_npz_read_array(path, src->x_name, &x) != 0)
        return -1;
    int rc = -1;
    long n = per_sample(path, src->x_name, &x, in_size, "input");
    if (n >= 0 && tgt_size && src->t_name && rt_npz_read_array(path, src->t_name, &t) == 0) {
        long nt = per_sample(path, src->t_name, &t, src->label ? 1 : tgt_size, "target");
        if (nt >= 0 && nt != n)
            rt_data_error(path, 0, "%s has %ld samples, but %s has %ld", src->x_name, n, src->t_name, nt);
        else if (nt >= 0)
            rc = 0;
    } else if (n >= 0 && !tgt_size) {
        rc = 0;
    }
    if (rc == 0) {
        rt_data_alloc(out, (int)n, in_size, tgt_size, real_size);
        copy_values(&x, out->x, real_size);
        if (tgt_size)
            rc = src->label ? labels(path, src->t_name, &t, out) : copy_values(&t, out->t, real_size);
    }
    rt_npy_free(&x);
    rt_npy_free(&t);
    return rc;
}
