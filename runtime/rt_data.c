/* rt_data.c - data sets in memory: the source kinds dispatched, inline data converted,
 * labels encoded, and the test of whether accuracy applies. */
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

void rt_data_alloc(NncData *out, int n, int in_size, int tgt_size, int real_size)
{
    out->n = n;
    out->in_size = in_size;
    out->tgt_size = tgt_size;
    out->real_size = real_size;
    out->x = rt_alloc((size_t)n * (size_t)in_size * (size_t)real_size);
    out->t = tgt_size ? rt_alloc((size_t)n * (size_t)tgt_size * (size_t)real_size) : NULL;
}

void rt_data_set_label(NncData *d, int i, long label)
{
    size_t at = (size_t)i * (size_t)d->tgt_size;
    if (d->tgt_size == 1) {
        rt_set(d->t, at, d->real_size, (double)label);
        return;
    }
    for (int k = 0; k < d->tgt_size; k++)
        rt_set(d->t, at + (size_t)k, d->real_size, k == label ? 1.0 : 0.0);
}

static int is_one_hot(const NncData *d, size_t at)
{
    int ones = 0;
    for (int k = 0; k < d->tgt_size; k++) {
        double v = rt_get(d->t, at + (size_t)k, d->real_size);
        if (v == 1.0)
            ones++;
        else if (v != 0.0)
            return 0;
    }
    return ones == 1;
}

int rt_data_has_accuracy(const NncData *d)
{
    if (d->tgt_size == 0 || d->n == 0)
        return 0;
    for (int i = 0; i < d->n; i++) {
        size_t at = (size_t)i * (size_t)d->tgt_size;
        if (d->tgt_size == 1) {
            double v = rt_get(d->t, at, d->real_size);
            if (v != 0.0 && v != 1.0)
                return 0;
        } else if (!is_one_hot(d, at)) {
            return 0;
        }
    }
    return 1;
}

static int load_inline(const NncSourceDesc *src, int in_size, int tgt_size, int real_size,
                       NncData *out)
{
    rt_data_alloc(out, src->nsamples, in_size, tgt_size, real_size);
    size_t nx = (size_t)src->nsamples * (size_t)in_size;
    size_t nt = (size_t)src->nsamples * (size_t)tgt_size;
    for (size_t i = 0; i < nx; i++)
        rt_set(out->x, i, real_size, src->x[i]);
    for (size_t i = 0; i < nt && src->t; i++)
        rt_set(out->t, i, real_size, src->t[i]);
    return 0;
}

int nnc_load_data(const NncSourceDesc *src, const char *base_dir, int in_size, int tgt_size,
                  int real_size, NncData *out)
{
    memset(out, 0, sizeof *out);
    if (src->kind == NNC_SRC_INLINE)
        return load_inline(src, in_size, tgt_size, real_size, out);
    if (src->kind != NNC_SRC_CSV && src->kind != NNC_SRC_IDX && src->kind != NNC_SRC_NPZ) {
        fprintf(stderr, "error: no data source\n");
        return -1;
    }
    char *path = rt_join(base_dir, src->path ? src->path : "");
    char *path2 = src->kind == NNC_SRC_IDX ? rt_join(base_dir, src->path2 ? src->path2 : "") : NULL;
    int rc = -1;
    if (!path || (src->kind == NNC_SRC_IDX && !path2))
        fprintf(stderr, "error: out of memory\n");
    else if (src->kind == NNC_SRC_CSV)
        rc = rt_load_csv(src, path, in_size, tgt_size, real_size, out);
    else if (src->kind == NNC_SRC_NPZ)
        rc = rt_load_npz(src, path, in_size, tgt_size, real_size, out);
    else
        rc = rt_load_idx(path, path2, in_size, tgt_size, real_size, out);
    free(path);
    free(path2);
    if (rc != 0)
        nnc_free_data(out);
    return rc;
}

void nnc_free_data(NncData *d)
{
    rt_free(d->x);
    rt_free(d->t);
    d->x = d->t = NULL;
    d->n = 0;
}
