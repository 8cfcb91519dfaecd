/* test_dropout.c - the runtime's dropout masks (runtime/rt_rng.c, bits in notes/conv-ir.md):
 * known masks computed independently (Python, from the note's formulas), f32 equal to f64
 * rounded, p = 0 all kept. The step counter across batches and epochs is checked end to
 * end by tests/py/test_conv_interp.py. */
#include <stdio.h>
#include <string.h>

#include "rt_internal.h"

static int failures;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                 \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
            failures++;                                                     \
        }                                                                   \
    } while (0)

enum { N = 32 };

/* Kept (1) or dropped (0) for (seed, step, id, sample, p), from the note's formulas. */
static const struct {
    unsigned long long seed;
    long long step;
    int id;
    long long sample;
    double p;
    int keep[N];
} known[] = {
    {7, 3, 2, 5, 0.5, {0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1,
                       1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1}},
    {0, 0, 0, 0, 0.1, {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1,
                       0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1}},
};

static void test_known(void)
{
    for (size_t k = 0; k < sizeof known / sizeof *known; k++) {
        NncRun run;
        memset(&run, 0, sizeof run);
        run.o.seed = known[k].seed;
        run.step = known[k].step;
        double m[N];
        float f[N];
        nnc_rt_dropout_f64(&run, known[k].id, known[k].sample, known[k].p, N, m);
        nnc_rt_dropout_f32(&run, known[k].id, known[k].sample, known[k].p, N, f);
        double kept = 1.0 / (1.0 - known[k].p);
        for (int e = 0; e < N; e++) {
            CHECK(m[e] == (known[k].keep[e] ? kept : 0.0), "case %zu element %d: %g", k, e, m[e]);
            CHECK(f[e] == (float)m[e], "case %zu element %d: f32 %g, f64 %g", k, e, f[e], m[e]);
        }
    }
}

static void test_p_zero(void)
{
    NncRun run;
    memset(&run, 0, sizeof run);
    double m[N];
    nnc_rt_dropout_f64(&run, 1, 2, 0.0, N, m);
    for (int e = 0; e < N; e++)
        CHECK(m[e] == 1.0, "p = 0: element %d is %g", e, m[e]);
}

int main(void)
{
    test_known();
    test_p_zero();
    if (failures)
        fprintf(stderr, "test_dropout: %d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
