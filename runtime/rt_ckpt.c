/* rt_ckpt.c - checkpoints, resuming, and SIGINT/SIGTERM while training (spec section 10).
 *
 * A checkpoint is an .npz (rt_npz.c) holding the params under their names, the optimizer
 * states the rule uses ("opt0:NAME", "opt1:NAME"), with patience the best epoch's weights
 * ("best:NAME"), and "ckpt": the run's counters, each a 64-bit value as four 16-bit
 * chunks, exact as f32 or f64 reals (seed, epochs and batches done, optimizer steps, the
 * epoch's running loss and counts, the best epoch and its loss, whether patience ran out).
 * The data order is not stored but replayed: the shuffle stream is reseeded from the
 * saved seed and shuffled once per epoch done, as the run did; the validation split uses
 * the saved seed too. So E epochs straight and k epochs + --resume to E give the same bytes.
 *
 * --checkpoint FILE writes one after every epoch, atomically (temporary + rename). A signal
 * sets a flag; at the batch's end the run stops once the batch is whole: when the step
 * already applied its update itself (nnc_rt_update_safe) the batch counts as done, else
 * none of it was applied and the resumed run does it again. Then the checkpoint (FILE, or
 * MODEL.ckpt.npz) is written, the run says where, and exits 130. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

enum { C_MAGIC, C_SEED, C_EPOCH, C_BATCH, C_STEPS, C_LOSS, C_SEEN, C_CORRECT, C_BEST_EPOCH,
       C_BEST_LOSS, C_EARLY, NCOUNTERS };
#define CKPT_MAGIC 0x6e6e63636b7031ULL /* "nncckp1" */

static volatile sig_atomic_t signalled;
static struct sigaction before[2];
static const int caught[2] = {SIGINT, SIGTERM};

static void on_signal(int sig)
{
    signalled = sig;
}

void rt_ckpt_signals(int on)
{
    if (!on) {
        for (int i = 0; i < 2; i++)
            sigaction(caught[i], &before[i], NULL);
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    signalled = 0;
    for (int i = 0; i < 2; i++)
        sigaction(caught[i], &sa, &before[i]);
}

int rt_ckpt_signalled(void)
{
    return signalled != 0;
}

/* The states rule uses: momentum's, adam's two, rmsprop's one or two, adagrad's one. */
static int nstates(const NncModelDesc *m)
{
    switch (m->opt) {
    case NNC_OPT_ADAM:
    case NNC_OPT_ADAMW: return 2;
    case NNC_OPT_RMSPROP: return m->momentum != 0 ? 2 : 1;
    case NNC_OPT_ADAGRAD: return 1;
    default: return m->momentum != 0 ? 1 : 0;
    }
}

/* What a checkpoint holds, as a descriptor of arrays for rt_npz.c, and their buffers. */
typedef struct Layout {
    NncModelDesc d;
    NncParamDesc *arrays;
    void **bufs;
    char **names;
    int n;
    double *counters; /* NCOUNTERS * 4 reals' worth, as reals */
} Layout;

static void add(Layout *l, const NncParamDesc *like, const char *prefix, void *buf)
{
    NncParamDesc *a = &l->arrays[l->n];
    *a = *like;
    size_t len = strlen(prefix) + strlen(like->name) + 1;
    l->names[l->n] = malloc(len);
    if (!l->names[l->n]) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    snprintf(l->names[l->n], len, "%s%s", prefix, like->name);
    a->name = l->names[l->n];
    l->bufs[l->n++] = buf;
}

static void layout(NncRun *run, Layout *l)
{
    const NncModelDesc *m = run->m;
    int most = 4 * m->nparams + 1;
    memset(l, 0, sizeof *l);
    l->arrays = calloc((size_t)most, sizeof *l->arrays);
    l->bufs = calloc((size_t)most, sizeof *l->bufs);
    l->names = calloc((size_t)most, sizeof *l->names);
    l->counters = rt_alloc((size_t)NCOUNTERS * 4 * (size_t)run->rs);
    if (!l->arrays || !l->bufs || !l->names) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < m->nparams; i++)
        add(l, &m->params[i], "", run->param[i]);
    for (int k = 0; k < nstates(m); k++)
        for (int i = 0; i < m->nparams; i++)
            add(l, &m->params[i], k ? "opt1:" : "opt0:", nnc_rt_state(run, i, k));
    for (int i = 0; m->patience > 0 && i < m->nparams; i++) {
        if (!run->best)
            rt_valid_keep(run);
        add(l, &m->params[i], "best:", run->best[i]);
    }
    NncParamDesc c = {.name = "ckpt", .rank = 1, .dims = {NCOUNTERS * 4}, .size = NCOUNTERS * 4};
    add(l, &c, "", l->counters);
    l->d = *m;
    l->d.nparams = l->n;
    l->d.params = l->arrays;
}

static void layout_free(Layout *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->arrays);
    free(l->bufs);
    rt_free(l->counters);
}

static void put_counter(NncRun *run, Layout *l, int k, unsigned long long v)
{
    for (int j = 0; j < 4; j++)
        rt_set(l->counters, (size_t)(4 * k + j), run->rs, (double)((v >> (16 * j)) & 0xffff));
}

static unsigned long long get_counter(NncRun *run, const Layout *l, int k)
{
    unsigned long long v = 0;
    for (int j = 0; j < 4; j++)
        v |= (unsigned long long)rt_get(l->counters, (size_t)(4 * k + j), run->rs) << (16 * j);
    return v;
}

static unsigned long long bits(double x)
{
    unsigned long long u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static double from_bits(unsigned long long u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

int rt_ckpt_save(NncRun *run, const char *path, int epochs_done, int batches_done)
{
    Layout l;
    layout(run, &l);
    unsigned long long v[NCOUNTERS] = {
        CKPT_MAGIC, run->o.seed, (unsigned long long)epochs_done, (unsigned long long)batches_done,
        (unsigned long long)rt_guard_steps(run), bits(batches_done ? run->loss_sum : 0),
        (unsigned long long)(batches_done ? run->seen : 0),
        (unsigned long long)(batches_done ? run->correct : 0), (unsigned long long)run->best_epoch,
        bits(run->best_loss), (unsigned long long)run->early};
    for (int k = 0; k < NCOUNTERS; k++)
        put_counter(run, &l, k, v[k]);
    int rc = rt_npz_save(path, &l.d, l.bufs, 0);
    layout_free(&l);
    return rc;
}

int rt_ckpt_load(NncRun *run, const char *path)
{
    Layout l;
    layout(run, &l);
    int rc = rt_npz_load(path, &l.d, l.bufs);
    if (rc == 0 && get_counter(run, &l, C_MAGIC) != CKPT_MAGIC) {
        rt_data_error(path, 0, "not a checkpoint of model %s (its 'ckpt' array is not one nnc wrote)",
                      run->m->name);
        rc = -1;
    }
    if (rc == 0) {
        run->o.seed = get_counter(run, &l, C_SEED);
        run->first_epoch = (int)get_counter(run, &l, C_EPOCH);
        run->epochs_done = run->first_epoch;
        run->first_batch = (int)get_counter(run, &l, C_BATCH);
        run->steps0 = (long long)get_counter(run, &l, C_STEPS);
        run->batches = run->steps0; /* the dropout masks go on at the next step */
        run->resume_loss = from_bits(get_counter(run, &l, C_LOSS));
        run->resume_seen = (long)get_counter(run, &l, C_SEEN);
        run->resume_correct = (long)get_counter(run, &l, C_CORRECT);
        run->best_epoch = (int)get_counter(run, &l, C_BEST_EPOCH);
        run->best_loss = from_bits(get_counter(run, &l, C_BEST_LOSS));
        run->early = (int)get_counter(run, &l, C_EARLY);
        run->resumed = 1;
    }
    layout_free(&l);
    return rc;
}
