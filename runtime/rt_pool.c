/* rt_pool.c - the thread pool behind nnc_rt_parallel (pthreads only).
 *
 * The pool starts on the first parallel call worth splitting and lives until the run ends.
 * A job is split into one contiguous slice of tasks per thread; the calling thread runs
 * slice 0 and the workers the others. Between jobs a worker spins for a while (the next
 * job of a training step usually comes within microseconds) and then sleeps on a
 * condition variable. Which tasks a slice holds depends only on the task and thread
 * counts, and generated kernels compute every task whole, so results are reproducible. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "rt_internal.h"

enum {
    POLLS = 1 << 11,       /* plain polls first (a few us): jobs of a step come quickly */
    SPIN = POLLS + 256,    /* then polls that yield the cpu, then sleep on the mutex */
    MIN_WORK = 1 << 18,    /* multiply-adds below which a job runs on the caller alone */
    MIN_COPY = 1 << 16,    /* bytes of a copy below which it runs on the caller alone */
};

typedef void (*TaskFn)(void *ctx, long long lo, long long hi);

struct RtPool {
    int nthreads; /* including the calling thread */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    /* the current job, published by bumping gen */
    TaskFn fn;
    void *ctx;
    long long ntasks;
    int nslices;
    atomic_uint gen;
    atomic_int pending; /* worker slices not finished */
    int sleepers;       /* workers waiting on wake (under mu) */
    int waiting;        /* the caller waits on done (under mu) */
    int quit;
};

typedef struct Worker {
    RtPool *pool;
    int index;
} Worker;

/* Poll i of a wait: a plain poll at first; then a yield, so that a thread waiting on a
 * busy machine (more threads than free cores) lets the one it waits for run. No pause
 * instruction: under a hypervisor a pause loop gets the vcpu descheduled, and the
 * job then starts microseconds late. */
static void relax(int i)
{
    if (i >= POLLS)
        sched_yield();
}

static void run_slice(RtPool *p, int s)
{
    long long lo = p->ntasks * s / p->nslices, hi = p->ntasks * (s + 1) / p->nslices;
    if (lo < hi)
        p->fn(p->ctx, lo, hi);
}

/* Waits for a generation other than seen; returns it, or seen when quitting. */
static unsigned next_job(RtPool *p, unsigned seen)
{
    for (int i = 0; i < SPIN; i++) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen)
            return g;
        relax(i);
    }
    pthread_mutex_lock(&p->mu);
    p->sleepers++;
    while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen && !p->quit)
        pthread_cond_wait(&p->wake, &p->mu);
    p->sleepers--;
    pthread_mutex_unlock(&p->mu);
    return atomic_load_explicit(&p->gen, memory_order_acquire);
}

static void finished(RtPool *p)
{
    if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->waiting)
        pthread_cond_signal(&p->done);
    pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *arg)
{
    Worker *w = arg;
    RtPool *p = w->pool;
    unsigned seen = 0; /* the pool's first generation: a job may come before we look */
    for (;;) {
        unsigned g = next_job(p, seen);
        if (g == seen)
            break; /* quit */
        seen = g;
        if (w->index < p->nslices)
            run_slice(p, w->index);
        finished(p);
    }
    free(w);
    return NULL;
}

int rt_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

/* A pool of n threads (the caller and n - 1 workers); NULL when threads cannot start. */
static RtPool *pool_new(int n)
{
    RtPool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->threads = calloc((size_t)n, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->nthreads = 1;
    for (int i = 1; i < n; i++) {
        Worker *w = malloc(sizeof *w);
        if (!w)
            break;
        *w = (Worker){p, i};
        if (pthread_create(&p->threads[i], NULL, worker_main, w) != 0) {
            free(w);
            break;
        }
        p->nthreads++;
    }
    return p;
}

void rt_pool_free(RtPool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

static void wait_done(RtPool *p)
{
    for (int i = 0; i < SPIN; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0)
            return;
        relax(i);
    }
    pthread_mutex_lock(&p->mu);
    p->waiting = 1;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
        pthread_cond_wait(&p->done, &p->mu);
    p->waiting = 0;
    pthread_mutex_unlock(&p->mu);
}

static void pool_run(RtPool *p, long long ntasks, TaskFn fn, void *ctx)
{
    p->fn = fn;
    p->ctx = ctx;
    p->ntasks = ntasks;
    p->nslices = ntasks < p->nthreads ? (int)ntasks : p->nthreads;
    atomic_store_explicit(&p->pending, p->nthreads - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers)
        pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_slice(p, 0);
    wait_done(p);
}

void nnc_rt_parallel(NncRun *run, long long ntasks, double work, TaskFn fn, void *ctx)
{
    if (ntasks <= 0)
        return;
    if (run->o.threads <= 0) /* once: sysconf reads a file each time */
        run->o.threads = rt_default_threads();
    if (run->o.threads > 1 && ntasks > 1 && work >= MIN_WORK && !run->pool && !run->pool_failed) {
        run->pool = pool_new(run->o.threads);
        run->pool_failed = !run->pool;
    }
    if (!run->pool || run->pool->nthreads < 2 || ntasks < 2 || work < MIN_WORK) {
        fn(ctx, 0, ntasks);
        return;
    }
    pool_run(run->pool, ntasks, fn, ctx);
}

void rt_parallel_copy(NncRun *run, long long ntasks, size_t bytes, TaskFn fn, void *ctx)
{
    /* 64 KB and more are split (as a job worth splitting); less runs on the caller */
    nnc_rt_parallel(run, ntasks, bytes < MIN_COPY ? 0 : (double)MIN_WORK, fn, ctx);
}
