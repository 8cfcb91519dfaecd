/* rt_run.c - nnc_main: the whole program of a generated executable, and of `nnc --run`
 * and `nnc --interp`, which call it inside the nnc process. So it returns its exit status
 * instead of exiting, and frees everything it allocates.
 *
 *   flags -> weights (--load or initialisers) -> data -> train() -> final evaluation -> save
 *
 * --epochs 0 trains nothing: the test set is evaluated if there is one, the train set only
 * when --data names it; the weights are saved unless they came from --load and no --save
 * was given (so `--epochs 0 --load W.npz --test SRC` only evaluates). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt_internal.h"

static void alloc_weights(NncRun *run)
{
    int np = run->m->nparams;
    size_t slots = (size_t)(np ? np : 1);
    run->param = calloc(slots, sizeof(void *));
    run->grad = calloc(slots, sizeof(void *));
    run->state[0] = calloc(slots, sizeof(void *));
    run->state[1] = calloc(slots, sizeof(void *));
    if (!run->param || !run->grad || !run->state[0] || !run->state[1]) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < np; i++) {
        size_t bytes = (size_t)run->m->params[i].size * (size_t)run->rs;
        run->param[i] = rt_alloc(bytes);
        run->grad[i] = rt_alloc(bytes);
    }
}

static int init_weights(NncRun *run)
{
    if (run->o.resume)
        return rt_ckpt_load(run, run->o.resume);
    if (run->o.load)
        return rt_npz_load(run->o.load, run->m, run->param);
    for (int i = 0; i < run->m->nparams; i++) {
        const NncParamDesc *p = &run->m->params[i];
        double *v = malloc(sizeof *v * (size_t)(p->size ? p->size : 1));
        if (!v)
            return rt_error(run->o.prog, "out of memory"), -1;
        nnc_init_param(p, i, run->o.seed, v);
        for (int j = 0; j < p->size; j++)
            rt_set(run->param[i], (size_t)j, run->rs, v[j]);
        free(v);
    }
    return 0;
}

/* Loads one set from a flag's argument or the train block's source. */
static int load_set(NncRun *run, RtSet *s, const char *what, const char *flag, const char *arg,
                    const NncSourceDesc *block, const NncSourceDesc *like)
{
    const NncModelDesc *m = run->m;
    NncSourceDesc src = *block;
    char *owned = NULL;
    if (arg && rt_source_from_arg(run->o.prog, flag, arg, like, &src, &owned) != 0)
        return -1;
    int rc = nnc_load_data(&src, arg ? NULL : m->base_dir, m->in_size, m->tgt_size, run->rs, &s->d);
    free(owned);
    if (rc != 0)
        return -1;
    s->loaded = 1;
    s->what = what;
    s->has_acc = m->out_size == m->tgt_size && rt_data_has_accuracy(&s->d);
    return 0;
}

/* The validation set: --validation, the block's source, or a fraction of the train set. */
static int load_validation(NncRun *run)
{
    const NncModelDesc *m = run->m;
    if (run->o.validation || m->validation.kind != NNC_SRC_NONE) {
        const NncSourceDesc *like = m->validation.kind != NNC_SRC_NONE ? &m->validation : &m->data;
        return load_set(run, &run->val, "validation", "--validation", run->o.validation,
                        &m->validation, like);
    }
    return m->val_fraction > 0 ? rt_valid_split(run) : 0;
}

static int load_sets(NncRun *run)
{
    const NncModelDesc *m = run->m;
    if (run->o.epochs > 0 || run->o.data) {
        if (!run->o.data && m->data.kind == NNC_SRC_NONE) {
            rt_error(run->o.prog, "no training data: the train block names none; give --data FILE");
            return -1;
        }
        if (load_set(run, &run->train, "train", "--data", run->o.data, &m->data, &m->data) != 0)
            return -1;
    }
    if (run->o.epochs > 0 && load_validation(run) != 0)
        return -1;
    const NncSourceDesc *like = m->test.kind != NNC_SRC_NONE ? &m->test : &m->data;
    if (run->o.test || m->test.kind != NNC_SRC_NONE)
        return load_set(run, &run->test, "test", "--test", run->o.test, &m->test, like);
    return 0;
}

static void alloc_training(NncRun *run)
{
    const NncModelDesc *m = run->m;
    size_t rs = (size_t)run->rs, batch = (size_t)run->o.batch;
    int n = run->train.d.n;
    run->perm = rt_alloc(sizeof(int) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++)
        run->perm[i] = i;
    rt_rng_seed(&run->shuffle, run->o.seed, RT_STREAM_SHUFFLE);
    for (int e = 0; run->m->shuffle && e < run->first_epoch; e++)
        rt_shuffle(run); /* a resumed run's data order: the epochs done replayed */
    run->bx = rt_alloc(batch * (size_t)m->in_size * rs);
    run->bt = rt_alloc(batch * (size_t)m->tgt_size * rs);
    if (run->log || run->o.plot) {
        run->gsum = calloc((size_t)(m->nparams ? m->nparams : 1), sizeof(double *));
        for (int i = 0; run->gsum && i < m->nparams; i++)
            run->gsum[i] = rt_alloc(sizeof(double) * (size_t)m->params[i].size);
    }
}

/* A batch larger than every set is the whole set: clamp it, so that buffers sized by
 * the batch (here and in generated code) stay as small as the data. */
static void clamp_batch(NncRun *run)
{
    int most = run->train.d.n > run->test.d.n ? run->train.d.n : run->test.d.n;
    if (most < 1)
        most = 1; /* no data: nothing is trained or evaluated */
    if (run->o.batch > most)
        run->o.batch = most;
}

static int save(NncRun *run, const char *path)
{
    if (rt_npz_save(path, run->m, run->param, 1) != 0)
        return -1;
    if (!run->o.quiet)
        printf("saved %s\n", path);
    return 0;
}

static int check_model(const NncModelDesc *m, const char *prog)
{
    if ((m->real_size != 4 && m->real_size != 8) || !m->train || !m->evaluate ||
        m->in_size < 0 || m->tgt_size < 0 || m->out_size < 0 || m->nparams < 0) {
        rt_error(prog, "malformed model descriptor (a bug in nnc)");
        return -1;
    }
    return 0;
}

/* Whether the run ends with a save: not when it only evaluates loaded weights. */
static int saves(const RtOptions *o)
{
    return !(o->epochs == 0 && o->load && !o->save);
}

/* A signal stopped training: the checkpoint, where it went, exit status 130. */
static int interrupted(NncRun *run)
{
    char *dflt = NULL;
    const char *path = run->o.checkpoint;
    if (!path) {
        size_t n = strlen(run->m->name) + 10;
        dflt = malloc(n);
        if (!dflt)
            return rt_error(run->o.prog, "out of memory"), 1;
        snprintf(dflt, n, "%s.ckpt.npz", run->m->name);
        path = dflt;
    }
    int rc = 130;
    if (rt_ckpt_save(run, path, run->epoch, run->done_batches) == 0)
        fprintf(stderr, "%s: interrupted in epoch %d after batch %d of %d: checkpoint saved to %s "
                "(--resume %s goes on)\n", run->o.prog, run->epoch + 1, run->done_batches,
                run->nbatches, path, path);
    else
        rc = 1;
    free(dflt);
    return rc;
}

static int train_and_report(NncRun *run, const char *save_path)
{
    if (run->o.epochs > 0) {
        alloc_training(run);
        if ((run->o.log || run->o.plot) && !run->gsum)
            return rt_error(run->o.prog, "out of memory"), 1;
        run->cur_lr = run->epoch_lr = run->o.lr;
        if (rt_guard_start(run) != 0)
            return rt_error(run->o.prog, "out of memory"), 1;
        if (rt_profile_start(run) != 0)
            return 1;
        rt_ckpt_signals(1);
        (run->prof ? run->m->train_profile : run->m->train)(run);
        rt_ckpt_signals(0);
        rt_profile_report(run);
        if (rt_plot_write(run) != 0)
            run->stopped = 1;
        if (run->interrupted)
            return interrupted(run);
        if (run->stopped) {
            save(run, save_path);
            return 1;
        }
        rt_valid_finish(run);
    } else if ((run->o.plot || run->o.profile) && !run->o.quiet) {
        rt_note(run->o.prog, "--epochs 0 trains nothing: no %s is made", run->o.plot ? "plot" : "profile");
    }
    if (run->train.loaded)
        rt_report_final(run, &run->train);
    if (run->test.loaded)
        rt_report_final(run, &run->test);
    if (!saves(&run->o))
        return 0;
    return save(run, save_path) == 0 ? 0 : 1;
}

/* The output files, checked before any data is read or any epoch trained. */
static int check_outputs(NncRun *run)
{
    if (saves(&run->o) && rt_check_writable(run->save_path) != 0)
        return -1;
    if (run->o.plot && rt_check_writable(run->o.plot) != 0)
        return -1;
    if (run->o.checkpoint && rt_check_writable(run->o.checkpoint) != 0)
        return -1;
    return run->o.log ? rt_check_writable(run->o.log) : 0;
}

static int run_all(NncRun *run, const char *save_path)
{
    const NncModelDesc *m = run->m;
    run->save_path = save_path;
    if (check_model(m, run->o.prog) != 0 || check_outputs(run) != 0)
        return 1;
    alloc_weights(run);
    if (init_weights(run) != 0 || load_sets(run) != 0)
        return 1;
    if (run->o.log && rt_log_open(run) != 0)
        return 1;
    clamp_batch(run);
    run->tty = !run->o.quiet && isatty(2);
    run->pred = rt_alloc((size_t)run->o.batch * (size_t)(m->out_size ? m->out_size : 1) *
                         (size_t)run->rs);
    return train_and_report(run, save_path);
}

/* --save, or MODEL.npz; malloc'd. */
static char *save_path_of(const RtOptions *o, const NncModelDesc *m)
{
    if (o->save)
        return strdup(o->save);
    size_t n = strlen(m->name) + 5;
    char *path = malloc(n);
    if (path)
        snprintf(path, n, "%s.npz", m->name);
    return path;
}

static void free_slots(void **slots, int n)
{
    for (int i = 0; slots && i < n; i++)
        rt_free(slots[i]);
    free(slots);
}

/* Frees the run; -1 when the log could not be written in full. */
static int free_run(NncRun *run)
{
    int np = run->m->nparams;
    free_slots(run->param, np);
    free_slots(run->grad, np);
    free_slots(run->state[0], np);
    free_slots(run->state[1], np);
    for (int i = 0; run->gsum && i < np; i++)
        rt_free(run->gsum[i]);
    free(run->gsum);
    rt_pool_free(run->pool);
    rt_free_workspaces(run);
    nnc_free_data(&run->train.d);
    nnc_free_data(&run->test.d);
    rt_valid_free(run);
    rt_free(run->perm);
    rt_free(run->bx);
    rt_free(run->bt);
    rt_free(run->pred);
    rt_guard_free(run);
    rt_plot_free(run);
    rt_profile_free(run);
    int rc = 0;
    if (run->log && fclose(run->log) != 0) {
        rt_data_error(run->o.log, 0, "cannot write: %s", strerror(errno));
        rc = -1;
    }
    free(run);
    return rc;
}

int nnc_main(int argc, char **argv, const NncModelDesc *model)
{
    NncRun *run = calloc(1, sizeof *run);
    if (!run) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    run->m = model;
    run->rs = model->real_size;
    int rc = rt_cpu_check(argc > 0 ? argv[0] : model->name, model->cpu_features) == 0 ? -1 : 1;
    if (rc < 0)
        rc = rt_parse_args(&run->o, argc, argv, model);
    if (rc < 0 && run->o.predict) /* rt_predict.c: no training, no save */
        rc = rt_predict(run);
    char *save_path = rc < 0 ? save_path_of(&run->o, model) : NULL;
    if (rc < 0 && !save_path)
        rc = (rt_error(run->o.prog, "out of memory"), 1);
    else if (rc < 0)
        rc = run_all(run, save_path);
    free(save_path);
    if (free_run(run) != 0)
        rc = 1;
    fflush(stdout);
    return rc;
}
