/* cg_target.c - the target machine (the host's CPU, or one named by --cpu, with
 * --cpu-features), what the kernels need to know of it (vector width, registers) and what
 * the executable must check at start; verification and the new pass manager. Every
 * message LLVM hands back is disposed. */
#include "cg.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

static void report(const char *what, char *msg)
{
    fprintf(stderr, "nnc: error: %s: %s\n", what, msg ? msg : "unknown LLVM error");
    LLVMDisposeMessage(msg);
}

static LLVMCodeGenOptLevel codegen_level(int opt_level)
{
    switch (opt_level) {
    case 0: return LLVMCodeGenLevelNone;
    case 1: return LLVMCodeGenLevelLess;
    case 3: return LLVMCodeGenLevelAggressive;
    default: return LLVMCodeGenLevelDefault;
    }
}

static LLVMTargetMachineRef machine(const char *cpu, const char *features, int opt_level)
{
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        report("no LLVM target for this host", err);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features,
                                                      codegen_level(opt_level), LLVMRelocPIC,
                                                      LLVMCodeModelDefault);
    LLVMDisposeMessage(triple);
    if (!tm)
        fprintf(stderr, "nnc: error: cannot create the LLVM target machine\n");
    return tm;
}

/* ---- the target CPU: a name and features, as LLVM knows them ---- */

/* Feature sets of the x86-64 levels and of the CPUs nnc accepts by name (LLVM's names).
 * Only features the code generator can make use of or the runtime can check matter here:
 * they decide the vector width, the register count and what the executable checks. */
#define V2 "cx16,sahf,popcnt,sse3,sse4.1,sse4.2,ssse3"
#define V3 V2 ",avx,avx2,bmi,bmi2,f16c,fma,lzcnt,movbe,xsave"
#define V4 V3 ",avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
#define ICL ",avx512vbmi,avx512vbmi2,avx512vnni,avx512ifma,avx512bitalg,avx512vpopcntdq,gfni,vaes,vpclmulqdq"
/* l2_kb: the core's L2 (the products' row panels are sized to it); the x86-64 levels
 * assume 256 KB, the smallest L2 of the cores that have their features. */
static const struct {
    const char *name, *features;
    int l2_kb;
    const char *llvm_name; /* the name LLVM knows it by, when not its own */
} cpus[] = {
    {"x86-64", "", 256, NULL}, {"x86-64-v2", V2, 256, NULL}, {"x86-64-v3", V3, 256, NULL},
    {"x86-64-v4", V4, 256, NULL},
    {"haswell", V3 ",aes,pclmul", 256, NULL}, {"broadwell", V3 ",adx,aes,pclmul", 256, NULL},
    {"skylake", V3 ",adx,aes,pclmul", 256, NULL}, {"skylake-avx512", V4 ",adx,aes,pclmul", 1024, NULL},
    {"cascadelake", V4 ",adx,aes,pclmul,avx512vnni", 1024, NULL},
    {"icelake-server", V4 ",adx,aes,pclmul,sha" ICL, 1280, NULL},
    {"znver1", V3 ",adx,aes,pclmul,sha", 512, NULL}, {"znver2", V3 ",adx,aes,pclmul,sha", 512, NULL},
    {"znver3", V3 ",adx,aes,pclmul,sha,vaes,vpclmulqdq", 512, NULL},
    /* LLVM knows znver4 from version 16: before it, znver3's schedule with znver4's features */
#if NNC_LLVM_MAJOR >= 16
    {"znver4", V4 ",adx,aes,pclmul,sha,avx512bf16" ICL, 1024, NULL},
#else
    {"znver4", V4 ",adx,aes,pclmul,sha,avx512bf16" ICL, 1024, "znver3"},
#endif
};

/* The host's L2 per core as the C library reads it from CPUID; 256 KB when it cannot. */
static int host_l2_kb(void)
{
    long bytes = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return bytes >= 64 * 1024 && bytes <= (1L << 30) ? (int)(bytes / 1024) : 256;
}

/* What a feature implies (LLVM's X86 feature graph, the part that matters here): adding
 * one adds these, removing one of these removes it. */
static const struct {
    const char *feature, *implies;
} implied[] = {
    {"avx", "sse4.2"}, {"avx2", "avx"}, {"fma", "avx"}, {"f16c", "avx"},
    {"avx512f", "avx2,fma,f16c"}, {"vaes", "avx"}, {"vpclmulqdq", "avx"},
    {"sse4.2", "sse4.1"}, {"sse4.1", "ssse3"}, {"ssse3", "sse3"},
};

typedef struct FeatureSet {
    const char *names[128];
    int count;
} FeatureSet;

static int set_find(const FeatureSet *s, const char *name, size_t len)
{
    for (int i = 0; i < s->count; i++)
        if (strlen(s->names[i]) == len && strncmp(s->names[i], name, len) == 0)
            return i;
    return -1;
}

static void set_add_list(FeatureSet *s, const char *list, Arena *a);

static void set_add(FeatureSet *s, const char *name, size_t len, Arena *a)
{
    if (len == 0 || set_find(s, name, len) >= 0 || s->count == 128)
        return;
    s->names[s->count++] = arena_strndup(a, name, len);
    for (size_t i = 0; i < sizeof implied / sizeof *implied; i++)
        if (strlen(implied[i].feature) == len && strncmp(implied[i].feature, name, len) == 0)
            set_add_list(s, implied[i].implies, a);
}

static void set_add_list(FeatureSet *s, const char *list, Arena *a)
{
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        set_add(s, p, len, a);
        p += len + (p[len] == ',');
    }
}

/* Removes name and every feature that implies it. */
static void set_remove(FeatureSet *s, const char *name, size_t len)
{
    int at = set_find(s, name, len);
    if (at < 0)
        return;
    const char *gone = s->names[at];
    s->names[at] = s->names[--s->count];
    for (size_t i = 0; i < sizeof implied / sizeof *implied; i++) {
        const char *imp = implied[i].implies;
        for (const char *p = imp; *p;) {
            size_t l = strcspn(p, ",");
            if (l == strlen(gone) && strncmp(p, gone, l) == 0)
                set_remove(s, implied[i].feature, strlen(implied[i].feature));
            p += l + (p[l] == ',');
        }
    }
}

/* The host's features: the "+name" entries of LLVM's list. */
static void host_features(FeatureSet *s, Arena *a)
{
    char *list = LLVMGetHostCPUFeatures();
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (*p == '+')
            set_add(s, p + 1, len - 1, a);
        p += len + (p[len] == ',');
    }
    LLVMDisposeMessage(list);
}

/* Applies --cpu-features (+a,-b); false after a message when an entry is malformed or
 * names a feature the runtime cannot check (it could make the executable crash). */
static bool apply_mods(FeatureSet *s, const char *mods, Arena *a)
{
    for (const char *p = mods ? mods : ""; *p;) {
        size_t len = strcspn(p, ",");
        char *name = arena_strndup(a, p + 1, len ? len - 1 : 0);
        if (len < 2 || (*p != '+' && *p != '-')) {
            fprintf(stderr, "nnc: error: --cpu-features: '%.*s' is not +FEATURE or -FEATURE\n", (int)len, p);
            return false;
        }
        if (!nnc_cpu_feature_known(name)) {
            fprintf(stderr, "nnc: error: --cpu-features: unknown feature '%s' (nnc knows the x86-64 "
                    "levels' features, e.g. avx2, fma, avx512f, avx512bw)\n", name);
            return false;
        }
        if (*p == '+')
            set_add(s, name, len - 1, a);
        else
            set_remove(s, name, len - 1);
        p += len + (p[len] == ',');
    }
    return true;
}

/* The features, comma-separated, that the runtime can check: what the executable needs. */
static const char *required(const FeatureSet *s, Arena *a)
{
    char *out = arena_strndup(a, "", 0);
    for (int i = 0; i < s->count; i++)
        if (nnc_cpu_feature_known(s->names[i]))
            out = arena_printf(a, "%s%s%s", out, *out ? "," : "", s->names[i]);
    return out;
}

/* "a,b" -> "+a,+b" */
static const char *plus_list(const char *list, Arena *a)
{
    char *out = arena_strndup(a, "", 0);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        out = arena_printf(a, "%s%s+%.*s", out, *out ? "," : "", (int)len, p);
        p += len + (p[len] == ',');
    }
    return out;
}

static const char *known_cpus(Arena *a)
{
    char *out = arena_strndup(a, "native", 6);
    for (size_t i = 0; i < sizeof cpus / sizeof *cpus; i++)
        out = arena_printf(a, "%s, %s", out, cpus[i].name);
    return out;
}

/* LLVM's own partial and runtime unrolling off, once a process. The kernels are unrolled
 * here, to the target's registers; LLVM unrolls further wherever the CPU's scheduling model
 * has a loop buffer size, which znver3's has and the generic model (LLVM 14's name for a
 * Zen 5) has not: fashion_mlp's optimised IR was 29 800 lines for znver3 against 10 000,
 * and its compile 2.4 times as long. Loops' unroll.count metadata is not affected. */
static void llvm_options(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    const char *argv[] = {"nnc", "-unroll-allow-partial=0", "-unroll-runtime=0"};
    LLVMParseCommandLineOptions(3, argv, NULL);
}

bool cg_target_init(CgTarget *t, const char *cpu, const char *mods, int opt_level, Arena *a)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    llvm_options();
    FeatureSet *s = arena_alloc(a, sizeof *s);
    s->count = 0;
    const char *llvm_features = mods ? mods : "";
    char *host = NULL;
    if (!cpu || strcmp(cpu, "native") == 0) {
        /* LLVM 14 may name this CPU "generic"; its feature string still lists avx2,
         * avx512f, ..., so both are passed and the vectorizer knows the real width. */
        host = LLVMGetHostCPUName();
        cpu = arena_strndup(a, host, strlen(host));
        LLVMDisposeMessage(host);
        host = LLVMGetHostCPUFeatures();
        llvm_features = arena_printf(a, "%s%s%s", host, mods && *mods ? "," : "", mods ? mods : "");
        LLVMDisposeMessage(host);
        host_features(s, a);
        t->l2_kb = host_l2_kb();
    } else {
        size_t i = 0;
        while (i < sizeof cpus / sizeof *cpus && strcmp(cpus[i].name, cpu) != 0)
            i++;
        if (i == sizeof cpus / sizeof *cpus) {
            fprintf(stderr, "nnc: error: --cpu: unknown CPU '%s' (known: %s)\n", cpu, known_cpus(a));
            return false;
        }
        set_add_list(s, cpus[i].features, a);
        t->l2_kb = cpus[i].l2_kb;
        if (cpus[i].llvm_name)
            cpu = cpus[i].llvm_name;
        /* the set spelled out, so LLVM enables what the runtime will check */
        llvm_features = arena_printf(a, "%s%s%s", plus_list(cpus[i].features, a),
                                     *cpus[i].features && mods && *mods ? "," : "", mods ? mods : "");
    }
    if (!apply_mods(s, mods, a))
        return false;
    t->cpu = cpu;
    t->required = required(s, a);
    t->vector_bytes = set_find(s, "avx512f", 7) >= 0 ? 64 : set_find(s, "avx", 3) >= 0 ? 32 : 16;
    t->vector_regs = set_find(s, "avx512f", 7) >= 0 ? 32 : 16;
    t->llvm_cpu = cpu;
    t->llvm_features = llvm_features;
    t->opt_level = opt_level;
    t->tm = machine(cpu, llvm_features, opt_level);
    return t->tm != NULL;
}

LLVMTargetMachineRef cg_target_machine(const CgTarget *t)
{
    return machine(t->llvm_cpu, t->llvm_features, t->opt_level);
}

void cg_target_module(LLVMModuleRef mod, LLVMTargetMachineRef tm)
{
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(mod, layout);
    LLVMDisposeTargetData(layout);
}

bool cg_verify(LLVMModuleRef mod)
{
    char *msg = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
        report("internal error: the generated LLVM IR does not verify", msg);
        return false;
    }
    LLVMDisposeMessage(msg);
    return true;
}

bool cg_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level)
{
    char passes[32];
    snprintf(passes, sizeof passes, "default<O%d>", opt_level < 0 ? 0 : opt_level > 3 ? 3 : opt_level);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(opts, opt_level >= 2);
    LLVMPassBuilderOptionsSetSLPVectorization(opts, opt_level >= 2);
    LLVMPassBuilderOptionsSetLoopUnrolling(opts, opt_level >= 2);
    LLVMPassBuilderOptionsSetLoopInterleaving(opts, opt_level >= 2);
    LLVMErrorRef err = LLVMRunPasses(mod, passes, tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    if (err) {
        char *msg = LLVMGetErrorMessage(err);
        fprintf(stderr, "nnc: error: internal error: LLVM optimisation failed: %s\n", msg);
        LLVMDisposeErrorMessage(msg);
        return false;
    }
    return true;
}
