/* cg_target.c - the host target machine, verification and the new pass manager. Every
 * message LLVM hands back is disposed. */
#include "cg.h"

#include <stdio.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
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

/* LLVM 14 may name this CPU "generic"; its feature string still lists avx2, avx512f, ...,
 * so both are passed and the vectorizer knows the real vector width. */
LLVMTargetMachineRef cg_target_machine(int opt_level)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        report("no LLVM target for this host", err);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features,
                                                      codegen_level(opt_level), LLVMRelocPIC,
                                                      LLVMCodeModelDefault);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    LLVMDisposeMessage(triple);
    if (!tm)
        fprintf(stderr, "nnc: error: cannot create the LLVM target machine\n");
    return tm;
}

static bool has_feature(const char *features, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = strstr(features, name); p; p = strstr(p + 1, name))
        if (p > features && p[-1] == '+' && (p[len] == ',' || p[len] == 0))
            return true;
    return false;
}

int cg_vector_bytes(void)
{
    char *features = LLVMGetHostCPUFeatures();
    int bytes = has_feature(features, "avx512f") ? 64 : has_feature(features, "avx") ? 32 : 16;
    LLVMDisposeMessage(features);
    return bytes;
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
