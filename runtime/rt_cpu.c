/* rt_cpu.c - the CPU features a generated executable needs, checked before any of its code
 * runs (spec section 6): a program compiled for AVX-512 on a CPU without it exits 1 naming
 * what is missing, never with an illegal instruction.
 *
 * One table of the features nnc can require, in LLVM's names, with where CPUID reports
 * them. The compiler asks the same table (nnc_cpu_feature_known) which of its target's
 * features to list, so a feature it cannot check is never required. AVX and AVX-512 also
 * need the operating system to save their registers (XGETBV's XCR0). */
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define RT_X86 1
#endif

#include "rt_internal.h"

enum { EAX, EBX, ECX, EDX };
enum { OS_NONE, OS_AVX, OS_AVX512 }; /* register state the OS must save */

typedef struct Feature {
    const char *name;
    unsigned leaf, sub;
    int reg, bit, os;
} Feature;

static const Feature features[] = {
    {"sse3", 1, 0, ECX, 0, OS_NONE},        {"pclmul", 1, 0, ECX, 1, OS_NONE},
    {"ssse3", 1, 0, ECX, 9, OS_NONE},       {"fma", 1, 0, ECX, 12, OS_AVX},
    {"cx16", 1, 0, ECX, 13, OS_NONE},       {"sse4.1", 1, 0, ECX, 19, OS_NONE},
    {"sse4.2", 1, 0, ECX, 20, OS_NONE},     {"movbe", 1, 0, ECX, 22, OS_NONE},
    {"popcnt", 1, 0, ECX, 23, OS_NONE},     {"aes", 1, 0, ECX, 25, OS_NONE},
    {"xsave", 1, 0, ECX, 26, OS_NONE},      {"avx", 1, 0, ECX, 28, OS_AVX},
    {"f16c", 1, 0, ECX, 29, OS_AVX},
    {"bmi", 7, 0, EBX, 3, OS_NONE},         {"avx2", 7, 0, EBX, 5, OS_AVX},
    {"bmi2", 7, 0, EBX, 8, OS_NONE},        {"avx512f", 7, 0, EBX, 16, OS_AVX512},
    {"avx512dq", 7, 0, EBX, 17, OS_AVX512}, {"adx", 7, 0, EBX, 19, OS_NONE},
    {"avx512ifma", 7, 0, EBX, 21, OS_AVX512}, {"avx512pf", 7, 0, EBX, 26, OS_AVX512},
    {"avx512er", 7, 0, EBX, 27, OS_AVX512}, {"avx512cd", 7, 0, EBX, 28, OS_AVX512},
    {"sha", 7, 0, EBX, 29, OS_NONE},        {"avx512bw", 7, 0, EBX, 30, OS_AVX512},
    {"avx512vl", 7, 0, EBX, 31, OS_AVX512},
    {"avx512vbmi", 7, 0, ECX, 1, OS_AVX512}, {"avx512vbmi2", 7, 0, ECX, 6, OS_AVX512},
    {"gfni", 7, 0, ECX, 8, OS_NONE},        {"vaes", 7, 0, ECX, 9, OS_AVX},
    {"vpclmulqdq", 7, 0, ECX, 10, OS_AVX},  {"avx512vnni", 7, 0, ECX, 11, OS_AVX512},
    {"avx512bitalg", 7, 0, ECX, 12, OS_AVX512}, {"avx512vpopcntdq", 7, 0, ECX, 14, OS_AVX512},
    {"avx512bf16", 7, 1, EAX, 5, OS_AVX512},
    {"sahf", 0x80000001u, 0, ECX, 0, OS_NONE}, {"lzcnt", 0x80000001u, 0, ECX, 5, OS_NONE},
};

static const Feature *find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof features / sizeof *features; i++)
        if (strlen(features[i].name) == len && strncmp(features[i].name, name, len) == 0)
            return &features[i];
    return NULL;
}

int nnc_cpu_feature_known(const char *name)
{
    return find(name, strlen(name)) != NULL;
}

#ifdef RT_X86
/* The register state the OS saves: XCR0 bits 1-2 (SSE, AVX), 5-7 (AVX-512). */
static int os_saves(int os)
{
    unsigned a, b, c, d;
    if (os == OS_NONE)
        return 1;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) /* OSXSAVE */
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    unsigned need = os == OS_AVX ? 0x6u : 0xe6u;
    return (lo & need) == need;
}

static int has(const Feature *f)
{
    unsigned r[4];
    if (!__get_cpuid_count(f->leaf, f->sub, &r[EAX], &r[EBX], &r[ECX], &r[EDX]))
        return 0;
    return (r[f->reg] >> f->bit & 1u) && os_saves(f->os);
}
#else
static int has(const Feature *f)
{
    (void)f;
    return 0;
}
#endif

int rt_cpu_check(const char *prog, const char *needed)
{
    char missing[512] = "";
    int count = 0;
    for (const char *p = needed ? needed : ""; *p;) {
        size_t len = strcspn(p, ",");
        const Feature *f = find(p, len);
        if (f && !has(f)) {
            size_t at = strlen(missing);
            snprintf(missing + at, sizeof missing - at, "%s%.*s", count ? ", " : "", (int)len, p);
            count++;
        }
        p += len + (p[len] == ',');
    }
    if (count == 0)
        return 0;
    rt_error(prog, "this program needs %s; this CPU lacks %s (compile it with nnc --cpu=NAME "
             "for this CPU, e.g. --cpu=native)", missing, count == 1 ? "it" : "them");
    return -1;
}
