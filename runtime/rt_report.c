/* rt_report.c - evaluation through the generated evaluate(), accuracy, the progress lines
 * scripts parse, and the --log csv. Formats:
 *   epoch N  loss X  acc Y%  test_loss X  test_acc Y%  val_loss X  val_acc Y%  lr X  S samples/s
 *   train: loss X acc Y%
 *   test: loss X acc Y%
 * (acc parts only where accuracy applies, val parts with a validation set, lr with a
 * schedule or warm-up: the lr of the epoch's last batch; losses with 6 decimals, never
 * exponents). */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_internal.h"

static int argmax(const void *v, size_t at, int n, int rs)
{
    int best = 0;
    for (int k = 1; k < n; k++)
        if (rt_get(v, at + (size_t)k, rs) > rt_get(v, at + (size_t)best, rs))
            best = k;
    return best;
}

long rt_count_correct(const NncRun *run, const void *pred, const void *t, int n)
{
    int no = run->m->out_size, nt = run->m->tgt_size, rs = run->rs;
    long correct = 0;
    for (int i = 0; i < n; i++) {
        size_t po = (size_t)i * (size_t)no, to = (size_t)i * (size_t)nt;
        if (nt == 1)
            correct += (rt_get(pred, po, rs) >= 0.5) == (rt_get(t, to, rs) >= 0.5);
        else
            correct += argmax(pred, po, no, rs) == argmax(t, to, nt, rs);
    }
    return correct;
}

void rt_evaluate_set(NncRun *run, const RtSet *s, double *loss, long *correct)
{
    const NncData *d = &s->d;
    size_t xb = (size_t)d->in_size * (size_t)run->rs, tb = (size_t)d->tgt_size * (size_t)run->rs;
    *loss = 0;
    *correct = 0;
    for (int at = 0; at < d->n; at += run->o.batch) {
        int n = d->n - at < run->o.batch ? d->n - at : run->o.batch;
        const void *x = (const char *)d->x + (size_t)at * xb;
        const void *t = d->t ? (const char *)d->t + (size_t)at * tb : NULL;
        *loss += run->m->evaluate(run, x, t, n, run->pred);
        if (s->has_acc)
            *correct += rt_count_correct(run, run->pred, t, n);
    }
}

static double percent(long correct, long n)
{
    return n ? 100.0 * (double)correct / (double)n : 0.0;
}

/* ---- --log FILE.csv ---- */

/* Rows are made in memory, then written whole with write(2): a disk that fills mid-row is
 * cut back to the rows before it (where the file allows: /dev/full has no size), and no
 * stdio buffer holds a rest to write later. -1 with errno set. */
static int log_put(NncRun *run, char *text, size_t n)
{
    int fd = fileno(run->log);
    for (size_t at = 0; at < n;) {
        ssize_t w = write(fd, text + at, n - at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int saved = w < 0 ? errno : ENOSPC;
            if (ftruncate(fd, (off_t)run->log_size) == 0)
                lseek(fd, (off_t)run->log_size, SEEK_SET);
            errno = saved;
            return -1;
        }
        at += (size_t)w;
    }
    run->log_size += n;
    return 0;
}

/* A memory stream for one row; NULL (out of memory) exits, as rt_alloc does. */
static FILE *row_begin(char **text, size_t *n)
{
    FILE *f = open_memstream(text, n);
    if (!f) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    return f;
}

static int row_end(NncRun *run, FILE *f, char **text, size_t *n)
{
    fputc('\n', f);
    int rc = fclose(f) == 0 ? log_put(run, *text, *n) : (errno = ENOMEM, -1);
    free(*text);
    return rc;
}

/* The bytes of log text that a resumed run keeps: the header and the rows of the epochs
 * before the checkpoint's, when text starts with this model's header line (its own run's
 * log, cut short); 0 otherwise. */
static size_t log_kept(const char *text, size_t len, const char *header, size_t hlen, int epochs)
{
    if (len < hlen || memcmp(text, header, hlen) != 0)
        return 0;
    size_t kept = hlen;
    while (kept < len) {
        const char *end = memchr(text + kept, '\n', len - kept);
        char *after;
        long epoch = strtol(text + kept, &after, 10);
        if (!end || after == text + kept || *after != ',' || epoch < 1 || epoch > epochs)
            break;
        kept = (size_t)(end - text) + 1;
    }
    return kept;
}

/* With --resume, an existing log of this model goes on after the epochs the checkpoint
 * holds (rows of later epochs, logged before the run was cut short, are dropped: the
 * resumed run logs them again), so a run stopped and resumed keeps one whole log. True
 * when run->log is that file, open at its end. */
static bool log_resume(NncRun *run, const char *header, size_t hlen)
{
    FILE *f = fopen(run->o.log, "r+");
    struct stat st;
    if (!f)
        return false;
    size_t kept = 0;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        char *text = malloc((size_t)st.st_size + 1);
        size_t len = text ? fread(text, 1, (size_t)st.st_size, f) : 0;
        kept = text ? log_kept(text, len, header, hlen, run->first_epoch) : 0;
        free(text);
    }
    if (kept == 0 || ftruncate(fileno(f), (off_t)kept) != 0 || fseek(f, (long)kept, SEEK_SET) != 0) {
        fclose(f);
        return false;
    }
    run->log = f;
    run->log_size = kept;
    return true;
}

int rt_log_open(NncRun *run)
{
    char *header;
    size_t n;
    FILE *f = row_begin(&header, &n);
    fputs("epoch,loss,acc,test_loss,test_acc,seconds", f);
    for (int i = 0; i < run->m->nparams; i++)
        fprintf(f, ",grad_norm:%s", run->m->params[i].name);
    fputs(",val_loss,val_acc,lr\n", f);
    if (fclose(f) != 0) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    int rc = 0;
    if (!(run->resumed && log_resume(run, header, n))) {
        run->log = fopen(run->o.log, "w");
        const char *failed = !run->log ? "cannot create" : log_put(run, header, n) != 0 ? "cannot write" : NULL;
        if (failed) {
            rt_data_error(run->o.log, 0, "%s: %s", failed, strerror(errno));
            rc = -1;
        }
    }
    free(header);
    return rc;
}

double rt_grad_norm(const NncRun *run, int i)
{
    double sum = 0;
    for (int j = 0; j < run->m->params[i].size; j++) {
        double g = run->gsum[i][j] / (double)run->seen;
        sum += g * g;
    }
    return sqrt(sum);
}

/* A row that cannot be written stops the training as a NaN does: the weights are saved. */
static void log_row(NncRun *run, double loss, double test_loss, long test_correct, double seconds)
{
    char *text;
    size_t n;
    FILE *f = row_begin(&text, &n);
    fprintf(f, "%d,%.9g,", run->epoch + 1, loss);
    if (run->train.has_acc)
        fprintf(f, "%.6g", percent(run->correct, run->seen));
    fputc(',', f);
    if (run->test.loaded)
        fprintf(f, "%.9g", test_loss / run->test.d.n);
    fputc(',', f);
    if (run->test.loaded && run->test.has_acc)
        fprintf(f, "%.6g", percent(test_correct, run->test.d.n));
    fprintf(f, ",%.6f", seconds);
    for (int i = 0; i < run->m->nparams; i++)
        fprintf(f, ",%.9g", run->seen ? rt_grad_norm(run, i) : 0.0);
    fputc(',', f);
    if (run->val.loaded)
        fprintf(f, "%.9g", run->val_loss);
    fputc(',', f);
    if (run->val.loaded && run->val.has_acc)
        fprintf(f, "%.6g", percent(run->val_correct, run->val.d.n));
    fprintf(f, ",%.9g", run->cur_lr);
    if (row_end(run, f, &text, &n) != 0) {
        rt_data_error(run->o.log, 0, "cannot write: %s; training stopped after epoch %d, saving "
                      "the weights to %s", strerror(errno), run->epoch + 1, run->save_path);
        run->stopped = 1;
    }
}

void rt_report_epoch(NncRun *run, double seconds)
{
    double loss = run->seen ? run->loss_sum / (double)run->seen : 0.0, test_loss = 0;
    long test_correct = 0;
    if (run->test.loaded)
        rt_evaluate_set(run, &run->test, &test_loss, &test_correct);
    if (!run->o.quiet) {
        printf("epoch %d  loss %.6f", run->epoch + 1, loss);
        if (run->train.has_acc)
            printf("  acc %.2f%%", percent(run->correct, run->seen));
        if (run->test.loaded) {
            printf("  test_loss %.6f", test_loss / run->test.d.n);
            if (run->test.has_acc)
                printf("  test_acc %.2f%%", percent(test_correct, run->test.d.n));
        }
        if (run->val.loaded) {
            printf("  val_loss %.6f", run->val_loss);
            if (run->val.has_acc)
                printf("  val_acc %.2f%%", percent(run->val_correct, run->val.d.n));
        }
        if (run->m->sched != NNC_SCHED_NONE || run->m->warmup > 0)
            printf("  lr %.6g", run->cur_lr);
        printf("  %.0f samples/s\n", seconds > 0 ? (double)run->seen / seconds : 0.0);
        fflush(stdout); /* a line at a time, also into a pipe */
    }
    if (run->log)
        log_row(run, loss, test_loss, test_correct, seconds);
    RtPlotEpoch pe = {loss, run->train.has_acc ? percent(run->correct, run->seen) : NAN,
                      run->test.loaded ? test_loss / run->test.d.n : NAN,
                      run->test.loaded && run->test.has_acc ? percent(test_correct, run->test.d.n) : NAN,
                      run->val.loaded ? run->val_loss : NAN,
                      run->val.loaded && run->val.has_acc ? percent(run->val_correct, run->val.d.n) : NAN};
    rt_plot_epoch(run, &pe);
    rt_profile_epoch(run, seconds);
}

void rt_report_final(NncRun *run, const RtSet *s)
{
    double loss;
    long correct;
    rt_evaluate_set(run, s, &loss, &correct);
    printf("%s: loss %.6f", s->what, loss / s->d.n);
    if (s->has_acc)
        printf(" acc %.2f%%", percent(correct, s->d.n));
    putchar('\n');
}
