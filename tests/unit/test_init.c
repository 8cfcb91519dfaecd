/* test_init.c - the runtime's generator and initialisers (spec 8): known outputs of
 * xoshiro256**, statistics of every initialiser over many values, fan rules by rank, and
 * determinism in (seed, param index) alone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnc_rt.h"
#include "rt_internal.h"

static int fails;

#define CHECK(cond, ...)                                       \
    do {                                                       \
        if (!(cond)) {                                         \
            fails++;                                           \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);        \
            printf(__VA_ARGS__);                               \
            putchar('\n');                                     \
        }                                                      \
    } while (0)

typedef struct Stats {
    double mean, std, min, max;
    int n;
} Stats;

static Stats stats(const double *v, int n)
{
    Stats s = {0, 0, INFINITY, -INFINITY, n};
    for (int i = 0; i < n; i++) {
        s.mean += v[i];
        s.min = v[i] < s.min ? v[i] : s.min;
        s.max = v[i] > s.max ? v[i] : s.max;
    }
    s.mean /= n;
    for (int i = 0; i < n; i++)
        s.std += (v[i] - s.mean) * (v[i] - s.mean);
    s.std = sqrt(s.std / (n - 1));
    return s;
}

static NncParamDesc param(int init, double a, double b, int rank, int d0, int d1, int d2)
{
    NncParamDesc p = {"p", rank, {d0, d1, d2, 0}, 1, init, a, b};
    for (int i = 0; i < rank; i++)
        p.size *= p.dims[i];
    return p;
}

static double *values(const NncParamDesc *p, int index, unsigned long long seed)
{
    double *v = malloc(sizeof *v * (size_t)p->size);
    nnc_init_param(p, index, seed, v);
    return v;
}

/* Reference outputs of xoshiro256** from the state {1, 2, 3, 4}. */
static void test_known_outputs(void)
{
    RtRng r = {{1, 2, 3, 4}};
    const uint64_t want[4] = {11520ULL, 0ULL, 1509978240ULL, 1215971899390074240ULL};
    for (int i = 0; i < 4; i++) {
        uint64_t got = rt_rng_next(&r);
        CHECK(got == want[i], "xoshiro256** output %d: %llu", i, (unsigned long long)got);
    }
}

/* A uniform [lo, hi) sample: inside, mean and std of the distribution, reaching both ends. */
static void check_uniform(const char *what, const double *v, int n, double lo, double hi)
{
    Stats s = stats(v, n);
    double width = hi - lo, sd = width / sqrt(12.0);
    CHECK(s.min >= lo && s.max < hi, "%s: range [%g, %g] outside [%g, %g)", what, s.min, s.max, lo, hi);
    CHECK(fabs(s.mean - (lo + hi) / 2) < 4 * sd / sqrt(n), "%s: mean %g", what, s.mean);
    CHECK(fabs(s.std / sd - 1) < 0.02, "%s: std %g, want %g", what, s.std, sd);
    CHECK(s.min < lo + 0.01 * width && s.max > hi - 0.01 * width, "%s: ends not reached", what);
}

/* A normal sample: mean, std, and untruncated tails (about 0.27% beyond 3 std). */
static void check_normal(const char *what, const double *v, int n, double mean, double sd)
{
    Stats s = stats(v, n);
    int beyond3 = 0;
    for (int i = 0; i < n; i++)
        beyond3 += fabs(v[i] - mean) > 3 * sd;
    double frac = (double)beyond3 / n;
    CHECK(fabs(s.mean - mean) < 4 * sd / sqrt(n), "%s: mean %g, want %g", what, s.mean, mean);
    CHECK(fabs(s.std / sd - 1) < 0.02, "%s: std %g, want %g", what, s.std, sd);
    CHECK(frac > 0.0018 && frac < 0.0036, "%s: %.4f%% beyond 3 std", what, 100 * frac);
}

static void test_distributions(void)
{
    NncParamDesc xa = param(NNC_INIT_XAVIER, 0, 0, 2, 200, 300, 0);
    double *v = values(&xa, 0, 1);
    check_uniform("xavier [200, 300]", v, xa.size, -sqrt(6.0 / 500), sqrt(6.0 / 500));
    free(v);

    NncParamDesc he = param(NNC_INIT_HE, 0, 0, 2, 300, 400, 0);
    v = values(&he, 1, 1);
    check_normal("he [300, 400]", v, he.size, 0, sqrt(2.0 / 400));
    free(v);

    NncParamDesc nm = param(NNC_INIT_NORMAL, 2.0, 0.5, 1, 100000, 0, 0);
    v = values(&nm, 2, 7);
    check_normal("normal(2, 0.5)", v, nm.size, 2.0, 0.5);
    free(v);

    NncParamDesc un = param(NNC_INIT_UNIFORM, -1.0, 3.0, 1, 100000, 0, 0);
    v = values(&un, 3, 7);
    check_uniform("uniform(-1, 3)", v, un.size, -1.0, 3.0);
    free(v);
}

/* Fans: rank 2 the last two dims, rank 1 the dim twice, rank 0 one; ranks 3 and 4 (conv
 * weights [F, C, kh, kw]) dims[1] and dims[0] times the product of the rest (spec 9). */
static void test_fans(void)
{
    NncParamDesc r3 = param(NNC_INIT_HE, 0, 0, 3, 20, 30, 40);
    double *v = values(&r3, 0, 3);
    check_normal("he [20, 30, 40]", v, r3.size, 0, sqrt(2.0 / (30 * 40)));
    free(v);
    NncParamDesc r3x = param(NNC_INIT_XAVIER, 0, 0, 3, 20, 30, 40);
    v = values(&r3x, 0, 3);
    check_uniform("xavier [20, 30, 40]", v, r3x.size, -sqrt(6.0 / (30 * 40 + 20 * 40)),
                  sqrt(6.0 / (30 * 40 + 20 * 40)));
    free(v);
    NncParamDesc r4 = {"k", 4, {64, 32, 3, 3}, 64 * 32 * 9, NNC_INIT_HE, 0, 0};
    v = values(&r4, 1, 3);
    check_normal("he [64, 32, 3, 3]", v, r4.size, 0, sqrt(2.0 / (32 * 9)));
    free(v);
    NncParamDesc r4x = {"k", 4, {64, 32, 3, 3}, 64 * 32 * 9, NNC_INIT_XAVIER, 0, 0};
    v = values(&r4x, 1, 3);
    check_uniform("xavier [64, 32, 3, 3]", v, r4x.size, -sqrt(6.0 / ((32 + 64) * 9)),
                  sqrt(6.0 / ((32 + 64) * 9)));
    free(v);
    NncParamDesc r1 = param(NNC_INIT_XAVIER, 0, 0, 1, 50000, 0, 0);
    v = values(&r1, 0, 3);
    check_uniform("xavier [50000]", v, r1.size, -sqrt(6.0 / 100000), sqrt(6.0 / 100000));
    free(v);
    /* rank 0: xavier bound sqrt(6/2), he std sqrt(2); many seeds give the distribution */
    NncParamDesc r0 = param(NNC_INIT_XAVIER, 0, 0, 0, 0, 0, 0), r0h = param(NNC_INIT_HE, 0, 0, 0, 0, 0, 0);
    enum { N = 100000 };
    double *a = malloc(sizeof *a * N), *b = malloc(sizeof *b * N);
    for (int i = 0; i < N; i++) {
        nnc_init_param(&r0, 0, (unsigned long long)i, &a[i]);
        nnc_init_param(&r0h, 0, (unsigned long long)i, &b[i]);
    }
    check_uniform("xavier scalar over seeds", a, N, -sqrt(3.0), sqrt(3.0));
    check_normal("he scalar over seeds", b, N, 0, sqrt(2.0));
    free(a);
    free(b);
}

static void test_constants(void)
{
    NncParamDesc z = param(NNC_INIT_ZEROS, 0, 0, 2, 3, 4, 0), o = param(NNC_INIT_ONES, 0, 0, 1, 5, 0, 0);
    NncParamDesc c = param(NNC_INIT_CONST, -2.5, 0, 0, 0, 0, 0);
    double *vz = values(&z, 0, 9), *vo = values(&o, 1, 9), *vc = values(&c, 2, 9);
    for (int i = 0; i < z.size; i++)
        CHECK(vz[i] == 0.0, "zeros[%d] = %g", i, vz[i]);
    for (int i = 0; i < o.size; i++)
        CHECK(vo[i] == 1.0, "ones[%d] = %g", i, vo[i]);
    CHECK(vc[0] == -2.5, "const(-2.5) = %g", vc[0]);
    free(vz);
    free(vo);
    free(vc);
}

static void test_determinism(void)
{
    NncParamDesc p = param(NNC_INIT_HE, 0, 0, 2, 16, 16, 0);
    double *a = values(&p, 3, 42), *b = values(&p, 3, 42), *c = values(&p, 4, 42), *d = values(&p, 3, 43);
    CHECK(memcmp(a, b, sizeof *a * (size_t)p.size) == 0, "same seed and index, same bits");
    CHECK(memcmp(a, c, sizeof *a * (size_t)p.size) != 0, "another index, other values");
    CHECK(memcmp(a, d, sizeof *a * (size_t)p.size) != 0, "another seed, other values");
    /* A longer param of the same index starts with the same draws: values depend on
     * (seed, index) and the position, not on what else the model holds. */
    NncParamDesc longer = param(NNC_INIT_HE, 0, 0, 2, 32, 16, 0);
    double *e = values(&longer, 3, 42);
    CHECK(memcmp(a, e, sizeof *a * (size_t)p.size) == 0, "prefix of a longer param");
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    RtRng r1, r2;
    rt_rng_seed(&r1, 5, RT_STREAM_SHUFFLE);
    rt_rng_seed(&r2, 5, 0);
    CHECK(rt_rng_next(&r1) != rt_rng_next(&r2), "the shuffle stream is not param 0's");
    int hist[7] = {0};
    for (int i = 0; i < 70000; i++)
        hist[rt_rng_below(&r1, 7)]++;
    for (int k = 0; k < 7; k++)
        CHECK(abs(hist[k] - 10000) < 400, "rt_rng_below(7): %d draws of %d", hist[k], k);
}

int main(void)
{
    test_known_outputs();
    test_distributions();
    test_fans();
    test_constants();
    test_determinism();
    if (fails)
        printf("%d failures\n", fails);
    return fails != 0;
}
