/* cg_jit.c - `nnc --run`: the module compiled in memory by ORC's LLJIT and trained at once.
 *
 * nnc is linked statically with the runtime, so the runtime's functions are defined in the
 * JIT as absolute symbols at their addresses in this process (nnc exports no symbols);
 * everything else (libm, libc) comes from the process's shared libraries. */
#include "cg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>

typedef void (*AnyFn)(void);

static const struct {
    const char *name;
    AnyFn fn;
} rt_symbols[] = {
    {"nnc_rt_int", (AnyFn)nnc_rt_int},
    {"nnc_rt_real", (AnyFn)nnc_rt_real},
    {"nnc_rt_model", (AnyFn)nnc_rt_model},
    {"nnc_rt_param", (AnyFn)nnc_rt_param},
    {"nnc_rt_grad", (AnyFn)nnc_rt_grad},
    {"nnc_rt_state", (AnyFn)nnc_rt_state},
    {"nnc_rt_workspace", (AnyFn)nnc_rt_workspace},
    {"nnc_rt_epoch_begin", (AnyFn)nnc_rt_epoch_begin},
    {"nnc_rt_batch", (AnyFn)nnc_rt_batch},
    {"nnc_rt_batch_end", (AnyFn)nnc_rt_batch_end},
    {"nnc_rt_batch_end_checked", (AnyFn)nnc_rt_batch_end_checked},
    {"nnc_rt_epoch_end", (AnyFn)nnc_rt_epoch_end},
    {"nnc_rt_parallel", (AnyFn)nnc_rt_parallel},
    {"nnc_rt_mark", (AnyFn)nnc_rt_mark},
    {"nnc_rt_gmax", (AnyFn)nnc_rt_gmax},
    {"nnc_rt_update_safe", (AnyFn)nnc_rt_update_safe},
    {"nnc_rt_dropout_f32", (AnyFn)nnc_rt_dropout_f32},
    {"nnc_rt_dropout_f64", (AnyFn)nnc_rt_dropout_f64},
};
enum { NRT_SYMBOLS = sizeof rt_symbols / sizeof *rt_symbols };

bool cg_jit_defines(const char *name)
{
    for (int i = 0; i < NRT_SYMBOLS; i++)
        if (strcmp(rt_symbols[i].name, name) == 0)
            return true;
    return false;
}

/* Prints and consumes err; true when there was one. */
static bool failed(LLVMErrorRef err, const char *what)
{
    if (!err)
        return false;
    char *msg = LLVMGetErrorMessage(err);
    fprintf(stderr, "nnc: error: %s: %s\n", what, msg);
    LLVMDisposeErrorMessage(msg);
    return true;
}

static LLVMErrorRef define_runtime(LLVMOrcLLJITRef jit, LLVMOrcJITDylibRef jd)
{
    LLVMJITCSymbolMapPair pairs[NRT_SYMBOLS];
    LLVMJITSymbolFlags flags = {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0};
    for (int i = 0; i < NRT_SYMBOLS; i++) {
        pairs[i].Name = LLVMOrcLLJITMangleAndIntern(jit, rt_symbols[i].name);
        pairs[i].Sym = (LLVMJITEvaluatedSymbol){(LLVMOrcExecutorAddress)(uintptr_t)rt_symbols[i].fn, flags};
    }
    return LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(pairs, NRT_SYMBOLS));
}

static LLVMOrcLLJITRef create_jit(LLVMTargetMachineRef tm)
{
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    /* takes (and frees) tm: the JIT compiles for the same CPU and features */
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
    LLVMOrcLLJITRef jit = NULL;
    if (failed(LLVMOrcCreateLLJIT(&jit, builder), "cannot start the LLVM JIT"))
        return NULL;
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(jit);
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    if (failed(define_runtime(jit, jd), "cannot define the runtime in the JIT") ||
        failed(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(jit), NULL, NULL),
               "cannot search the process's symbols")) {
        failed(LLVMOrcDisposeLLJIT(jit), "cannot shut the LLVM JIT down");
        return NULL;
    }
    LLVMOrcJITDylibAddGenerator(jd, gen);
    return jit;
}

/* Runs nnc_main with argv[0] = the model's name and the ARGS given after `--`. */
static int run_model(const NncModelDesc *model, const char *name, int argc, char **argv)
{
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args) {
        fputs("nnc: error: out of memory\n", stderr);
        return 1;
    }
    args[0] = (char *)name;
    for (int i = 0; i < argc; i++)
        args[i + 1] = argv[i];
    int status = nnc_main(argc + 1, args, model);
    free(args);
    return status;
}

int cg_jit_run(LLVMOrcThreadSafeContextRef tsc, LLVMModuleRef mod, LLVMTargetMachineRef tm,
               const char *name, int argc, char **argv)
{
    LLVMOrcLLJITRef jit = create_jit(tm);
    if (!jit) {
        LLVMDisposeModule(mod);
        return 1;
    }
    int status = 1;
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc);
    LLVMOrcExecutorAddress addr = 0;
    if (!failed(LLVMOrcLLJITAddLLVMIRModule(jit, LLVMOrcLLJITGetMainJITDylib(jit), tsm),
                "cannot add the module to the JIT") &&
        !failed(LLVMOrcLLJITLookup(jit, &addr, "nnc_model"), "cannot compile the model in memory"))
        status = run_model((const NncModelDesc *)(uintptr_t)addr, name, argc, argv);
    fflush(stdout);
    if (failed(LLVMOrcDisposeLLJIT(jit), "cannot shut the LLVM JIT down"))
        status = 1;
    return status;
}
