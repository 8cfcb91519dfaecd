/* desc.c - NncModelDesc from the checked AST and the IR. */
#include "desc.h"

#include <string.h>

static void put_shape(Shape s, int *rank, int dims[4], int *size)
{
    *rank = s.rank;
    for (int i = 0; i < 4; i++)
        dims[i] = i < s.rank ? s.dims[i] : 0;
    *size = (int)shape_size(s);
}

static const char *folder_of(const char *path, Arena *a)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (!slash)
        return ".";
    if (slash == path)
        return "/";
    return arena_strndup(a, path, (size_t)(slash - path));
}

static NncSourceDesc source_desc(const Source *s, const Model *m)
{
    NncSourceDesc d = {.kind = (int)s->kind, .path = s->path, .path2 = s->path2,
                       .header = s->header, .label = s->label,
                       .nsamples = s->nsamples, .x = s->x, .t = s->t};
    if (s->kind == SRC_NPZ) {
        d.x_name = m->input->name;
        d.t_name = m->target ? m->target->name : NULL;
    }
    return d;
}

/* spec section 10's options */
static void options_desc(NncModelDesc *d, const Train *t)
{
    d->nesterov = t->opt.nesterov;
    d->weight_decay = t->opt.weight_decay;
    d->alpha = t->opt.alpha;
    d->sched = (int)t->schedule.kind;
    d->sched_every = (int)t->schedule.every;
    d->gamma = t->schedule.gamma;
    d->min_lr = t->schedule.min_lr;
    d->warmup = (int)t->warmup;
    d->patience = (int)t->patience;
    d->clip = t->clip;
    d->val_fraction = t->val_fraction;
    d->validation = source_desc(&t->validation, t->model);
}

static void train_desc(NncModelDesc *d, const Train *t)
{
    if (!t) {
        /* No train block: the spec's defaults, and no data until --data gives some. */
        d->epochs = 10;
        d->batch = 32;
        d->opt = NNC_OPT_SGD;
        d->lr = 0.01;
        d->momentum = 0;
        d->beta1 = 0.9;
        d->beta2 = 0.999;
        d->eps = 1e-8;
        d->seed = 0;
        d->shuffle = 1;
        d->alpha = 0.99;
        d->gamma = 0.1;
        return;
    }
    d->epochs = (int)t->epochs;
    d->batch = (int)t->batch;
    d->opt = (int)t->opt.kind;
    d->lr = t->opt.lr;
    d->momentum = t->opt.momentum;
    d->beta1 = t->opt.beta1;
    d->beta2 = t->opt.beta2;
    d->eps = t->opt.eps;
    d->seed = t->seed;
    d->shuffle = t->shuffle;
    d->data = source_desc(&t->data, t->model);
    d->test = source_desc(&t->test, t->model);
    options_desc(d, t);
}

void desc_build(NncModelDesc *d, const IrProgram *p, const Model *m, int real_size,
                const char *source_path, Arena *a)
{
    memset(d, 0, sizeof *d);
    d->name = m->name;
    d->base_dir = folder_of(source_path, a);
    d->source = source_path && strrchr(source_path, '/') ? strrchr(source_path, '/') + 1 : source_path;
    d->real_size = real_size;
    put_shape(p->nodes[p->input].shape, &d->in_rank, d->in_dims, &d->in_size);
    if (p->target >= 0)
        put_shape(p->nodes[p->target].shape, &d->tgt_rank, d->tgt_dims, &d->tgt_size);
    d->out_size = (int)shape_size(p->nodes[p->output].shape);
    NncParamDesc *params = arena_alloc(a, sizeof *params * (size_t)(p->nparams ? p->nparams : 1));
    for (int i = 0; i < p->nparams; i++) {
        const IrParam *ip = &p->params[i];
        params[i].name = ip->name;
        put_shape(ip->shape, &params[i].rank, params[i].dims, &params[i].size);
        params[i].init = (int)ip->init.kind;
        params[i].a = ip->init.a;
        params[i].b = ip->init.b;
    }
    d->nparams = p->nparams;
    d->params = params;
    train_desc(d, m->train);
}
