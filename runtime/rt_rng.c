/* rt_rng.c - the deterministic random numbers behind initialisers and shuffling.
 *
 * Generator: xoshiro256** (D. Blackman, S. Vigna, 2018), written from its published
 * definition; its state is filled by splitmix64, as its authors advise. A seed and a
 * stream number give one independent sequence: nnc_init_param draws param i's values from
 * stream i alone, so they depend on (seed, i) and on nothing else; shuffling has a stream
 * of its own. Only integer arithmetic decides the bits, plus libm's log/sqrt/cos/sin for
 * normal values: the same seed gives the same weights, byte for byte, on one machine. */
#include <math.h>

#include "rt_internal.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void rt_rng_seed(RtRng *r, uint64_t seed, uint64_t stream)
{
    /* Mix the seed and the stream through splitmix64 separately so that (seed, stream)
     * and (seed + 1, stream - 1) do not share a key. */
    uint64_t a = seed, b = stream ^ 0x6A09E667F3BCC909ULL;
    uint64_t key = splitmix64(&a) ^ rotl(splitmix64(&b), 17);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&key);
}

uint64_t rt_rng_next(RtRng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double rt_rng_uniform(RtRng *r)
{
    return (double)(rt_rng_next(r) >> 11) * 0x1.0p-53;
}

double rt_rng_normal(RtRng *r)
{
    /* Box-Muller with u1 in (0, 1] so that log(u1) is finite. */
    double u1 = 1.0 - rt_rng_uniform(r);
    double u2 = rt_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

uint64_t rt_rng_below(RtRng *r, uint64_t n)
{
    /* Reject the top partial copy of [0, n) so that every value is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = rt_rng_next(r);
    while (x >= limit);
    return x % n;
}

/* Spec 8: fan_in is the last dim, fan_out the one before; rank 1: both the dim; rank 0: 1.
 * Spec 9, ranks 3 and 4 (conv weights [F, C, kh, kw]): fan_in = dims[1] * r and fan_out =
 * dims[0] * r, r the product of the dims after the second (PyTorch's rule). */
static void fans(const NncParamDesc *p, double *fan_in, double *fan_out)
{
    if (p->rank == 0) {
        *fan_in = *fan_out = 1;
    } else if (p->rank == 1) {
        *fan_in = *fan_out = p->dims[0];
    } else if (p->rank >= 3) {
        double r = 1;
        for (int i = 2; i < p->rank; i++)
            r *= p->dims[i];
        *fan_in = p->dims[1] * r;
        *fan_out = p->dims[0] * r;
    } else {
        *fan_in = p->dims[p->rank - 1];
        *fan_out = p->dims[p->rank - 2];
    }
}

static void fill_uniform(RtRng *r, double lo, double hi, double *out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = lo + (hi - lo) * rt_rng_uniform(r);
}

static void fill_normal(RtRng *r, double mean, double std, double *out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = mean + std * rt_rng_normal(r);
}

void nnc_init_param(const NncParamDesc *p, int index, unsigned long long seed, double *out)
{
    RtRng r;
    rt_rng_seed(&r, seed, (uint64_t)index);
    double fan_in, fan_out, bound;
    fans(p, &fan_in, &fan_out);
    switch (p->init) {
    case NNC_INIT_ONES:
    case NNC_INIT_CONST:
        for (int i = 0; i < p->size; i++)
            out[i] = p->init == NNC_INIT_ONES ? 1.0 : p->a;
        break;
    case NNC_INIT_UNIFORM:
        fill_uniform(&r, p->a, p->b, out, p->size);
        break;
    case NNC_INIT_NORMAL:
        fill_normal(&r, p->a, p->b, out, p->size);
        break;
    case NNC_INIT_XAVIER:
        bound = sqrt(6.0 / (fan_in + fan_out));
        fill_uniform(&r, -bound, bound, out, p->size);
        break;
    case NNC_INIT_HE:
        fill_normal(&r, 0.0, sqrt(2.0 / fan_in), out, p->size);
        break;
    default: /* NNC_INIT_ZEROS */
        for (int i = 0; i < p->size; i++)
            out[i] = 0.0;
        break;
    }
}

/* ---- dropout masks (the bits are fixed in notes/conv-ir.md: the interpreter and generated
 * code draw the same masks, on any thread count) ---- */

static uint64_t mix64(uint64_t z)
{
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ULL;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The key of one (seed, step, id, sample). */
static uint64_t dropout_key(const NncRun *run, int id, long long sample)
{
    uint64_t s = mix64((uint64_t)run->o.seed ^ 0x6a09e667f3bcc909ULL);
    s = mix64(s ^ (uint64_t)run->step);
    return mix64(s ^ ((uint64_t)id << 40 ^ (uint64_t)sample));
}

/* Whether element e is kept: u_e in [0, 1) from 53 bits, kept iff u_e >= p. */
static int dropout_keep(uint64_t key, long long e, double p)
{
    uint64_t z = mix64(key + (uint64_t)(e + 1) * 0x9e3779b97f4a7c15ULL);
    return (double)(z >> 11) * 0x1.0p-53 >= p;
}

void nnc_rt_dropout_f64(NncRun *run, int id, long long sample, double p, long long n, double *out)
{
    uint64_t key = dropout_key(run, id, sample);
    double kept = 1.0 / (1.0 - p);
    for (long long e = 0; e < n; e++)
        out[e] = dropout_keep(key, e, p) ? kept : 0.0;
}

void nnc_rt_dropout_f32(NncRun *run, int id, long long sample, double p, long long n, float *out)
{
    uint64_t key = dropout_key(run, id, sample);
    float kept = (float)(1.0 / (1.0 - p));
    for (long long e = 0; e < n; e++)
        out[e] = dropout_keep(key, e, p) ? kept : 0.0f;
}
