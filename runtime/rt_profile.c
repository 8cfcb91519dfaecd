/* rt_profile.c - what the instrumented generated functions call (nnc_rt_mark): --profile's
 * timings, and the scan that names the first non-finite value of a failed batch.
 *
 * --profile runs the descriptor's train_profile instead of train: after each kernel of
 * the step, each param's update and each runtime call of the loop it calls nnc_rt_mark,
 * which charges the row the time since the previous mark; the rows so cover each epoch
 * from its start, and after training one line a row shows its time, share and GFLOP/s.
 * After a batch whose loss or gradient went non-finite, check_batch runs that batch
 * again node by node (nothing fused, every value stored) and marks each node with its
 * buffer: the first non-finite value in program order is the message's. Normal training
 * calls neither. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

enum { PROF_TIME, PROF_CHECK };

struct RtProf {
    int mode;
    double last;             /* the previous mark */
    double *time, *units;    /* per row: seconds, flop units (samples or whole runs) */
    long long *calls;
    double epoch_seconds;    /* the epochs as rt_report_epoch measured them */
    long long steps;
    int found_row;           /* PROF_CHECK: the first non-finite value's row, -1 none yet */
    long long found_sample;  /* its sample in the batch, -1 for a value of the whole batch */
};

static RtProf *prof_new(NncRun *run, int mode)
{
    int n = run->m->nops;
    RtProf *p = calloc(1, sizeof *p);
    if (p) {
        p->time = calloc((size_t)n + 1, sizeof *p->time);
        p->units = calloc((size_t)n + 1, sizeof *p->units);
        p->calls = calloc((size_t)n + 1, sizeof *p->calls);
    }
    if (!p || !p->time || !p->units || !p->calls) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    p->mode = mode;
    p->found_row = -1;
    return p;
}

void rt_profile_free(NncRun *run)
{
    RtProf *p = run->prof;
    if (!p)
        return;
    free(p->time);
    free(p->units);
    free(p->calls);
    free(p);
    run->prof = NULL;
}

/* The first non-finite element of buf's count samples of size elements (count -1: one). */
static void scan(NncRun *run, RtProf *p, int row, const void *buf, long long count)
{
    long long size = run->m->ops[row].size, samples = count < 0 ? 1 : count;
    for (long long b = 0; b < samples; b++)
        for (long long i = 0; i < size; i++)
            if (!isfinite(rt_get(buf, (size_t)(b * size + i), run->rs))) {
                p->found_row = row;
                p->found_sample = count < 0 ? -1 : b;
                return;
            }
}

void nnc_rt_mark(NncRun *run, int row, const void *buf, long long count)
{
    RtProf *p = run->prof;
    if (!p || row < 0 || row >= run->m->nops)
        return;
    if (p->mode == PROF_CHECK) {
        if (p->found_row < 0 && buf)
            scan(run, p, row, buf, count);
        return;
    }
    double now = rt_now();
    if (row == run->m->nops - NNC_NROWS + NNC_ROW_EPOCH)
        p->last = run->t0;
    if (row == run->m->nops - NNC_NROWS + NNC_ROW_STEP_REST)
        p->steps++;
    p->time[row] += now - p->last;
    p->units[row] += (double)count;
    p->calls[row]++;
    p->last = now;
}

/* ---- --profile ---- */

int rt_profile_start(NncRun *run)
{
    if (!run->o.profile)
        return 0;
    if (!run->m->train_profile) {
        rt_error(run->o.prog, "--profile: this program has no profiling step (nnc --interp trains without one)");
        return -1;
    }
    run->prof = prof_new(run, PROF_TIME);
    return 0;
}

void rt_profile_epoch(NncRun *run, double seconds)
{
    if (run->prof)
        run->prof->epoch_seconds += seconds;
}

/* "matmul + add + sigmoid": the row's op and those fused into its kernel. */
static void put_ops(FILE *f, const NncModelDesc *m, int row, int nnodes)
{
    fputs(m->ops[row].op, f);
    for (int u = row + 1; u < nnodes; u++)
        if (m->ops[u].fused_into == row)
            fprintf(f, " + %s", m->ops[u].op);
}

static const char *const pass_names[] = {"forward", "backward", "update", "runtime"};

static void put_row(FILE *f, const NncModelDesc *m, const RtProf *p, int row, double total, int nnodes)
{
    const NncOpDesc *o = &m->ops[row];
    char where[300] = "";
    if (o->line > 0)
        snprintf(where, sizeof where, "%s:%d", m->source ? m->source : "line", o->line);
    fprintf(f, "%10.3f ms %6.1f%%  ", p->time[row] * 1e3, total > 0 ? 100 * p->time[row] / total : 0.0);
    if (o->flops > 0 && p->time[row] > 0)
        fprintf(f, "%8.2f", o->flops * p->units[row] / p->time[row] / 1e9);
    else
        fprintf(f, "%8s", "");
    fprintf(f, "  %-8s  %-16s  ", pass_names[o->kind & 3], where);
    if (o->kind == NNC_OP_UPDATE || o->kind == NNC_OP_RUNTIME) {
        fprintf(f, "%s\n", o->expr);
        return;
    }
    put_ops(f, m, row, nnodes);
    fprintf(f, ":  %s%s%s\n", o->name ? o->name : "", o->name ? " = " : "", o->expr);
}

void rt_profile_report(NncRun *run)
{
    RtProf *p = run->prof;
    if (!p || p->mode != PROF_TIME)
        return;
    const NncModelDesc *m = run->m;
    int nnodes = m->nops - m->nparams - NNC_NROWS;
    double total = 0;
    for (int r = 0; r < m->nops; r++)
        total += p->time[r];
    printf("profile: %lld steps in %d epochs; the rows add up to %.3f s, the epochs took %.3f s\n", p->steps,
           run->epochs_done, total, p->epoch_seconds);
    printf("%13s %7s  %8s  %-8s  %-16s  %s\n", "time", "share", "GFLOP/s", "pass", "source", "operation");
    for (int r = 0; r < m->nops; r++)
        if (p->calls[r] > 0 && (r >= nnodes || m->ops[r].fused_into < 0))
            put_row(stdout, m, p, r, total, nnodes);
    printf("%10.3f ms %6.1f%%  %8s  total\n", total * 1e3, total > 0 ? 100.0 : 0.0, "");
    fflush(stdout);
}

/* ---- the first non-finite value ---- */

void rt_nan_origin(NncRun *run, int n)
{
    const NncModelDesc *m = run->m;
    if (!m->check_batch || !run->cur_x || n <= 0)
        return;
    RtProf *saved = run->prof;
    RtProf *p = run->prof = prof_new(run, PROF_CHECK);
    m->check_batch(run, run->cur_x, run->cur_t, n, run->pred);
    if (p->found_row >= 0) {
        const NncOpDesc *o = &m->ops[p->found_row];
        char sample[64] = "";
        if (p->found_sample >= 0)
            snprintf(sample, sizeof sample, ", sample %lld", p->found_sample + 1);
        /* a backward value by its adjoint's name too, as --emit=grad shows it */
        char what[600];
        snprintf(what, sizeof what, "%s%s%s", o->kind == NNC_OP_BACKWARD && o->name ? o->name : "",
                 o->kind == NNC_OP_BACKWARD && o->name ? " = " : "", o->expr);
        if (o->line > 0)
            rt_note(run->o.prog, "first non-finite value: %s at %s:%d:%d%s", what, m->source ? m->source : "line",
                    o->line, o->col, sample);
        else
            rt_note(run->o.prog, "first non-finite value: %s%s", what, sample);
    }
    rt_profile_free(run);
    run->prof = saved;
}
