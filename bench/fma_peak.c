/* fma_peak.c - the yardstick of bench/RESULTS.md's "fraction of FMA peak": one core's
 * FMA peak measured, not taken from a data sheet.
 * Build: cc -O3 -mavx512f -o fma_peak bench/fma_peak.c (an AVX-512 host).
 * FMA peak of one core: 24 independent chains of 16-lane f32 FMAs; and the clock from a
 * chain of dependent integer adds (1 cycle each). Times are CPU (user) seconds. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(void)
{
    __m512 a[24], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 24; i++) a[i] = _mm512_set1_ps((float)i);
    long n = 100000000;
    double t0 = cpu();
    for (long k = 0; k < n; k++)
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
    double t = cpu() - t0;
    float s = 0; for (int i = 0; i < 24; i++) s += _mm512_reduce_add_ps(a[i]);
    printf("fma: %.1f GFLOP/s (one core)  [%g]\n", 24.0 * 16 * 2 * n / t / 1e9, s);
    unsigned long v = 1; long m = 2000000000;
    t0 = cpu();
    for (long k = 0; k < m; k++) __asm__ volatile("add $1, %0" : "+r"(v));
    t = cpu() - t0;
    printf("clock: %.2f GHz (dependent adds)  [%lu]\n", m / t / 1e9, v);
    return 0;
}
