/* rt_lib.c - a model as a library (nnc --emit=lib / --emit=shared, spec section 11): what
 * the generated NAME_new, NAME_predict, NAME_train_step, ... call.
 *
 * A model is an NncRun of its own, so two models share nothing (weights, optimizer state,
 * workspace, thread pool); messages go to the calling thread's buffer (nnc_lib_error),
 * never to stderr. train_step runs the generated train() for one epoch of one batch, the
 * caller's: the same generated step and optimizer as the executable's training, so a loop
 * of train_step over the executable's batches gives its bytes. The descriptor is copied
 * with shuffling off (the caller orders the samples); adam's t goes on across calls
 * (NNC_STEPS), and the update guard's bounds are taken again when the weights may have
 * changed outside train() (a load, or writes through NAME_param's pointers). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

/* Samples an evaluate() call in predict: enough to keep the threads busy on each product. */
enum { LIB_PREDICT_BATCH = 1024, LIB_ERROR_CAP = 1024 };

typedef struct RtLib {
    NncRun run;         /* first: the NncRun * given out is the RtLib's */
    NncModelDesc desc;  /* the model's, with shuffle off */
    int dirty;          /* the weights changed outside train(): bounds taken again */
    int exposed;        /* NAME_param gave out a pointer: they may change at any time */
} RtLib;

static _Thread_local char lib_error[LIB_ERROR_CAP];

static void set_error(const char *fmt, ...) RT_PRINTF(1, 2);
static void set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lib_error, sizeof lib_error, fmt, ap);
    va_end(ap);
}

const char *nnc_lib_error(void)
{
    return lib_error;
}

static int valid(const NncModelDesc *m)
{
    return m && (m->real_size == 4 || m->real_size == 8) && m->train && m->evaluate &&
           m->nparams >= 0 && m->in_size >= 0 && m->tgt_size >= 0 && m->out_size >= 0;
}

static void **slots(int n)
{
    void **s = calloc((size_t)(n ? n : 1), sizeof(void *));
    if (!s) {
        fprintf(stderr, "error: out of memory\n");
        exit(1); /* as rt_alloc: nothing sensible goes on */
    }
    return s;
}

/* The params from their initialisers, as the executable's (same seed, same bits). */
static void init_params(NncRun *run, unsigned long long seed)
{
    const NncModelDesc *m = run->m;
    run->param = slots(m->nparams);
    run->grad = slots(m->nparams);
    run->state[0] = slots(m->nparams);
    run->state[1] = slots(m->nparams);
    for (int i = 0; i < m->nparams; i++) {
        const NncParamDesc *p = &m->params[i];
        size_t size = (size_t)p->size;
        run->param[i] = rt_alloc(size * (size_t)run->rs);
        run->grad[i] = rt_alloc(size * (size_t)run->rs);
        double *v = rt_alloc(sizeof *v * (size ? size : 1));
        nnc_init_param(p, i, seed, v);
        for (size_t j = 0; j < size; j++)
            rt_set(run->param[i], j, run->rs, v[j]);
        rt_free(v);
    }
}

NncRun *nnc_lib_new(const NncModelDesc *m, unsigned long long seed)
{
    lib_error[0] = 0;
    if (!valid(m))
        return set_error("malformed model descriptor (a bug in nnc)"), NULL;
    rt_capture_errors(lib_error, sizeof lib_error);
    int cpu = rt_cpu_check(m->name, m->cpu_features);
    rt_capture_errors(NULL, 0);
    RtLib *lib = cpu == 0 ? calloc(1, sizeof *lib) : NULL;
    if (!lib) {
        if (cpu == 0)
            set_error("out of memory");
        return NULL;
    }
    lib->desc = *m;
    lib->desc.shuffle = 0;
    /* a library says nothing on stderr and has no --profile: no checked re-run of a
     * failing batch (its note would be printed) and no instrumented loop */
    lib->desc.check_batch = NULL;
    lib->desc.train_profile = NULL;
    NncRun *run = &lib->run;
    run->m = &lib->desc;
    run->rs = m->real_size;
    run->o.prog = m->name;
    run->o.epochs = 1;
    run->o.batch = 1;
    run->o.lr = m->lr;
    run->o.seed = seed;
    run->o.quiet = 1;
    run->save_path = "";
    init_params(run, seed);
    if (rt_guard_start(run) != 0) {
        nnc_lib_free(run);
        return set_error("out of memory"), NULL;
    }
    return run;
}

static void free_slots(void **s, int n)
{
    for (int i = 0; s && i < n; i++)
        rt_free(s[i]);
    free(s);
}

void nnc_lib_free(NncRun *run)
{
    if (!run)
        return;
    int np = run->m->nparams;
    free_slots(run->param, np);
    free_slots(run->grad, np);
    free_slots(run->state[0], np);
    free_slots(run->state[1], np);
    rt_pool_free(run->pool);
    rt_free_workspaces(run);
    rt_guard_free(run);
    free((RtLib *)run);
}

/* Every param read into new buffers, then copied over the live ones: a failed load leaves
 * the model as it was, and pointers from NAME_param stay valid. */
int nnc_lib_load(NncRun *run, const char *npz)
{
    lib_error[0] = 0;
    if (!run || !npz)
        return set_error("load: %s is NULL", run ? "the file name" : "the model"), -1;
    const NncModelDesc *m = run->m;
    void **fresh = slots(m->nparams);
    for (int i = 0; i < m->nparams; i++)
        fresh[i] = rt_alloc((size_t)m->params[i].size * (size_t)run->rs);
    rt_capture_errors(lib_error, sizeof lib_error);
    int rc = rt_npz_load(npz, m, fresh);
    rt_capture_errors(NULL, 0);
    for (int i = 0; rc == 0 && i < m->nparams; i++)
        memcpy(run->param[i], fresh[i], (size_t)m->params[i].size * (size_t)run->rs);
    free_slots(fresh, m->nparams);
    if (rc == 0)
        ((RtLib *)run)->dirty = 1;
    return rc == 0 ? 0 : -1;
}

int nnc_lib_save(const NncRun *run, const char *npz)
{
    lib_error[0] = 0;
    if (!run || !npz)
        return set_error("save: %s is NULL", run ? "the file name" : "the model"), -1;
    rt_capture_errors(lib_error, sizeof lib_error);
    int rc = rt_npz_save(npz, run->m, run->param, 0); /* signals are the caller's */
    rt_capture_errors(NULL, 0);
    return rc == 0 ? 0 : -1;
}

void nnc_lib_predict(NncRun *run, int n, const void *x, void *y)
{
    if (!run || n <= 0 || !x || !y)
        return;
    const NncModelDesc *m = run->m;
    int chunk = n < LIB_PREDICT_BATCH ? n : LIB_PREDICT_BATCH;
    if (run->o.batch < chunk) /* evaluate() sizes its workspace by it */
        run->o.batch = chunk;
    size_t xb = (size_t)m->in_size * (size_t)run->rs, yb = (size_t)m->out_size * (size_t)run->rs;
    for (int at = 0; at < n; at += run->o.batch) {
        int k = n - at < run->o.batch ? n - at : run->o.batch;
        m->evaluate(run, (const char *)x + (size_t)at * xb, NULL, k, (char *)y + (size_t)at * yb);
    }
}

/* The runtime's stop message without the executable's epoch, batch and save. */
static void stop_message(void)
{
    char *cut = strstr(lib_error, " in epoch ");
    if (cut)
        snprintf(cut, sizeof lib_error - (size_t)(cut - lib_error), "; the step was not applied");
    if (!lib_error[0])
        set_error("the step was not applied");
}

double nnc_lib_train_step(NncRun *run, int n, const void *x, const void *t)
{
    lib_error[0] = 0;
    if (!run || n <= 0 || !x || (run->m->tgt_size && !t)) {
        set_error("train_step: %s", !run ? "the model is NULL" : n <= 0 ? "n must be >= 1"
                                    : !x ? "x is NULL" : "t is NULL (the model has a target)");
        return NAN;
    }
    RtLib *lib = (RtLib *)run;
    const NncModelDesc *m = run->m;
    if (run->o.batch < n) /* never shrinks: the workspace's layout stays */
        run->o.batch = n;
    run->train.d = (NncData){n, m->in_size, m->tgt_size, run->rs, (void *)x,
                             m->tgt_size ? (void *)t : NULL};
    run->stopped = 0;
    if (lib->dirty || lib->exposed)
        rt_guard_rebound(run);
    lib->dirty = 0;
    rt_capture_errors(lib_error, sizeof lib_error);
    m->train(run);
    rt_capture_errors(NULL, 0);
    memset(&run->train.d, 0, sizeof run->train.d);
    if (run->stopped) {
        stop_message();
        return NAN;
    }
    run->steps_before++;
    return run->seen ? run->loss_sum / (double)run->seen : NAN;
}

void *nnc_lib_param(NncRun *run, const char *name, int *count)
{
    for (int i = 0; run && name && i < run->m->nparams; i++)
        if (strcmp(run->m->params[i].name, name) == 0) {
            if (count)
                *count = run->m->params[i].size;
            ((RtLib *)run)->exposed = 1;
            return run->param[i];
        }
    if (count)
        *count = 0;
    set_error("param: no param '%s' in the model", name ? name : "(NULL)");
    return NULL;
}
