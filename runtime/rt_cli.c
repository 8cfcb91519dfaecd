/* rt_cli.c - the generated executable's command line (spec section 7). Every flag takes
 * its value as the next argument or after '='; a bad flag or value is a message and exit
 * status 1. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

static void usage(const NncModelDesc *m)
{
    printf("usage: %s [options]\n"
           "Trains model %s, then saves its weights.\n"
           "options:\n"
           "  --epochs N      epochs to train (default %d; 0: no training)\n"
           "  --batch N       samples a batch (default %d)\n"
           "  --lr X          learning rate (default %g)\n"
           "  --seed N        seed of initialisers and shuffling (default %lld)\n"
           "  --data SRC      training data instead of the train block's\n"
           "  --test SRC      test data instead of the train block's\n"
           "  --validation SRC  validation data instead of the train block's\n"
           "                  SRC keeps the block's kind and options: a csv file, or\n"
           "                  IMAGES,LABELS for idx data\n"
           "  --load W.npz    start from these weights instead of the initialisers\n"
           "  --save W.npz    where to save the weights (default %s.npz)\n"
           "  --log FILE.csv  one row per epoch: loss, accuracy, test, time, gradient norms\n"
           "  --plot F.svg    draw loss, accuracy and gradient norms per epoch into F.svg\n"
           "  --checkpoint F  write the run's state to F.npz after every epoch\n"
           "  --resume F      go on from checkpoint F (--epochs is the total)\n"
           "  --profile       after training, the time of each operation of the step\n"
           "  --threads N     threads for the matrix products (default: all %d cores)\n"
           "  --quiet         print only the final train/test lines and errors\n"
           "  --predict SRC   no training: the predictions for SRC's inputs as csv\n"
           "                  (weights from --load, default %s.npz)\n"
           "  --out FILE.csv  where --predict writes (default: standard output)\n"
           "  --version       the model, its precision and the nnc that built it\n"
           "  --help          this text\n"
           "--epochs 0 saves the initial weights; --epochs 0 --load W.npz only evaluates\n"
           "(the test set, and the train set when --data is given).\n",
           m->name, m->name, m->epochs, m->batch, m->lr, m->seed, m->name, rt_default_threads(),
           m->name);
}

#ifndef NNC_VERSION
#define NNC_VERSION "unknown"
#endif

/* One line (spec 13): the model, its precision, the nnc that compiled it. */
static void version(const NncModelDesc *m)
{
    printf("%s (f%d, compiled by nnc %s)\n", m->name, m->real_size * 8, NNC_VERSION);
}

static int parse_int(const char *s, long long lo, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > 0x7fffffffLL)
        return -1;
    *out = v;
    return 0;
}

/* The spec's seed >= 0: strtoll's range, so that the model's seed (long long) holds it. */
static int parse_seed(const char *s, unsigned long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < 0)
        return -1;
    *out = (unsigned long long)v;
    return 0;
}

/* More threads than cores only take turns on them: the pool's jobs split into more, smaller
 * slices and run no faster. Four a core still lets a small machine run the thread counts the
 * determinism tests compare (1 to 3, also on one core), while a slip such as --threads 3000
 * no longer starts thousands of threads and their stacks. */
static void cap_threads(RtOptions *o)
{
    int cores = rt_default_threads(), most = 4 * cores;
    if (o->threads <= most)
        return;
    if (!o->quiet)
        rt_note(o->prog, "--threads %d is more than 4 a core (%d core%s online): using %d",
                o->threads, cores, cores == 1 ? "" : "s", most);
    o->threads = most;
}

/* Value-taking flags: their values land here. */
static int set_value(RtOptions *o, const char *flag, const char *v)
{
    long long n;
    if (strcmp(flag, "--epochs") == 0) {
        if (parse_int(v, 0, &n))
            return rt_error(o->prog, "--epochs: '%s' is not an integer >= 0", v), 1;
        o->epochs = (int)n;
    } else if (strcmp(flag, "--batch") == 0) {
        if (parse_int(v, 1, &n))
            return rt_error(o->prog, "--batch: '%s' is not an integer >= 1", v), 1;
        o->batch = (int)n;
    } else if (strcmp(flag, "--lr") == 0) {
        char *end;
        double x = strtod(v, &end);
        if (end == v || *end || !isfinite(x) || x <= 0)
            return rt_error(o->prog, "--lr: '%s' is not a number > 0", v), 1;
        o->lr = x;
    } else if (strcmp(flag, "--threads") == 0) {
        if (parse_int(v, 1, &n))
            return rt_error(o->prog, "--threads: '%s' is not an integer >= 1", v), 1;
        o->threads = (int)n;
    } else if (strcmp(flag, "--seed") == 0) {
        if (parse_seed(v, &o->seed))
            return rt_error(o->prog, "--seed: '%s' is not an integer >= 0", v), 1;
    } else {
        const char **slot = strcmp(flag, "--data") == 0 ? &o->data
                          : strcmp(flag, "--test") == 0 ? &o->test
                          : strcmp(flag, "--validation") == 0 ? &o->validation
                          : strcmp(flag, "--checkpoint") == 0 ? &o->checkpoint
                          : strcmp(flag, "--resume") == 0 ? &o->resume
                          : strcmp(flag, "--load") == 0 ? &o->load
                          : strcmp(flag, "--save") == 0 ? &o->save
                          : strcmp(flag, "--plot") == 0 ? &o->plot
                          : strcmp(flag, "--predict") == 0 ? &o->predict
                          : strcmp(flag, "--out") == 0 ? &o->out : &o->log;
        if (!*v)
            return rt_error(o->prog, "%s needs a file name", flag), 1;
        *slot = v;
    }
    return 0;
}

static int takes_value(const char *flag)
{
    static const char *const names[] = {"--epochs", "--batch", "--lr", "--seed", "--data",
                                         "--test", "--load", "--save", "--log", "--threads",
                                         "--plot", "--predict", "--out", "--validation",
                                         "--checkpoint", "--resume"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(flag, names[i]) == 0)
            return 1;
    return 0;
}

static void defaults(RtOptions *o, const NncModelDesc *m)
{
    memset(o, 0, sizeof *o);
    o->prog = m->name;
    o->epochs = m->epochs;
    o->batch = m->batch;
    o->lr = m->lr;
    o->seed = (unsigned long long)m->seed;
}

int rt_parse_args(RtOptions *o, int argc, char **argv, const NncModelDesc *m)
{
    defaults(o, m);
    for (int i = 1; i < argc; i++) {
        char flag[32];
        const char *a = argv[i], *eq = strchr(a, '=');
        size_t n = eq && a[0] == '-' ? (size_t)(eq - a) : strlen(a);
        snprintf(flag, sizeof flag, "%.*s", (int)(n < sizeof flag ? n : sizeof flag - 1), a);
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(m);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            version(m);
            return 0;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            o->quiet = 1;
        } else if (strcmp(a, "--profile") == 0) {
            o->profile = 1;
        } else if (n < sizeof flag && takes_value(flag)) {
            if (!eq && i + 1 == argc) {
                rt_error(o->prog, "%s needs a value (--help lists the options)", flag);
                return 1;
            }
            if (set_value(o, flag, eq ? eq + 1 : argv[++i]))
                return 1;
        } else {
            rt_error(o->prog, "%s '%s' (--help lists the options)",
                     a[0] == '-' ? "unknown option" : "unexpected argument", a);
            return 1;
        }
    }
    cap_threads(o);
    if (o->out && !o->predict) {
        rt_error(o->prog, "--out is where --predict writes: give --predict SRC too");
        return 1;
    }
    return -1;
}

int rt_source_from_arg(const char *prog, const char *flag, const char *arg,
                       const NncSourceDesc *like, NncSourceDesc *out, char **owned)
{
    memset(out, 0, sizeof *out);
    *owned = strdup(arg);
    if (!*owned)
        return rt_error(prog, "out of memory"), -1;
    const char *comma = strchr(arg, ',');
    int kind = like->kind == NNC_SRC_CSV || like->kind == NNC_SRC_IDX ? like->kind
             : comma ? NNC_SRC_IDX : NNC_SRC_CSV;
    if (like->kind == NNC_SRC_NPZ) { /* keeps the arrays' names and label */
        *out = *like;
        kind = NNC_SRC_NPZ;
    }
    out->kind = kind;
    out->path = *owned;
    if (kind == NNC_SRC_NPZ) {
        out->path2 = NULL;
        return 0;
    }
    if (kind == NNC_SRC_CSV) {
        out->header = like->kind == NNC_SRC_CSV && like->header;
        out->label = like->kind == NNC_SRC_CSV && like->label;
        return 0;
    }
    if (!comma || comma == arg || !comma[1]) {
        rt_error(prog, "%s: idx data needs IMAGES,LABELS (two files), got '%s'", flag, arg);
        free(*owned);
        *owned = NULL;
        return -1;
    }
    (*owned)[comma - arg] = 0;
    out->path2 = *owned + (comma - arg) + 1;
    return 0;
}
